"""Job report: a DuckDB summary over the committed shards, as JSON and as one static HTML page.

Only shards with a manifest count (a shard without one is unfinished). The page has no
scripts or external assets: bar charts are inline SVG, so it opens anywhere, offline.
"""

from __future__ import annotations

import datetime as dt
import html
import json
import posixpath

import duckdb
import yaml

from pipeline.io.layout import JobLayout

TOP_REASONS = 25
HISTOGRAM_BINS = 20
SAMPLES_PER_REASON = 3
SNIPPET_CHARS = 300
NUMERIC = ("DOUBLE", "FLOAT", "BIGINT", "INTEGER")
CATEGORICAL = ("VARCHAR", "BOOLEAN")
NOT_CATEGORIES = ("id", "text", "url", "source", "html")  # the documents, not annotations
TOP_VALUES = 20
MAX_CATEGORIES = 1000


def build_summary(output: str) -> dict:
    layout = JobLayout(output)
    if not layout.fs.exists(layout.base):
        raise FileNotFoundError(f"no job output at {output}")
    manifests = sorted(layout.fs.glob(layout.path("manifests", "part-*.json")))
    shards = [layout.read_json(p) for p in manifests]
    failures = [layout.read_json(p) | {"shard": posixpath.basename(p)[5:-5]}
                for p in sorted(layout.fs.glob(layout.path("_work", "failed", "*", "*.json")))]
    plan = layout.read_json(layout.plan()) if layout.exists(layout.plan()) else {"shards": []}
    funnel = funnel_of(shards)
    data = [layout.url(layout.data(s["shard"])) for s in shards]
    rejected = [layout.url(layout.rejected(s["shard"])) for s in shards]
    con = duckdb.connect()
    if layout.url("x") != "x":
        con.register_filesystem(layout.fs)
    summary = {
        "output": output,
        "generated_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "shards": {"planned": len(plan["shards"]), "finished": len(shards),
                   "failed": len(failures)},
        "docs": {"in": funnel[0]["in"] if funnel else 0,
                 "kept": sum(s.get("rows_kept", 0) for s in shards),
                 "rejected": sum(s.get("rows_rejected", 0) for s in shards)},
        "bytes_kept": sum(s.get("bytes_kept", 0) for s in shards),
        "funnel": funnel,
        "reasons": _reasons(con, rejected),
        "columns": {},
        "failures": [{"shard": f["shard"], "error": f["error"]} for f in failures],
        "global_stages": [layout.read_json(p) for p in
                          sorted(layout.fs.glob(layout.path("manifests", "global-*.json")))],
    }
    if data:
        summary["columns"] = _column_summaries(con, data)
    summary["reason_samples"] = _reason_samples(con, rejected, summary["reasons"])
    summary["distributions"] = _distributions(con, data, rejected, _thresholds(layout))
    return summary


def funnel_of(shards: list[dict]) -> list[dict]:
    """Per step, over the shards' manifests: in, added, kept, rejected, seconds, counters."""
    totals: dict[str, dict] = {}
    for shard in shards:
        for entry in shard["stages"]:
            t = totals.setdefault(entry["step"], {"stage": entry["stage"], "step": entry["step"],
                                                  "in": 0, "added": 0, "kept": 0, "rejected": 0,
                                                  "seconds": 0.0})
            for key in ("in", "added", "kept", "rejected", "seconds"):
                t[key] += entry.get(key, 0)
            for name, value in entry.get("counters", {}).items():
                counters = t.setdefault("counters", {})
                counters[name] = counters.get(name, 0) + value
    for t in totals.values():
        t["seconds"] = round(t["seconds"], 3)
        t["docs_per_s"] = round(t["in"] / t["seconds"], 1) if t["seconds"] else None
    return [totals[step] for step in sorted(totals)]


