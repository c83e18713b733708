"""A `POST /jobs` body -> a spec that is safe to run, or the list of problems with it.

Accepted bodies:
- `application/json`: `{"spec": <YAML/JSON text or the spec object>, "base_dir": ...,
  "submitter": ...}`;
- `application/yaml` (also `application/x-yaml`, `text/yaml`, `text/plain`): the YAML text,
  with `base_dir` and `submitter` as query parameters.

The spec is validated by the same `parse_spec` as `pipeline validate`, after the storage-root
check on its raw paths (so validation itself never globs or opens a file outside the roots)
and before the same check on the resolved spec. YAML aliases are refused and nesting is
bounded: a small document must not expand into a huge one.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from pipeline.api.storage import PathProblem, StorageRoots
from pipeline.spec import Spec, SpecError, parse_spec
from pipeline.yaml_lines import YamlSyntaxError, load_with_lines

YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml",
              "text/plain")
MAX_DEPTH = 24
MAX_EVENTS = 50_000
SUBMITTER = r"^[A-Za-z0-9][A-Za-z0-9_.@+-]{0,63}$"
_LINE = re.compile(r"^line (\d+): ")


class JobSubmission(BaseModel):
    """A spec submitted as JSON."""

    model_config = ConfigDict(extra="forbid")
    spec: str | dict[str, Any] = Field(
        description="the spec: YAML (or JSON) text, or the spec object itself")
    base_dir: str | None = Field(
        None, max_length=4096,
        description="folder the spec's relative paths start at; must be inside a storage "
                    "root (default: the first root)")
    submitter: str | None = Field(None, pattern=SUBMITTER,
                                  description="who submits (free text, recorded with the job)")


class SubmissionError(Exception):
    """What is wrong with a submission; `status` is the HTTP status to answer with."""

    def __init__(self, problems: list[str], status: int = 422, spec_text: str | None = None):
        super().__init__("\n".join(problems))
        self.problems = problems
        self.status = status
        self.spec_text = spec_text

    def payload(self) -> dict:
        errors = []
        for problem in self.problems:
            match = _LINE.match(problem)
            errors.append({"line": int(match.group(1)) if match else None, "message": problem})
        body: dict[str, Any] = {"detail": "invalid spec" if self.status == 422 else
                                self.problems[0], "errors": errors}
        if self.spec_text is not None:
            body["spec_text"] = self.spec_text  # what the line numbers refer to
        return body


@dataclass
class Submission:
    spec: Spec
    text: str          # as submitted
    resolved: str      # as it will run: absolute paths, every stage option
    base_dir: str
    submitter: str | None


def read_body(content_type: str, body: bytes, base_dir: str | None,
              submitter: str | None) -> tuple[str, str | None, str | None, bool]:
    """(spec text, base_dir, submitter, text was made from a JSON object)."""
    kind = content_type.split(";", 1)[0].strip().lower()
    base_dir, submitter = base_dir or None, submitter or None
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SubmissionError([f"the body is not UTF-8 (byte {exc.start})"]) from None
    if kind in YAML_TYPES:
        if submitter is not None and not re.match(SUBMITTER, submitter):
            raise SubmissionError(["submitter: letters, digits and _.@+- only, at most 64"])
        return text, base_dir, submitter, False
    if kind != "application/json":
        raise SubmissionError([f"unsupported content type {kind or '(none)'!r}; send "
                               "application/json or application/yaml"], status=415)
    try:
        request = JobSubmission.model_validate_json(body)
    except ValidationError as exc:
        raise SubmissionError([f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}"
                               for e in exc.errors()]) from None
    except RecursionError:
        raise SubmissionError(["the JSON body is nested too deeply"]) from None
    if isinstance(request.spec, dict):
        try:
            return json.dumps(request.spec, indent=2), request.base_dir, request.submitter, True
        except (TypeError, ValueError, RecursionError):
            raise SubmissionError(["spec: not a JSON object that can be written back"]) from None
    return request.spec, request.base_dir, request.submitter, False


def prepare(text: str, base_dir: str | None, submitter: str | None, roots: StorageRoots,
            max_spec_bytes: int, from_object: bool = False) -> Submission:
    """Validate a spec for running; raises SubmissionError listing every problem."""
    shown = text if from_object else None
    if len(text.encode("utf-8")) > max_spec_bytes:
        raise SubmissionError([f"the spec is larger than {max_spec_bytes} bytes"], status=413)
    try:
        base = roots.base_dir(base_dir)
    except PathProblem as exc:
        raise SubmissionError([str(exc)]) from None
    problem = _shape_problem(text)
    if problem:
        raise SubmissionError([problem], spec_text=shown)
    try:
        data, lines = load_with_lines(text)
    except YamlSyntaxError as exc:
        raise SubmissionError([str(exc)], spec_text=shown) from None
    problems = roots.check_raw(data, lines, base)
    if problems:
        raise SubmissionError(problems, spec_text=shown)
    try:
        spec = parse_spec(text, base_dir=base, source="spec")
    except SpecError as exc:
        raise SubmissionError(exc.problems, spec_text=shown) from None
    problems = roots.check_resolved(spec)
    if problems:
        raise SubmissionError(problems, spec_text=shown)
    return Submission(spec=spec, text=text, resolved=spec.resolved_yaml(), base_dir=base,
                      submitter=submitter)


def _shape_problem(text: str) -> str | None:
    """Refuse YAML that is cheap to send and expensive to load: aliases, deep nesting."""
    depth = events = 0
    try:
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            events += 1
            if events > MAX_EVENTS:
                return "the spec has too many YAML nodes"
            if isinstance(event, yaml.AliasEvent):
                line = event.start_mark.line + 1
                return (f"line {line}: YAML aliases (*name) are not accepted by the service; "
                        "write the value out")
            if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
                depth += 1
                if depth > MAX_DEPTH:
                    return (f"line {event.start_mark.line + 1}: the spec is nested more than "
                            f"{MAX_DEPTH} levels deep")
            elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
                depth -= 1
    except yaml.YAMLError:
        return None  # load_with_lines reports syntax errors with their line
    return None
