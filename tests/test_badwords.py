"""The `badwords` stage on the bundled LDNOOBW lists: whole words (Scunthorpe passes),
multi-word and punctuated entries, substrings in Chinese, Japanese and Thai, the three modes,
keep_fraction, languages without a list, a real job after `langid`."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.runner import run_job
from pipeline.spec import SpecError, load_spec
from stages._badwords.lists import available, entries, list_name
from stages._badwords.matcher import Matcher
from stages.badwords import Badwords, BadwordsConfig
from tests.conftest import assert_accounting, write_jsonl, write_spec


def hits(texts, **config) -> list[int | None]:
    table = pa.table({"text": texts, "lang": [config.pop("lang", "en")] * len(texts)})
    out = Badwords(BadwordsConfig(mode="annotate", **config)).process(table)
    return out.table["badwords_hits"].to_pylist()


def test_the_lists_ship_with_their_license_and_source():
    assert {"en", "de", "zh", "ja", "th", "fil", "fr-CA-u-sd-caqc"} <= available()
    assert len(entries("en")) == 403
    import stages._badwords as package
    from importlib import resources
    folder = resources.files(package) / "lists"
    assert "Attribution 4.0 International" in (folder / "LICENSE").read_text()
    assert "LDNOOBW" in (folder / "SOURCE.md").read_text()


def test_whole_words_only_where_words_are_separated_by_spaces():
    assert hits(["Scunthorpe United won in Penistone.", "The assassin and the therapist "
                 "passed a classic cockpit in Sussex."]) == [0, 0]
    assert hits(["What an ass!", "ASS-hat", "(cunt)", "a penis, a Penis; PENIS."]) == \
        [1, 1, 1, 3]


def test_multi_word_entries_match_across_whitespace_but_not_in_part():
    assert hits(["he saw 2 girls 1 cup", "he saw 2 girls\n  1 cup", "he saw 2 girls",
                 "two girls one cup", "a blue waffle", "blue waffles"]) == [1, 1, 0, 1, 1, 0]


def test_punctuation_inside_an_entry_must_be_there_as_in_c4():
    assert hits(["the g-spot", "the g spot", "s&m", "S&M.", "S & M", "it's m",
                 "Nathan's M&M's"]) == [1, 0, 1, 1, 0, 0, 0]


def test_chinese_japanese_and_thai_entries_match_inside_text_without_spaces():
    assert hits(["他说他妈的太贵了", "这个可能性很大", "今天天气很好"], lang="zh") == [1, 0, 0]
    assert hits(["これはアナルの話です", "スマートフォンはsmartです"], lang="ja") == [1, 0]
    assert hits(["มึงไปไหนมา", "สวัสดีครับ"], lang="th") == [1, 0]


def test_latin_entries_of_cjk_lists_match_whole_words():
    # `3p` is in the Japanese list: the inside of "3pm" is no hit, the word is
    assert hits(["会議は3pmから", "3p の話"], lang="ja") == [0, 1]


def test_the_allow_list_defaults_to_datatroves_and_can_be_emptied():
    assert hits(["这个可能性很大"], lang="zh", allow=[]) == [1]
    assert hits(["smの話"], lang="ja") == [0]
    assert hits(["ass and anal"], allow=["ass"]) == [1]


def test_emoji_entries_match_as_they_are():
    assert hits(["so 🖕 to you", "so 🖐 to you"]) == [1, 0]


def test_c4_mode_rejects_any_hit_and_names_the_count():
    table = pa.table({"text": ["Scunthorpe", "ass ass ass", "", None, "fine"],
                      "lang": ["en"] * 5})
    out = Badwords(BadwordsConfig()).process(table)
    assert out.reasons.to_pylist() == [None, "badwords:hits=3", None, None, None]
    assert out.table["badwords_hits"].to_pylist() == [0, 3, None, None, 0]
    assert out.counters == {"no_list": 0, "hit": 1, "kept_by_fraction": 0}


def test_density_mode_counts_hits_per_thousand_words():
    clean = " ".join(["river"] * 997)
    table = pa.table({"text": [clean + " ass ass ass", clean + " ass", "ass"],
                      "lang": ["en"] * 3})
    out = Badwords(BadwordsConfig(mode="density", max_hits_per_1000_words=2)).process(table)
    assert out.reasons.to_pylist() == ["badwords:hits_per_1000_words=3", None,
                                       "badwords:hits_per_1000_words=1000"]


def test_density_counts_characters_where_there_are_no_spaces():
    text = "他妈的" + "好" * 997  # 1,000 characters, one hit
    table = pa.table({"text": [text], "lang": ["zh"]})
    out = Badwords(BadwordsConfig(mode="density", max_hits_per_1000_words=0.5)).process(table)
    assert out.reasons.to_pylist() == ["badwords:hits_per_1000_words=1"]


def test_languages_without_a_list_pass_and_are_counted():
    table = pa.table({"text": ["ass", "ass", "ass", "Arschloch"],
                      "lang": ["xx", None, "en", "de"]})
    out = Badwords(BadwordsConfig()).process(table)
    assert out.reasons.to_pylist() == [None, None, "badwords:hits=1", "badwords:hits=1"]
    assert out.table["badwords_hits"].to_pylist() == [None, None, 1, 1]
    assert out.counters["no_list"] == 2


def test_a_fixed_language_overrides_the_lang_column():
    table = pa.table({"text": ["ass", "Arschloch"], "lang": ["de", "en"]})
    out = Badwords(BadwordsConfig(language="en")).process(table)
    assert out.table["badwords_hits"].to_pylist() == [1, 0]
    assert Badwords(BadwordsConfig(language="en")).requires() == ("text",)
    assert Badwords(BadwordsConfig()).requires() == ("text", "lang")


def test_language_codes_map_to_list_names():
    assert list_name("eng") == "en" and list_name("tl") == "fil" and list_name("nb") == "no"
    assert list_name("fr-CA-u-sd-caqc", exact=True) == "fr-CA-u-sd-caqc"
    assert list_name("fr-CA-u-sd-caqc") == "fr"
    assert list_name("xx") is None and list_name(None) is None


def test_keep_fraction_keeps_a_stable_share_chosen_by_id():
    table = pa.table({"id": [f"doc-{i}" for i in range(2000)], "text": ["ass"] * 2000,
                      "lang": ["en"] * 2000})

    def kept(**config) -> set[str]:
        out = Badwords(BadwordsConfig(keep_fraction=0.3, **config)).process(table)
        assert out.counters["kept_by_fraction"] == sum(r is None for r in
                                                       out.reasons.to_pylist())
        return {i for i, r in zip(table["id"].to_pylist(), out.reasons.to_pylist()) if r is None}

    first = kept()
    assert 0.25 < len(first) / 2000 < 0.35
    assert kept() == first
    other = kept(seed=1)
    assert other != first and 0.25 < len(other) / 2000 < 0.35
    assert Badwords(BadwordsConfig(keep_fraction=0.3)).requires() == ("text", "lang", "id")


def test_config_errors():
    with pytest.raises(ValueError, match="no bad-word list for language 'xx'"):
        BadwordsConfig(language="xx")
    with pytest.raises(ValueError):
        BadwordsConfig(keep_fraction=1.5)


def test_matches_do_not_overlap_and_the_longest_wins():
    assert Matcher(["乳", "乳交", "巨乳"]).count("乳交巨乳乳") == 3  # 乳交, 巨乳, 乳
    assert Matcher(["ass", "ass hat"]).count("an ass hat, an ass") == 2
    assert Matcher(["ball", "ball gag"]).count("ball  gag") == 1
    assert Matcher([]).count("anything") == 0


def test_badwords_after_langid_through_the_runner(tmp_path, ray_cluster):
    english = "This is an ordinary page about the river, the bridge and the town library. "
    german = "Das ist eine gewöhnliche Seite über den Fluss, die Brücke und die Bibliothek. "
    rows = [{"id": "en-clean", "text": english * 3 + "Scunthorpe is a town."},
            {"id": "en-hit", "text": english * 3 + "What an ass, what an ass."},
            {"id": "de-hit", "text": german * 3 + "So ein Arschloch."},
            {"id": "de-clean", "text": german * 3},
            {"id": "sw", "text": "Habari ya asubuhi rafiki yangu, karibu nyumbani kwetu leo. "
                                 "Tunakula chakula cha jioni pamoja na familia yote. ass"}]
    write_jsonl(tmp_path / "in" / "a.jsonl", rows)
    spec = write_spec(tmp_path / "job.yaml", """\
