"""Study files: parse, validate, and expand into a plan of RunSpecs.

A study file is TOML::

    name = "movielens"
    root_seed = 0

    [data]                       # what to train on
    source = "movielens"         # or a path to a ratings/interactions file
    test_fraction = 0.2

    [model]                      # the built-in matrix factorization
    dim = 32
    initializer = "uniform"

    [training]
    optimizer = "adam"
    learning_rate = 0.001
    epochs = 10

    [[design]]                   # one block of the plan: a cross product
    name = "seeds"
    factors = { init = [0, 1, 2, 3, 4], order = [0, 1, 2, 3, 4] }

    [quick]                      # what --quick changes (same keys)
    training = { epochs = 3 }

Each ``[[design]]`` is the cross product of its factors, repeated
``replicates`` times (replicate ``r`` sets every seed source the design
does not list to level ``r``). The plan is the union of all designs; a run
that two designs share is trained once, because a run's identity is the
hash of its resolved settings and seeds.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_serializer,
)

from embvar.errors import ConfigError
from embvar.seeds import SOURCES, source_seeds

__all__ = [
    "TRAINERS",
    "Trainer",
    "DataSpec",
    "ModelSpec",
    "TrainingSpec",
    "Design",
    "AnalysisSpec",
    "ExecutionSpec",
    "Study",
    "RunSpec",
    "load_study",
    "parse_study",
    "plan_runs",
    "FACTOR_SECTIONS",
    "builtin_study_path",
    "MAX_RUNS",
]

# The most runs one study may plan (a guard against a typo exploding a
# cross product); raise it in code if you really need more.
MAX_RUNS = 10_000

# How a study's runs are trained (embvar.training.replicas.group_runs): here,
# so that a bad value is refused before TensorFlow is imported.
Trainer = Literal["auto", "replicas", "independent"]
TRAINERS: tuple[str, ...] = ("auto", "replicas", "independent")

_STRICT = ConfigDict(extra="forbid", frozen=True)

Optimizer = Literal["sgd", "adam", "adamw", "rmsprop", "adagrad"]
DataKind = Literal["interactions", "text"]
#: The built-in model families; any other kind is a builder "module:function".
MODEL_KINDS = ("factorization", "skipgram", "word2vec")
# Options added after the first studies: left out of a spec's dump (and so
# of its run id) while at their defaults, so existing run ids do not change.
_TEXT_DATA_DEFAULTS = {"kind": "interactions", "min_count": 5, "stem_benchmarks": False}
_WORD_MODEL_DEFAULTS = {
    "window": 5,
    "negatives": 5,
    "subsample": 1e-3,
    "workers": 1,
    "params": {},
    "fit": None,
}


class _Spec(BaseModel):
    """A table of a study file: unknown keys rejected, true/false never a number."""

    model_config = _STRICT

    @field_validator("*", mode="before")
    @classmethod
    def _no_bool_number(cls, v: Any, info: ValidationInfo) -> Any:
        # Pydantic reads true as 1 for an int or float; in a study file it is a typo.
        field = cls.model_fields.get(info.field_name or "")
        numbers = (int, float, int | None, float | None)
        if isinstance(v, bool) and field is not None and field.annotation in numbers:
            raise ValueError("must be a number, not true or false")
        return v


def _drop_defaults(out: dict[str, Any], defaults: dict[str, Any]) -> None:
    for key, default in defaults.items():
        if key in out and out[key] == default:
            del out[key]


Initializer = Literal["uniform", "glorot_uniform", "normal", "pretrained"]


class DataSpec(_Spec):
    """Which interactions to train on and how to split them."""

    model_config = _STRICT

    source: str = "movielens"
    test_fraction: float = Field(0.2, gt=0.0, le=0.9)
    fraction: float = Field(1.0, gt=0.0, le=1.0)
    # Share of users left out of this study's training and test data; their
    # ratings are what ``model.pretrained = "holdout"`` pre-trains on.
    holdout_users: float = Field(0.0, ge=0.0, le=0.9)
    # Text: a corpus ("text8" or a file, one sentence a line) instead of
    # interactions; words seen fewer than min_count times are left out;
    # stem_benchmarks Porter-stems the word benchmarks (for stemmed corpora).
    kind: DataKind = "interactions"
    min_count: int = Field(5, ge=1, le=1_000_000)
    stem_benchmarks: bool = False

    @model_serializer(mode="wrap")
    def _dump(self, handler: Any) -> dict[str, Any]:
        # An option at its default is left out of the dump, so the run ids
        # of studies written before the option existed stay the same.
        out = handler(self)
        if out.get("holdout_users") == 0.0:
            out.pop("holdout_users")
        _drop_defaults(out, _TEXT_DATA_DEFAULTS)
        return out


class ModelSpec(_Spec):
    """The built-in matrix factorization, or a user's builder."""

    model_config = _STRICT

    kind: str = "factorization"
    dim: int = Field(32, ge=1, le=4096)
    initializer: Initializer = "uniform"
    init_stddev: float = Field(0.05, gt=0.0, le=10.0)
    pretrained: str | None = None
    use_bias: bool = True
    l2: float = Field(0.0, ge=0.0, le=10.0)
    # Word models (skipgram, word2vec): context window, negative samples per
    # pair, subsampling threshold; gensim's threads (word2vec only).
    window: int = Field(5, ge=1, le=100)
    negatives: int = Field(5, ge=1, le=100)
    subsample: float = Field(1e-3, ge=0.0, le=1.0)
    workers: int = Field(1, ge=1, le=256)
    # A builder's own hyperparameters, and an optional training hook
    # "package.module:function" (see embvar.models.custom).
    params: dict[str, Any] = Field(default_factory=dict)
    fit: str | None = None

    @field_validator("kind")
    @classmethod
    def _kind(cls, v: str) -> str:
        if v not in MODEL_KINDS and ":" not in v:
            raise ValueError(
                "must be one of 'factorization', 'skipgram', 'word2vec' or a "
                "builder 'package.module:function'"
            )
        return v

    @field_validator("fit")
    @classmethod
    def _fit(cls, v: str | None) -> str | None:
        if v is not None and ":" not in v:
            raise ValueError("must name a training hook 'package.module:function'")
        return v

    @model_serializer(mode="wrap")
    def _dump(self, handler: Any) -> dict[str, Any]:
        # Options at their defaults are left out (see _WORD_MODEL_DEFAULTS).
        out = handler(self)
        _drop_defaults(out, _WORD_MODEL_DEFAULTS)
        return out


