"""`stage.yaml` -> a validated `Spec` (docs/architecture.md, "Spec").

Every problem is found before any work starts and reported with its YAML line and a one-line
fix: unknown stage or key, wrong type, missing input, a stage whose required column no earlier
step produces. Relative paths resolve against the spec file's folder, so a spec runs the same
from any working directory.
"""

from __future__ import annotations

import difflib
import importlib.util
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import fsspec
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from pipeline import registry
from pipeline.io import formats
from pipeline.stage import Stage
from pipeline.yaml_lines import YamlSyntaxError, line_of, load_with_lines


class SpecError(ValueError):
    """One or more problems in a spec; `str()` lists them one per line."""

    def __init__(self, problems: list[str], source: str = "spec"):
        self.problems = problems
        self.source = source
        super().__init__("\n".join(f"{source}: {p}" for p in problems))


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class InputSpec(BaseModel):
    """Where documents come from. Format-specific keys are checked by the format's reader."""

    model_config = ConfigDict(extra="allow")
    format: str
    # globs; a format may name its files otherwise (warc/wet: `crawl`), so not required here
    paths: list[str] = Field(default_factory=list, min_length=1)
    text_column: str = "text"
    id_column: str = "id"
    url_column: str = "url"

    @field_validator("paths", mode="before")
    @classmethod
    def _one_path_is_a_list(cls, value):
        return [value] if isinstance(value, str) else value


class OutputSpec(_Strict):
    path: str
    compression: Literal["zstd", "snappy", "gzip", "none"] = "zstd"


class ResourcesSpec(_Strict):
    cpus: int | Literal["auto"] = "auto"
    gpus: float = Field(0, ge=0)


class ErrorsSpec(_Strict):
    max_failed_fraction: float = Field(
        0.05, ge=0, le=1,
        description="fraction of shards that may fail (bad files) before the job fails")