name: badwords-job
input: {format: jsonl, paths: ["in/*.jsonl"]}
output: {path: out}
stages:
  - langid: {min_score: 0.0}
  - badwords: {}
""")
    run_job(load_spec(spec), progress=False)
    out = tmp_path / "out"
    (manifest,) = assert_accounting(out)
    rejected = {r["id"]: r["reason"] for r in pq.read_table(out / "rejected").to_pylist()}
    assert rejected == {"en-hit": "badwords:hits=2", "de-hit": "badwords:hits=1"}
    kept = {r["id"]: r for r in pq.read_table(out / "data").to_pylist()}
    assert kept["sw"]["lang"] == "sw" and kept["sw"]["badwords_hits"] is None
    step = next(s for s in manifest["stages"] if s["stage"] == "badwords")
    assert step["counters"] == {"no_list": 1, "hit": 2, "kept_by_fraction": 0}


def test_a_spec_without_lang_or_language_names_the_missing_column(tmp_path):
    write_jsonl(tmp_path / "in.jsonl", [{"text": "hello"}])
    spec = write_spec(tmp_path / "job.yaml", """\
name: bad
input: {format: jsonl, paths: [in.jsonl]}
output: {path: out}
stages:
  - badwords: {}
""")
    with pytest.raises(SpecError, match="lang"):
        load_spec(spec)
