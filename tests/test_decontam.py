"""The `decontam` stage: planted benchmark items under every variant, near misses, redaction,
the index built once and shared, and the report, on small self-written benchmarks."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest

from stages._decontam.report import decontam_report, main as report_main
from pipeline.runner import run_job
from pipeline.spec import SpecError, load_spec
from stages._decontam.ngrams import normalise, tokenize
from stages.decontam import Decontam, DecontamConfig
from tests.conftest import assert_accounting, make_text, write_jsonl, write_spec

ITEMS = [
    {"id": "q-river", "question": "A ferry crosses the river four times each morning and "
     "three times each evening. How many crossings does it make in a week?",
     "answer": "It makes 4 + 3 = 7 crossings a day, so 7 * 7 = 49 crossings in a week."},
    {"id": "q-bread", "question": "Mara bakes 12 loaves of bread on Monday and twice as many "
     "on Tuesday, then sells half of all the loaves at the market. How many are left?",
     "answer": "She bakes 12 + 24 = 36 loaves and sells 18, so 18 loaves are left."},
    {"id": "q-solar", "question": "A solar panel makes 250 watts for six hours a day. How many "
     "kilowatt hours does a roof of eight panels make in one day?",
     "answer": "Each panel makes 1.5 kWh, so eight panels make 12 kWh in one day."},
]
CODE = [{"task_id": "Toy/0", "prompt": 'def count_vowels(word: str) -> int:\n    """Return how '
         'many vowels the given word contains, ignoring case.\n    >>> count_vowels("Banana")\n'
         '    3\n    """\n',
         "canonical_solution": "    return sum(1 for letter in word.lower() if letter in "
                               "'aeiou')\n"}]


@pytest.fixture
def bench(tmp_path) -> Path:
    write_jsonl(tmp_path / "bench" / "toy_math.jsonl", ITEMS)
    write_jsonl(tmp_path / "bench" / "toy_code.jsonl", CODE)
    return tmp_path / "bench"


def make_stage(bench: Path, **config) -> Decontam:
    stage = Decontam(DecontamConfig(benchmarks=[
        str(bench / "toy_math.jsonl"),
        {"path": str(bench / "toy_code.jsonl"), "fields": ["prompt", "canonical_solution"]},
    ], **config))
    stage.setup()
    return stage


def run(stage: Decontam, texts: list[str | None]):
    out = stage.process(pa.table({"id": [str(i) for i in range(len(texts))], "text": texts}))
    reasons = out.reasons.to_pylist() if out.reasons is not None else [None] * len(texts)
    return out.table.to_pylist(), reasons


def host(seed: int) -> str:
    return "\n".join(make_text(seed * 10 + p, 40) + "." for p in range(4))


