"""Common Crawl by name: `input: {format: warc, crawl: CC-MAIN-2024-51, files: "0:100"}`
(docs/common_crawl.md, "A crawl by name").

A crawl lists its files in `crawl-data/<crawl>/warc.paths.gz` (`wet.paths.gz` for WET), one
path per line relative to the root that serves the crawl. The driver reads that listing once
(~90k lines, well under a megabyte) and picks lines by a slice or a deterministic sample; the
bucket is never listed or globbed. Each picked line is opened under `base`:
`s3://commoncrawl/` (the default; signed requests, credentials from the standard chain),
`https://data.commoncrawl.org/`, or a mirror with the same layout (a folder, another bucket).

A file's name in `source` is its listing line, the `filename` Common Crawl's URL index uses,
so sources and shard plans do not depend on the base, the slice or the sample.
"""

from __future__ import annotations

import gzip
import re
import zlib

import fsspec
import xxhash
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from pipeline.io.formats import InputListingError
from pipeline.stage import SpecPath

DEFAULT_BASE = "s3://commoncrawl/"
HTTPS_BASE = "https://data.commoncrawl.org/"
LISTING_NAMES = {"warc": "warc.paths.gz", "wet": "wet.paths.gz"}
CRAWL_NAME = re.compile(r"CC-MAIN-(\d{4})-(\d{2})")
_SLICE = re.compile(r"\s*(-?\d+)?\s*:\s*(-?\d+)?\s*(?::\s*(-?\d+)?\s*)?")
_SIGNED = (f"{DEFAULT_BASE} takes signed requests only: set AWS credentials (any "
           f"account), or read over HTTPS with `base: {HTTPS_BASE}`")
# the keys that only mean something together with `crawl`
_CRAWL_KEYS = ("files", "sample", "base", "anonymous")
# unsigned requests, per protocol (http(s) and local folders need no such option)
_ANONYMOUS = {"s3": {"anon": True}, "s3a": {"anon": True}, "gs": {"token": "anon"},
              "gcs": {"token": "anon"}}


class Sample(BaseModel):
    """A deterministic sample of the listing: the lines with the smallest hash of
    (seed, line), in listing order. The same seed gives the same files on every run and
    machine, and a bigger sample with the same seed contains a smaller one."""

    model_config = ConfigDict(extra="forbid")
    count: int | None = Field(None, gt=0, description="how many files")
    fraction: float | None = Field(
        None, gt=0, le=1, description="which share of the listing (rounded, at least 1 file)")
    seed: int = Field(0, description="another seed gives another sample")

    @model_validator(mode="after")
    def _count_or_fraction(self):
        if (self.count is None) == (self.fraction is None):
            raise PydanticCustomError(
                "sample_size", "give one of sample.count or sample.fraction, e.g. "
                "`sample: {count: 100, seed: 0}`")
        return self


class CrawlOptions(BaseModel):
    """The input keys that name a crawl; warc and wet accept them besides `paths`."""

    model_config = ConfigDict(extra="forbid")
    crawl: str | None = Field(None, description="a Common Crawl crawl, e.g. CC-MAIN-2024-51, "
                                                "instead of paths")
    files: str | None = Field(None, description='lines of the crawl\'s listing to read, a '
                                                'Python slice: "0:100" (end excluded)')
    sample: Sample | None = Field(None, description="or a deterministic sample of the listing: "
                                                    "{count|fraction, seed}")
    base: SpecPath = Field(DEFAULT_BASE, description="where the crawl's files live: "
                                                     "s3://commoncrawl/, "
                                                     "https://data.commoncrawl.org/ or a mirror")
    anonymous: bool = Field(False, description="unsigned requests to an s3:// or gs:// base "
                                               "(a public mirror; not Common Crawl's bucket)")

    @field_validator("crawl")
    @classmethod
    def _crawl_name(cls, value):
        match = CRAWL_NAME.fullmatch(value) if value is not None else None
        if value is not None and not (match and 1 <= int(match.group(2)) <= 53):
            raise PydanticCustomError(
                "crawl_name", "{value} is not a Common Crawl crawl name; write "
                "CC-MAIN-<year>-<week>, e.g. CC-MAIN-2024-51", {"value": repr(value)})
        return value

    @field_validator("files", mode="before")
    @classmethod
    def _files_slice(cls, value):
        if value is None:
            return value
        if not isinstance(value, str):
            raise PydanticCustomError(
                "files_slice", "files is a quoted slice such as \"0:100\"; got {value} "
                "(YAML reads an unquoted 1:30 as the number 90)", {"value": repr(value)})
        parse_slice(value)
        return value


def parse_slice(text: str) -> slice:
    """`start:end[:step]` with Python's meaning (end excluded, negatives count from the end)."""
    match = _SLICE.fullmatch(text)
    start, end, step = (int(g) if g else None for g in match.groups()) if match else [0] * 3
    if not match or step == 0:
        raise PydanticCustomError(
            "files_slice", "files {value} is not a slice of the listing; write "
            "\"start:end\" (end excluded, e.g. \"0:100\"), \"start:end:step\" or \":\" for "
            "every file", {"value": repr(text)})
    return slice(start, end, step)


