"""Which paths a spec may read and write: only under the configured storage roots.

A spec is untrusted input. Every path it names — input globs, the output folder, file options
of the input format and of stages — must stay inside a root after `..` is collapsed and
symlinks are resolved. Checked twice: on the raw YAML before `parse_spec` touches the disk
(so a spec cannot make the service glob `/` or probe files outside the roots), and on the
resolved spec, with every input file the globs matched.

Roots are local folders or URL prefixes (`s3://bucket/curation`). `file://`, chained fsspec
URLs (`a::b`) and URLs of any other prefix are refused.

Which stage (and input format) options name files: those typed `pipeline.stage.SpecPath`
(relative ones start at the spec's folder, as `parse_spec` resolves them), and any other
string option that is an absolute path, starts with `~`, or is a storage URL. Plain relative
strings that are not declared paths (a model *name*, a prompt) are left alone; http(s) URLs
are endpoints, not storage, and are not checked here.
"""

from __future__ import annotations

import os
import posixpath
import re
from typing import Annotated, Any, Iterator, get_args, get_origin

from pydantic import BaseModel

from pipeline import registry
from pipeline.api.config import ConfigError
from pipeline.io import common_crawl, formats
from pipeline.stage import SpecPath
from pipeline.yaml_lines import line_of

_GLOB_CHARS = re.compile(r"[*?\[]")
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
_REFUSED_SCHEMES = {"file", "local"}


