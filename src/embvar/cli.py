"""The ``embvar`` command line: parses arguments and calls the Python API.

Every command is a thin layer over a function of the same name in the
package; whatever the command line does, a notebook can do with one import.
Errors embvar raises on purpose are printed as one line on stderr with exit
code 2; Ctrl-C stops cleanly with exit code 130, and the next start resumes.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from typing import Annotated

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import typer  # noqa: E402
from rich.console import Console  # noqa: E402

from embvar import native_logs  # noqa: E402
from embvar.errors import EmbvarError  # noqa: E402

native_logs.install()

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Why do the embeddings your Keras model learns vary between runs?",
)
console = Console()
err_console = Console(stderr=True, soft_wrap=True, highlight=False)


@app.command()
def study(
    name: Annotated[
        str,
        typer.Argument(
            help="A built-in study (movielens, text8, ...) or a .toml file."
        ),
    ],
    quick: Annotated[
        bool, typer.Option("--quick", help="The study's smaller plan.")
    ] = False,
    directory: Annotated[
        Path | None,
        typer.Option(
            "--dir",
            help="Study directory (default runs/<name>, runs/<name>-quick "
            "with --quick).",
        ),
    ] = None,
    workers: Annotated[
        int, typer.Option(min=1, help="Local processes to train in.")
    ] = 1,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the summary as JSON.")
    ] = False,
    no_progress: Annotated[bool, typer.Option("--no-progress")] = False,
    executor: Annotated[
        str | None,
        typer.Option(help="local or ray (default the study's [execution] executor)."),
    ] = None,
    address: Annotated[
        str | None,
        typer.Option(
            help="Ray cluster to join: auto, host:6379 (default a Ray started here)."
        ),
    ] = None,
    trainer: Annotated[
        str,
        typer.Option(
            help="auto (runs that share shapes train together, as replicas "
            "in one compiled step), replicas, or independent (one fit per run)."
        ),
    ] = "auto",
    reanalyze: Annotated[
        bool,
        typer.Option(
            "--reanalyze",
            help="Analyse again even where nothing changed since the last report.",
        ),
    ] = False,
) -> None:
    """Train a study's unfinished runs, analyse them, write report.json and .html."""
    from embvar.report.terminal import print_summary, summary_json
    from embvar.study import run_study

    outcome = run_study(
        name,
        directory,
        quick=quick,
        workers=workers,
        executor=executor,
        address=address,
        trainer=trainer,
        reanalyze=reanalyze,
        progress=not no_progress and not as_json and sys.stderr.isatty(),
    )
    report = outcome.report or {}
    html = None
    if outcome.report_path is not None:
        html = str(outcome.report_path.with_name("report.html"))
    if as_json:
        console.print_json(
            json.dumps(summary_json(report, str(outcome.report_path), html))
        )
    else:
        kept = (
            " Nothing changed since the last report, so it was kept "
            "(--reanalyze to analyse again)."
            if outcome.report_reused
            else ""
        )
        console.print(
            f"{len(outcome.trained)} runs trained, {outcome.skipped} already "
            f"finished, {len(outcome.failed)} failed.{kept}",
            markup=False,
        )
        print_summary(report, console, str(outcome.report_path), html)
    if outcome.failed:
        first = next(iter(outcome.failed.items()))
        err_console.print(
            f"embvar: {len(outcome.failed)} runs failed; first: {first[0]}: {first[1]}",
            markup=False,
        )
        raise typer.Exit(1)


@app.command()
def runs(directory: Annotated[Path, typer.Argument(help="A study directory.")]) -> None:
    """List a study directory's runs with their factor values and status."""
    from embvar.report.terminal import print_runs
    from embvar.store import Store

    with Store(directory, create=False) as store:
        print_runs(store.runs(), console)


@app.command()
def report(
    directory: Annotated[
        Path, typer.Argument(help="A directory holding a report.json.")
    ],
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the summary as JSON.")
    ] = False,
) -> None:
    """Rebuild report.html from a directory's report.json; print the summary."""
    from embvar.report.html import rebuild_html
    from embvar.report.terminal import print_summary, summary_json

    doc, html = rebuild_html(directory)
    source = str(directory / "report.json")
    if as_json:
        console.print_json(json.dumps(summary_json(doc, source, str(html))))
    else:
        print_summary(doc, console, source, str(html))


