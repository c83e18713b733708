"""How each stage's thresholds map to the columns its run wrote: the table `pipeline whatif`
works from, and from which the report marks thresholds on its histograms. One small class per
stage family says which options it can evaluate, which columns that needs, and decides a
document the way the stage would, from those columns (reusing the stage's own rule where it
has one). A stage missing here cannot be asked about; adding it is one class in FAMILIES.
`tests/test_whatif.py` checks each one against a real re-run with the changed options.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import pyarrow as pa
import pyarrow.compute as pc
from pydantic import ValidationError

from pipeline.browse.output import BrowseError
from pipeline.registry import get_stage_class
from pipeline.stage import EMPTY_TEXT, format_value, reasons_where


class CannotEvaluate(BrowseError):
    """An option whose effect the output's columns cannot tell."""


@dataclass
class Verdict:
    """A stage's decision under new options: reads `columns`, returns one reason per row
    (null = the document passes)."""

    columns: list[str]
    decide: Callable[[pa.Table], pa.Array]


def build_config(stage: str, options: dict):
    stage_class = get_stage_class(stage)
    try:
        return stage_class.config_model.model_validate(_given(stage_class.config_model,
                                                              options))
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or stage}: {e['msg']}"
                             for e in exc.errors())
        raise BrowseError(f"{stage}: {problems}") from None


def _given(model, options: dict) -> dict:
    """`options` without those at their default. The spec as run writes every default out,
    and a config may refuse an option that does not apply to it even at its default
    (classify's transformers-only options under engine fasttext)."""
    fields = model.model_fields
    out = {}
    for name, value in options.items():
        info = fields.get(name)
        if info is None or info.is_required():
            out[name] = value
            continue
        default = info.get_default(call_default_factory=True)
        if hasattr(default, "model_dump"):
            default = default.model_dump(mode="json")
        if value != default and not (isinstance(default, tuple) and value == list(default)):
            out[name] = value
    return out


def _need(columns: dict[str, str], wanted: list[str], why: str) -> None:
    missing = [c for c in wanted if c not in columns]
    if missing:
        named = ", ".join(missing[:3]) + (f" (and {len(missing) - 3} more)"
                                          if len(missing) > 3 else "")
        raise CannotEvaluate(f"{why}: the output has no column {named}")


class Family:
    stage: str

    def resolve(self, option: str) -> tuple[str, ...]:
        """The path of a `--set` option inside the stage's options."""
        return tuple(option.split("."))

    def verdict(self, options: dict, changed: list[tuple[str, ...]],
                columns: dict[str, str]) -> Verdict:  # pragma: no cover - abstract
        raise NotImplementedError

    def marks(self, options: dict) -> list[tuple[str, str, float]]:
        """(column, option, value) of each threshold the stage applies to a column it
        writes, for the report's histograms."""
        return []

    def _only(self, changed: list[tuple[str, ...]], allowed: set[str], why: str) -> None:
        for path in changed:
            if ".".join(path) not in allowed:
                raise CannotEvaluate(f"{self.stage}.{'.'.join(path)}: {why}; what-if can "
                                     f"change {', '.join(sorted(allowed))}")


class Quality(Family):
    """`quality` with `mode: annotate` wrote every measure as `quality_<measure>`; its rules'
    own `failure` decides from them (the first failed check names the reason)."""

    stage = "quality"
    prefix = "quality_"

    def resolve(self, option: str) -> tuple[str, ...]:
        if "." in option:
            return tuple(option.split("."))
        fields = get_stage_class(self.stage).config_model.model_fields
        if option in fields:
            return (option,)
        owners = [rule for rule, info in fields.items()
                  if hasattr(info.annotation, "model_fields")
                  and option in info.annotation.model_fields]
        if len(owners) > 1:
            raise BrowseError(f"quality.{option} is an option of {', '.join(owners)}; "
                              f"write quality.{owners[0]}.{option}")
        return (owners[0], option) if owners else (option,)

    def marks(self, options):
        stage = get_stage_class(self.stage)(build_config(self.stage, options))
        return [(self.prefix + check.measure, f"{rule.name}.{check.field}", limit)
                for rule in stage.rules for check in rule.checks if check.kind != "flag"
                and (limit := getattr(rule.config, check.field)) is not None]

    def verdict(self, options, changed, columns):
        wants_annotate = ("mode",) in changed and options.get("mode") == "annotate"
        config = build_config(self.stage, options | {"mode": "filter"})
        stage = get_stage_class(self.stage)(config)
        thresholds = {"mode", "rules"} | {f"{rule.name}.{check.field}" for rule in stage.rules
                                          for check in rule.checks}
        self._only(changed, thresholds, "it changes how a measure is computed, not a "
                   "threshold on it (re-run to see its effect)")
        if wants_annotate:
            return Verdict([], lambda table: pa.nulls(table.num_rows, pa.string()))
        measures = [m for rule in stage.rules for m in rule.measures]
        if not any(c.startswith(self.prefix) for c in columns):
            raise CannotEvaluate("quality wrote no measures (it ran with `mode: filter`); "
                                 "its thresholds are evaluated from the quality_* columns "
                                 "of `mode: annotate`")
        _need(columns, [self.prefix + m for m in measures], "quality's chosen rules")

        def decide(table: pa.Table) -> pa.Array:
            values = {m: table[self.prefix + m].to_pylist() for m in measures}
            reasons = []
            for row in range(table.num_rows):
                measured = {m: v[row] for m, v in values.items()}
                if all(v is None for v in measured.values()):
                    reasons.append(EMPTY_TEXT)  # annotate mode measures nothing without text
                    continue
                reasons.append(next((r for rule in stage.rules
                                     if (r := rule.failure(measured)) is not None), None))
            return pa.array(reasons, pa.string())
        return Verdict([self.prefix + m for m in measures], decide)