def _reasons(con, files: list[str]) -> list[dict]:
    if not files:
        return []
    rows = con.execute(f"""
        SELECT stage, regexp_replace(reason, '=.*$', '') AS reason, count(*) AS docs
        FROM read_parquet({files!r}, union_by_name = true)
        GROUP BY ALL ORDER BY docs DESC, stage, reason LIMIT {TOP_REASONS}""").fetchall()
    return [{"stage": s, "reason": r, "docs": n} for s, r, n in rows]


def _reason_samples(con, files: list[str], reasons: list[dict]) -> list[dict]:
    """A few rejected documents (the first in file order) per reason the report lists, with
    the full reason: the measure that failed and its value."""
    if not files or not reasons:
        return []
    source = f"read_parquet({files!r}, union_by_name = true, filename = true, " \
             "file_row_number = true)"
    have = _schema(con, source)
    url = "url" if "url" in have else "NULL"
    text = f"left(text, {SNIPPET_CHARS})" if "text" in have else "NULL"
    rows = con.execute(f"""
        SELECT stage, regexp_replace(reason, '=.*$', '') AS grouped, reason, id, {url}, {text}
        FROM {source}
        QUALIFY row_number() OVER (PARTITION BY stage, grouped
                                   ORDER BY filename, file_row_number) <= {SAMPLES_PER_REASON}
        ORDER BY filename, file_row_number""").fetchall()
    found: dict[tuple, list] = {}
    for stage, grouped, reason, doc_id, url_value, snippet in rows:
        found.setdefault((stage, grouped), []).append(
            {"id": doc_id, "url": url_value, "reason": reason,
             "snippet": " ".join((snippet or "").split())})
    return [r | {"samples": found.get((r["stage"], r["reason"]), [])} for r in reasons]


def _thresholds(layout: JobLayout) -> dict[str, list[dict]]:
    """Column -> the thresholds the spec's steps apply to it (pipeline/browse/thresholds.py)."""
    from pipeline.browse.thresholds import FAMILIES

    if not layout.exists(layout.spec()):
        return {}
    with layout.fs.open(layout.spec(), "r") as f:
        steps = yaml.safe_load(f).get("stages") or []
    marks: dict[str, list[dict]] = {}
    for step, entry in enumerate(steps):
        (name, options), = entry.items()
        family = FAMILIES.get(name)
        try:
            found = family.marks(options or {}) if family else []
        except ValueError:  # options this version cannot read: no marks, still a report
            found = []
        for column, option, value in found:
            marks.setdefault(column, []).append({"step": step, "stage": name,
                                                 "option": option, "value": value})
    return marks


def _distributions(con, kept: list[str], rejected: list[str],
                   thresholds: dict[str, list[dict]]) -> dict:
    """Per numeric column: one set of equal bins over kept and rejected documents (those
    whose row has a value), the count of each per bin, and the thresholds on the column."""
    sides = [(f"read_parquet({files!r}, union_by_name = true)", flag)
             for files, flag in ((kept, "true"), (rejected, "false")) if files]
    schemas = [(source, flag, _schema(con, source)) for source, flag in sides]
    numeric = dict.fromkeys(name for _, _, schema in schemas for name, kind in schema.items()
                            if kind in NUMERIC and name != "id")
    out = {}
    for column in numeric:
        values = " UNION ALL ".join(f'SELECT "{column}" AS v, {flag} AS kept FROM {source}'
                                    for source, flag, schema in schemas if column in schema)
        lo, hi = con.execute(
            f"SELECT min(v), max(v) FROM ({values}) WHERE {_finite('v')}").fetchone()
        if lo is None:
            continue
        width = (hi - lo) / HISTOGRAM_BINS or 1
        rows = con.execute(f"""
            SELECT least(floor((v - {lo}) / {width}), {HISTOGRAM_BINS - 1}) AS b,
                   count(*) FILTER (WHERE kept), count(*) FILTER (WHERE NOT kept)
            FROM ({values}) WHERE {_finite('v')} GROUP BY 1 ORDER BY 1""").fetchall()
        counted = {int(b): (k, r) for b, k, r in rows}
        out[column] = {"lo": lo, "hi": lo + HISTOGRAM_BINS * width,
                       "bins": [{"lo": lo + b * width, "hi": lo + (b + 1) * width,
                                 "kept": counted.get(b, (0, 0))[0],
                                 "rejected": counted.get(b, (0, 0))[1]}
                                for b in range(HISTOGRAM_BINS)],
                       "thresholds": thresholds.get(column, [])}
    return out


