"""The stage contract (docs/architecture.md, "Stage contract").

A stage is a small class: a pydantic config, the columns it needs and adds, the resources a
worker needs to run it, an optional `setup` for heavy state (loaded once per worker) and a
batch function over `pyarrow.Table`. A stage never deletes rows: it returns a reason per row
(null = keep) and the runner routes rejected rows to the `rejected/` side output.

Global stages (dedup, ...) need every shard before they can decide. They implement `plan`,
which runs their phases through a `GlobalContext` handed in by the runner, and `apply`, which
turns the per-shard decisions into reasons. They never see the runner itself.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Annotated, Any, Callable, ClassVar, Protocol, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationInfo


class StageConfig(BaseModel):
    """Base for stage configs: unknown keys are errors, not silently ignored."""

    model_config = ConfigDict(extra="forbid")


def _relative_to_spec(value: str, info: ValidationInfo) -> str:
    if "://" in value:
        return value
    base = (info.context or {}).get("base_dir") or os.getcwd()
    return os.path.normpath(os.path.join(base, os.path.expanduser(value)))


# A file path in a stage config (a model, a benchmark file): relative paths start at the
# spec file's folder, like the input and output paths. URLs are left as they are.
SpecPath = Annotated[str, AfterValidator(_relative_to_spec)]


def local_file(value: str, what: str, remote: str, hint: str = "") -> str:
    """A config's path to a local file, checked when the spec is validated: a URL is refused
    with `remote` (why this file must be local), a missing file named. Returns the absolute
    path."""
    if "://" in value:
        raise ValueError(f"{value}: {remote}")
    path = os.path.abspath(os.path.expanduser(value))
    if not os.path.isfile(path):
        raise ValueError(f"{what} not found: {path} (relative paths start at the spec's "
                         f"folder){hint}")
    return path

def named_files(value: list, model: type[BaseModel], info: ValidationInfo, noun: str) -> list:
    """A config list whose items are a file path or an object with a `path` and a `name`
    (benchmarks, keyword lists): plain paths become `model` objects, resolved against the
    spec's folder like any SpecPath; names must differ, since reasons and columns use them."""
    configs = [model.model_validate({"path": v}, context=info.context) if isinstance(v, str)
               else v for v in value]
    names = [c.name for c in configs]
    if len(set(names)) != len(names):
        raise ValueError(f"{noun} names must differ (got {names}); set `name`")
    return configs


@dataclass(frozen=True)
class Resources:
    """What one worker of a stage needs; the runner asks Ray for it."""

    cpus: float = 1.0
    gpus: float = 0.0
    # memory the stage's state takes (models, indexes): Ray puts no more workers on a node
    # than it has memory for
    memory_gb: float = 0.0
    # start even when the cluster has fewer GPUs than a worker needs (an autoscaler adds
    # GPU nodes on demand); otherwise the job is refused before any work
    wait_for_gpus: bool = False


@dataclass
class StageOutput:
    """A processed batch: the (possibly annotated) table and one reason per row (null = kept).

    `reasons` may be None when every row is kept.
    """

    table: pa.Table
    reasons: pa.Array | None = None
    # Columns that only rejected rows carry (e.g. `duplicate_of`), one value per row.
    rejected_columns: dict[str, pa.Array] = field(default_factory=dict)
    # Named totals for this batch (e.g. {"no_url": 3, "email": 12}); the runner adds them up
    # per stage into the shard's manifest and the job report.
    counters: dict[str, int] = field(default_factory=dict)


