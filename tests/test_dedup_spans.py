"""dedup_spans on the real runner: repeated paragraphs and sentence spans cut from every page
but the first, the rest of each text byte for byte; the sentence splitter; Bloom mode."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from pydantic import ValidationError

from pipeline.runner import run_job
from pipeline.spec import load_spec
from stages._dedup_spans.bloom import BloomFilter, bloom_shape, subfilter_of
from stages._dedup_spans.sentences import sentence_ranges
from stages._dedup_spans.spans import SpanRule, batch_hashes, cut, document_spans
from stages.dedup_spans import DedupSpansConfig
from tests.conftest import (assert_accounting, leave_phase_half_done, make_text, write_jsonl,
                            write_spec)

NAV = "Subscribe to our newsletter for weekly updates on river and forest news."
# three sentences, none ending in an abbreviation
FOOTER = ("Copyright 2026 Example News. All rights reserved worldwide. "
          "Reproduction without written permission is prohibited.")
SHORT = "Read more."  # under min_span_chars: never cut
PAGES = 50


def paragraph(page: int, k: int) -> str:
    """Four sentences found on this page only (its number is in each), 38 to 54 words."""
    return " ".join(f"{make_text(page * 4 + k * 2 + s, 7 + s + page % 5).capitalize()} "
                    f"{page}-{k}-{s}."
                    for s in range(4))


def body(page: int) -> str:
    return f"{paragraph(page, 0)}\n{paragraph(page, 1)}\n"


def paragraph_page(page: int) -> str:
    return f"{body(page)}{SHORT}\n{NAV}\n{FOOTER}"


def write_corpus(folder: Path, make_page, extra: list[dict] = ()) -> dict[str, str]:
    """PAGES pages dealt over three files, the smallest id (p000) not in the first file."""
    texts = {f"p{i:03d}": make_page(i) for i in range(PAGES)}
    files: dict[int, list[dict]] = {0: [], 1: [], 2: []}
    for n, (doc_id, text) in enumerate(reversed(list(texts.items()))):
        files[n % 3].append({"id": doc_id, "text": text})
    files[1].extend(extra)
    for part, rows in files.items():
        write_jsonl(folder / "in" / f"f{part}.jsonl", rows)
    return texts


def spec_for(folder: Path, out: str, options: str) -> Path:
    return write_spec(folder / f"{out}.yaml", f"""\
name: spans
input: {{format: jsonl, paths: ["in/*.jsonl"]}}
output: {{path: {out}}}
stages:
  - dedup_spans: {options}
