"""The bundled LDNOOBW lists: which languages have one, and their entries.

Lists are files named by language code under lists/ (package data). Documents carry the
codes `langid` writes (stages/_shared/langcodes.py), which differ from the file names in
one place: Tagalog is `tl` there and `fil` here. `fr-CA-u-sd-caqc` (Quebec French) is only
used when a spec names it: a French page gets the French list, as in C4.
"""

from __future__ import annotations

import functools
from importlib import resources

from stages._shared.langcodes import normalize_code

_NOT_LISTS = frozenset({"LICENSE", "SOURCE.md"})
# document language (langid's code) -> list file
_FILE_FOR_CODE = {"tl": "fil"}
# Entries that C4 and DataTrove leave out because, matched inside words of languages
# written without spaces, each one hits more than 10% of ordinary pages (DataTrove's
# _BADWORDS_ALLOWLIST): 性 is "nature, -ity" in Chinese; sm, グロ, 女の子 are common in Japanese.
DEFAULT_ALLOW = ("性", "sm", "グロ", "女の子")


def _folder():
    return resources.files("stages._badwords") / "lists"


@functools.lru_cache(maxsize=1)
def available() -> frozenset[str]:
    """File names of the bundled lists."""
    return frozenset(p.name for p in _folder().iterdir() if p.name not in _NOT_LISTS)


def list_name(language: str | None, exact: bool = False) -> str | None:
    """The list for a language code (`en`, `eng`, `tl`, ...), or None when there is none.
    With `exact`, a list file's own name (`fr-CA-u-sd-caqc`) is taken as it is."""
    if not language:
        return None
    if exact and language in available():
        return language
    code = normalize_code(language)
    name = _FILE_FOR_CODE.get(code, code)
    return name if name in available() else None


@functools.lru_cache(maxsize=None)
def entries(name: str) -> tuple[str, ...]:
    """The entries of one list, lower-cased, blank lines dropped, in file order."""
    text = (_folder() / name).read_text(encoding="utf-8")
    seen: dict[str, None] = {}
    for line in text.splitlines():
        entry = line.strip().lower()
        if entry:
            seen.setdefault(entry, None)
    return tuple(seen)