class Stage:
    """Base class of every stage. Subclasses set the class attributes and `process`."""

    name: ClassVar[str]
    config_model: ClassVar[type[StageConfig]] = StageConfig
    description: ClassVar[str] = ""
    is_global: ClassVar[bool] = False

    def __init__(self, config: StageConfig | None = None):
        # Without a config (listing stages, learning their columns) the defaults are used
        # unvalidated, so a stage whose config has a required field can still be described.
        self.config = config if config is not None else self.config_model.model_construct()
        self.prepared: Any = None

    # -- contract ---------------------------------------------------------------------------
    def requires(self) -> Sequence[str]:
        """Columns this stage reads; validation fails if no earlier step produces them."""
        return ("text",)

    def produces(self) -> Sequence[str]:
        """Columns this stage adds."""
        return ()

    def consumes(self) -> Sequence[str]:
        """Columns this stage removes from the table it returns (e.g. `html` after extraction)."""
        return ()

    def resources(self) -> Resources:
        return Resources()

    def packages(self) -> dict[str, str]:
        """Optional Python packages this stage's workers import (with its config), as
        {import name: the extra of curation-pipeline that installs it}, e.g.
        {"transformers": "llm"}. Validation refuses a spec whose stage lacks one."""
        return {}

    def prepare(self) -> Any:
        """Build state shared by every worker (e.g. an n-gram index), once per job on the
        driver. A non-None result is put in the Ray object store and set as `self.prepared`
        on each worker's copy before `setup()`. Must not read the corpus."""
        return None

    def setup(self) -> None:
        """Load heavy state (models, indexes). Called once per worker before the first batch."""

    def process(self, table: pa.Table) -> StageOutput:  # pragma: no cover - abstract
        raise NotImplementedError


class GlobalContext(Protocol):
    """What the runner offers a global stage: its input shards, scratch space, and Ray."""

    shard_ids: Sequence[str]
    work_dir: str

    def shard_path(self, shard_id: str) -> str:
        """Parquet file holding the kept rows of `shard_id` as they reach this stage."""

    def map(self, phase: str, fn: Callable[[Any], Any], items: Sequence[Any],
            keys: Sequence[str]) -> list[Any]:
        """Run `fn(item)` on Ray for each item; results are committed per key so a killed job
        resumes at the first unfinished item of the unfinished phase."""


class GlobalStage(Stage):
    """A stage that must see the whole job before deciding (dedup, index builds)."""

    is_global: ClassVar[bool] = True

    def plan(self, ctx: GlobalContext) -> dict | None:  # pragma: no cover - abstract
        """Run the global phases; leave per-shard decisions under `ctx.work_dir`. May return
        a small JSON-able dict of statistics, which the job report shows."""
        raise NotImplementedError

    def apply(self, table: pa.Table, shard_id: str, first_row: int,
              work_dir: str) -> StageOutput:
        """Turn this shard's decisions into reasons (and annotation columns). `first_row` is
        the position of the table's first row in the shard, as read by `ctx.shard_path`."""
        raise NotImplementedError  # pragma: no cover - abstract


# -- helpers for stage authors --------------------------------------------------------------
EMPTY_TEXT = "empty_text"  # the reason for a document whose text is null or only whitespace
# A character Python's str.isspace() does not call whitespace: RE2's \s and \p{Z} leave out
# \v, \x1c-\x1f and \x85, so the vectorised check agrees with `not text.isspace()`.
_HAS_CONTENT = r"[^\s\p{Z}\x0b\x1c-\x1f\x85]"


def reason(code: str, measure: str | None = None, value: Any = None) -> str:
    """The one reason format: `code`, `code:value` or `code:measure=value`.

    Numbers keep four significant digits: enough to tell a value from a nearby threshold.
    A value given as a string is shown as it is (a stage that prints it its own way)."""
    if value is None:
        return code if measure is None else f"{code}:{measure}"
    shown = format_value(value) if isinstance(value, (int, float, np.number)) else str(value)
    return f"{code}:{shown}" if measure is None else f"{code}:{measure}={shown}"


def format_value(value: float | int) -> str:
    if isinstance(value, (bool, int)) or float(value).is_integer():
        return str(int(value))
    return f"{value:.4g}" if abs(value) < 1000 else f"{value:.0f}"


def reasons_where(failed: pa.Array, code: str, measure: str | None = None,
                  values: pa.Array | None = None,
                  otherwise: pa.Array | None = None) -> pa.Array:
    """`reason` for a whole column: rows where `failed` is true get `code[:measure]=value`
    (values as Arrow prints them: round them first), the others keep `otherwise` (null).
    Strings are built for the failing rows only."""
    otherwise = pa.nulls(len(failed), pa.string()) if otherwise is None else _whole(otherwise)
    failed = _whole(pc.fill_null(failed, False))
    if not pc.any(failed).as_py():
        return otherwise
    if values is None:
        return pc.if_else(failed, pa.scalar(reason(code, measure), pa.string()), otherwise)
    prefix = f"{code}:" if measure is None else f"{code}:{measure}="
    shown = pc.cast(_whole(values).filter(failed), pa.string())
    return pc.replace_with_mask(otherwise, failed, pc.binary_join_element_wise(prefix, shown, ""))