""")


def outcome(out: Path) -> tuple[dict, dict]:
    """id -> (text, span_dup_chars) of kept rows; id -> (stage, reason) of rejected rows."""
    kept = {r["id"]: (r["text"], r["span_dup_chars"])
            for f in (out / "data").glob("*.parquet") for r in pq.read_table(f).to_pylist()}
    rejected = {r["id"]: (r["stage"], r["reason"])
                for f in (out / "rejected").glob("*.parquet")
                for r in pq.read_table(f).to_pylist()}
    return kept, rejected


def run(folder: Path, out: str, options: str, **kwargs) -> tuple[dict, dict]:
    run_job(load_spec(spec_for(folder, out, options)), progress=False, **kwargs)
    return outcome(folder / out)


# -- end to end --------------------------------------------------------------------------------
def test_planted_paragraphs_are_cut_from_all_pages_but_the_first(tmp_path, ray_cluster):
    only = {"id": "z-only", "text": f"{NAV}\n{FOOTER}\n"}  # nothing of its own
    texts = write_corpus(tmp_path, paragraph_page, [only])
    kept, rejected = run(tmp_path, "out", "{unit: paragraph}")
    assert kept["p000"] == (texts["p000"], 0)  # the first keeps every span
    for i in range(1, PAGES):
        # the two repeated lines go, the rest (the short line included) stays byte for byte
        assert kept[f"p{i:03d}"] == (f"{body(i)}{SHORT}\n", len(NAV) + 1 + len(FOOTER))
    assert rejected == {"z-only": ("dedup_spans", "span_dedup:left_words=0")}
    manifests = assert_accounting(tmp_path / "out")
    assert sum(m["stages"][-1]["in"] for m in manifests) == PAGES + 1
    counters = [m["stages"][-1]["counters"] for m in manifests if "counters" in m["stages"][-1]]
    assert sum(c["span_dup_docs"] for c in counters) == PAGES  # 49 pages and z-only
    stats = json.loads(next((tmp_path / "out" / "manifests").glob("global-*.json"))
                       .read_text())["stats"]
    assert stats["repeated_spans"] == 2 and stats["span_removals"] == 2 * PAGES


def test_short_spans_are_cut_only_when_min_span_chars_allows(tmp_path, ray_cluster):
    texts = write_corpus(tmp_path, paragraph_page)
    kept, _ = run(tmp_path, "out", "{unit: paragraph, min_span_chars: 5}")
    assert kept["p000"][0] == texts["p000"]
    assert all(kept[f"p{i:03d}"][0] == body(i) for i in range(1, PAGES))


def test_three_sentence_footer_is_cut_from_all_pages_but_the_first(tmp_path, ray_cluster):
    texts = write_corpus(tmp_path, lambda i: body(i) + FOOTER)
    kept, rejected = run(tmp_path, "out", "{unit: sentence_span, sentences: 3}")
    assert rejected == {}
    assert kept["p000"] == (texts["p000"], 0)
    for i in range(1, PAGES):
        assert kept[f"p{i:03d}"] == (body(i), len(FOOTER))


def test_documents_left_short_are_rejected_and_others_untouched(tmp_path, ray_cluster):
    write_corpus(tmp_path, paragraph_page)
    # pages keep 78 to 110 words: those with page % 5 < 2 fall below 90
    kept, rejected = run(tmp_path, "out", "{unit: paragraph, min_words: 90}")
    left = {i: len((body(i) + SHORT).split()) for i in range(1, PAGES)}
    assert set(rejected) == {f"p{i:03d}" for i, n in left.items() if n < 90}
    assert len(rejected) == 19  # 2 of every 5 pages, p000 aside
    for i, n in left.items():
        if n < 90:
            assert rejected[f"p{i:03d}"] == ("dedup_spans", f"span_dedup:left_words={n}")
    assert "p000" in kept  # too short or not, a page that lost nothing is not judged


@pytest.mark.parametrize("options", ["{unit: paragraph, partitions: 1}",
                                     "{unit: sentence_span, partitions: 1}",
                                     "{unit: paragraph, mode: bloom, expected_spans: 1000, "
                                     "partitions: 1}"])
def test_result_does_not_depend_on_partitions(tmp_path, ray_cluster, options):
    write_corpus(tmp_path, lambda i: paragraph_page(i) if i % 2 else body(i) + FOOTER)
    one = run(tmp_path, "one", options)
    assert one == run(tmp_path, "four", options.replace("partitions: 1", "partitions: 4"))
    assert one == run(tmp_path, "auto", options.replace(", partitions: 1", ""))
    assert any(chars for _, chars in one[0].values())


def test_bloom_mode_finds_the_planted_spans(tmp_path, ray_cluster):
    only = {"id": "z-only", "text": f"{NAV}\n{FOOTER}\n"}
    write_corpus(tmp_path, paragraph_page, [only])
    kept, rejected = run(tmp_path, "bloom", "{unit: paragraph, mode: bloom, "
                         "expected_spans: 2000, bloom_fp_rate: 0.0001}")
    first_read = "p049"  # the first line of the first file (write_corpus deals in reverse)
    assert kept[first_read] == (paragraph_page(49), 0)
    for doc_id, (text, chars) in kept.items():
        if doc_id != first_read:
            assert (text, chars) == (f"{body(int(doc_id[1:]))}{SHORT}\n",
                                     len(NAV) + 1 + len(FOOTER))
    assert len(kept) == PAGES and rejected == {"z-only": ("dedup_spans",
                                                          "span_dedup:left_words=0")}
    stats = json.loads(next((tmp_path / "bloom" / "manifests").glob("global-*.json"))
                       .read_text())["stats"]
    assert stats["mode"] == "bloom" and stats["span_removals"] == 2 * PAGES
    assert stats["false_positive_rate_reached"] < 1e-6


def test_bloom_mode_keeps_the_first_in_reading_order(tmp_path, ray_cluster):
    # p000 is not in the first file: the exact mode keeps its copy, Bloom the first read
    write_corpus(tmp_path, lambda i: body(i) + FOOTER)
    kept, _ = run(tmp_path, "bloom", "{unit: sentence_span, mode: bloom, expected_spans: 1000}")
    keepers = [doc_id for doc_id, (_, chars) in kept.items() if chars == 0]
    first_read = json.loads((tmp_path / "in" / "f0.jsonl").read_text().splitlines()[0])["id"]
    assert keepers == [first_read] != ["p000"]


def test_resume_inside_the_group_phase_gives_the_same_result(tmp_path, ray_cluster):
    write_corpus(tmp_path, paragraph_page, [{"id": "z-only", "text": f"{NAV}\n{FOOTER}"}])
    clean = run(tmp_path, "clean", "{unit: paragraph}")
    spec = load_spec(spec_for(tmp_path, "resumed", "{unit: paragraph, partitions: 3}"))
    run_job(spec, progress=False, keep_work=True)
    out = tmp_path / "resumed"
    # `spans` done, one `group` unit committed, nothing after it
    phases = leave_phase_half_done(out, "group")
    span_markers = {p.name: p.read_text() for p in (phases / "spans").glob("*.json")}
    assert len(span_markers) == 3
    run_job(spec, progress=False, keep_work=True)
    assert {p.name: p.read_text() for p in (phases / "spans").glob("*.json")} == span_markers
    assert outcome(out) == clean
    assert_accounting(out)


def test_worker_killed_inside_the_group_phase_job_completes_as_clean_run(
        tmp_path, ray_cluster, monkeypatch):
    from tests.test_chaos import HeldPhase, kill_when_held

    write_corpus(tmp_path, paragraph_page)
    clean = run(tmp_path, "clean", "{unit: paragraph, partitions: 3}")
    hold_file = tmp_path / "held"
    # the unit writes its decisions, then is killed before its result is committed
    monkeypatch.setattr("stages.dedup_spans.group_exact",
                        HeldPhase("stages._dedup_spans.phases", "group_exact", str(hold_file)))
    thread, killed = kill_when_held(hold_file)
    killed_run = run(tmp_path, "killed", "{unit: paragraph, partitions: 3}")
    thread.join(timeout=5)
    assert "pid" in killed, killed.get("error", "the job finished before a unit was held")
    assert killed_run == clean
    assert_accounting(tmp_path / "killed")


# -- config ------------------------------------------------------------------------------------
def test_config_refuses_bloom_without_size_and_sentences_with_paragraphs():
    with pytest.raises(ValidationError, match="expected_spans"):
        DedupSpansConfig(mode="bloom")
    with pytest.raises(ValidationError, match="sentence_span"):
        DedupSpansConfig(unit="paragraph", sentences=2)
    assert DedupSpansConfig(unit="sentence_span", sentences=2).sentences == 2


# -- sentence splitting ------------------------------------------------------------------------
def sentences(text: str) -> list[str]:
    return [text[a:b].strip() for a, b in sentence_ranges(text)]


@pytest.mark.parametrize("text, expected", [
    ("Dr. Smith paid $3.50 for it. Then he left! Did he? Yes.",
     ["Dr. Smith paid $3.50 for it.", "Then he left!", "Did he?", "Yes."]),
    ("It was approx. three p.m. when J. R. R. Tolkien reached the U.S. on Monday. Fine.",
     ["It was approx. three p.m. when J. R. R. Tolkien reached the U.S. on Monday.", "Fine."]),
    ("See Fig. 3 and e.g. Table 2 (vs. 1.5 in Vol. 2). Pi is 3.14159. It grew 2.5%.",
     ["See Fig. 3 and e.g. Table 2 (vs. 1.5 in Vol. 2).", "Pi is 3.14159.", "It grew 2.5%."]),
    ('He said "Stop." Then he left... and came back. End',
     ['He said "Stop."', "Then he left... and came back.", "End"]),
    ("这是第一句。这是第二句！第三句？", ["这是第一句。", "这是第二句！", "第三句？"]),
    ("今日は晴れです。明日は雨でしょう。", ["今日は晴れです。", "明日は雨でしょう。"]),
    ("यह पहला वाक्य है। यह दूसरा है। तीसरा॥ चौथा", ["यह पहला वाक्य है।", "यह दूसरा है।",
                                                   "तीसरा॥", "चौथा"]),
    ("هل أنت بخير؟ نعم. شكرا جزيلا", ["هل أنت بخير؟", "نعم.", "شكرا جزيلا"]),
    ("یہ پہلا جملہ ہے۔ یہ دوسرا ہے۔", ["یہ پہلا جملہ ہے۔", "یہ دوسرا ہے۔"]),
    ("Это первое предложение. Это второе? Да.", ["Это первое предложение.", "Это второе?",
                                                  "Да."]),
    ("Menu\nHome\n\nA line without a stop\nDr.\nNext", ["Menu", "Home", "A line without a stop",
                                                        "Dr.", "Next"]),
])
def test_sentence_splitting(text, expected):
    assert sentences(text) == expected


def test_sentence_ranges_cover_the_text_without_gaps():
    text = "  \nFirst one. Second one!\n\n  Third?  \n"
    ranges = sentence_ranges(text)
    assert ranges[0][0] == 0 and ranges[-1][1] == len(text)
    assert all(a[1] == b[0] for a, b in zip(ranges, ranges[1:]))
    assert sentence_ranges("   \n ") == []


def test_cut_leaves_everything_else_byte_for_byte():
    text = "Alpha one is here. Beta two is here. Gamma three is here. Delta four is here. Eps."
    spans = document_spans(text, SpanRule("sentence_span", 2, 10))
    # windows (alpha, beta) and (beta, gamma) overlap: beta is cut once
    left, removed = cut(text, spans, {spans.hashes[0], spans.hashes[1]})
    assert left == "Delta four is here. Eps." and removed == len(text) - len(left)
    assert cut(text, spans, set()) == (text, 0)
    # normalisation: case and whitespace do not matter, punctuation does
    same = document_spans("ALPHA  one is\there.\nBETA two is here. Xylophone.", SpanRule(
        "sentence_span", 2, 10))
    assert same.hashes[0] == spans.hashes[0]
    other = document_spans("Alpha one is here! Beta two is here. Xylophone.", SpanRule(
        "sentence_span", 2, 10))
    assert other.hashes[0] != spans.hashes[0]


def test_bloom_filter_in_batches_answers_as_one_at_a_time():
    shape = bloom_shape(5000, 0.01)
    hashes = np.random.default_rng(3).integers(0, 2**64, 6000, dtype=np.uint64)
    mine = hashes[subfilter_of(hashes) % 3 == 1]
    stream = np.concatenate([mine, mine[:100], mine[:50]])
    whole = BloomFilter(shape, 1, 3).seen_then_add(stream)
    single = BloomFilter(shape, 1, 3)
    assert list(whole) == [bool(single.seen_then_add(stream[i:i + 1])[0])
                           for i in range(len(stream))]
    assert whole[len(mine):].all()  # every repeat found
    assert whole[:len(mine)].mean() < 0.02  # and few false positives among the first


def test_spans_never_run_from_one_document_into_the_next():
    rule = SpanRule("sentence_span", 3, 10)
    two = ["First sentence here. Second sentence here.", "Third sentence here. Fourth one."]
    assert batch_hashes(two, rule)[0].size == 0
    three = "First sentence here. Second sentence here. Third sentence here."
    rows, hashes = batch_hashes([two[0], three, None, three], rule)
    assert rows.tolist() == [1, 3] and hashes[0] == hashes[1]
    assert hashes[0] == document_spans(three, rule).hashes[0]