class TrainingSpec(_Spec):
    """Optimizer and schedule of one run."""

    model_config = _STRICT

    optimizer: Optimizer = "adam"
    learning_rate: float = Field(0.001, gt=0.0, le=100.0)
    weight_decay: float = Field(0.0, ge=0.0, le=10.0)
    batch_size: int = Field(1024, ge=1, le=1_000_000)
    epochs: int = Field(10, ge=1, le=1000)


# Where each hyperparameter a design may vary lives.
FACTOR_SECTIONS: dict[str, str] = {
    **{
        name: "data" for name in DataSpec.model_fields if name not in ("source", "kind")
    },
    **{name: "model" for name in ModelSpec.model_fields},
    **{name: "training" for name in TrainingSpec.model_fields},
}
# "repeat": the same run trained again, every seed the same (each repeat a
# run id of its own, the repeats one group), to see whether training is
# deterministic.
_SEED_FACTORS = (*SOURCES, "perturb", "repeat")


class Design(_Spec):
    """One block of a study's plan: the cross product of its factors."""

    model_config = _STRICT

    # Letters, digits, "_", "-" and "." but not first: no path can hide in it.
    name: str = Field(
        "main", min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-][A-Za-z0-9_.-]*$"
    )
    replicates: int = Field(1, ge=1, le=1000)
    # Replicate r seeds each unlisted source at level seed_offset + r: give
    # designs different offsets so their replicates never share seeds.
    seed_offset: int = Field(0, ge=0, le=1_000_000)
    factors: dict[str, list[Any]] = Field(default_factory=dict)

    @field_validator("factors")
    @classmethod
    def _factors(cls, v: dict[str, list[Any]]) -> dict[str, list[Any]]:
        for key, values in v.items():
            if key not in FACTOR_SECTIONS and key not in _SEED_FACTORS:
                accepted = ", ".join([*_SEED_FACTORS, *FACTOR_SECTIONS])
                raise ValueError(
                    f"unknown factor {key!r}; accepted factors: {accepted}"
                )
            if not values:
                raise ValueError(f"factor {key!r} must list at least one value")
            if key in _SEED_FACTORS:
                for level in values:
                    if (
                        isinstance(level, bool)
                        or not isinstance(level, int)
                        or level < 0
                    ):
                        raise ValueError(
                            f"seed factor {key!r} must list integers >= 0; "
                            f"got {level!r}"
                        )
            if len(set(map(repr, values))) != len(values):
                raise ValueError(f"factor {key!r} lists a value twice: {values}")
        return v