class _RawSpec(_Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    input: InputSpec
    output: OutputSpec
    stages: list[Any] = Field(default_factory=list)
    resources: ResourcesSpec = ResourcesSpec()
    errors: ErrorsSpec = ErrorsSpec()
    batch_rows: int = Field(2048, gt=0, description="rows per batch handed to a stage")


@dataclass
class StageStep:
    """One resolved stage of the plan."""

    index: int
    name: str
    stage: Stage
    line: int | None

    @property
    def is_global(self) -> bool:
        return self.stage.is_global


@dataclass
class Spec:
    name: str
    input: InputSpec
    output: OutputSpec
    resources: ResourcesSpec
    errors: ErrorsSpec
    batch_rows: int
    steps: list[StageStep]
    input_files: list[str]
    input_columns: list[str]
    columns_after: list[list[str]] = field(default_factory=list)

    @property
    def reads_html(self) -> bool:
        return _reads_html(self.steps)

    def resolved(self) -> dict[str, Any]:
        """The spec as it will run: absolute paths, every stage config with its defaults."""
        return {
            "name": self.name,
            "input": self.input.model_dump(),
            "output": self.output.model_dump(),
            "stages": [{s.name: s.stage.config.model_dump(mode="json")} for s in self.steps],
            "resources": self.resources.model_dump(),
            "errors": self.errors.model_dump(),
            "batch_rows": self.batch_rows,
        }

    def resolved_yaml(self) -> str:
        return yaml.safe_dump(self.resolved(), sort_keys=False)


def load_spec(path: str | os.PathLike, *, output_override: str | None = None) -> Spec:
    text = Path(path).read_text(encoding="utf-8") if Path(path).exists() else None
    if text is None:
        raise SpecError([f"spec file not found: {path}"], source=str(path))
    return parse_spec(text, base_dir=str(Path(path).resolve().parent), source=str(path),
                      output_override=output_override)


def parse_spec(text: str, *, base_dir: str | None = None, source: str = "spec",
               output_override: str | None = None, check_files: bool = True) -> Spec:
    """Validate a spec given as YAML (or JSON) text."""
    try:
        data, lines = load_with_lines(text)
    except YamlSyntaxError as exc:
        raise SpecError([str(exc)], source) from None
    if not isinstance(data, dict):
        raise SpecError(["line 1: a spec is a mapping with keys name, input, output, stages"],
                        source)
    problems: list[str] = []
    try:
        raw = _RawSpec.model_validate(data)
    except ValidationError as exc:
        raise SpecError([_pydantic_problem(err, lines) for err in exc.errors()], source) from None

    base = base_dir or os.getcwd()
    raw.input.paths = [_resolve(p, base) for p in raw.input.paths]
    extras = raw.input.model_extra or {}
    if isinstance(extras.get("base"), str):  # the folder a crawl's listing names files in
        extras["base"] = _resolve(extras["base"], base)
    raw.output.path = _resolve(output_override, os.getcwd()) if output_override \
        else _resolve(raw.output.path, base)

    reader = formats.get(raw.input.format)
    input_columns: list[str] = []
    input_files: list[str] = []
    if reader is None:
        problems.append(_at(lines, ("input", "format"),
                            f"unknown input format {raw.input.format!r}; "
                            f"use one of: {', '.join(formats.names())}"))
    else:
        problems += [_at(lines, ("input", key), msg) for key, msg in reader.check_options(extras)]
        where = [_at(lines, ("input", key), msg) for key, msg in reader.check_source(raw.input)]
        storage = _storage_problems(raw, reader, lines)
        problems += where + storage
        if check_files and not where and not storage:
            try:
                input_files = reader.list_files(raw.input)
            except formats.InputListingError as exc:
                problems.append(_at(lines, ("input", exc.key), str(exc)))
            if not input_files and raw.input.paths:
                problems.append(_at(lines, ("input", "paths"),
                                    f"no input files match {raw.input.paths}; "
                                    "check the path (relative paths start at the spec's folder)"))

    steps = _resolve_stages(raw.stages, lines, problems, base)
    columns_after: list[list[str]] = []
    if reader is not None and not problems:
        input_columns = reader.columns(raw.input, input_files, wants_html=_reads_html(steps))
        columns_after = _check_columns(steps, input_columns, lines, problems)
    problems += _package_problems(steps, lines)
    if problems:
        raise SpecError(problems, source)
    return Spec(name=raw.name, input=raw.input, output=raw.output, resources=raw.resources,
                errors=raw.errors, batch_rows=raw.batch_rows, steps=steps,
                input_files=input_files, input_columns=input_columns,
                columns_after=columns_after)


def _resolve(path: str, base: str) -> str:
    if "://" in path or os.path.isabs(path):
        return path
    return os.path.normpath(os.path.join(base, path))


# The extra that installs each URL protocol's fsspec backend (pyproject.toml).
_STORAGE_EXTRAS = {"s3": "s3", "s3a": "s3", "gs": "gcs", "gcs": "gcs"}


def _storage_problems(raw: _RawSpec, reader: formats.InputFormat, lines) -> list[str]:
    """One line per input or output URL whose filesystem package is not installed, so a
    missing s3fs is named here rather than as an ImportError deep inside a glob or a write."""
    where = [(("input", key), p) for key, p in reader.locations(raw.input)] + [
        (("output", "path"), raw.output.path)]
    return [_at(lines, key, problem) for key, url in where
            if (problem := filesystem_problem(url))]


def filesystem_problem(url: str) -> str | None:
    """Why `url`'s filesystem cannot be opened here (its package is missing, or fsspec knows
    no such protocol), or None when it can."""
    if "://" not in url:
        return None
    # a chained URL (`simplecache::s3://b/k`) needs every filesystem of its chain
    for protocol in (part.split("://", 1)[0] for part in url.split("::")):
        try:
            fsspec.get_filesystem_class(protocol)
        except ImportError as exc:
            extra = _STORAGE_EXTRAS.get(protocol)
            fix = (f"install it with `pip install 'curation-pipeline[{extra}]'`" if extra
                   else f"install the package fsspec names: {exc}")
            return f"{url!r}: the filesystem for {protocol}:// is not installed; {fix}"
        except ValueError:
            return (f"{url!r}: unknown URL protocol {protocol!r}; use a local path or an "
                    "fsspec URL")
    return None


def _resolve_stages(entries: list[Any], lines, problems: list[str],
                    base_dir: str) -> list[StageStep]:
    steps = []
    known = list(registry.all_stages())
    for index, entry in enumerate(entries):
        where = ("stages", index)
        if isinstance(entry, str):
            entry = {entry: None}
        if not isinstance(entry, dict) or len(entry) != 1:
            problems.append(_at(lines, where, "each stage is one mapping `- name: {options}`, "
                                              "e.g. `- length_filter: {min_words: 50}`"))
            continue
        (name, options), = entry.items()
        cls = registry.get_stage_class(str(name))
        if cls is None:
            hint = difflib.get_close_matches(str(name), known, n=1)
            fix = f"did you mean {hint[0]!r}?" if hint else "run `pipeline stages` to list them"
            problems.append(_at(lines, where + (name,),
                                f"unknown stage {name!r}; {fix} (installed: {', '.join(known)})"))
            continue
        if options is not None and not isinstance(options, dict):
            problems.append(_at(lines, where + (name,),
                                f"options of {name!r} must be a mapping, e.g. `{name}: {{}}`"))
            continue
        try:
            config = cls.config_model.model_validate(options or {},
                                                     context={"base_dir": base_dir})
        except ValidationError as exc:
            for err in exc.errors():
                err = dict(err, loc=where + (name,) + tuple(err["loc"]))
                problems.append(_pydantic_problem(err, lines, cls.config_model))
            continue
        steps.append(StageStep(index, str(name), cls(config), line_of(lines, where)))
    return steps


def _reads_html(steps: list[StageStep]) -> bool:
    """Whether the reader hands out raw HTML: the first stage extracts text from it."""
    return bool(steps) and "html" in steps[0].stage.requires()


def _package_problems(steps: list[StageStep], lines) -> list[str]:
    # A GPU stage's packages are checked where its workers run (runner._check_resources): on
    # a cluster, GPU workers may run another image than the one validating the spec.
    return [_at(lines, ("stages", step.index, step.name), problem)
            for step in steps if not step.stage.resources().gpus
            for problem in missing_packages(step)]


def missing_packages(step: StageStep) -> list[str]:
    """One line per package the stage's workers import that is not installed here."""
    return [f"stage {step.name!r} needs the Python package {module!r}, which is not "
            f"installed; install it with `pip install 'curation-pipeline[{extra}]'`"
            for module, extra in step.stage.packages().items() if not _installed(module)]


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # a dotted name whose parent package is missing
        return False


def _check_columns(steps: list[StageStep], input_columns: list[str], lines,
                   problems: list[str]) -> list[list[str]]:
    available = list(input_columns)
    after = []
    producers = _producers()
    for step in steps:
        for column in step.stage.requires():
            if column not in available:
                makers = [n for n in producers.get(column, []) if n != step.name]
                fix = (f"add {' or '.join(repr(m) for m in makers)} before it" if makers
                       else "provide it in the input")
                problems.append(_at(lines, ("stages", step.index, step.name),
                                    f"stage {step.name!r} needs column {column!r}, which no "
                                    f"earlier step produces (available: {', '.join(available)});"
                                    f" {fix}"))
        available = [c for c in available if c not in step.stage.consumes()]
        available += [c for c in step.stage.produces() if c not in available]
        after.append(list(available))
    return after


def _producers() -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for name, cls in registry.all_stages().items():
        for column in cls().produces():
            out.setdefault(column, []).append(name)
    return out


def _at(lines, path, message: str) -> str:
    line = line_of(lines, path)
    return f"line {line}: {message}" if line else message


def _pydantic_problem(err: dict, lines, model: type[BaseModel] | None = None) -> str:
    loc = tuple(err["loc"])
    dotted = ".".join(str(p) for p in loc)
    kind = err["type"]
    if kind == "extra_forbidden":
        key = str(loc[-1])
        valid = list((model or _model_for(loc)).model_fields) if (model or _model_for(loc)) else []
        hint = difflib.get_close_matches(key, valid, n=1)
        fix = f"did you mean {hint[0]!r}?" if hint else f"valid keys: {', '.join(valid)}"
        return _at(lines, loc, f"unknown key {dotted!r}; {fix}")
    if kind == "missing":
        return _at(lines, loc[:-1], f"missing required key {dotted!r}; add it"
                                     + _MISSING_HINTS.get(dotted, ""))
    value = err.get("input")
    shown = repr(value) if not isinstance(value, (dict, list)) else type(value).__name__
    return _at(lines, loc, f"{dotted}: {err['msg']} (got {shown}); fix the value")


_MISSING_HINTS = {
    "input": ", e.g. `input: {format: parquet, paths: [data/*.parquet]}`",
    "output": ", e.g. `output: {path: out/my-job}`",
    "name": ", e.g. `name: my-job`",
}


def _model_for(loc: tuple) -> type[BaseModel] | None:
    top = {"input": InputSpec, "output": OutputSpec, "resources": ResourcesSpec,
           "errors": ErrorsSpec}
    if len(loc) == 1:
        return _RawSpec
    return top.get(loc[0])
