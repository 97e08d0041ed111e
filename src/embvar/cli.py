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
from typing import Annotated, Optional

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import typer  # noqa: E402
from rich.console import Console  # noqa: E402

from embvar.errors import EmbvarError  # noqa: E402

app = typer.Typer(
    add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
    help="Why do the embeddings your Keras model learns vary between runs?",
)
console = Console()
err_console = Console(stderr=True)


@app.command()
def study(
    name: Annotated[str, typer.Argument(help="A built-in study (movielens) or a .toml file.")],
    quick: Annotated[bool, typer.Option("--quick", help="The study's smaller plan.")] = False,
    directory: Annotated[Optional[Path], typer.Option(
        "--dir", help="Study directory (default runs/<name>).")] = None,
    workers: Annotated[int, typer.Option(min=1, help="Local processes to train in.")] = 1,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
    no_progress: Annotated[bool, typer.Option("--no-progress")] = False,
) -> None:
    """Train a study's unfinished runs, analyse them, write report.json."""
    from embvar.report.terminal import print_summary
    from embvar.study import run_study

    outcome = run_study(name, directory, quick=quick, workers=workers,
                        progress=not no_progress and not as_json and sys.stderr.isatty())
    report = outcome.report or {}
    if as_json:
        console.print_json(json.dumps({"summary": report.get("summary"),
                                       "groups": _strip_pairs(report.get("groups", [])),
                                       "report": str(outcome.report_path)}))
    else:
        console.print(f"{len(outcome.trained)} runs trained, {outcome.skipped} already "
                      f"finished, {len(outcome.failed)} failed.", markup=False)
        print_summary(report, console, str(outcome.report_path))
    if outcome.failed:
        first = next(iter(outcome.failed.items()))
        err_console.print(f"embvar: {len(outcome.failed)} runs failed; first: "
                          f"{first[0]}: {first[1]}", markup=False)
        raise typer.Exit(1)


@app.command()
def runs(directory: Annotated[Path, typer.Argument(help="A study directory.")]) -> None:
    """List a study directory's runs with their factor values and status."""
    from embvar.report.terminal import print_runs
    from embvar.store import Store

    with Store(directory, create=False) as store:
        print_runs(store.runs(), console)


def _strip_pairs(groups: list[dict]) -> list[dict]:
    return [{k: v for k, v in g.items() if k != "pairs"} for g in groups]


def main() -> None:
    """Entry point: run the app, turning embvar errors into one line."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        # Outside standalone mode typer returns the exit code of typer.Exit,
        # and turns Ctrl-C into 130, instead of exiting.
        code = app(standalone_mode=False)
    except EmbvarError as exc:
        err_console.print(f"embvar: error: {exc}", markup=False, highlight=False, soft_wrap=True)
        sys.exit(2)
    except KeyboardInterrupt:
        err_console.print("embvar: interrupted; finished runs are kept, run the same "
                          "command again to resume.", markup=False)
        sys.exit(130)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except Exception as exc:
        import click

        if isinstance(exc, click.exceptions.Abort):
            err_console.print("embvar: interrupted; run the same command to resume.")
            sys.exit(130)
        if isinstance(exc, click.ClickException):
            exc.show()
            sys.exit(2)
        raise
    if code == 130:
        err_console.print("embvar: interrupted; finished runs are kept, run the same "
                          "command again to resume.", markup=False)
    if isinstance(code, int) and code:
        sys.exit(code)


if __name__ == "__main__":
    main()