class Quick(BaseModel):
    """Overrides applied by ``--quick``: a smaller plan, same code path."""

    model_config = _STRICT

    data: dict[str, Any] = Field(default_factory=dict)
    model: dict[str, Any] = Field(default_factory=dict)
    training: dict[str, Any] = Field(default_factory=dict)
    design: list[Design] | None = None


class AnalysisSpec(BaseModel):
    """What the report computes beyond its standard sections."""

    model_config = _STRICT

    # A set of claims to give verdicts on ("article": the reference
    # article's C1-C7, from this study's designs).
    claims: Literal["none", "article"] = "none"
    # Rerun the reference article's examples 2 and 3 as written, beside the
    # corrected version.
    article_examples: bool = False


class ExecutionSpec(_Spec):
    """Where a study's runs are trained; never part of a run's identity.

    ``executor``: "local" (this machine's process pool) or "ray";
    ``address``: the Ray cluster to join (default a Ray started here);
    ``cpus``, ``gpus``, ``memory``: what each Ray task asks for (memory in
    bytes, or a string such as "2GiB" or "512MB"); ``max_retries``: how many
    times Ray runs a task again whose worker died.
    """

    model_config = _STRICT

    executor: Literal["local", "ray"] = "local"
    address: str | None = None
    cpus: float = Field(1.0, gt=0.0, le=1024.0)
    gpus: float = Field(0.0, ge=0.0, le=64.0)
    memory: int | None = Field(None, ge=1)
    max_retries: int = Field(3, ge=0, le=100)

    @field_validator("memory", mode="before")
    @classmethod
    def _memory(cls, v: Any) -> Any:
        if not isinstance(v, str):
            return v
        units = {
            "": 1,
            "b": 1,
            "kb": 10**3,
            "mb": 10**6,
            "gb": 10**9,
            "tb": 10**12,
            "kib": 2**10,
            "mib": 2**20,
            "gib": 2**30,
            "tib": 2**40,
        }
        # The number, then the unit: every letter at the end.
        number, unit = re.fullmatch(
            r"(.*?)\s*([a-z]*)", v.strip().lower(), re.S
        ).groups()
        try:
            return int(float(number) * units[unit])
        except (KeyError, ValueError, OverflowError):
            raise ValueError(
                f"must be bytes or a size such as '2GiB' or '512MB'; got {v!r}"
            ) from None


class Study(_Spec):
    """A validated study file."""

    model_config = _STRICT

    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    description: str = ""
    root_seed: int = Field(0, ge=0, le=2**63 - 1)
    data: DataSpec = DataSpec()
    model: ModelSpec = ModelSpec()
    training: TrainingSpec = TrainingSpec()
    design: list[Design] = Field(default_factory=lambda: [Design()], min_length=1)
    analysis: AnalysisSpec = AnalysisSpec()
    execution: ExecutionSpec = ExecutionSpec()
    quick: Quick | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if v in (".", "..") or v.startswith("."):
            raise ValueError("must not start with '.' (it names a folder)")
        return v

    @field_validator("design")
    @classmethod
    def _design_names(cls, v: list[Design]) -> list[Design]:
        # The report labels and attributes runs by design name.
        names = [d.name for d in v]
        for name in names:
            if names.count(name) > 1:
                raise ValueError(
                    f"must give each design a name of its own; {name!r} names "
                    f"{names.count(name)} designs"
                )
        return v


