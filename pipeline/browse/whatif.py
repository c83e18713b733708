"""`pipeline whatif OUT --set STAGE.OPTION=VALUE ...`: what other thresholds would keep,
worked out from the columns the run wrote, without running the job again.

Each document's path through the steps is replayed. At a changed step, a document that
reached it is decided again from its columns (pipeline/browse/thresholds.py); elsewhere it
ends where it ended. What the output cannot tell is counted as *unsure*, never guessed:
- a document that now passes the step that rejected it never went through the later steps;
- a document a dedup step rejected as a copy, when a member of its group (`duplicate_of`)
  would now be rejected earlier: the re-run may keep it instead.
Where nothing is unsure, the figures are those of a re-run (tests/test_whatif.py).
"""

from __future__ import annotations

import argparse
import copy
import json
import random
import weakref
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import yaml

from pipeline.browse.output import KEPT, BrowseError, JobOutput, Position
from pipeline.browse.show import CORE, placeholders_of, sample_lines, spans_of
from pipeline.browse.thresholds import FAMILIES, CannotEvaluate, Verdict
from pipeline.browse.where import quote_column
from pipeline.registry import get_stage_class
from stages._shared.words import count_words

READ = "read"  # the reader's rejections; it is no step of the spec
NEVER = np.iinfo(np.int64).max


@dataclass
class Change:
    step: int  # position in the replay: 0 is the reader, 1.. the spec's steps
    stage: str
    settings: dict[str, object]  # option path -> new value, as given
    verdict: Verdict


def parse_settings(settings: list[str], steps: list[tuple[str, dict]],
                   columns: dict[str, str]) -> list[Change]:
    """`STAGE.OPTION=VALUE` settings as changes; every problem is named in one error."""
    by_stage: dict[str, dict[str, object]] = {}
    for setting in settings:
        target, equals, value = setting.partition("=")
        stage, dot, option = target.strip().partition(".")
        if not equals or not dot or not option:
            raise BrowseError(f"--set {setting!r}: write STAGE.OPTION=VALUE, e.g. "
                              "quality.max_hash_ratio=0.05")
        by_stage.setdefault(stage, {})[option.strip()] = yaml.safe_load(value) \
            if value.strip() else None
    names = [name for name, _ in steps]
    changes, problems = [], []
    for stage, options in by_stage.items():
        try:
            changes.append(_change(stage, options, names, steps, columns))
        except BrowseError as exc:
            problems.append(str(exc))
    if problems:
        raise BrowseError("cannot evaluate:\n  " + "\n  ".join(problems))
    return sorted(changes, key=lambda c: c.step)


def _change(stage: str, settings: dict, names: list[str], steps, columns) -> Change:
    if stage not in names:
        raise BrowseError(f"{stage}: not a step of this job (steps: {', '.join(names)})")
    if names.count(stage) > 1:
        raise CannotEvaluate(f"{stage} runs at several steps and rejected rows do not say "
                             "which one rejected them")
    family = FAMILIES.get(stage)
    stage_class = get_stage_class(stage)
    if family is None or stage_class is None or stage_class.is_global:
        raise CannotEvaluate(f"{stage}: no rule maps its options to columns (what-if "
                             f"evaluates {', '.join(sorted(FAMILIES))}); re-run the job")
    step = names.index(stage)
    options = copy.deepcopy(steps[step][1] or {})
    paths = []
    for option, value in settings.items():
        path = family.resolve(option)
        _set(options, path, value)
        paths.append(path)
    return Change(step + 1, stage, settings, family.verdict(options, paths, columns))


def _set(options: dict, path: tuple[str, ...], value) -> None:
    for key in path[:-1]:
        options = options.setdefault(key, {})
        if not isinstance(options, dict):
            raise BrowseError(f"{'.'.join(path)}: {key} is not a group of options")
    options[path[-1]] = value


