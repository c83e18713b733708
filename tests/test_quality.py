"""quality: every check at its published default, on texts just inside and just outside it.

Each threshold test switches the rule's other checks off, so the text under test can only
fail the one check it is about. Fractions of characters are built from words of a fixed
length so that the value on each side of the threshold is known exactly.
"""

from __future__ import annotations

import random
from collections import Counter
from fractions import Fraction
from math import ceil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pydantic import ValidationError

from pipeline.runner import run_job
from pipeline.spec import load_spec
from stages._quality import Document
from stages._quality.c4 import C4
from stages._quality.fineweb import FineWeb
from stages._quality.gopher_quality import GopherQuality
from stages._quality.gopher_repetition import GopherRepetition
from stages._quality.ngrams import repetition
from stages.quality import Quality, QualityConfig
from tests.conftest import assert_accounting, write_jsonl, write_spec

ARTICLE = """Harbour town opens its new library

The new public library in the harbour town opened on Saturday after three years of building work.
More than two thousand people visited during the first weekend, according to the council.
The building stands on the site of an old fish market and keeps part of its brick facade.
Architects added a reading room with large windows that look out over the bay and the ferry pier.
Children can borrow books, play board games and join a weekly storytelling hour in the basement.
The council paid for most of the project, while a local foundation donated the furniture.
Librarians say they expect students to use the quiet study rooms during the exam season.
A small cafe on the ground floor sells coffee, soup and cakes baked by a bakery nearby.
Opening hours will be longer in winter, when fewer tourists visit and evenings are dark.
Residents who want to volunteer can sign up at the front desk or on the council website."""

PROSE_WORDS = ("the old harbour town wakes early in spring when the fishing boats return with "
               "the morning catch and the market stalls open along the quay while gulls circle "
               "above the church tower and children walk to school past the bakery where fresh "
               "bread cools in the window and the baker greets every neighbour by name before "
               "the ferry leaves for the islands across the bay").split()

GERMAN = ("Die neue Bibliothek in der Stadt wurde am Samstag eröffnet. Mehr als zweitausend "
          "Menschen kamen am ersten Wochenende, und viele Kinder liehen sich Bücher aus. Das "
          "Gebäude steht auf dem Gelände eines alten Marktes und hat einen großen Lesesaal mit "
          "Blick auf den Hafen. Die Stadt hat den größten Teil der Kosten übernommen, eine "
          "Stiftung zahlte die Möbel. Im Winter ist die Bibliothek länger geöffnet, weil dann "
          "weniger Touristen kommen und die Abende dunkel sind.")