@app.command()
def claims(
    directory: Annotated[
        Path, typer.Argument(help="A directory holding a report.json.")
    ],
    as_json: Annotated[
        bool,
        typer.Option(
            "--json", help="Print every field of each claim and part as JSON."
        ),
    ] = False,
) -> None:
    """Print the verdicts on the article's claims of a study's report."""
    from rich.table import Table

    from embvar.analysis.claims import claims_table, not_measured_reason
    from embvar.report.document import read_report

    rows = claims_table(read_report(directory))
    if as_json:
        console.print_json(json.dumps(rows))
        return
    table = Table("claim", "verdict", "metric", "effect", "95% interval")
    for r in rows:
        low, high = r["interval"] or (None, None)
        interval = "" if None in (low, high) else f"[{low:.3g}, {high:.3g}]"
        effect = "" if r["effect"] is None else f"{r['effect']:.3g}"
        reason = not_measured_reason(r)
        metric = r["metric"] or (f"not measured: {reason}" if reason else "")
        table.add_row(r["id"], r["verdict"], metric, effect, interval)
    console.print(table)
    console.print("Each claim and its parts: `embvar claims DIR --json`.", markup=False)


@app.command()
def export(
    directory: Annotated[
        Path, typer.Argument(help="A study directory or a store of recorded runs.")
    ],
    projector: Annotated[
        bool, typer.Option("--projector", help="TensorBoard Embedding Projector files.")
    ] = False,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Output folder (default DIR/projector)."),
    ] = None,
    group: Annotated[
        str | None,
        typer.Option(
            "--group", help="Group key from report.json (default: the largest)."
        ),
    ] = None,
    table: Annotated[
        str, typer.Option(help="Embedding table to export.")
    ] = "item_embedding",
) -> None:
    """Export a group's runs, aligned to the first, for the Embedding Projector."""
    from embvar.errors import ConfigError
    from embvar.report.projector import export_projector

    if not projector:
        raise ConfigError(
            "choose what to export: --projector (the only format so far)."
        )
    done = export_projector(directory, out, group=group, table=table)
    console.print(
        f"{len(done.runs)} runs of {done.table} ({done.n_entities} x {done.dim}), "
        f"aligned to run {done.runs[0]}, written to {done.directory}; view with "
        f"`tensorboard --logdir {done.directory}`.",
        markup=False,
    )


@app.command()
def determinism(
    name: Annotated[
        str,
        typer.Argument(
            help=(
                "A study (movielens, a .toml file), or a training function "
                "'package.module:function' / 'script.py:function' "
                "(imported: its code runs)."
            )
        ),
    ],
    run: Annotated[
        str | None,
        typer.Option(
            "--run", help="Run id (or unique prefix) to audit; default the first."
        ),
    ] = None,
    quick: Annotated[
        bool, typer.Option("--quick", help="The study's smaller plan.")
    ] = False,
    directory: Annotated[
        Path | None,
        typer.Option(
            "--dir", help="Where determinism.json goes (default the study directory)."
        ),
    ] = None,
    replicates: Annotated[
        int, typer.Option(min=2, help="Fresh processes per setting.")
    ] = 2,
    epochs: Annotated[
        int | None, typer.Option(help="Override the run's epochs.")
    ] = None,
    fraction: Annotated[
        float | None, typer.Option(help="Override the run's data fraction.")
    ] = None,
    cell: Annotated[
        list[str] | None,
        typer.Option(
            "--cell",
            help="Only this setting (repeatable), such as "
            "det-on_threads-all_onednn-off_cpu; the first is the baseline.",
        ),
    ] = None,
    no_pitfalls: Annotated[bool, typer.Option("--no-pitfalls")] = False,
    keep_runs: Annotated[
        bool,
        typer.Option(
            "--keep-runs", help="Keep every run's records (DIR/determinism-runs)."
        ),
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the document as JSON.")
    ] = False,
) -> None:
    """Train one run in fresh processes under each setting; compare bit for bit."""
    from embvar.determinism.audit import determinism_audit, print_audit

    if directory is None and ":" in name and not name.endswith(".toml"):
        directory = Path("runs") / ("determinism-" + name.rpartition(":")[2])
    say = None if as_json else (lambda line: err_console.print(line, markup=False))
    audit = determinism_audit(
        name,
        run,
        quick=quick,
        directory=directory,
        replicates=replicates,
        epochs=epochs,
        fraction=fraction,
        cells=cell or None,
        pitfalls=not no_pitfalls,
        keep_runs=keep_runs,
        progress=say,
    )
    if as_json:
        console.print_json(json.dumps(audit.document))
    else:
        print_audit(audit.document, console, audit.path, audit.html_path)