def planted(insert: str, seed: int = 1) -> str:
    text = host(seed)
    cut = text.index("\n", len(text) // 2)
    return f"{text[:cut]}\n{insert}\n{text[cut:]}"


ITEM = ITEMS[1]
VARIANTS = {
    "verbatim": f"{ITEM['question']} {ITEM['answer']}",
    "rewrapped": textwrap.fill(f"{ITEM['question']} {ITEM['answer']}", width=23),
    "recased": f"{ITEM['question']} {ITEM['answer']}".upper(),
    "repunctuated": ITEM["question"].replace(",", " --").replace(".", "!").replace("?", ";")
    .replace("Mara bakes", "\u201cMara\u201d bakes"),
    "template": f"Question: {ITEM['question']}\nAnswer: {ITEM['answer']}",
    "question_only": ITEM["question"],
    "answer_only_with_nbsp": ITEM["answer"].replace(" ", "\u00a0"),
}


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_planted_item_is_found_under_each_variant(bench, variant):
    stage = make_stage(bench)
    rows, reasons = run(stage, [planted(VARIANTS[variant]), host(2)])
    assert rows[0]["contamination"] == ["toy_math:q-bread"]
    assert rows[0]["contamination_ngrams"] >= 1
    assert reasons == ["contaminated:toy_math", None]
    assert rows[1]["contamination"] == [] and rows[1]["contamination_ngrams"] == 0


def test_code_item_is_found_after_reformatting(bench):
    stage = make_stage(bench)
    code = CODE[0]["prompt"].replace("\n    ", "\n  ").replace(": str", ":str") + \
        CODE[0]["canonical_solution"].replace(" for ", "  for ")
    rows, _ = run(stage, [planted(code)])
    assert rows[0]["contamination"] == ["toy_code:Toy/0"]


def test_near_miss_with_12_overlapping_tokens_is_not_flagged_at_13(bench):
    stage = make_stage(bench)
    words = ITEMS[0]["question"].split()
    twelve = " ".join(words[:12])               # 12 tokens of the item, then something else
    assert len(tokenize(normalise(pa.array([twelve]))).hashes) == 12
    rows, reasons = run(stage, [planted(f"{twelve} zebra {' '.join(words[13:24])}")])
    assert rows[0]["contamination"] == [] and reasons == [None]
    thirteen = " ".join(words[:13])
    rows, _ = run(stage, [planted(thirteen)])
    assert rows[0]["contamination"] == ["toy_math:q-river"]


def test_documents_never_join_across_batch_rows(bench):
    stage = make_stage(bench)
    words = ITEMS[0]["question"].split()
    rows, reasons = run(stage, [" ".join(words[:7]), " ".join(words[7:14]), None, ""])
    assert [r["contamination"] for r in rows] == [[], [], [], []]
    assert reasons == [None] * 4


def test_redact_keeps_the_rest_of_the_document(bench):
    stage = make_stage(bench, mode="redact", margin_chars=20, min_piece_chars=10)
    before, after = host(3), host(4)
    doc = f"{before}\n{ITEMS[2]['question']}\n{after}"
    rows, reasons = run(stage, [doc])
    assert reasons == [None]
    text = rows[0]["text"]
    assert "solar panel" not in text and "kilowatt" not in text
    assert text.startswith(before[:-40]) and text.endswith(after[40:])
    assert rows[0]["contamination"] == ["toy_math:q-solar"]  # the record of what was cut


def test_redact_drops_a_document_split_too_often(bench):
    stage = make_stage(bench, mode="redact", margin_chars=0, min_piece_chars=0, max_splits=2)
    pieces = [host(i) for i in range(5)]
    doc = "\n".join(p + "\n" + item["question"] for p, item in zip(pieces, ITEMS))
    rows, reasons = run(stage, [doc])
    assert reasons == ["contaminated:toy_math"]
    stage = make_stage(bench, mode="redact", margin_chars=0, min_piece_chars=0, max_splits=3)
    rows, reasons = run(stage, [doc])
    assert reasons == [None] and rows[0]["text"].count("\n\n") == 3


def test_redact_drops_a_document_with_nothing_left(bench):
    stage = make_stage(bench, mode="redact")
    rows, reasons = run(stage, [ITEMS[0]["question"] + " " + ITEMS[0]["answer"]])
    assert reasons == ["contaminated:toy_math"]


def test_min_ngrams_asks_for_more_evidence(bench):
    stage = make_stage(bench, min_ngrams=3)
    thirteen = " ".join(ITEMS[0]["question"].split()[:14])  # two 13-grams only
    rows, _ = run(stage, [planted(thirteen), planted(ITEMS[0]["question"])])
    assert rows[0]["contamination"] == [] and rows[1]["contamination"] == ["toy_math:q-river"]


def test_parquet_and_csv_benchmarks_with_templates_and_strip_patterns(tmp_path):
    pq.write_table(pa.table({"qid": ["p1"], "text": [
        "Question: " + ITEMS[0]["question"] + "\nAnswer:"]}), tmp_path / "b1.parquet")
    pcsv.write_csv(pa.table({"prompt": ["<<calc>> " + ITEMS[1]["answer"].replace(
        "12 + 24", "12 + <<12+24=36>>24")]}), tmp_path / "b2.csv")
    stage = Decontam(DecontamConfig(benchmarks=[
        {"path": str(tmp_path / "b1.parquet"), "id_field": "qid"},
        {"path": str(tmp_path / "b2.csv"), "name": "calc", "strip": [r"<<[^>]*>>"]}]))
    stage.setup()
    assert stage.index.benchmarks[0].name == "b1" and stage.index.benchmarks[0].items == 1
    # the page writes the sum without spaces; the benchmark's, once stripped, has them
    rows, _ = run(stage, [planted(ITEMS[0]["question"]),
                          planted(ITEMS[1]["answer"].replace("12 + 24 = 36", "12+24=36"))])
    assert rows[0]["contamination"] == ["b1:p1"]
    assert rows[1]["contamination"] == ["calc:0"]


def test_index_reports_size_and_short_texts(bench):
    stage = make_stage(bench)
    index = stage.index
    math = index.benchmarks[0]
    assert (math.name, math.items, math.texts) == ("toy_math", 3, 6)
    assert index.benchmarks[1].too_short == 1  # the 12-token solution cannot be found at n=13
    assert 8 <= index.bytes_per_ngram < 200
    assert "bytes/n-gram" in index.describe()


def test_bad_benchmark_config_fails_validation(tmp_path):
    with pytest.raises(ValueError, match="benchmark file not found"):
        DecontamConfig(benchmarks=[str(tmp_path / "missing.jsonl")])
    (tmp_path / "a.jsonl").write_text("{}\n")
    with pytest.raises(ValueError, match="names must differ"):
        DecontamConfig(benchmarks=[str(tmp_path / "a.jsonl"), {"path": str(tmp_path /
                                                                           "a.jsonl")}])
    with pytest.raises(ValueError, match="invalid regex"):
        DecontamConfig(benchmarks=[{"path": str(tmp_path / "a.jsonl"), "strip": ["(("]}])


def test_decontam_through_the_runner_drops_and_reports(tmp_path, bench, ray_cluster):
    docs = [{"id": f"d{i}", "text": host(i), "url": f"https://x.org/{i}"} for i in range(12)]
    docs[3]["text"] = planted(ITEMS[0]["question"], 3)
    docs[8]["text"] = planted(CODE[0]["prompt"] + ITEMS[2]["answer"], 8)
    write_jsonl(tmp_path / "in" / "a.jsonl", docs[:6])
    write_jsonl(tmp_path / "in" / "b.jsonl", docs[6:])
    spec = write_spec(tmp_path / "job.yaml", f"""\
name: decontam-job
input: {{format: jsonl, paths: ["in/*.jsonl"]}}
output: {{path: out}}
stages:
  - length_filter: {{min_words: 5}}
  - decontam:
      benchmarks: ["{bench / 'toy_math.jsonl'}", "{bench / 'toy_code.jsonl'}"]
""")
    run_job(load_spec(spec), progress=False)
    out = tmp_path / "out"
    assert_accounting(out)
    rejected = pq.read_table(out / "rejected").to_pylist()
    assert sorted((r["id"], r["reason"]) for r in rejected) == [
        ("d3", "contaminated:toy_math"), ("d8", "contaminated:toy_code,toy_math")]
    assert len(pq.read_table(out / "data")) == 10
    report = decontam_report(str(out))
    assert report["docs_checked"] == 12 and report["docs_hit"] == 2
    assert report["benchmarks"]["toy_math"]["items"]["q-river"]["ids"] == ["d3"]
    assert report["benchmarks"]["toy_code"]["items_hit"] == 1
    assert report_main([str(out)]) == 0


def test_spec_with_a_missing_benchmark_file_names_the_line(tmp_path):
    write_jsonl(tmp_path / "in.jsonl", [{"text": "hello"}])
    spec = write_spec(tmp_path / "job.yaml", """\
name: bad-bench
input: {format: jsonl, paths: ["in.jsonl"]}
output: {path: out}
stages:
  - decontam: {benchmarks: [/nonexistent/gsm8k.jsonl]}
""")
    with pytest.raises(SpecError, match="line 5: .*benchmark file not found"):
        load_spec(spec)


def test_tokens_hash_the_same_anywhere_in_a_long_document(bench):
    # documents longer than one hashing chunk (1 MiB) are hashed piecewise
    text = "alpha beta " * 220_000 + "alpha"
    tokens = tokenize(normalise(pa.array([text])))
    assert len(tokens.hashes) == 440_001 and len(set(tokens.hashes.tolist())) == 2
    stage = make_stage(bench)
    rows, _ = run(stage, [text + " " + ITEMS[0]["question"]])
    assert rows[0]["contamination"] == ["toy_math:q-river"]