class RunSpec(BaseModel):
    """Everything that determines one run; its hash is the run's identity."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    study: str
    designs: tuple[str, ...]
    data: DataSpec
    model: ModelSpec
    training: TrainingSpec
    levels: dict[str, int]
    seeds: dict[str, int]
    perturb: int = 0
    # Set by a design with a "repeat" factor: the same seeds trained again.
    repeat: int | None = None
    factors: dict[str, Any]

    def identity(self) -> dict[str, Any]:
        """The settings the run's id hashes: no names, no display values."""
        ident = {
            "data": self.data.model_dump(),
            "model": self.model.model_dump(),
            "training": self.training.model_dump(),
            "seeds": self.seeds,
            "perturb": self.perturb,
        }
        if self.repeat is not None:
            ident["repeat"] = self.repeat
        return ident

    @property
    def run_id(self) -> str:
        blob = json.dumps(self.identity(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    @property
    def group_key(self) -> str:
        """Hash of the hyperparameters only: runs that are seed replicates."""
        ident = self.identity()
        del ident["seeds"]
        ident["split"] = self.seeds["split"]
        if ident.pop("repeat", None) is not None:
            # Repeats of one run: a group per seeds, not across seeds.
            ident["repeats_of"] = self.seeds
        blob = json.dumps(ident, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:12]

    def hyperparameters(self) -> dict[str, Any]:
        """The factor values that are not seeds, for labels and grouping."""
        return {k: v for k, v in self.factors.items() if k not in _SEED_FACTORS}


def builtin_study_path(name: str) -> Path | None:
    """Return the path of a study shipped with embvar, or None."""
    path = Path(__file__).parent / "studies" / f"{name}.toml"
    return path if path.is_file() else None


def load_study(source: str | Path, *, quick: bool = False) -> Study:
    """Return the validated study named ``source`` (built-in) or at a path.

    Raises
    ------
    ConfigError
        One line naming the key, what it must be, and the value received.
    """
    text_source = str(source)
    path = (
        builtin_study_path(text_source)
        if "/" not in text_source and not text_source.endswith(".toml")
        else None
    )
    if path is None:
        path = Path(source)
        if not path.is_file():
            shipped = sorted(
                p.stem for p in (Path(__file__).parent / "studies").glob("*.toml")
            )
            raise ConfigError(
                f"study {text_source!r} is neither a built-in study "
                f"({', '.join(shipped)}) nor an existing .toml file."
            )
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}.") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the study file: {exc}.") from exc
    return parse_study(_anchor_paths(raw, path.parent), origin=str(path), quick=quick)


def _anchor_paths(raw: dict[str, Any], folder: Path) -> dict[str, Any]:
    """Resolve the relative file paths of a study file against its folder.

    ``data.source`` and a file ``model.pretrained`` (``.npy``/``.npz``, or
    the directory of ``STORE_DIR:RUN_ID``) written relative to the study
    file are made absolute, so a study runs the same from any directory. A
    path that does not exist there is left as written (the error names it).
    """

    def anchored(value: str) -> str:
        if Path(value).is_absolute() or not (folder / value).exists():
            return value
        return str((folder / value).resolve())

    raw = dict(raw)
    data = raw.get("data")
    if isinstance(data, dict) and isinstance(data.get("source"), str):
        if data["source"] not in ("movielens", "text8"):
            raw["data"] = {**data, "source": anchored(data["source"])}
    model = raw.get("model")
    if isinstance(model, dict) and isinstance(model.get("pretrained"), str):
        value = model["pretrained"]
        if value.endswith((".npy", ".npz")):
            value = anchored(value)
        elif ":" in value:
            store, _, run = value.rpartition(":")
            if store:
                value = f"{anchored(store)}:{run}"
        raw["model"] = {**model, "pretrained": value}
    return raw


def parse_study(
    raw: dict[str, Any], *, origin: str = "study", quick: bool = False
) -> Study:
    """Validate a parsed study table; apply the ``[quick]`` overrides if asked."""
    study = _validate(Study, raw, origin)
    if study.quick is not None:
        # Checked with or without --quick: a typo in [quick] shows at once.
        merged = dict(raw)
        for section in ("data", "model", "training"):
            merged[section] = {**raw.get(section, {}), **getattr(study.quick, section)}
        if study.quick.design is not None:
            merged["design"] = raw["quick"]["design"]
        merged.pop("quick", None)
        quick_study = _validate(Study, merged, origin + " [quick]")
        plan_runs(quick_study)
        if quick:
            return quick_study
    plan_runs(study)  # rejects factor values that do not validate
    return study


def plan_runs(study: Study) -> list[RunSpec]:
    """Expand the study's designs into RunSpecs, unique by run id, in order."""
    specs: dict[str, RunSpec] = {}
    for design in study.design:
        keys = list(design.factors)
        for replicate in range(design.replicates):
            for values in itertools.product(*(design.factors[k] for k in keys)):
                spec = _make_spec(
                    study, design, dict(zip(keys, values, strict=True)), replicate
                )
                if spec.run_id in specs:
                    old = specs[spec.run_id]
                    if design.name not in old.designs:
                        specs[spec.run_id] = old.model_copy(
                            update={"designs": (*old.designs, design.name)}
                        )
                else:
                    specs[spec.run_id] = spec
                if len(specs) > MAX_RUNS:
                    raise ConfigError(
                        f"study {study.name!r} plans more than {MAX_RUNS} runs; "
                        "reduce its factors or replicates."
                    )
    return list(specs.values())