class Replay:
    """Every document's step before (`was`) and after (`now`) the changes; a step past the
    last means kept. `unsure_from` is the step from which the new fate is not known."""

    def __init__(self, output: JobOutput, changes: list[Change]):
        self.output, self.changes = output, changes
        self.names = [READ] + [name for name, _ in output.steps]
        self.kept_at = len(self.names)
        self.rows = self._read()
        self.was = self._steps_before()
        self.now = self.was.copy()
        self.reason = np.array(self.rows["reason"].to_pylist(), dtype=object)
        self.unsure_from = np.full(len(self.was), NEVER)
        self.why_unsure = np.full(len(self.was), None, dtype=object)
        self.notes: list[str] = []
        self._replay()

    def _read(self) -> pa.Table:
        table = outcomes(self.output)
        extra = [c for c in dict.fromkeys(c for change in self.changes
                                          for c in change.verdict.columns)
                 if c in self.output.all_columns and c not in table.column_names]
        if extra:  # the changed steps' columns, in the same file order
            sql = f"SELECT {', '.join(map(quote_column, extra))} FROM {self.output.scan()} " \
                  "ORDER BY _side, _file, _row"
            for name, column in zip(extra, self.output.con.sql(sql).to_arrow_table().columns):
                table = table.append_column(name, column)
        return table

    def _steps_before(self) -> np.ndarray:
        """Where each document ended in the run. Rejected rows name their stage, not their
        step: a stage at several steps is only told apart where no change lies between."""
        for name in set(self.names):
            at = [i for i, n in enumerate(self.names) if n == name]
            if any(at[0] < c.step < at[-1] for c in self.changes):
                raise CannotEvaluate(f"{name} runs at steps {', '.join(str(i) for i in at)} "
                                     "around a changed step, and rejected rows do not say "
                                     "which of them rejected them")
        steps = {name: i for i, name in reversed(list(enumerate(self.names)))}
        was = []
        for side, stage in zip(self.rows["_side"].to_pylist(), self.rows["stage"].to_pylist()):
            if side == KEPT:
                was.append(self.kept_at)
            elif stage in steps:
                was.append(steps[stage])
            else:
                raise BrowseError(f"rejected rows name stage {stage!r}, which is no step of "
                                  f"{self.output.root}/spec.yaml")
        return np.array(was, dtype=np.int64)

    def _replay(self) -> None:
        changed = {c.step: c for c in self.changes}
        decided = np.zeros(len(self.was), dtype=bool)
        for step in range(self.kept_at):
            active = ~decided
            here = active & (self.was == step)
            if step in changed:
                verdict = changed[step].verdict
                reasons = np.array(verdict.decide(self.rows.select(verdict.columns))
                                   .to_pylist(), dtype=object)
                rejected = active & (reasons != None)  # noqa: E711 - elementwise
                self.now[rejected], self.reason[rejected] = step, reasons[rejected]
                passes = here & ~rejected
                self.now[passes] = self.kept_at
                if step + 1 < self.kept_at:
                    self.unsure_from[passes] = step + 1
                    self.why_unsure[passes] = (f"passes {self.names[step]} now; never went "
                                               f"through {', '.join(self.names[step + 1:])}")
                decided |= rejected | passes
                continue
            if self._is_global(step):
                if (self.unsure_from <= step).any():
                    self.notes.append(f"{self.names[step]} never saw the documents that now "
                                      "pass an earlier step: it may choose other copies")
                lost = self._groups_losing_a_member(step, here)
                self.now[here & ~lost] = step
                self.now[lost] = self.kept_at
                self.unsure_from[lost] = step
                self.why_unsure[lost] = (f"{self.names[step]} chose it as a copy of a group "
                                         "that would lose a member")
            else:
                self.now[here] = step
            decided |= here

    def _is_global(self, step: int) -> bool:
        stage_class = get_stage_class(self.names[step]) if step else None
        return bool(stage_class and stage_class.is_global)

    def _groups_losing_a_member(self, step: int, here: np.ndarray) -> np.ndarray:
        """Rows rejected at global `step` whose group (`duplicate_of`) has a member that
        reached the step before and now ends earlier."""
        lost_ids = set(np.array(self.rows["id"].to_pylist(), dtype=object)[
            (self.was >= step) & (self.now < step)])
        if not lost_ids:
            return np.zeros(len(here), dtype=bool)
        ids = self.rows["id"].to_pylist()
        groups = self.rows["duplicate_of"].to_pylist()
        hit = {groups[i] for i in np.flatnonzero(here)
               if ids[i] in lost_ids or groups[i] in lost_ids or groups[i] is None}
        return here & np.array([g in hit for g in groups], dtype=bool)

    def figures(self) -> list[dict]:
        words = self.rows["_words"].to_numpy()
        sure = self.unsure_from
        out = []
        for step, name in enumerate(self.names):
            before_in, after_in = self.was >= step, (self.now >= step) & (sure > step)
            out.append({
                "step": step - 1, "stage": name,
                "before": _counts(before_in, self.was == step, self.was > step, words),
                "after": _counts(after_in, self.now == step, (self.now > step) & (sure > step),
                                 words) | {"unsure": int((sure <= step).sum())}})
        return out

    def totals(self) -> dict:
        words = self.rows["_words"].to_numpy()
        kept_before = self.was == self.kept_at
        kept_after = (self.now == self.kept_at) & (self.unsure_from == NEVER)
        unsure = self.unsure_from != NEVER
        return {"before": {"docs": int(kept_before.sum()), "words": int(words[kept_before].sum())},
                "after": {"docs": int(kept_after.sum()), "words": int(words[kept_after].sum()),
                          "unsure": int(unsure.sum()), "unsure_words": int(words[unsure].sum())}}

    def changed_rows(self) -> dict[str, np.ndarray]:
        sure = self.unsure_from == NEVER
        kept_before, kept_after = self.was == self.kept_at, self.now == self.kept_at
        return {"now_rejected": np.flatnonzero(kept_before & ~kept_after),
                "now_kept": np.flatnonzero(~kept_before & kept_after & sure),
                "unsure": np.flatnonzero(~sure)}

    def position(self, row: int) -> Position:
        return Position(self.rows["_side"][row].as_py(), self.rows["_file"][row].as_py(),
                        self.rows["_row"][row].as_py())

    def describe(self, row: int, when: str) -> dict:
        step = self.was[row] if when == "before" else self.now[row]
        if when == "after" and self.unsure_from[row] != NEVER:
            return {"kept": None, "unsure": self.why_unsure[row]}
        if step == self.kept_at:
            return {"kept": True}
        reason = self.rows["reason"][row].as_py() if when == "before" else self.reason[row]
        return {"kept": False, "stage": self.names[step], "reason": reason}