@app.command()
def manifest(
    files: Annotated[
        list[Path] | None,
        typer.Argument(
            help="Two manifest files to diff; none: print this machine's manifest."
        ),
    ] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Write it here.")] = None,
) -> None:
    """Print (or write) this machine's manifest, or diff two manifest files."""
    from embvar.errors import ConfigError
    from embvar.manifest import (
        collect_manifest,
        diff_manifests,
        read_manifest,
        write_manifest,
    )

    if files:
        if len(files) != 2:
            raise ConfigError(f"give two manifest files to diff; got {len(files)}.")
        console.print_json(
            json.dumps(diff_manifests(*(read_manifest(f) for f in files)))
        )
        return
    doc = collect_manifest()
    if out is not None:
        console.print(f"written: {write_manifest(doc, out)}", markup=False)
    else:
        console.print_json(json.dumps(doc))


@app.command()
def compare(
    files: Annotated[
        list[Path],
        typer.Argument(
            help=(
                "Two or more embedding files (npy+ids, npz, word2vec text/binary, "
                "projector TSV, .keras, TF checkpoint), or a store of recorded runs."
            )
        ),
    ],
    fmt: Annotated[
        str | None,
        typer.Option(
            "--format", help="Force the format of every file (default: from content)."
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="Folder for report.json/.html (default runs/compare, or the "
            "store itself).",
        ),
    ] = None,
    layer: Annotated[
        str | None, typer.Option(help="Layer to read from Keras files.")
    ] = None,
    variable: Annotated[
        str | None,
        typer.Option(help="Variable to read from TensorFlow checkpoints."),
    ] = None,
    k: Annotated[int, typer.Option(min=1, help="Neighbours for k-NN overlap.")] = 10,
    ids: Annotated[
        str | None,
        typer.Option(
            "--ids",
            help="'rows': match a file that stores no ids (.npy without an ids "
            "file, .keras, checkpoint) row for row with the first file that has "
            "ids.",
        ),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the summary as JSON.")
    ] = False,
) -> None:
    """Compare embedding files matched on their ids; write report.json and .html."""
    from embvar.comparison import compare as compare_files
    from embvar.comparison import default_compare_directory

    outcome = compare_files(
        files,
        out or default_compare_directory(files),
        format=fmt,
        layer=layer,
        variable=variable,
        k=k,
        ids=ids,
    )
    report = outcome.report
    if as_json:
        console.print_json(
            json.dumps(
                {
                    "summary": report["summary"],
                    "groups": _strip_pairs(report["groups"]),
                    "report": str(outcome.report_path),
                }
            )
        )
        return
    for sentence in report["summary"]:
        console.print(sentence, markup=False)
    written = " and ".join(
        str(p) for p in (outcome.report_path, outcome.html_path) if p
    )
    console.print(f"Report written to {written}", markup=False)


def _strip_pairs(groups: list[dict]) -> list[dict]:
    return [{k: v for k, v in g.items() if k != "pairs"} for g in groups]


def main() -> None:
    """Entry point: run the app, turning embvar errors into one line."""
    logging.basicConfig(
        level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    try:
        # Outside standalone mode typer returns the exit code of typer.Exit,
        # and turns Ctrl-C into 130, instead of exiting.
        code = app(standalone_mode=False)
    except EmbvarError as exc:
        err_console.print(
            f"embvar: error: {exc}", markup=False, highlight=False, soft_wrap=True
        )
        sys.exit(2)
    except KeyboardInterrupt:
        err_console.print(
            "embvar: interrupted; finished runs are kept, run the same "
            "command again to resume.",
            markup=False,
        )
        sys.exit(130)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except Exception as exc:
        # Click's exceptions, from click itself or the copy typer vendors.
        kinds = {c.__name__ for c in type(exc).__mro__}
        if "Abort" in kinds:
            err_console.print("embvar: interrupted; run the same command to resume.")
            sys.exit(130)
        if "ClickException" in kinds:
            ctx = getattr(exc, "ctx", None)
            hint = f"; see `{ctx.command_path} --help`" if ctx is not None else ""
            message = exc.format_message().rstrip(".")
            err_console.print(
                f"embvar: error: {message}{hint}.",
                markup=False,
                highlight=False,
                soft_wrap=True,
            )
            sys.exit(2)
        raise
    if code == 130:
        err_console.print(
            "embvar: interrupted; finished runs are kept, run the same "
            "command again to resume.",
            markup=False,
        )
    if isinstance(code, int) and code:
        sys.exit(code)


if __name__ == "__main__":
    main()