def _make_spec(
    study: Study, design: Design, values: dict[str, Any], replicate: int
) -> RunSpec:
    sections: dict[str, dict[str, Any]] = {
        "data": study.data.model_dump(),
        "model": study.model.model_dump(),
        "training": study.training.model_dump(),
    }
    levels = {s: 0 for s in SOURCES}
    for s in SOURCES:
        if s not in values and s != "split":
            levels[s] = design.seed_offset + replicate
    perturb = 0
    repeat = None
    for key, value in values.items():
        if key in SOURCES:
            levels[key] = value
        elif key == "perturb":
            perturb = value
        elif key == "repeat":
            repeat = value
        else:
            sections[FACTOR_SECTIONS[key]][key] = value
    where = f"design {design.name!r}"
    data = _validate(DataSpec, sections["data"], where)
    model = _validate(ModelSpec, sections["model"], where)
    training = _validate(TrainingSpec, sections["training"], where)
    if model.initializer == "pretrained" and not model.pretrained:
        raise ConfigError(
            f"{where}: model.pretrained must name a .npy/.npz file or "
            "'STORE_DIR:RUN_ID' when initializer = 'pretrained'; "
            "got model.pretrained=None."
        )
    if (
        model.pretrained == "holdout"
        and model.initializer == "pretrained"
        and (data.holdout_users == 0)
    ):
        raise ConfigError(
            f"{where}: model.pretrained = 'holdout' pre-trains on held-out users; "
            "set data.holdout_users to a share in (0, 0.9]; got data.holdout_users=0."
        )
    _check_family(data, model, where)
    factors = dict(values)
    if design.replicates > 1:
        factors["replicate"] = replicate
    return RunSpec(
        study=study.name,
        designs=(design.name,),
        data=data,
        model=model,
        training=training,
        levels=levels,
        seeds=source_seeds(study.root_seed, levels),
        perturb=perturb,
        repeat=repeat,
        factors=factors,
    )


def _check_family(data: DataSpec, model: ModelSpec, where: str) -> None:
    """Reject a model kind that cannot train on the data kind."""
    needs = {"factorization": "interactions", "skipgram": "text", "word2vec": "text"}
    wanted = needs.get(model.kind)
    if wanted is not None and data.kind != wanted:
        raise ConfigError(
            f"{where}: model.kind = {model.kind!r} trains on data.kind = {wanted!r}; "
            f"got data.kind={data.kind!r} (source {data.source!r})."
        )
    if data.source == "text8" and data.kind != "text":
        raise ConfigError(
            f"{where}: data.source = 'text8' is a text corpus; set data.kind = "
            f"'text'; got data.kind={data.kind!r}."
        )
    if model.workers != 1 and model.kind != "word2vec":
        raise ConfigError(
            f"{where}: model.workers sets gensim's threads and applies to "
            f"model.kind = 'word2vec' only; got workers={model.workers} with "
            f"kind={model.kind!r}."
        )
    if model.fit is not None and model.kind in ("factorization", "word2vec"):
        raise ConfigError(
            f"{where}: model.fit is a training hook for the skip-gram model or a "
            f"builder 'package.module:function'; the built-in {model.kind!r} "
            f"model trains without one; got fit={model.fit!r} with "
            f"kind={model.kind!r}."
        )
    if model.kind == "skipgram" and model.initializer == "pretrained":
        raise ConfigError(
            f"{where}: model.initializer = 'pretrained' applies to the factorization "
            "model; the skip-gram model takes 'uniform', 'glorot_uniform' or 'normal'."
        )
    if model.kind == "word2vec" and model.initializer != "uniform":
        raise ConfigError(
            f"{where}: model.initializer applies to Keras models; gensim's Word2Vec "
            f"draws its own uniform start; got initializer={model.initializer!r}."
        )


def _validate(cls: type[BaseModel], raw: Any, origin: str) -> Any:
    try:
        return cls.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_one_line(exc, cls, origin)) from None


def _one_line(exc: ValidationError, cls: type[BaseModel], origin: str) -> str:
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err["loc"]) or cls.__name__
    if err["type"] == "extra_forbidden":
        parent = err["loc"][:-1]
        section = ".".join(str(p) for p in parent) or "the top level"
        return (
            f"{origin}: unknown key {err['loc'][-1]!r} in {section}; "
            "check the spelling."
        )
    if err["type"] == "missing":
        return f"{origin}: key {loc!r} is required."
    msg = err["msg"]
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    msg = msg.replace("Input should be", "must be").replace("String should", "must")
    msg = msg.replace("should", "must")
    given = err.get("input")
    return f"{origin}: {loc} {_lower_first(msg)}; got {loc}={given!r}."


def _lower_first(s: str) -> str:
    return s[:1].lower() + s[1:]