def _whole(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    return values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values


def reasons_or_none(reasons: Sequence[str | None]) -> pa.Array | None:
    """A per-row reason array, or None (every row kept) when nothing was rejected."""
    return pa.array(reasons, pa.string()) if any(r is not None for r in reasons) else None


def keep_all(table: pa.Table) -> StageOutput:
    return StageOutput(table, None)


def column_or_nulls(table: pa.Table, name: str, type: pa.DataType = pa.string()):
    """Column `name`, or a column of nulls when an optional input column is absent."""
    if name in table.column_names:
        return table[name]
    return pa.nulls(table.num_rows, type)


def with_column(table: pa.Table, name: str, values) -> pa.Table:
    """`table` with column `name` set to `values`, replacing it if an earlier stage wrote it."""
    if name in table.column_names:
        return table.set_column(table.column_names.index(name), name, values)
    return table.append_column(name, values)


def has_text(texts: pa.Array | pa.ChunkedArray, content: str = _HAS_CONTENT) -> np.ndarray:
    """Per row: is there any non-whitespace text? (null counts as none). `content` is the
    regex of one character that counts as text."""
    found = pc.fill_null(pc.match_substring_regex(texts, content), False)
    return _whole(found).to_numpy(zero_copy_only=False).astype(bool)


def on_rows_with_text(texts: pa.Array | pa.ChunkedArray, score: Callable[[list[str]], Any],
                      type: pa.DataType = pa.float64(),
                      content: str = _HAS_CONTENT) -> tuple[pa.Array, np.ndarray]:
    """Call `score` once on the texts of the rows that have text (see `has_text`) and scatter
    its results back: rows without text get null (and are never shown to the model). Returns
    the column and the has-text mask, so the caller can reject those rows as `EMPTY_TEXT`."""
    mask = has_text(texts, content)
    present = texts if mask.all() else pc.filter(texts, pa.array(mask))
    results = list(score(present.to_pylist())) if len(present) else []
    return scatter(results, mask, type), mask


def scatter(values: Sequence[Any], mask: np.ndarray, type: pa.DataType) -> pa.Array:
    """`values` (one per true row of `mask`) placed at those rows; null elsewhere."""
    if mask.all():
        return pa.array(values, type)
    out: list[Any] = [None] * len(mask)
    for row, value in zip(np.flatnonzero(mask), values):
        out[row] = value
    return pa.array(out, type)


class DocumentFilter(Stage):
    """A filter that judges one document at a time, as a DataTrove filter does.

    Subclasses set `name`, `config_model`, `description` and `judge(text, **columns)`, which
    returns a reason (see `reason`) or None to keep the document. Columns named in
    `requires()` besides `text`, and in `optional_columns` (None where the table lacks
    them), arrive as keyword arguments. Rows whose text is null or only whitespace are
    rejected as `empty_text` without calling `judge`."""

    optional_columns: ClassVar[tuple[str, ...]] = ()

    def process(self, table: pa.Table) -> StageOutput:
        names = [c for c in self.requires() if c != "text"] + list(self.optional_columns)
        columns = [column_or_nulls(table, c, pa.null()).to_pylist() for c in names]
        reasons = [self.judge(text, **dict(zip(names, values))) if present else EMPTY_TEXT
                   for present, text, *values in
                   zip(has_text(table["text"]), table["text"].to_pylist(), *columns)]
        return StageOutput(table, reasons_or_none(reasons))

    def judge(self, text: str, **columns: Any) -> str | None:  # pragma: no cover - abstract
        raise NotImplementedError


@dataclass
class ConfigField:
    name: str
    type: str
    default: Any
    description: str = ""


def describe_config(model: type[StageConfig]) -> list[ConfigField]:
    """Config fields of a stage, for `pipeline stages`."""
    fields = []
    for name, info in model.model_fields.items():
        annotation = getattr(info.annotation, "__name__", None) or str(info.annotation)
        default = None if info.is_required() else info.get_default(call_default_factory=True)
        fields.append(ConfigField(name, annotation.replace("typing.", ""), default,
                                  info.description or ""))
    return fields
