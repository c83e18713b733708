"""Plain-text lists that filter stages read (`url_filter`'s domains and URLs,
`keyword_filter`'s phrases): one entry per line, `#` starts a comment.

A `#` starts a comment at the start of a line or after whitespace, so a URL's fragment
(`page#top`) stays part of its entry. Files may be gzip-compressed (`.gz`). Bytes that are
not UTF-8 become U+FFFD rather than failing the job: such an entry then matches nothing.
"""

from __future__ import annotations

import gzip
import re
from typing import Iterator

from pipeline.stage import local_file

_COMMENT = re.compile(r"(?:^|\s)#.*")


def list_entries(path: str) -> Iterator[str]:
    """The entries of one list file, stripped, without blank lines and comments."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8-sig", errors="replace") as lines:
        for line in lines:
            entry = (_COMMENT.sub("", line) if "#" in line else line).strip()
            if entry:
                yield entry


def existing_file(value: str, what: str = "list file") -> str:
    """A config's list file, checked when the spec is validated; the message names it."""
    return local_file(value, what, f"give a local {what} path (lists are read from the "
                      "driver's disk when the job starts)")
