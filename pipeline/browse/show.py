"""Documents as text for a terminal: a header line (id, where it ended, full reason), the URL,
chosen columns, and a snippet with redacted or flagged spans marked.

Marked spans: `pii_spans` (pii in annotate or drop mode: character offsets), the pii
placeholders in the text (pii in redact mode: `<EMAIL>`, ...), and the benchmark items of
`contamination` named in the header (decontam: the matching spans themselves are not kept).
"""

from __future__ import annotations

import json
import re
import sys
from typing import Any

from pipeline.registry import get_stage_class

SNIPPET_CHARS = 300
CORE = ("id", "url", "stage", "reason", "text", "kept")
MARKED = ("pii_spans", "contamination")  # read for the text view whatever --columns says


def placeholders_of(steps: list[tuple[str, dict]]) -> list[str]:
    """The placeholders a pii step in redact mode wrote into the text."""
    found: list[str] = []
    for name, options in steps:
        if name != "pii" or (options or {}).get("mode") != "redact":
            continue
        stage_class = get_stage_class(name)  # imports every stage: only when there is one
        if stage_class is None:
            continue
        try:
            stage = stage_class(stage_class.config_model.model_validate(options or {}))
            found += list(getattr(stage, "placeholders", {}).values())
        except ValueError:
            continue  # a spec this version cannot read: nothing to mark
    return found


def spans_of(doc: dict, placeholders: list[str]) -> list[tuple[int, int]]:
    text = doc.get("text") or ""
    spans = [(s["start"], s["end"]) for s in doc.get("pii_spans") or []
             if isinstance(s, dict) and "start" in s and "end" in s]
    for mark in placeholders:
        spans += [(m.start(), m.end()) for m in re.finditer(re.escape(mark), text)]
    return sorted((a, b) for a, b in spans if 0 <= a < b <= len(text))


def snippet(text: str | None, spans: list[tuple[int, int]], chars: int = SNIPPET_CHARS,
            marks: tuple[str, str] | None = None) -> str:
    """`chars` characters of `text` (from the first marked span when it lies further on),
    whitespace folded, with the marked spans between `marks`."""
    if not text:
        return "(no text)"
    start = 0
    if spans and spans[0][0] > chars * 2 // 3:
        start = spans[0][0] - chars // 3
    end = min(len(text), start + chars)
    open_, close = marks or (("\x1b[7m", "\x1b[0m") if sys.stdout.isatty() else ("[[", "]]"))
    pieces, at = [], start
    for a, b in spans:
        a, b = max(a, at), min(b, end)
        if a >= b:
            continue
        pieces += [text[at:a], open_ + text[a:b] + close]
        at = b
    pieces.append(text[at:end])
    shown = " ".join("".join(pieces).split())
    return ("..." if start else "") + shown + ("..." if end < len(text) else "")


def where_it_ended(doc: dict) -> str:
    if doc.get("kept"):
        return "kept"
    return f"rejected at {doc.get('stage')}: {doc.get('reason')}"


def document_text(doc: dict, number: int, placeholders: list[str],
                  columns: list[str] = ()) -> str:
    lines = [f"[{number}] {doc.get('id')}  ({where_it_ended(doc)})"]
    if doc.get("url"):
        lines.append(f"    {doc['url']}")
    if doc.get("contamination"):
        lines.append(f"    contaminated by: {', '.join(map(str, doc['contamination']))}")
    shown = [f"{c}={_short(doc.get(c))}" for c in columns if c not in CORE]
    if shown:
        lines.append("    " + "  ".join(shown))
    lines.append("    | " + snippet(doc.get("text"), spans_of(doc, placeholders)))
    return "\n".join(lines)


def _short(value: Any) -> str:
    shown = value if isinstance(value, str) else json.dumps(value, default=str)
    return shown if len(shown) <= 80 else shown[:77] + "..."


def sample_lines(title: str, found: dict, describe, spans=lambda doc: []) -> list[str]:
    """Text lines for one group of sampled documents (`found`: `docs` counted, `sample`
    shown): a heading, then per document its id and `describe(doc)`, its URL and a snippet
    with `spans(doc)` marked. No lines for an empty group."""
    if not found["docs"]:
        return []
    lines = [f"\n{title}: {found['docs']:,}"]
    for doc in found["sample"]:
        lines.append(f"  {doc['id']}  {describe(doc)}")
        if doc["url"]:
            lines.append(f"    {doc['url']}")
        lines.append("    | " + snippet(doc["text"], spans(doc)))
    return lines