# per open output: its documents' outcomes and word counts (reading every text to count its
# words is most of a replay's time, and the dashboard's sliders ask again and again)
_OUTCOMES: "weakref.WeakKeyDictionary[JobOutput, pa.Table]" = weakref.WeakKeyDictionary()


def outcomes(output: JobOutput) -> pa.Table:
    """Every document's id, stage, reason, duplicate_of and words, in file order; read once
    per open output."""
    if output in _OUTCOMES:
        return _OUTCOMES[output]
    present = [c for c in ("id", "stage", "reason", "duplicate_of", "text")
               if c in output.all_columns]
    sql = f"SELECT _side, _file, _row, {', '.join(map(quote_column, present))} " \
          f"FROM {output.scan()}"
    batches = []
    for batch in output.con.sql(sql).to_arrow_reader():
        words = count_words(batch.column("text")) if "text" in present else \
            pa.nulls(batch.num_rows, pa.int64())
        table = pa.Table.from_batches([batch]).drop_columns(
            ["text"] if "text" in present else [])
        batches.append(table.append_column("_words", pc.fill_null(words, 0)))
    if not batches:
        raise BrowseError(f"no documents in {output.root}")
    # in file order (sorted here, once the texts are gone), so that samples repeat
    table = pa.concat_tables(batches).sort_by([("_side", "ascending"), ("_file", "ascending"),
                                               ("_row", "ascending")])
    for column in ("stage", "reason", "duplicate_of"):
        if column not in table.column_names:
            table = table.append_column(column, pa.nulls(table.num_rows, pa.string()))
    _OUTCOMES[output] = table
    return table


