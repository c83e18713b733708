"""The answer a model gives `annotate`: its schema, how the model is told about it, and the
tolerant parser that turns its text into typed values or a stated cause.

An answer is one JSON object whose keys are the schema's fields. The schema is sent as a JSON
Schema to engines that can enforce one (`Sampling.json_schema`); every answer is parsed here
all the same, since an engine without guided decoding (transformers), a server that ignores
`response_format`, or a cut-off answer can return anything.

The parser is tolerant of form, never of content: code fences, prose around the object,
trailing commas, Python's True/False/None, keys in another case or with the column prefix,
numbers written as strings, `3.0` for an integer, and - when no object is found - `key: value`
lines. It never guesses a value: a field that is missing, of the wrong type or out of range is
null, and the cause is returned (`missing:score`, `invalid:score=high`, `out_of_range:score=7`).
"""

from __future__ import annotations

import json
import math
import re
from typing import Any, Literal

import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field, model_validator

from pipeline.stage import reason
from stages._rephrase.checks import DEFAULT_REFUSALS, REFUSAL_WINDOW

ARROW_TYPES = {"int": pa.int64(), "float": pa.float64(), "str": pa.string(), "bool": pa.bool_()}
_JSON_TYPES = {"int": "integer", "float": "number", "str": "string", "bool": "boolean"}
# rephrase's refusal openings, matched at the start of an answer as rephrase matches them
_REFUSAL = re.compile(r"\W*(?:" + "|".join(f"(?:{p})" for p in DEFAULT_REFUSALS) + ")",
                      re.IGNORECASE)
# the value after `name:` / `name =`: a double- or single-quoted string, or the rest of the
# line up to a comma or brace (never starting with a quote: an unclosed one is no value)
_LINE_VALUE = r"""("(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*'|[^\s,}"'][^\n,}]*)"""
_NUMBER = re.compile(r"^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$")
_TRUE, _FALSE = {"true", "yes"}, {"false", "no"}
_SHOWN_CHARS = 40  # of a rejected value, in the error


class AnswerField(BaseModel):
    """One key of the answer object, and so one column (`<prefix>_<name>`)."""

    model_config = ConfigDict(extra="forbid")
    type: Literal["int", "float", "str", "bool"] = Field(description="the column's type")
    min: float | None = Field(None, description="int/float: smallest allowed value")
    max: float | None = Field(None, description="int/float: largest allowed value")
    enum: list[str] | None = Field(None, description="str: the allowed values")
    description: str | None = Field(None, description="what the model is told to put here")
    required: bool = Field(True, description="a missing value is an error (else just null)")

    @model_validator(mode="after")
    def _options_fit_type(self):
        numeric = self.type in ("int", "float")
        if (self.min is not None or self.max is not None) and not numeric:
            raise ValueError(f"min/max apply to int and float fields, not {self.type}")
        if self.enum is not None and (self.type != "str" or not self.enum):
            raise ValueError("enum is a non-empty list of allowed values of a str field")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min}) is above max ({self.max})")
        return self


Schema = dict[str, AnswerField]


def json_schema(fields: Schema) -> dict:
    """The JSON Schema of an answer: every field present, nothing else."""
    properties = {}
    for name, field in fields.items():
        prop: dict[str, Any] = {"type": _JSON_TYPES[field.type]}
        if field.min is not None:
            prop["minimum"] = _plain(field.min)
        if field.max is not None:
            prop["maximum"] = _plain(field.max)
        if field.enum:
            prop["enum"] = list(field.enum)
        properties[name] = prop
    return {"type": "object", "properties": properties, "required": list(fields),
            "additionalProperties": False}


def format_instructions(fields: Schema) -> str:
    """How the model is told to answer: keys in order, what each holds, its type."""
    lines = []
    for name, field in fields.items():
        kind = {"int": "an integer", "float": "a number", "str": "a string",
                "bool": "true or false"}[field.type]
        if field.min is not None and field.max is not None:
            kind += f" from {_plain(field.min)} to {_plain(field.max)}"
        elif field.min is not None or field.max is not None:
            kind += f" {'at least' if field.min is not None else 'at most'} " \
                    f"{_plain(field.min if field.min is not None else field.max)}"
        if field.enum:
            kind += ", one of " + ", ".join(json.dumps(v) for v in field.enum)
        what = f": {field.description}" if field.description else ""
        lines.append(f'- "{name}" ({kind}){what}')
    return ("Answer with a single JSON object and nothing else, with these keys in this "
            "order:\n" + "\n".join(lines))