class LangId(Family):
    """`langid` writes `lang` and `lang_score` on every document it sees, kept or not; the
    stage's own verdict decides from them."""

    stage = "langid"

    def marks(self, options):
        return [("lang_score", "min_score", build_config(self.stage, options).min_score)]

    def verdict(self, options, changed, columns):
        self._only(changed, {"keep", "min_score"}, "a different model gives other scores")
        _need(columns, ["lang", "lang_score"], "langid's options")
        stage = get_stage_class(self.stage)(build_config(self.stage, options))

        def decide(table: pa.Table) -> pa.Array:
            lang, score = table["lang"].combine_chunks(), table["lang_score"].combine_chunks()
            return reasons_where(pc.is_null(score), EMPTY_TEXT,
                                 otherwise=stage._verdict(lang, score))
        return Verdict(["lang", "lang_score"], decide)


class Classify(Family):
    """`classify` writes its score column (`column`, default `score`) on every document it
    sees, in both modes; a threshold rejects scores below it, null scores are empty texts.
    Labels (`keep_labels`, multi-label heads) are not evaluated."""

    stage = "classify"

    def marks(self, options):
        config = build_config(self.stage, options)
        if config.threshold is None or config.keep_labels:
            return []
        return [(config.column, "threshold", config.threshold)]

    def verdict(self, options, changed, columns):
        self._only(changed, {"threshold", "mode"}, "only the threshold is a cut on the score")
        config = build_config(self.stage, options | {"mode": "filter"})
        column = config.column
        if config.keep_labels or column not in columns:
            raise CannotEvaluate(f"classify ({column}): what-if evaluates a threshold on one "
                                 f"score column; this run filters by labels")
        annotate = ("mode",) in changed and options.get("mode") == "annotate"
        fasttext = config.engine == "fasttext"

        def decide(table: pa.Table) -> pa.Array:
            if annotate:
                return pa.nulls(table.num_rows, pa.string())
            score = table[column].combine_chunks()
            below = None
            if config.threshold is not None:
                # shown as the engine prints it: fastText rounds to 3 decimals, the
                # transformers engine keeps reason()'s 4 significant digits
                shown = pc.round(score, 3) if fasttext else pa.array(
                    [None if s is None else format_value(s) for s in score.to_pylist()])
                below = reasons_where(pc.less(score, config.threshold), "classify", column,
                                      shown)
            return reasons_where(pc.is_null(score), EMPTY_TEXT, otherwise=below)
        return Verdict([column], decide)


class LengthFilter(Family):
    """`length_filter` writes `n_words` on every document it sees; characters are not
    written, so a spec with character bounds cannot be evaluated."""

    stage = "length_filter"

    def marks(self, options):
        config = build_config(self.stage, options)
        return [("n_words", name, value) for name, value in
                (("min_words", config.min_words), ("max_words", config.max_words))
                if value is not None]

    def verdict(self, options, changed, columns):
        self._only(changed, {"min_words", "max_words"}, "characters are not written")
        config = build_config(self.stage, options)
        if config.min_chars is not None or config.max_chars is not None:
            raise CannotEvaluate("length_filter also bounds characters (min_chars/max_chars), "
                                 "which it does not write")
        _need(columns, ["n_words"], "length_filter's word bounds")

        def decide(table: pa.Table) -> pa.Array:
            words = table["n_words"].combine_chunks()
            reasons = pa.nulls(table.num_rows, pa.string())
            for bound, code, fails in ((config.min_words, "too_short", pc.less),
                                       (config.max_words, "too_long", pc.greater)):
                if bound is not None:  # the first failing bound names the reason
                    failed = pc.and_(fails(words, bound), pc.is_null(reasons))
                    reasons = reasons_where(failed, code, "words", words, otherwise=reasons)
            return reasons
        return Verdict(["n_words"], decide)


class Annotate(Family):
    """`annotate` writes its answer columns and `annotate_error` on every sampled document;
    which documents were sampled follows from their ids. Its own verdict decides."""

    stage = "annotate"

    def marks(self, options):
        from stages.annotate import column_prefix, threshold_field
        config = build_config(self.stage, options)
        if config.threshold is None:
            return []
        return [(f"{column_prefix(config)}_{threshold_field(config)}", "threshold",
                 config.threshold)]

    def verdict(self, options, changed, columns):
        from stages._annotate.selection import in_sample
        from stages.annotate import ERROR_COLUMN, column_prefix, threshold_field
        self._only(changed, {"threshold", "threshold_field", "reject_errors"},
                   "it changes what the model is asked or who is asked")
        stage = get_stage_class(self.stage)(build_config(self.stage, options))
        config = stage.config
        score = f"{column_prefix(config)}_{threshold_field(config)}"
        _need(columns, ["id", score, ERROR_COLUMN], "annotate's threshold")

        def decide(table: pa.Table) -> pa.Array:
            sampled = in_sample(table["id"].to_pylist(), config.sample, config.sample_seed)
            reasons = stage.verdict(sampled, table[score].to_pylist(),
                                    table[ERROR_COLUMN].to_pylist())
            return reasons if reasons is not None else pa.nulls(table.num_rows, pa.string())
        return Verdict(["id", score, ERROR_COLUMN], decide)


FAMILIES: dict[str, Family] = {f.stage: f for f in (Quality(), LangId(), Classify(),
                                                    LengthFilter(), Annotate())}