def keys_problems(extras: dict, paths: list[str]) -> list[tuple[str, str]]:
    """(key, problem) for keys that do not go together; read from the raw keys, so that
    they are found even where a value itself is invalid."""
    if extras.get("crawl") is None:
        return [(key, f"`{key}` goes with `crawl` (a Common Crawl crawl read by name); "
                      "remove it, or add `crawl: CC-MAIN-<year>-<week>`")
                for key in _CRAWL_KEYS if key in extras]
    problems = []
    if paths:
        problems.append(("crawl", "give `crawl` or `paths`, not both: `crawl` reads the files "
                                  "that the crawl's listing names"))
    if "files" in extras and "sample" in extras:
        problems.append(("sample", "give `files` (a slice of the listing) or `sample`, "
                                   "not both"))
    elif "files" not in extras and "sample" not in extras:
        problems.append(("crawl", "say which of the crawl's files to read: `files: \"0:100\"` "
                                  "(a slice of its listing; \":\" for every file) or "
                                  "`sample: {count: 100, seed: 0}`"))
    base = extras.get("base", DEFAULT_BASE)
    if extras.get("anonymous") is True and isinstance(base, str) and \
            _protocol(base) not in _ANONYMOUS:
        problems.append(("anonymous", f"`anonymous` applies to s3:// and gs:// bases; "
                                      f"{base!r} needs no such option, remove it"))
    return problems


def storage_options(options: CrawlOptions) -> dict:
    """fsspec options for the base: only whether requests are signed. Endpoints and
    credentials come from the standard chain (docs/architecture.md, "Object storage")."""
    if not options.crawl or not options.anonymous:
        return {}
    return dict(_ANONYMOUS.get(_protocol(options.base), {}))


def listing_url(options: CrawlOptions, fmt: str) -> str:
    return join(options.base, f"crawl-data/{options.crawl}/{LISTING_NAMES[fmt]}")


def join(base: str, line: str) -> str:
    return base.rstrip("/") + "/" + line


def crawl_files(options: CrawlOptions, fmt: str) -> list[str]:
    """The picked files' URLs under the base, in listing order. Raises InputListingError."""
    url = listing_url(options, fmt)
    lines = read_listing(url, storage_options(options))
    if options.sample is not None:
        picked = sample_lines(lines, options.sample)
    else:
        picked = lines[parse_slice(options.files)]
        if not picked:
            raise InputListingError("files", f"files {options.files!r} selects none of the "
                                             f"{len(lines)} files listed in {url}")
    return [join(options.base, line) for line in picked]


def listed_names(files: list[str], options: CrawlOptions) -> dict[str, str]:
    """Each file's listing line (`crawl-data/...`): its name in `source`."""
    prefix = join(options.base, "")
    return {f: f[len(prefix):] for f in files}


def read_listing(url: str, options: dict) -> list[str]:
    """The listing's non-empty lines; each must be a relative path below the base."""
    try:
        with fsspec.open(url, "rb", compression="gzip", **options) as handle:
            text = handle.read().decode("utf-8")
    except FileNotFoundError:
        raise InputListingError("crawl", f"no listing at {url}; check the crawl name "
                                         "(crawls: https://index.commoncrawl.org/collinfo.json) "
                                         "and `base`") from None
    except PermissionError as exc:
        raise InputListingError("crawl", f"access denied to {url} ({exc}); {_SIGNED}") from None
    except (gzip.BadGzipFile, zlib.error, EOFError, UnicodeDecodeError) as exc:
        raise InputListingError("crawl", f"{url} is not a gzipped text listing "
                                         f"({exc})") from None
    except Exception as exc:  # a listing that cannot be read is a spec problem, named
        hint = f"; {_SIGNED}" if type(exc).__name__ == "NoCredentialsError" else ""
        raise InputListingError("crawl", f"cannot read the listing {url}: "
                                         f"{type(exc).__name__}: {exc}{hint}") from None
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    for number, line in enumerate(lines, 1):
        if "://" in line or line.startswith(("/", "~")) or ".." in line.split("/"):
            raise InputListingError("crawl", f"{url}: line {number} is not a path below the "
                                             f"base: {line[:200]!r}")
    if not lines:
        raise InputListingError("crawl", f"{url} lists no files")
    return lines


def sample_lines(lines: list[str], sample: Sample) -> list[str]:
    """The `count` lines (or `fraction` of them) with the smallest hash of (seed, line), in
    listing order. A line's hash does not depend on the others, so the choice is stable."""
    count = sample.count if sample.count is not None else \
        max(1, round(sample.fraction * len(lines)))
    if count > len(lines):
        raise InputListingError("sample", f"sample.count {count} is more than the "
                                          f"{len(lines)} files the listing names")
    ranked = sorted(range(len(lines)), key=lambda i: (
        xxhash.xxh3_64_intdigest(f"{sample.seed}\0{lines[i]}".encode()), i))
    return [lines[i] for i in sorted(ranked[:count])]


def _protocol(url: str) -> str:
    return url.split("://", 1)[0].lower() if "://" in url else "file"

