"""The stage contract (DESIGN.md §3).

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
from typing import Annotated, Any, Callable, ClassVar, Iterable, Protocol, Sequence

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


@dataclass(frozen=True)
class Resources:
    """What one worker of a stage needs. `actor` stages keep state between batches."""

    cpus: float = 1.0
    gpus: float = 0.0
    memory_gb: float = 0.0


@dataclass
class StageOutput:
    """A processed batch: the (possibly annotated) table and one reason per row (null = kept).

    `reasons` may be None when every row is kept.
    """

    table: pa.Table
    reasons: pa.Array | None = None
    # Columns that only rejected rows carry (e.g. `duplicate_of`), one value per row.
    rejected_columns: dict[str, pa.Array] = field(default_factory=dict)

    @property
    def rejected_mask(self) -> pa.Array:
        if self.reasons is None:
            return pa.array([False] * self.table.num_rows, pa.bool_())
        return pc.is_valid(self.reasons)


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
def keep_all(table: pa.Table) -> StageOutput:
    return StageOutput(table, None)


def reasons_from(values: Iterable[str | None]) -> pa.Array:
    return pa.array(list(values), pa.string())


def with_column(table: pa.Table, name: str, values) -> pa.Table:
    """`table` with column `name` set to `values`, replacing it if an earlier stage wrote it."""
    if name in table.column_names:
        return table.set_column(table.column_names.index(name), name, values)
    return table.append_column(name, values)


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
