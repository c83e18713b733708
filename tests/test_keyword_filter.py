"""keyword_filter: whole-word, case-folded, Unicode-aware matching of words and phrases,
thresholds on distinct hits and density, the three modes, thousands of phrases against a
plain reference, accounting through the runner, and a 10 MB line."""

from __future__ import annotations

import random

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.runner import run_job
from pipeline.spec import SpecError, load_spec
from stages.keyword_filter import KeywordFilter, KeywordFilterConfig
from tests.conftest import WORDS, assert_accounting, write_jsonl, write_spec


def write_list(path, *lines):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


def run(texts, **config):
    out = KeywordFilter(KeywordFilterConfig(**config)).process(
        pa.table({"text": pa.array(texts, pa.string())}))
    reasons = out.reasons.to_pylist() if out.reasons is not None else [None] * len(texts)
    return reasons, out


# -- what matches -------------------------------------------------------------------------------
def test_whole_words_only_so_scunthorpe_passes(tmp_path):
    rude = write_list(tmp_path / "rude.txt", "cunt", "ass", "sex")
    reasons, out = run(["Scunthorpe United won at home.", "A class of passengers.",
                        "Middlesex and Essex.", "What an ass!", "SEX education"], lists=[rude])
    assert reasons == [None, None, None, "keyword_filter:rude=1", "keyword_filter:rude=1"]
    assert out.table["keyword_hits"].to_pylist() == [0, 0, 0, 1, 1]


def test_phrases_match_across_case_punctuation_and_line_breaks(tmp_path):
    hazard = write_list(tmp_path / "hazard.txt", "nerve agent", "Ricin  toxin",
                        "anthrax-spores")
    reasons, out = run(["A NERVE-agent was found.", "nerve\n\nagent", "the nerve of that agent",
                        "ricin toxin; Anthrax spores", "nerveagent", "a nerve agents list"],
                       lists=[hazard], mode="annotate")
    assert reasons == [None] * 6  # annotate keeps every document
    assert out.table["keyword_hits"].to_pylist() == [1, 1, 0, 2, 0, 0]
    assert out.table["keyword_lists"].to_pylist() == [["hazard"], ["hazard"], [],
                                                      ["hazard"], [], []]


def test_unicode_case_folding(tmp_path):
    words = write_list(tmp_path / "words.txt", "straße", "σοφός", "İstanbul", "ÉCOLE")
    reasons, out = run(["Die STRASSE ist lang", "ΣΟΦΌΣ άνθρωπος", "i̇stanbul'da",
                        "une école", "ecole sans accent", "Strasbourg"],
                       lists=[words], mode="annotate")
    assert out.table["keyword_hits"].to_pylist() == [1, 1, 1, 1, 0, 0]


def test_scripts_without_spaces_match_inside_words(tmp_path):
    drugs = write_list(tmp_path / "drugs.txt", "毒品", "ยาเสพติด", "heroin")
    reasons, _ = run(["他们在街上卖毒品。", "ปัญหายาเสพติดในเมือง", "heroine of the story",
                      "日本語の文章です"], lists=[drugs])
    assert reasons == ["keyword_filter:drugs=1", "keyword_filter:drugs=1", None, None]


# -- thresholds and modes ---------------------------------------------------------------------
def test_distinct_hits_and_density_thresholds(tmp_path):
    topic = write_list(tmp_path / "topic.txt", "alpha", "beta", "gamma")
    filler = " ".join(["word"] * 996)
    texts = ["alpha alpha alpha beta " + filler,   # 2 distinct, 4 hits per 1,000 words
             "alpha beta gamma " + filler,          # 3 distinct, 3 per 1,000
             "alpha " * 10]                         # 1 distinct, 1,000 per 1,000
    distinct, _ = run(texts, lists=[topic], min_distinct=2)
    assert distinct == ["keyword_filter:topic=2", "keyword_filter:topic=3", None]
    both, _ = run(texts, lists=[topic], min_distinct=2, min_density=3.5)
    assert both == ["keyword_filter:topic=2", None, None]
    density, _ = run(texts, lists=[topic], min_density=100)
    assert density == [None, None, "keyword_filter:topic=1"]


def test_per_list_thresholds_and_the_first_flagged_list_names_the_reason(tmp_path):
    strict = write_list(tmp_path / "a.txt", "virus", "toxin")
    loose = write_list(tmp_path / "b.txt", "virus")
    lists = [{"path": strict, "name": "bio", "min_distinct": 2}, loose]
    reasons, out = run(["a virus", "a virus and a toxin", "nothing here"], lists=lists)
    assert reasons == ["keyword_filter:b=1", "keyword_filter:bio=2", None]
    assert out.table["keyword_lists"].to_pylist() == [["b"], ["bio", "b"], []]
    assert out.counters == {"bio": 1, "b": 2}