class StorageRoots:
    """The folders and URL prefixes specs may use, and the checks against them."""

    def __init__(self, roots: list[str]):
        self.local: list[str] = []
        self.urls: list[str] = []
        for root in roots:
            match = _SCHEME.match(root)
            if match and match.group(1).lower() not in _REFUSED_SCHEMES:
                self.urls.append(root.rstrip("/"))
                continue
            path = root[len(match.group(0)):] if match else root
            real = os.path.realpath(os.path.expanduser(path))
            if not os.path.isdir(real):
                raise ConfigError(f"storage root {root} is not a folder; create it or fix "
                                  "--storage-root")
            self.local.append(real)
        if not self.local and not self.urls:
            raise ConfigError("no storage root configured")

    def describe(self) -> str:
        return ", ".join(self.local + self.urls)

    # -- base folder -------------------------------------------------------------------------
    def base_dir(self, requested: str | None) -> str:
        """The folder relative spec paths start at: `requested` (inside a root) or the first
        local root."""
        if not requested:
            if not self.local:
                raise PathProblem("base_dir: no local storage root to resolve relative paths "
                                  "against; write absolute URLs under the storage roots")
            return self.local[0]
        problem = self._basic_problem(requested) or self._local_problem(
            requested, self.local[0] if self.local else "/", allow_root=True)
        if problem:
            raise PathProblem(f"base_dir: {problem}")
        real = os.path.realpath(os.path.join(self.local[0], requested))
        if not os.path.isdir(real):
            raise PathProblem(f"base_dir: {requested!r} is not a folder")
        return real

    # -- checks ------------------------------------------------------------------------------
    def check_raw(self, data: Any, lines: dict, base: str) -> list[str]:
        """Problems with the paths of a spec as submitted (before `parse_spec`)."""
        if not isinstance(data, dict):
            return []
        problems = []
        source = data.get("input")
        if isinstance(source, dict):
            paths = source.get("paths")
            paths = [paths] if isinstance(paths, str) else paths
            for i, pattern in enumerate(paths if isinstance(paths, list) else []):
                if isinstance(pattern, str):
                    where = ("input", "paths", i) if isinstance(source.get("paths"), list) \
                        else ("input", "paths")
                    problems += self._at(lines, where, self._input_problem(pattern, base))
            reader = formats.get(source.get("format")) if isinstance(source.get("format"),
                                                                      str) else None
            if "crawl" in source:  # Common Crawl by name: its files are read under `base`
                crawl_base = source.get("base", common_crawl.DEFAULT_BASE)
                if isinstance(crawl_base, str):
                    problems += self._at(lines, ("input", "base") if "base" in source
                                         else ("input", "crawl"),
                                         self._read_base_problem(crawl_base, base))
            extras = {k: v for k, v in source.items()
                      if k not in ("paths", "format", "text_column", "id_column", "url_column",
                                   "base")}
            for loc, problem in self._option_problems(
                    getattr(reader, "options_model", None), extras, base):
                problems += self._at(lines, ("input",) + loc, problem)
        output = data.get("output")
        if isinstance(output, dict) and isinstance(output.get("path"), str):
            problems += self._at(lines, ("output", "path"),
                                 self._output_problem(output["path"], base))
        stages = data.get("stages")
        for i, entry in enumerate(stages if isinstance(stages, list) else []):
            if isinstance(entry, dict):
                for name, options in entry.items():
                    cls = registry.get_stage_class(str(name))
                    model = cls.config_model if cls is not None else None
                    for loc, problem in self._option_problems(model, options, base):
                        problems += self._at(lines, ("stages", i, name) + loc, problem)
        return problems

    def check_resolved(self, spec) -> list[str]:
        """Problems with a parsed `Spec`: every matched input file, the output folder and the
        validated stage options, with symlinks resolved."""
        problems = []
        for path in spec.input_files:
            problem = self._any_problem(path, allow_root=False)
            if problem:
                problems.append(f"input file {problem}")
        problem = self._output_problem(spec.output.path, "/")
        if problem:
            problems.append(f"output.path: {problem}")
        for step in spec.steps:
            config = step.stage.config
            for loc, problem in self._option_problems(type(config),
                                                      config.model_dump(mode="json"), "/"):
                dotted = ".".join(str(p) for p in (step.name,) + loc)
                problems.append(f"line {step.line}: stages.{dotted}: {problem}"
                                if step.line else f"stages.{dotted}: {problem}")
        return problems

    def output_problem(self, path: str) -> str | None:
        """Why `path` may not be written (e.g. deleted as a job's output), or None."""
        return self._output_problem(path, "/")

    # -- one path ------------------------------------------------------------------------------
    def _input_problem(self, pattern: str, base: str) -> str | None:
        problem = self._basic_problem(pattern)
        if problem:
            return problem
        if _SCHEME.match(pattern):
            return self._url_problem(pattern, allow_root=False)
        full = pattern if os.path.isabs(pattern) else os.path.join(base, pattern)
        glob = _GLOB_CHARS.search(full)
        if glob and ".." in full[glob.start():].split("/"):
            return f"{pattern!r}: '..' after a wildcard is not allowed"
        fixed = full[:glob.start()].rsplit("/", 1)[0] if glob else full
        problem = self._local_problem(fixed or "/", base, allow_root=True, shown=pattern)
        if problem or not glob:
            return problem or self._local_problem(full, base, allow_root=False)
        for path in formats.expand_paths([os.path.normpath(full)]):
            problem = self._local_problem(path, base, allow_root=False,
                                          shown=f"{pattern!r} matches {path}")
            if problem:
                return problem
        return None

    def _read_base_problem(self, path: str, base: str) -> str | None:
        """A folder files are only read below: it may be a root itself. http(s) bases are
        endpoints, as elsewhere here, not storage."""
        if re.match(r"^https?://", path, re.IGNORECASE):
            return None
        problem = self._basic_problem(path)
        if problem:
            return problem
        if _SCHEME.match(path):
            return self._url_problem(path.rstrip("/"), allow_root=True)
        return self._local_problem(path, base, allow_root=True)

    def _output_problem(self, path: str, base: str) -> str | None:
        problem = self._basic_problem(path)
        if problem:
            return problem
        if _SCHEME.match(path):
            return self._url_problem(path, allow_root=False)
        return self._local_problem(path, base, allow_root=False)

    def _option_problems(self, model: type[BaseModel] | None, options: Any,
                         base: str) -> Iterator[tuple[tuple, str]]:
        for loc, value, declared in _option_paths(model, options):
            if declared and not _SCHEME.match(value):
                # As SpecPath resolves it: relative to the spec's folder, `~` expanded.
                value = os.path.normpath(os.path.join(base, os.path.expanduser(value)))
            elif value.startswith("~"):
                value = os.path.expanduser(value)
            problem = self._any_problem(value, allow_root=False)
            if problem:
                yield loc, problem

    def _any_problem(self, path: str, allow_root: bool) -> str | None:
        problem = self._basic_problem(path)
        if problem:
            return problem
        if _SCHEME.match(path):
            return self._url_problem(path, allow_root)
        return self._local_problem(path, "/", allow_root)

    @staticmethod
    def _basic_problem(path: str) -> str | None:
        if "\x00" in path:
            return "a path may not contain a NUL byte"
        if "::" in path:
            return f"{path!r}: chained URLs ('::') are not allowed"
        match = _SCHEME.match(path)
        if match and match.group(1).lower() in _REFUSED_SCHEMES:
            return f"{path!r}: file:// URLs are not allowed; write the path itself"
        return None

    def _url_problem(self, url: str, allow_root: bool) -> str | None:
        scheme, rest = url.split("://", 1)
        if any(part in ("..", ".") for part in rest.split("/")):
            return f"{url!r}: '.' and '..' are not allowed in URLs"
        normal = f"{scheme.lower()}://{posixpath.normpath(rest)}" if rest else url
        for root in self.urls:
            if normal.startswith(root + "/") or (allow_root and normal == root):
                return None
        return f"{url!r} is outside the storage roots ({self.describe()})"

    def _local_problem(self, path: str, base: str, allow_root: bool,
                       shown: str | None = None) -> str | None:
        full = os.path.normpath(path if os.path.isabs(path) else os.path.join(base, path))
        real = os.path.realpath(full)
        shown = shown or repr(path)
        for root in self.local:
            if real.startswith(root + os.sep) or (real == root and allow_root):
                return None
            if real == root:
                return (f"{shown} is a storage root itself; use a folder inside it "
                        f"(e.g. {root}/out/<job>)")
        via = " (through a symlink)" if real != full else ""
        return (f"{shown} is outside the storage roots ({self.describe()}){via}; use a path "
                "under them")

    @staticmethod
    def _at(lines: dict, where: tuple, problem: str | None) -> list[str]:
        if not problem:
            return []
        line = line_of(lines, where)
        dotted = ".".join(str(p) for p in where)
        return [f"line {line}: {dotted}: {problem}" if line else f"{dotted}: {problem}"]