def _counts(entered: np.ndarray, rejected: np.ndarray, kept: np.ndarray,
            words: np.ndarray) -> dict:
    return {"in": int(entered.sum()), "kept": int(kept.sum()), "rejected": int(rejected.sum()),
            "words_kept": int(words[kept].sum())}


def whatif(output: JobOutput, settings: list[str], sample: int = 5, seed: int = 0) -> dict:
    changes = parse_settings(settings, output.steps, output.all_columns)
    replay = Replay(output, changes)
    rng = random.Random(seed)
    samples = {}
    for kind, rows in replay.changed_rows().items():
        picked = sorted(int(r) for r in rng.sample(list(rows), min(sample, len(rows))))
        docs = output.fetch([replay.position(r) for r in picked], list(CORE))
        samples[kind] = {"docs": len(rows), "sample": [
            {"id": doc["id"], "url": doc.get("url"), "before": replay.describe(r, "before"),
             "after": replay.describe(r, "after"), "text": doc.get("text")}
            for r, doc in zip(picked, docs)]}
    return {"output": output.root,
            "changes": [{"step": c.step - 1, "stage": c.stage, "set": c.settings}
                        for c in replay.changes],
            "funnel": replay.figures(), "kept": replay.totals(), "changed": samples,
            "notes": replay.notes}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("output", help="a job's output folder")
    parser.add_argument("--set", dest="settings", action="append", required=True,
                        metavar="STAGE.OPTION=VALUE",
                        help="a threshold to change (repeat for more), e.g. "
                             "quality.max_hash_ratio=0.05, classify.threshold=0.7")
    parser.add_argument("-n", "--sample", type=int, default=5,
                        help="documents to show of each kind that changes side (default 5)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the samples")
    parser.add_argument("--json", action="store_true")


def main(args: argparse.Namespace) -> int:
    output = JobOutput(args.output)
    result = whatif(output, args.settings, args.sample, args.seed)
    if args.json:
        print(json.dumps(result, indent=1, ensure_ascii=False, default=str))
        return 0
    print(_as_text(result, placeholders_of(output.steps)))
    return 0


def _as_text(result: dict, placeholders: list[str]) -> str:
    lines = [f"what-if on {result['output']}: " + "; ".join(
        f"{c['stage']}: " + ", ".join(f"{k}={v}" for k, v in c["set"].items())
        for c in result["changes"])]
    lines.append(f"{'step':<16}{'in':>9}{'kept':>9}{'rejected':>9}   ->{'in':>9}{'kept':>9}"
                 f"{'rejected':>9}{'unsure':>8}")
    for f in result["funnel"]:
        b, a = f["before"], f["after"]
        lines.append(f"{f['stage']:<16}{b['in']:>9,}{b['kept']:>9,}{b['rejected']:>9,}   ->"
                     f"{a['in']:>9,}{a['kept']:>9,}{a['rejected']:>9,}{a['unsure']:>8,}")
    kept = result["kept"]
    lines.append(f"kept: {kept['before']['docs']:,} -> {kept['after']['docs']:,} documents, "
                 f"{kept['before']['words']:,} -> {kept['after']['words']:,} words"
                 + (f"; {kept['after']['unsure']:,} unsure" if kept["after"]["unsure"] else ""))
    titles = {"now_rejected": "kept before, rejected now", "now_kept": "rejected before, kept now",
              "unsure": "fate unknown without a re-run"}
    for kind, found in result["changed"].items():
        lines += sample_lines(titles[kind], found,
                              lambda doc: f"{_fate(doc['before'])} -> {_fate(doc['after'])}",
                              lambda doc: spans_of(doc, placeholders))
    lines += [f"note: {note}" for note in result["notes"]]
    return "\n".join(lines)


def _fate(fate: dict) -> str:
    if fate.get("unsure"):
        return f"unsure ({fate['unsure']})"
    return "kept" if fate["kept"] else f"{fate['stage']}: {fate['reason']}"