def prose(words: int) -> str:
    return " ".join((PROSE_WORDS * (words // len(PROSE_WORDS) + 1))[:words]) + "."


def pseudo_words(count: int, start: int = 0) -> list[str]:
    """Distinct six-letter words, so a text's length in characters is known exactly."""
    letters = "abcdefghijklmnopqrstuvwxyz"
    return ["".join(letters[(i // 26 ** k) % 26] for k in range(6))
            for i in range(start + 1000, start + 1000 + count)]


def only(rule_cls, field: str, **params):
    """`rule_cls` with every check switched off except `field`, which keeps its default."""
    rule = rule_cls()
    off = {c.field: (False if c.kind == "flag" else None) for c in rule.checks
           if c.field != field}
    return rule_cls(rule_cls.config_model(**off, **params))


def verdict(rule, text: str, lang: str = "en"):
    values = rule.measure(Document(text, lang))
    return rule.failure(values), values


# -- gopher_quality ----------------------------------------------------------------------------
def test_gopher_quality_word_count_bounds():
    low = only(GopherQuality, "min_words")
    assert verdict(low, prose(50))[0] is None
    assert verdict(low, prose(49))[0] == "gopher_quality:words=49"
    high = only(GopherQuality, "max_words")
    assert verdict(high, " ".join(["river"] * 100_000))[0] is None
    assert verdict(high, " ".join(["river"] * 100_001))[0] == "gopher_quality:words=100001"


def test_gopher_quality_mean_word_length_bounds():
    low = only(GopherQuality, "min_mean_word_len")
    # "to" (2) and "with" (4) in equal numbers average exactly 3 characters
    assert verdict(low, " ".join(["to with"] * 30))[0] is None
    reason, values = verdict(low, " ".join(["to with"] * 30 + ["to"]))
    assert reason == "gopher_quality:mean_word_len=2.984"
    high = only(GopherQuality, "max_mean_word_len")
    # 2 stop words (6 chars) + x words of 11 + (48 - x) of 10 chars: mean = (486 + x) / 50
    eleven, ten = "maintenance", "atmosphere"
    assert verdict(high, " ".join(["the", "and"] + [eleven] * 14 + [ten] * 34))[0] is None
    assert verdict(high, " ".join(["the", "and"] + [eleven] * 15 + [ten] * 33))[0] == \
        "gopher_quality:mean_word_len=10.02"


def test_gopher_quality_hash_and_ellipsis_per_word():
    words = prose(60).split()
    hashes = only(GopherQuality, "max_hash_ratio")
    tagged = lambda k: " ".join(("#" + w if i < k else w) for i, w in enumerate(words))
    assert verdict(hashes, tagged(6))[0] is None  # 6 / 60 = 0.1
    assert verdict(hashes, tagged(7))[0] == "gopher_quality:hash_ratio=0.1167"
    dots = only(GopherQuality, "max_ellipsis_ratio")
    trailed = lambda k: " ".join((w + "..." if i < k else w) for i, w in enumerate(words))
    assert verdict(dots, trailed(6))[0] is None
    assert verdict(dots, trailed(7))[0] == "gopher_quality:ellipsis_ratio=0.1167"


def test_gopher_quality_bullet_and_ellipsis_lines():
    lines = [" ".join(PROSE_WORDS[i:i + 6]) for i in range(20)]
    bullets = only(GopherQuality, "max_bullet_line_frac")
    listed = lambda k: "\n".join(("• " + line if i < k else line) for i, line in enumerate(lines))
    assert verdict(bullets, listed(18))[0] is None  # 18 / 20 = 0.9
    assert verdict(bullets, listed(19))[0] == "gopher_quality:bullet_line_frac=0.95"
    ellipses = only(GopherQuality, "max_ellipsis_line_frac")
    cut = lambda k: "\n".join((line + " ..." if i < k else line + ".")
                              for i, line in enumerate(lines))
    assert verdict(ellipses, cut(6))[0] is None  # 6 / 20 = 0.3
    assert verdict(ellipses, cut(7))[0] == "gopher_quality:ellipsis_line_frac=0.35"


def test_gopher_quality_alphabetic_tokens_count_punctuation_with_their_word():
    check = only(GopherQuality, "min_alpha_token_frac")
    words = prose(100).split()
    numbered = lambda k: " ".join(("1999" if i < k else w) for i, w in enumerate(words))
    assert verdict(check, numbered(20))[0] is None  # 80 of 100 tokens hold a letter
    assert verdict(check, numbered(21))[0] == "gopher_quality:alpha_token_frac=0.79"
    # "Hello," and "end." are words with punctuation, not words without letters
    assert verdict(check, "Hello, world. This is the end.")[1]["alpha_token_frac"] == 1.0


def test_gopher_quality_stop_words_follow_the_document_language():
    check = only(GopherQuality, "min_stop_words")
    two = "Rivers flow to the sea, carrying sand plus stones downhill past villages."
    assert verdict(check, two)[0] is None
    assert verdict(check, two.replace(" to", ""))[0] == "gopher_quality:stop_words=1"
    assert verdict(check, GERMAN, "de")[0] is None
    assert verdict(check, GERMAN, "en")[0] == "gopher_quality:stop_words=0"
    assert verdict(check, GERMAN, "xx")[1]["stop_words"] is None  # no list: not judged


def test_gopher_quality_skips_word_counts_in_scripts_without_spaces():
    chinese = "新图书馆周六开放了。我们的城市有了一个很大的阅读室，孩子们也可以在这里借书。"
    reason, values = verdict(GopherQuality(), chinese, "zh")
    assert reason is None
    assert values.get("words") is None and values.get("mean_word_len") is None
    assert values["stop_words"] >= 2
    assert verdict(GopherQuality(), chinese, "en")[0] == "gopher_quality:words=3"


# -- gopher_repetition ---------------------------------------------------------------------------
def test_gopher_repetition_duplicate_lines_and_paragraphs_by_count():
    unique = [" ".join(PROSE_WORDS[i:i + 8]) for i in range(0, 48, 8)]
    lines = only(GopherRepetition, "max_dup_line_frac")
    # 10 lines, 3 of them repeating an earlier one: 0.3
    assert verdict(lines, "\n".join(unique + ["Share this story."] * 4))[0] is None
    assert verdict(lines, "\n".join(unique[:5] + ["Share this story."] * 5))[0] == \
        "gopher_repetition:dup_line_frac=0.4"
    paras = only(GopherRepetition, "max_dup_para_frac")
    assert verdict(paras, "\n\n".join(unique + ["Read more."] * 4))[0] is None
    assert verdict(paras, "\n\n".join(unique[:5] + ["Read more."] * 5))[0] == \
        "gopher_repetition:dup_para_frac=0.4"


@pytest.mark.parametrize("separator, field", [("\n", "max_dup_line_char_frac"),
                                               ("\n\n", "max_dup_para_char_frac")])
def test_gopher_repetition_duplicate_line_and_paragraph_characters(separator, field):
    rule = only(GopherRepetition, field)
    lines = [" ".join(pseudo_words(7, start=100 * i)) + "." for i in range(12)]  # 50 chars each
    # two copies of one 50-character line: 100 / (50 n + len(separator) (n - 1)) characters
    passing = lines[:8] + [lines[0]] * 2
    failing = lines[:7] + [lines[0]] * 2
    reason, values = verdict(rule, separator.join(passing))
    measure = field[4:]
    assert reason is None and 0.19 < values[measure] <= 0.2
    reason, values = verdict(rule, separator.join(failing))
    assert values[measure] > 0.2 and reason.startswith(f"gopher_repetition:{measure}=0.2")


@pytest.mark.parametrize("n", [2, 3, 4])
def test_gopher_repetition_top_ngram_fraction(n):
    field = f"max_top_{n}gram_char_frac"
    rule = only(GopherRepetition, field)
    limit = Fraction(str(getattr(GopherRepetition.config_model(), field)))
    gram = " ".join(pseudo_words(n, start=50_000))
    copies = 8
    gram_chars = copies * (7 * n - 1)
    # words are 6 letters + 1 space, so a text of W words has 7 W - 1 characters
    fewest_words = ceil((gram_chars / limit + 1) / 7)
    for words, keeps in ((fewest_words, True), (fewest_words - 1, False)):
        filler = pseudo_words(words - copies * n)
        chunks = [filler[i::copies] for i in range(copies)]
        text = " ".join(" ".join([gram] + chunk) for chunk in chunks)
        assert len(text.split()) == words
        reason, values = verdict(rule, text)
        assert values[f"top_{n}gram_char_frac"] == pytest.approx(gram_chars / (7 * words - 1))
        assert (reason is None) == keeps, (words, values)


@pytest.mark.parametrize("n", [5, 6, 7, 8, 9, 10])
def test_gopher_repetition_duplicate_ngram_fraction(n):
    field = f"max_dup_{n}gram_char_frac"
    rule = only(GopherRepetition, field)
    limit = Fraction(str(getattr(GopherRepetition.config_model(), field)))
    passage = pseudo_words(12, start=90_000)  # repeated once, so every order 5..10 sees it
    repeated_chars = 7 * len(passage) - 1
    fewest_words = ceil((repeated_chars / limit + 1) / 7)
    for words, keeps in ((fewest_words, True), (fewest_words - 1, False)):
        filler = pseudo_words(words - 2 * len(passage))
        half = len(filler) // 2
        text = " ".join(passage + filler[:half] + passage + filler[half:])
        reason, values = verdict(rule, text)
        assert values[f"dup_{n}gram_char_frac"] == pytest.approx(
            repeated_chars / (7 * words - 1))
        assert (reason is None) == keeps, (words, values)
        if not keeps:
            assert reason.startswith(f"gopher_repetition:dup_{n}gram_char_frac=")


def test_ngram_measures_match_a_direct_count():
    """The vectorised n-gram code against a plain Python count, on random word streams."""
    rng = random.Random(7)
    vocab = "a bb ccc dddd the of river bank x".split()
    for _ in range(150):
        words = [rng.choice(vocab[:rng.randint(2, len(vocab))]) for _ in range(rng.randint(0, 50))]
        if len(words) > 10 and rng.random() < 0.5:
            k = rng.randint(0, len(words) - 8)
            words = words[:k + 8] + words[k:k + 8] + words[k + 8:]
        chars = sum(map(len, words)) + len(words) + 3
        hashes = np.array([hash(w) for w in words], dtype=np.int64).view(np.uint64)
        lengths = np.array([len(w) for w in words], dtype=np.int64)
        got = repetition(hashes, lengths, chars, (2, 3, 4), (5, 6, 7, 8, 9, 10))
        for n, value in got.items():
            assert value == pytest.approx(_direct(words, n, chars, top=n < 5)), (n, words)


def _direct(words, n, chars, top):
    grams = [tuple(words[i:i + n]) for i in range(len(words) - n + 1)]
    if top:
        counts = Counter(grams)
        most = max(counts.values(), default=0)
        if most < 2:
            return 0.0
        return most * max(sum(map(len, g)) + n - 1 for g, c in counts.items() if c == most) / chars
    seen, covered = set(), [False] * len(words)
    for i, gram in enumerate(grams):
        if gram in seen:
            covered[i:i + n] = [True] * n
        seen.add(gram)
    runs = sum(1 for i, c in enumerate(covered) if c and (i == 0 or not covered[i - 1]))
    return (sum(len(w) for w, c in zip(words, covered) if c) + sum(covered) - runs) / chars


# -- c4 -----------------------------------------------------------------------------------------
SENTENCES = ["The ferry leaves the harbour at seven every morning.",
             "Farmers bring vegetables to the market on the quay.",
             "The library stays open late on Thursdays in winter.",
             "Students use the reading room to prepare for exams.",
             "A small bakery sells bread and cakes near the church.",
             "Tourists walk along the coast path to the lighthouse."]


def test_c4_counts_sentences_only_in_the_lines_it_would_keep():
    rule = only(C4, "min_sentences")
    noise = ["Please enable JavaScript to see the comments.",
             "We use cookies; read our privacy policy.",
             "Home | News | Contact",
             "Read more",
             "Short line.",
             "Continue reading ..."]
    assert verdict(rule, "\n".join(SENTENCES[:5] + noise))[0] is None
    reason, values = verdict(rule, "\n".join(SENTENCES[:4] + noise))
    assert reason == "c4:sentences=4"
    # several sentences on one line count one by one; a citation mark does not hide the stop
    assert verdict(rule, " ".join(SENTENCES[:3]) + "\n" + SENTENCES[3] + "[1]\n"
                   + SENTENCES[4])[1]["sentences"] == 5


def test_c4_rejects_lorem_ipsum_and_curly_brackets_anywhere():
    text = "\n".join(SENTENCES)
    lorem = only(C4, "lorem_ipsum")
    assert verdict(lorem, text)[0] is None
    assert verdict(lorem, text + "\nLorem ipsum dolor sit amet.")[0] == "c4:lorem_ipsum"
    curly = only(C4, "curly_bracket")
    assert verdict(curly, text)[0] is None
    assert verdict(curly, text + "\nfunction f() { return 1; }")[0] == "c4:curly_bracket"


# -- fineweb ------------------------------------------------------------------------------------
def _lines(count: int, words: int = 8, start: int = 0) -> list[str]:
    return [" ".join(pseudo_words(words, start=start + 100 * i)) for i in range(count)]


def test_fineweb_line_punctuation_fraction():
    rule = only(FineWeb, "min_line_punct_frac")
    lines = _lines(100)
    ended = lambda k: "\n".join((line + "." if i < k else line) for i, line in enumerate(lines))
    assert verdict(rule, ended(13))[0] is None
    assert verdict(rule, ended(11))[0] == "fineweb:line_punct_frac=0.11"


def test_fineweb_short_line_fraction():
    rule = only(FineWeb, "max_short_line_frac")
    long_lines, short_lines = _lines(50, words=8), _lines(100, words=2, start=10_000)
    assert all(len(line) > 30 for line in long_lines)
    assert all(len(line) <= 30 for line in short_lines)
    assert verdict(rule, "\n".join(short_lines[:66] + long_lines[:34]))[0] is None
    assert verdict(rule, "\n".join(short_lines[:68] + long_lines[:32]))[0] == \
        "fineweb:short_line_frac=0.68"


def test_fineweb_characters_in_repeated_lines():
    rule = only(FineWeb, "max_char_dup_frac")
    lines = _lines(40)  # 40 lines of 55 characters: 2,200 characters besides newlines
    assert all(len(line) == 55 for line in lines)
    # a line of L characters twice: L / (2200 + 2 L), at most 0.01 up to L = 22
    reason, values = verdict(rule, "\n".join(lines + ["Share this page today."] * 2))
    assert reason is None and values["char_dup_frac"] == pytest.approx(22 / 2244)
    reason, values = verdict(rule, "\n".join(lines + ["Share this page today!!"] * 2))
    assert reason == "fineweb:char_dup_frac=0.01024"


def test_fineweb_newlines_per_word():
    rule = only(FineWeb, "max_newline_ratio")
    words = pseudo_words(100)
    split_into = lambda k: "\n".join(" ".join(words[i::k]) for i in range(k))
    assert verdict(rule, split_into(30))[0] is None  # 29 newlines / 100 words
    assert verdict(rule, split_into(32))[0] == "fineweb:newline_ratio=0.31"


# -- the stage --------------------------------------------------------------------------------
def test_good_article_passes_every_rule_and_junk_fails_with_rule_and_value():
    stage = Quality(QualityConfig(rules=["gopher", "c4", "fineweb"]))
    menu = "\n".join(["Home", "News", "Sport", "Weather", "Contact", "Login"] * 5)
    out = stage.process(pa.table({"text": [ARTICLE, menu, "", "   \n "]}))
    reasons = out.reasons.to_pylist()
    assert reasons[0] is None
    assert reasons[1].startswith("gopher_quality:words=")
    assert reasons[2:] == ["empty_text", "empty_text"]


def test_language_column_drives_stop_words():
    stage = Quality(QualityConfig(rules=["gopher_quality"]))
    table = pa.table({"text": [GERMAN, GERMAN], "lang": ["de", "en"]})
    assert stage.process(table).reasons.to_pylist() == [None, "gopher_quality:stop_words=0"]
    # no lang column: default_lang decides
    assert Quality(QualityConfig(rules=["gopher_quality"], default_lang="de")).process(
        pa.table({"text": [GERMAN]})).reasons is None  # None: every row kept


def test_annotate_mode_writes_measures_and_keeps_everything():
    stage = Quality(QualityConfig(rules=["c4", "fineweb"], mode="annotate"))
    assert stage.produces() == ("quality_lorem_ipsum", "quality_curly_bracket",
                                "quality_sentences", "quality_line_punct_frac",
                                "quality_short_line_frac", "quality_char_dup_frac",
                                "quality_newline_ratio")
    out = stage.process(pa.table({"text": [ARTICLE, "Lorem ipsum {x}", ""]}))
    assert out.reasons is None
    table = out.table
    assert table["quality_sentences"].to_pylist() == [10, 0, None]
    assert table["quality_lorem_ipsum"].to_pylist() == [False, True, None]
    assert table["quality_line_punct_frac"][0].as_py() == pytest.approx(10 / 11)


def test_rule_names_are_checked_and_gopher_means_both_gopher_rules():
    assert QualityConfig(rules=["gopher", "c4"]).rules == ["gopher_quality",
                                                           "gopher_repetition", "c4"]
    with pytest.raises(ValidationError, match="unknown rule 'c5'"):
        QualityConfig(rules=["c5"])
    with pytest.raises(ValidationError, match="max_dup_line_frc"):
        QualityConfig(gopher_repetition={"max_dup_line_frc": 0.2})


def test_thresholds_are_configurable_and_null_switches_a_check_off():
    text = prose(40)
    assert Quality(QualityConfig(rules=["gopher_quality"])).judge(text, "en") == \
        "gopher_quality:words=40"
    relaxed = QualityConfig(rules=["gopher_quality"], gopher_quality={"min_words": 40})
    assert Quality(relaxed).judge(text, "en") is None
    off = QualityConfig(rules=["gopher_quality"], gopher_quality={"min_words": None})
    assert Quality(off).judge(text, "en") is None


def test_quality_stage_through_the_runner_accounts_for_every_document(tmp_path, ray_cluster):
    menu = "\n".join(["Home", "News", "Sport", "Weather", "Contact", "Login"] * 5)
    spammy = "\n".join([ARTICLE.split("\n")[2]] * 12)
    rows = []
    for i in range(60):
        text = [ARTICLE, menu, spammy, "", ARTICLE + "\nLorem ipsum dolor sit amet."][i % 5]
        rows.append({"id": f"d{i}", "text": text})
    write_jsonl(tmp_path / "in" / "a.jsonl", rows[:30])
    write_jsonl(tmp_path / "in" / "b.jsonl", rows[30:])
    spec = write_spec(tmp_path / "job.yaml", """\
name: quality-test
input: {format: jsonl, paths: ["in/*.jsonl"]}
output: {path: out}
stages:
  - quality: {rules: [gopher, c4, fineweb]}
""")
    result = run_job(load_spec(spec), progress=False)
    out = tmp_path / "out"
    assert_accounting(out)
    kept = pq.read_table(out / "data")
    rejected = pq.read_table(out / "rejected")
    assert kept.num_rows == 12 and rejected.num_rows == 48
    assert set(kept["text"].to_pylist()) == {ARTICLE}
    reasons = Counter(r.split("=")[0] for r in rejected["reason"].to_pylist())
    assert reasons == {"gopher_quality:words": 12, "gopher_repetition:dup_line_frac": 12,
                       "empty_text": 12, "c4:lorem_ipsum": 12}
    assert set(rejected["stage"].to_pylist()) == {"quality"}
    assert [s["stage"] for s in result.stages] == ["read", "quality"]


def test_example_spec_validates():
    spec = load_spec(Path(__file__).resolve().parents[1] / "examples" / "langid_quality.yaml")
    assert [step.name for step in spec.steps] == ["langid", "quality"]
    assert spec.steps[1].stage.rules[0].config.min_words == 20