def _finite(expr: str) -> str:
    """SQL: a value that can sit on an axis (NaN would become the maximum, inf the width)."""
    return f"{expr} IS NOT NULL AND isfinite({expr}::DOUBLE)"


def _schema(con, source: str) -> dict[str, str]:
    return {name: kind for name, kind, *_ in
            con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()}


def _column_summaries(con, files: list[str]) -> dict:
    """Counts of the categorical columns (languages, labels an annotation wrote) and
    histograms of the numeric ones, over the kept documents."""
    source = f"read_parquet({files!r}, union_by_name = true)"
    schema = con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()
    out: dict = {}
    for name, kind, *_ in schema:
        if kind in CATEGORICAL and name not in NOT_CATEGORIES:
            values = _counts(con, source, name)
            if values is not None:
                out[name] = {"kind": "counts", "values": values}
        elif kind in ("DOUBLE", "FLOAT", "BIGINT", "INTEGER") and name not in ("id",):
            out[name] = {"kind": "histogram", "bins": _histogram(con, source, name)}
    return out


def _counts(con, source: str, column: str) -> list[dict] | None:
    """The TOP_VALUES most frequent values; None for a column of mostly distinct values
    (titles, hosts, hashes): free text, not a category."""
    distinct, rows = con.execute(f'SELECT count(DISTINCT "{column}"), count("{column}") '
                                 f"FROM {source}").fetchone()
    if distinct > TOP_VALUES and (distinct > MAX_CATEGORIES or 2 * distinct > rows):
        return None
    found = con.execute(f'SELECT "{column}", count(*) n FROM {source} GROUP BY 1 '
                        f'ORDER BY n DESC, 1 NULLS LAST LIMIT {TOP_VALUES}').fetchall()
    return [{"value": v, "docs": n} for v, n in found]


def _histogram(con, source: str, column: str) -> list[dict]:
    finite = _finite(f'"{column}"')
    lo, hi = con.execute(
        f'SELECT min("{column}"), max("{column}") FROM {source} WHERE {finite}').fetchone()
    if lo is None:
        return []
    width = (hi - lo) / HISTOGRAM_BINS or 1
    rows = con.execute(f"""
        SELECT least(floor(("{column}" - {lo}) / {width}), {HISTOGRAM_BINS - 1}) AS b, count(*)
        FROM {source} WHERE {finite} GROUP BY 1 ORDER BY 1""").fetchall()
    return [{"lo": lo + b * width, "hi": lo + (b + 1) * width, "docs": n} for b, n in rows]


def write_report(output: str) -> dict:
    layout = JobLayout(output)
    summary = build_summary(output)
    folder = layout.report_dir()
    layout.fs.makedirs(folder, exist_ok=True)
    layout.write_json(posixpath.join(folder, "summary.json"), summary)
    with layout.fs.open(posixpath.join(folder, "index.html"), "w") as f:
        f.write(render_html(summary))
    return summary


