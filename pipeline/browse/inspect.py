"""`pipeline inspect OUT`: read the documents of a job's output, kept or rejected, chosen by
stage, reason and a validated `--where` condition (pipeline/browse/where.py).

Two reads: DuckDB finds the positions (file, row) of the matching documents, reading only
the columns the filters name and skipping row groups by their statistics; then only the row
groups holding the chosen documents are read, for every column.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass

from pipeline.browse.output import (FILE, KEPT, REJECTED, ROW, SIDE, BrowseError, JobOutput,
                                    Position)
from pipeline.browse.show import CORE, MARKED, document_text, placeholders_of
from pipeline.browse.where import Condition, compile_where


@dataclass
class Query:
    stage: str | None = None
    reason: str | None = None
    kept: bool = False
    rejected: bool = False
    where: str | None = None
    n: int = 5  # 0: every match
    random: bool = False
    seed: int = 0
    offset: int = 0  # matches to skip first (paging: the control plane's documents view)
    doc_id: str | None = None  # only documents with this id

    def sides(self) -> tuple[str, ...]:
        if self.kept and (self.rejected or self.stage or self.reason):
            raise BrowseError("--kept documents have no stage or reason; drop --kept, or "
                              "--stage/--reason/--rejected")
        if self.kept:
            return (KEPT,)
        if self.rejected or self.stage or self.reason:
            return (REJECTED,)
        return (KEPT, REJECTED)


def reason_condition(reason: str) -> Condition:
    """A reason given in full (`lang:de`), without its value (`too_short:words`, as the report
    groups them) or by its code alone (`gopher_repetition`)."""
    return Condition("(reason = ? OR regexp_replace(reason, '=.*$', '') = ? "
                     "OR split_part(reason, ':', 1) = ?)", [reason] * 3)


def matches(output: JobOutput, query: Query) -> tuple[str, list]:
    """SQL for the positions of the documents `query` selects (in no order), and its
    parameters."""
    sides = query.sides()
    conditions = [Condition("true")]
    if query.stage:
        conditions.append(Condition("(stage = ?)", [query.stage]))
    if query.reason:
        conditions.append(reason_condition(query.reason))
    if query.doc_id is not None:
        conditions.append(Condition("(id = ?)", [query.doc_id]))
    if query.where:
        columns = {}
        for side in sides:
            columns |= output.columns[side]
        conditions.append(compile_where(query.where, columns))
    sql = (f"SELECT {SIDE}, {FILE}, {ROW} FROM {output.scan(sides)} "
           f"WHERE {' AND '.join(c.sql for c in conditions)}")
    return sql, [p for c in conditions for p in c.params]


def find(output: JobOutput, query: Query) -> tuple[list[Position], int]:
    """The chosen documents' positions and how many documents match in all."""
    if not any(output.files(side) for side in query.sides()):
        return [], 0
    sql, params = matches(output, query)
    if query.n and not query.random:
        return _page(output, sql, params, query.n, query.offset)
    total = output.con.execute(f"SELECT count(*) FROM ({sql})", params).fetchone()[0]
    limit = (f" LIMIT {int(query.n)}" if query.n else "") + \
        (f" OFFSET {int(query.offset)}" if query.offset else "")
    order = f" ORDER BY {SIDE}, {FILE}, {ROW}"
    if query.random:  # the first n of a seeded order, shown in file order
        sql = (f"SELECT * FROM ({sql} ORDER BY hash({FILE}, {ROW}, {int(query.seed)}){limit})"
               f"{order}")
    else:
        sql += order + limit
    return [Position(*row) for row in output.con.execute(sql, params).fetchall()], total


def _page(output: JobOutput, sql: str, params: list, n: int,
          offset: int) -> tuple[list[Position], int]:
    """The `n` matches after the first `offset` in file order, and how many match in all.
    Matches are counted per file first, so that only the files holding the page are sorted:
    a deep page of a 1M-document output costs tens of milliseconds, not a sort of every
    match."""
    order = f"ORDER BY {SIDE}, {FILE}"
    per_file = output.con.execute(f"SELECT {SIDE}, {FILE}, count(*) FROM ({sql}) "
                                  f"GROUP BY ALL {order}", params).fetchall()
    total = sum(count for *_, count in per_file)
    holding, skip, start = [], 0, 0
    for _, file, count in per_file:
        if start < offset + n and start + count > offset:
            if not holding:
                skip = offset - start
            holding.append(file)
        start += count
    if not holding:
        return [], total
    marks = ", ".join("?" * len(holding))
    rows = output.con.execute(f"SELECT * FROM ({sql}) WHERE {FILE} IN ({marks}) "
                              f"{order}, {ROW} LIMIT {int(n)} OFFSET {int(skip)}",
                              params + holding).fetchall()
    return [Position(*row) for row in rows], total


def inspect(output: JobOutput, query: Query, columns: list[str] | None = None,
            also: tuple[str, ...] = ()) -> tuple[list[dict], int]:
    """The chosen documents with every column (or the core ones, `columns` and `also`), and
    how many documents match in all."""
    if columns:
        unknown = sorted(set(columns) - set(output.all_columns))
        if unknown:
            raise BrowseError(f"--columns: no column {', '.join(unknown)} in {output.root}; "
                              f"columns: {', '.join(sorted(output.all_columns))}")
    positions, total = find(output, query)
    return output.fetch(positions, [*CORE, *columns, *also] if columns else None), total


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("output", help="a job's output folder")
    parser.add_argument("--stage", help="rejected by this stage")
    parser.add_argument("--reason", help="rejected for this reason: in full (lang:de), "
                        "without its value (too_short:words) or its code (gopher_repetition)")
    parser.add_argument("--kept", action="store_true", help="kept documents only")
    parser.add_argument("--rejected", action="store_true", help="rejected documents only")
    parser.add_argument("--where", help="condition on columns, e.g. \"lang = 'en' and "
                        "n_words > 100\" (comparisons, and/or/not, in, like, between, is null)")
    parser.add_argument("-n", type=int, default=5, help="documents to show (0: all; default 5)")
    parser.add_argument("--random", action="store_true", help="a random sample of the matches")
    parser.add_argument("--seed", type=int, default=0, help="seed of --random")
    parser.add_argument("--columns", help="comma-separated columns to show besides id, url, "
                        "stage, reason and text (--json: instead of every column)")
    parser.add_argument("--json", action="store_true", help="print a JSON list of documents")


def main(args: argparse.Namespace) -> int:
    if args.n < 0:
        raise BrowseError("-n must be 0 (all) or more")
    output = JobOutput(args.output)
    query = Query(stage=args.stage, reason=args.reason, kept=args.kept, rejected=args.rejected,
                  where=args.where, n=args.n, random=args.random, seed=args.seed)
    columns = [c.strip() for c in args.columns.split(",") if c.strip()] if args.columns else []
    docs, total = inspect(output, query, columns, () if args.json else MARKED)
    if args.json:
        print(json.dumps(docs, indent=1, ensure_ascii=False, default=str))
        return 0
    placeholders = placeholders_of(output.steps)
    for number, doc in enumerate(docs, 1):
        print(document_text(doc, number, placeholders, columns))
    print(f"{len(docs)} of {total:,} matching documents" if docs else "no matching documents")
    return 0