def test_escalate_marks_candidates_and_keeps_everything(tmp_path):
    topic = write_list(tmp_path / "topic.txt", "pathogen", "culture medium")
    stage = KeywordFilter(KeywordFilterConfig(lists=[topic], mode="escalate", min_distinct=2))
    assert "keyword_candidate" in stage.produces()
    out = stage.process(pa.table({"text": ["the pathogen grew in culture medium",
                                           "a pathogen", None, ""]}))
    assert out.reasons is None
    assert out.table["keyword_candidate"].to_pylist() == [True, False, False, False]
    assert out.table["keyword_hits"].to_pylist() == [2, 1, 0, 0]
    assert "keyword_candidate" not in KeywordFilter(
        KeywordFilterConfig(lists=[topic])).produces()


def test_thousands_of_phrases_count_as_word_n_grams_do(tmp_path):
    rng = random.Random(5)
    vocabulary = [w + s for w in WORDS for s in ("", "s", "ing", "er")]
    phrases = {" ".join(rng.choice(vocabulary) for _ in range(rng.choice((1, 2, 3))))
               for _ in range(5000)}
    big = write_list(tmp_path / "big.txt", *sorted(phrases))
    texts = [" ".join(rng.choice(vocabulary) for _ in range(300)) for _ in range(30)]
    _, out = run(texts, lists=[big], mode="annotate")
    expected = []
    for text in texts:  # the reference: every run of 1-3 words looked up in the phrase set
        words = text.split()
        grams = {" ".join(words[i:i + n]) for n in (1, 2, 3) for i in range(len(words))}
        expected.append(len(grams & phrases))
    assert out.table["keyword_hits"].to_pylist() == expected
    assert min(expected) > 0


# -- configuration ------------------------------------------------------------------------------
def test_spec_errors_name_the_missing_list_and_its_line(tmp_path):
    write_jsonl(tmp_path / "a.jsonl", [{"text": "x"}])
    spec = write_spec(tmp_path / "job.yaml", """\
name: kw-test
input: {format: jsonl, paths: ["a.jsonl"]}
output: {path: out}
stages:
  - keyword_filter:
      lists: [topics/missing.txt]
""")
    with pytest.raises(SpecError, match=r"line 6.*keyword list not found: .*topics/missing"):
        load_spec(spec)


def test_list_names_must_differ(tmp_path):
    a = write_list(tmp_path / "x" / "topic.txt", "a")
    b = write_list(tmp_path / "y" / "topic.txt", "b")
    with pytest.raises(ValueError, match="list names must differ"):
        KeywordFilterConfig(lists=[a, b])
    KeywordFilterConfig(lists=[a, {"path": b, "name": "topic2"}])
    odd = write_list(tmp_path / "z" / "my list!.txt", "c")
    with pytest.raises(ValueError, match="list name 'my list!'"):
        KeywordFilterConfig(lists=[odd])


# -- through the runner -----------------------------------------------------------------------
def test_keyword_filter_through_the_runner_accounts_for_every_document(tmp_path, ray_cluster):
    write_list(tmp_path / "lists" / "weapons.txt", "# topic list", "nerve agent", "sarin")
    texts = ["Sarin is a nerve agent.", "Scunthorpe", "", None, "A quiet garden.",
             "SARIN"]
    write_jsonl(tmp_path / "in" / "a.jsonl", [{"id": f"d{i}", "text": t}
                                              for i, t in enumerate(texts)])
    spec = write_spec(tmp_path / "job.yaml", """\
name: keyword-filter
input: {format: jsonl, paths: ["in/*.jsonl"]}
output: {path: out}
stages:
  - keyword_filter: {lists: [lists/weapons.txt]}
""")
    run_job(load_spec(spec), progress=False)
    out = tmp_path / "out"
    kept = pq.read_table(out / "data")
    rejected = pq.read_table(out / "rejected").to_pylist()
    assert sorted(kept["id"].to_pylist()) == ["d1", "d2", "d4"]  # empty text is kept
    assert set(kept["keyword_hits"].to_pylist()) == {0}
    assert {r["id"]: (r["stage"], r["reason"]) for r in rejected} == {
        "d0": ("keyword_filter", "keyword_filter:weapons=2"),
        "d3": ("read", "missing_text"),  # the reader's, before any stage
        "d5": ("keyword_filter", "keyword_filter:weapons=1")}
    (manifest,) = assert_accounting(out)
    step = next(s for s in manifest["stages"] if s["stage"] == "keyword_filter")
    assert (step["in"], step["kept"], step["rejected"]) == (5, 3, 2)
    assert step["counters"] == {"weapons": 2}


# -- hostile input --------------------------------------------------------------------------
def test_a_ten_megabyte_line_is_judged(tmp_path):
    topic = write_list(tmp_path / "topic.txt", "needle in", "haystack", "毒品")
    words = ("hay stack " * 500_000)[:10_000_000]
    one_word = "x" * 10_000_000
    cjk = "草" * 3_000_000 + "毒品"
    reasons, out = run([words + " needle in a haystack", one_word, cjk], lists=[topic],
                       mode="annotate")
    assert out.table["keyword_hits"].to_pylist() == [2, 0, 1]