# -- HTML ------------------------------------------------------------------------------------
def render_html(summary: dict) -> str:
    docs = summary["docs"]
    parts = [f"<h1>Job report</h1><p class=muted>{html.escape(summary['output'])} &middot; "
             f"{summary['generated_at']}</p>",
             "<div class=cards>" + "".join(
                 f"<div class=card><b>{value:,}</b><span>{label}</span></div>" for label, value in
                 (("documents in", docs["in"]), ("kept", docs["kept"]),
                  ("rejected", docs["rejected"]), ("shards", summary["shards"]["finished"]),
                  ("failed shards", summary["shards"]["failed"]))) + "</div>",
             "<h2>Funnel per stage</h2>", _funnel_svg(summary["funnel"])]
    if summary["reasons"]:
        parts += ["<h2>Why documents were rejected</h2>",
                  _bars([(f"{r['stage']}: {r['reason']}", r["docs"]) for r in summary["reasons"]],
                        "#d9534f")]
    if any(r.get("samples") for r in summary.get("reason_samples", [])):
        parts += ["<h2>Examples per rejection reason</h2>",
                  _samples_html(summary["reason_samples"])]
    for name, col in summary["columns"].items():
        if col["kind"] == "counts":
            parts += [f"<h2>{html.escape(name)}</h2>",
                      _bars([(str(v["value"]), v["docs"]) for v in col["values"]], "#5b8def")]
        elif col["bins"]:
            parts += [f"<h2>{html.escape(name)} (kept documents)</h2>",
                      _bars([(f"{b['lo']:.3g} - {b['hi']:.3g}", b["docs"]) for b in col["bins"]],
                            "#5b8def")]
    if summary.get("distributions"):
        parts.append("<h2>Kept and rejected documents by column</h2><p class=muted>kept "
                     "(green) / rejected (red) documents whose row has the column; dashed: "
                     "the spec's thresholds on it</p>")
        for name, dist in summary["distributions"].items():
            parts += [f"<h3>{html.escape(name)}</h3>", _distribution_svg(dist)]
    for step in summary["funnel"]:
        if step.get("counters"):
            parts += [f"<h2>{html.escape(step['stage'])} (step {step['step'] + 1}): counts</h2>",
                      _bars(sorted(step["counters"].items()), "#5b8def")]
    for stage in summary.get("global_stages", []):
        stats = stage["stats"]
        rows = "".join(f"<tr><td>{html.escape(str(k))}</td><td>{html.escape(str(v))}</td></tr>"
                       for k, v in stats.items() if not _is_rows(v))
        parts.append(f"<h2>{html.escape(stage['stage'])} (step {stage['step'] + 1})</h2>"
                     f"<table>{rows}</table>")
        parts += [f"<h3>{html.escape(str(k))}</h3>{_rows_table(v)}"
                  for k, v in stats.items() if _is_rows(v)]
    if summary["failures"]:
        parts.append("<h2>Failed shards</h2><ul>" + "".join(
            f"<li><code>{html.escape(f['shard'])}</code> {html.escape(f['error'])}</li>"
            for f in summary["failures"]) + "</ul>")
    body = "\n".join(parts)
    return (f"<!doctype html><html><head><meta charset=utf-8><title>Job report</title>"
            f"<style>{_CSS}</style></head><body>{body}"
            f"<script type=application/json id=summary>{html.escape(json.dumps(summary))}"
            "</script></body></html>")


def _is_rows(value) -> bool:
    """A global stage's statistic that is a table: a list of flat dicts (one per row)."""
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)


def _rows_table(rows: list[dict]) -> str:
    """A table of rows with the first row's keys as headers, those with text (naming the
    row) first; numbers with 4 significant digits (floats) or thousands separators."""
    headers = sorted(rows[0], key=lambda h: not isinstance(rows[0][h], str))

    def cell(value) -> str:
        if isinstance(value, float):
            return f"{value:.4g}"
        if isinstance(value, int) and not isinstance(value, bool):
            return f"{value:,}"
        return "" if value is None else str(value)

    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(cell(row.get(h)))}</td>"
                                    for h in headers) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _funnel_svg(funnel: list[dict]) -> str:
    if not funnel:
        return "<p>No finished shards yet.</p>"
    top = max(f["in"] for f in funnel) or 1
    width, row = 520, 28
    rows = []
    for i, f in enumerate(funnel):
        kept_w, rej_w = width * f["kept"] / top, width * f["rejected"] / top
        y = i * row
        rows.append(
            f"<text x=0 y={y + 18}>{html.escape(f['stage'])}</text>"
            f"<rect x=160 y={y + 4} width={kept_w:.1f} height=20 fill='#4caf50'/>"
            f"<rect x={160 + kept_w:.1f} y={y + 4} width={rej_w:.1f} height=20 fill='#d9534f'/>"
            f"<text x={168 + kept_w + rej_w:.1f} y={y + 18}>{f['kept']:,} kept / "
            f"{f['rejected']:,} rejected</text>")
    return (f"<svg width=960 height={len(funnel) * row + 8} role=img aria-label=funnel>"
            + "".join(rows) + "</svg>")