class PathProblem(ValueError):
    """A path a request named is not allowed; the message says which and why."""


def _string_leaves(value: Any, loc: tuple = ()) -> Iterator[tuple[tuple, str]]:
    if isinstance(value, str):
        yield loc, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _string_leaves(item, loc + (key,))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _string_leaves(item, loc + (index,))


_PATH_CHECK = getattr(get_args(SpecPath)[1], "func", None)  # what marks a SpecPath


def _declares_path(annotation: Any, metadata: tuple | list = ()) -> bool:
    if any(getattr(m, "func", None) is _PATH_CHECK for m in metadata):
        return True
    if get_origin(annotation) is Annotated and any(
            getattr(m, "func", None) is _PATH_CHECK for m in get_args(annotation)[1:]):
        return True
    return any(_declares_path(arg) for arg in get_args(annotation))


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in get_args(annotation) for m in _models_in(arg)]


def _option_paths(model: type[BaseModel] | None, options: Any,
                  loc: tuple = ()) -> Iterator[tuple[tuple, str, bool]]:
    """(where, value, declared) for each option value that names a file: declared SpecPath
    fields (nested config models too), and other strings that are absolute paths, start with
    `~` or are storage URLs."""
    if not isinstance(options, dict):
        return
    fields = model.model_fields if model is not None else {}
    for key, value in options.items():
        info = fields.get(key)
        if info is not None and _declares_path(info.annotation, info.metadata):
            for where, leaf in _string_leaves(value, loc + (key,)):
                yield where, leaf, True
            continue
        nested = _models_in(info.annotation) if info is not None else []
        if nested and isinstance(value, dict):
            yield from _option_paths(nested[0], value, loc + (key,))
        elif nested and isinstance(value, list):
            for index, item in enumerate(value):
                yield from _option_paths(nested[0], item, loc + (key, index))
        else:
            for where, leaf in _string_leaves(value, loc + (key,)):
                if _names_storage(leaf):
                    yield where, leaf, False


def _names_storage(value: str) -> bool:
    if "\n" in value or len(value) > 4096:
        return False
    match = _SCHEME.match(value)
    if match:
        return match.group(1).lower() not in ("http", "https")
    return os.path.isabs(value) or value.startswith("~") or "::" in value
