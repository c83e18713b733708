"""What a quality rule is: named measures (code) and thresholds on them (configuration).

A rule's config declares its thresholds by naming convention, so adding a measure and its
threshold is two lines: `min_<measure>` rejects values below it, `max_<measure>` values above
it (a value equal to the threshold passes), and a boolean field named like a measure rejects
documents where that measure is true. `None` (or `false`) switches a check off. Other fields
are parameters of the measurement. Checks run in the order the fields are declared.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import pyarrow as pa
from pydantic import BaseModel, ConfigDict

from pipeline.stage import reason
from stages._quality.document import Document

Value = int | float | bool | None


class RuleConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")


@dataclass(frozen=True)
class Check:
    field: str
    measure: str
    kind: Literal["min", "max", "flag"]


class Rule:
    """Subclasses set `name`, `config_model`, `measures` (name -> column type) and `measure`."""

    name: ClassVar[str]
    config_model: ClassVar[type[RuleConfig]]
    measures: ClassVar[dict[str, pa.DataType]]

    def __init__(self, config: RuleConfig | None = None):
        self.config = config if config is not None else self.config_model()
        self.checks = _checks_of(self.config_model, self.measures)

    def measure(self, doc: Document) -> dict[str, Value]:  # pragma: no cover - abstract
        raise NotImplementedError

    def failure(self, values: dict[str, Value]) -> str | None:
        """The reason of the first failed check, e.g. `gopher_repetition:dup_line_frac=0.41`."""
        for check in self.checks:
            limit = getattr(self.config, check.field)
            value = values.get(check.measure)
            if limit is None or limit is False or value is None:
                continue
            if check.kind == "flag":
                if value:
                    return reason(self.name, check.measure)
            elif value < limit if check.kind == "min" else value > limit:
                return reason(self.name, check.measure, value)
        return None


def _checks_of(model: type[RuleConfig], measures: dict[str, Any]) -> list[Check]:
    checks = []
    for field, info in model.model_fields.items():
        prefix, _, rest = field.partition("_")
        if prefix in ("min", "max") and rest in measures:
            checks.append(Check(field, rest, prefix))
        elif field in measures and info.annotation is bool:
            checks.append(Check(field, field, "flag"))
    return checks


def ratio(part: float, whole: float) -> float | None:
    return part / whole if whole else None