def parse_answer(text: str, finish_reason: str, fields: Schema,
                 prefix: str = "") -> tuple[dict[str, Any], str | None]:
    """Typed values (null where unusable) and the cause of every problem (None if none)."""
    found = _find_object(text) or _key_value_lines(text, fields, prefix)
    if not found:
        return {name: None for name in fields}, _why_nothing(text, finish_reason)
    given = {_key(k, prefix): v for k, v in found.items()}
    values, problems = {}, []
    for name, field in fields.items():
        raw = given.get(name)
        value, problem = (None, reason("missing", name) if field.required else None) \
            if raw is None else _coerce(raw, field, name)
        values[name] = value
        if problem:
            problems.append(problem)
    if problems and finish_reason == "length":
        problems.append("truncated")
    return values, "; ".join(problems) or None


def _why_nothing(text: str, finish_reason: str) -> str:
    if finish_reason == "content_filter" or _REFUSAL.match(text[:REFUSAL_WINDOW]):
        return "refusal"
    if not text.strip():
        return "empty_answer"
    return "truncated" if finish_reason == "length" else "no_json"


def _find_object(text: str) -> dict | None:
    """The first JSON object in `text` (anywhere: after prose, inside a code fence), read as
    JSON or, failing that, after light repairs of form."""
    decoder = json.JSONDecoder()
    for start in (m.start() for m in re.finditer(r"\{", text)):
        for candidate in (text, _repaired(text, start)):
            try:
                value, _ = decoder.raw_decode(candidate, start)
            except ValueError:
                continue
            if isinstance(value, dict) and value:
                return value
    return None


def _repaired(text: str, start: int) -> str:
    """`text` with the object at `start` repaired: trailing commas, Python literals."""
    end = text.rfind("}")
    body = text[start:end + 1] if end > start else text[start:]
    body = re.sub(r",\s*([}\]])", r"\1", body)
    body = re.sub(r"(?<![\w\"])(True|False|None)(?![\w\"])",
                  lambda m: {"True": "true", "False": "false", "None": "null"}[m.group(1)], body)
    return text[:start] + body


def _key_value_lines(text: str, fields: Schema, prefix: str) -> dict[str, Any]:
    """`score: 3` or `"score" = 3` anywhere in the text, for each field's name."""
    found = {}
    for name in fields:
        names = "|".join(re.escape(n) for n in ([name, f"{prefix}_{name}"] if prefix else [name]))
        match = re.search(rf"(?<![\w])[\"']?(?:{names})[\"']?\s*[:=]\s*" + _LINE_VALUE, text,
                          re.IGNORECASE)
        if match:
            raw = match.group(1).strip()
            quoted = len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "\"'"
            found[name] = raw[1:-1] if quoted else raw
    return found


def _key(key: str, prefix: str) -> str:
    key = re.sub(r"[\s-]+", "_", str(key).strip().lower())
    return key[len(prefix) + 1:] if prefix and key.startswith(prefix + "_") else key


def _coerce(raw: Any, field: AnswerField, name: str) -> tuple[Any, str | None]:
    value = _typed(raw, field)
    if value is None:
        return None, reason("invalid", name, _shown(raw))
    if field.type in ("int", "float") and (
            field.min is not None and value < field.min
            or field.max is not None and value > field.max):
        return None, reason("out_of_range", name, _shown(raw))
    if field.enum:
        allowed = {v.lower(): v for v in field.enum}
        if value.strip().lower() not in allowed:
            return None, reason("invalid", name, _shown(raw))
        value = allowed[value.strip().lower()]
    return value, None


def _typed(raw: Any, field: AnswerField) -> Any:
    """`raw` as the field's type, or None when it is not one (no rounding, no guessing)."""
    if field.type == "str":
        return raw if isinstance(raw, str) else None
    if field.type == "bool":
        if isinstance(raw, bool):
            return raw
        word = raw.strip().lower() if isinstance(raw, str) else None
        return True if word in _TRUE else False if word in _FALSE else None
    if isinstance(raw, bool):
        return None  # JSON true is not the number 1
    if isinstance(raw, str):  # "3" or "3.0": a number written as a string
        if not _NUMBER.match(raw.strip()):
            return None
        raw = float(raw)
    if isinstance(raw, (int, float)):
        if not math.isfinite(raw):
            return None
        if field.type == "float":
            return float(raw)
        return int(raw) if float(raw).is_integer() else None
    return None


def _shown(raw: Any) -> str:
    shown = raw if isinstance(raw, str) else json.dumps(raw)
    return shown if len(shown) <= _SHOWN_CHARS else shown[:_SHOWN_CHARS] + "..."


def _plain(number: float) -> int | float:
    return int(number) if float(number).is_integer() else number