def _samples_html(reasons: list[dict]) -> str:
    parts = []
    for r in reasons:
        if not r["samples"]:
            continue
        items = []
        for doc in r["samples"]:
            url = html.escape(doc["url"] or "")
            link = f"<a href=\"{url}\">{url}</a>" if url.startswith(("http://", "https://")) \
                else url
            items.append(f"<li><code>{html.escape(doc['reason'] or '')}</code> {link}<br>"
                         f"<span class=muted>{html.escape(doc['snippet'])}</span></li>")
        parts.append(f"<h3>{html.escape(r['stage'])}: {html.escape(r['reason'])} "
                     f"({r['docs']:,})</h3><ul>{''.join(items)}</ul>")
    return "".join(parts)


def _distribution_svg(dist: dict) -> str:
    """Every bin a row, kept (green) then rejected (red); thresholds as dashed lines where
    their value falls."""
    most = max((b["kept"] + b["rejected"] for b in dist["bins"]), default=1) or 1
    row, top, rows = 20, 10, []
    for i, b in enumerate(dist["bins"]):
        kept_w, rej_w, y = 400 * b["kept"] / most, 400 * b["rejected"] / most, top + i * row
        rows.append(f"<text x=0 y={y + 14}>{b['lo']:.3g} - {b['hi']:.3g}</text>"
                    f"<rect x=160 y={y + 3} width={kept_w:.1f} height=15 fill='#4caf50'/>"
                    f"<rect x={160 + kept_w:.1f} y={y + 3} width={rej_w:.1f} height=15 "
                    f"fill='#d9534f'/><text x={168 + kept_w + rej_w:.1f} y={y + 14}>"
                    f"{b['kept']:,} / {b['rejected']:,}</text>")
    for mark in dist["thresholds"]:
        share = (mark["value"] - dist["lo"]) / ((dist["hi"] - dist["lo"]) or 1)
        y = top + min(max(share, 0), 1) * len(dist["bins"]) * row + 1
        outside = "" if 0 <= share <= 1 else " (outside the values)"
        label = html.escape(f"{mark['stage']}.{mark['option']} = {mark['value']}{outside}")
        rows.append(f"<line x1=150 x2=640 y1={y:.1f} y2={y:.1f} stroke='#333' "
                    f"stroke-dasharray='4 3'/><text x=650 y={y + 4:.1f}>{label}</text>")
    return (f"<svg width=960 height={top + len(dist['bins']) * row + 10} role=img "
            f"aria-label='kept and rejected'>" + "".join(rows) + "</svg>")


def _bars(items: list[tuple[str, int]], color: str) -> str:
    top = max((n for _, n in items), default=1) or 1
    row = 24
    rows = [f"<text x=0 y={i * row + 16}>{html.escape(label[:48])}</text>"
            f"<rect x=330 y={i * row + 3} width={420 * n / top:.1f} height=18 fill='{color}'/>"
            f"<text x={338 + 420 * n / top:.1f} y={i * row + 16}>{n:,}</text>"
            for i, (label, n) in enumerate(items)]
    return f"<svg width=960 height={len(items) * row + 6} role=img>" + "".join(rows) + "</svg>"


_CSS = """body{font:14px system-ui,sans-serif;margin:2em auto;max-width:1000px;color:#222}
h2{margin-top:2em;font-size:1.1em}h3{font-size:1em}.muted{color:#777}.cards{display:flex;gap:1em}
.card{border:1px solid #ddd;border-radius:6px;padding:.8em 1.2em;display:flex;
flex-direction:column}.card b{font-size:1.6em}.card span{color:#666}
svg text{font-size:12px;fill:#333}"""
