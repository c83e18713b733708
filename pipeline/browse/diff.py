"""`pipeline diff OUT_A OUT_B`: two runs side by side, as the funnel of each step and the
documents (matched by id) one run kept and the other did not, with the stage and reason that
decided; also those both rejected, but at another stage or for another reason.

Typical use: the same input under two specs that differ in one threshold.
"""

from __future__ import annotations

import argparse
import json
import random
from dataclasses import dataclass

from pipeline.browse.output import KEPT, JobOutput, Position
from pipeline.browse.show import CORE, sample_lines
from pipeline.report import funnel_of

KINDS = {"kept_only_in_a": "kept by A only", "kept_only_in_b": "kept by B only",
         "rejected_differently": "rejected by both, at another stage or for another reason"}
# reasons compared without their value (as the report groups them)
_GROUP = "regexp_replace({}, '=.*$', '')"


def _rows(output: JobOutput) -> str:
    cols = output.all_columns
    stage = "stage" if "stage" in cols else "NULL::VARCHAR AS stage"
    reason = "reason" if "reason" in cols else "NULL::VARCHAR AS reason"
    return f"SELECT id, _side, _file, _row, {stage}, {reason} FROM {output.scan()}"


@dataclass(frozen=True)
class Seen:
    """Where a run put a document."""

    side: str
    file: str
    row: int
    stage: str | None
    reason: str | None

    def fate(self) -> dict:
        if self.side == KEPT:
            return {"kept": True}
        return {"kept": False, "stage": self.stage, "reason": self.reason}


@dataclass(frozen=True)
class Difference:
    id: str
    a: Seen | None  # None: the run has no document with this id
    b: Seen | None


def differences(a: JobOutput, b: JobOutput) -> dict[str, list[Difference]]:
    """The documents of each kind, by id."""
    if b.layout.url("x") != "x":
        a.con.register_filesystem(b.layout.fs)
    rows = a.con.execute(f"""
        WITH a AS ({_rows(a)}), b AS ({_rows(b)})
        SELECT CASE WHEN a._side = 'kept' AND b._side IS DISTINCT FROM 'kept'
                    THEN 'kept_only_in_a'
                    WHEN b._side = 'kept' AND a._side IS DISTINCT FROM 'kept'
                    THEN 'kept_only_in_b'
                    ELSE 'rejected_differently' END AS kind,
               coalesce(a.id, b.id) AS id,
               a._side, a._file, a._row, a.stage, a.reason,
               b._side, b._file, b._row, b.stage, b.reason
        FROM a FULL OUTER JOIN b ON a.id = b.id
        WHERE (a._side = 'kept') IS DISTINCT FROM (b._side = 'kept')
           OR (a._side = 'rejected' AND b._side = 'rejected'
               AND (a.stage IS DISTINCT FROM b.stage
                    OR {_GROUP.format('a.reason')} IS DISTINCT FROM {_GROUP.format('b.reason')}))
        ORDER BY id""").fetchall()
    out: dict[str, list[Difference]] = {kind: [] for kind in KINDS}
    for kind, doc_id, *seen in rows:
        out[kind].append(Difference(doc_id, Seen(*seen[:5]) if seen[0] else None,
                                    Seen(*seen[5:]) if seen[5] else None))
    return out


def _fate(seen: Seen | None) -> dict:
    return {"kept": None, "absent": True} if seen is None else seen.fate()


def side_by_side(a: JobOutput, b: JobOutput) -> list[dict]:
    funnels = {"a": funnel_of(a.manifests), "b": funnel_of(b.manifests)}
    steps: dict[tuple, dict] = {}
    for run, funnel in funnels.items():
        for f in funnel:
            entry = steps.setdefault((f["step"], f["stage"]), {"step": f["step"],
                                                               "stage": f["stage"],
                                                               "a": None, "b": None})
            entry[run] = {k: f[k] for k in ("in", "kept", "rejected")}
    return [steps[key] for key in sorted(steps)]


def diff(a: JobOutput, b: JobOutput, sample: int = 5, seed: int = 0) -> dict:
    found = differences(a, b)
    rng = random.Random(seed)
    result = {"a": a.root, "b": b.root, "funnel": side_by_side(a, b),
              "kept": {"a": sum(m.get("rows_kept", 0) for m in a.manifests),
                       "b": sum(m.get("rows_kept", 0) for m in b.manifests)}}
    for kind, docs in found.items():
        picked = sorted(rng.sample(docs, min(sample, len(docs))), key=lambda d: d.id)
        # the text as the run that kept it wrote it (A's for documents both rejected)
        texts = [_document(b, d.b) if kind == "kept_only_in_b" else _document(a, d.a)
                 for d in picked]
        result[kind] = {"docs": len(docs), "sample": [
            {"id": d.id, "url": doc.get("url"), "a": _fate(d.a), "b": _fate(d.b),
             "text": doc.get("text")} for d, doc in zip(picked, texts)]}
    return result


def _document(output: JobOutput, seen: Seen | None) -> dict:
    if seen is None:
        return {}
    return output.fetch([Position(seen.side, seen.file, seen.row)], list(CORE))[0]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("a", metavar="OUT_A", help="a job's output folder")
    parser.add_argument("b", metavar="OUT_B", help="another job's output folder")
    parser.add_argument("-n", "--sample", type=int, default=5,
                        help="documents to show of each kind (default 5)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the samples")
    parser.add_argument("--json", action="store_true")


def main(args: argparse.Namespace) -> int:
    result = diff(JobOutput(args.a), JobOutput(args.b), args.sample, args.seed)
    if args.json:
        print(json.dumps(result, indent=1, ensure_ascii=False, default=str))
    else:
        print(_as_text(result))
    return 0


def _as_text(result: dict) -> str:
    lines = [f"A: {result['a']}", f"B: {result['b']}",
             f"{'step':<16}{'A in':>9}{'kept':>9}{'rejected':>9}   |{'B in':>9}{'kept':>9}"
             f"{'rejected':>9}"]
    for f in result["funnel"]:
        cells = ["".join(f"{c[k]:>9,}" for k in ("in", "kept", "rejected")) if c else
                 f"{'-':>27}" for c in (f["a"], f["b"])]
        lines.append(f"{f['stage']:<16}{cells[0]}   |{cells[1]}")
    lines.append(f"kept: A {result['kept']['a']:,}, B {result['kept']['b']:,}")
    for kind, title in KINDS.items():
        lines += sample_lines(title, result[kind],
                              lambda doc: f"A {_said(doc['a'])}; B {_said(doc['b'])}")
    return "\n".join(lines)


def _said(fate: dict) -> str:
    if fate.get("absent"):
        return "absent"
    return "kept" if fate["kept"] else f"{fate['stage']}: {fate['reason']}"
