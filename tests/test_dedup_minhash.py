"""dedup_minhash: MinHash compatibility, LSH parameters, and the global stage on the real runner
(near-duplicates found, distinct documents kept, chains, determinism, resume, accounting)."""

from __future__ import annotations

import json
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from datasketch import MinHash
from datasketch.lsh import _optimal_param

from pipeline.runner import run_job
from pipeline.spec import SpecError, load_spec
from stages._dedup_minhash import minhash as mh
from tests.conftest import kill_tree, write_jsonl, write_spec

ROOT = Path(__file__).resolve().parents[1]
SYLLABLES = [c + v for c in "bcdfghjklmnpqrstvwz" for v in "aeiou"]


# -- building near-duplicates with a known Jaccard -------------------------------------------------
def words_of(rng: random.Random, count: int) -> list[str]:
    return ["".join(rng.choice(SYLLABLES) for _ in range(3)) for _ in range(count)]


def jaccard(a: list[str], b: list[str], n: int = 5) -> float:
    sa = {tuple(a[i:i + n]) for i in range(len(a) - n + 1)}
    sb = {tuple(b[i:i + n]) for i in range(len(b) - n + 1)}
    return len(sa & sb) / len(sa | sb)


def edited(words: list[str], target: float, rng: random.Random,
           avoid: set[int] = frozenset()) -> tuple[list[str], set[int]]:
    """Replace words at random positions (not in `avoid`) until the 5-gram Jaccard with the
    original first drops to `target` or below; returns the copy and the positions changed."""
    out, changed = list(words), set()
    free = [i for i in range(len(words)) if i not in avoid]
    rng.shuffle(free)
    while jaccard(words, out) > target:
        position = free.pop()
        out[position] = words_of(rng, 1)[0]
        changed.add(position)
    return out, changed


def corpus(folder: Path) -> dict[str, list[str]]:
    """Three files. a* are distinct; b0k is a ~0.9 copy of a0k; c1k a ~0.3 copy of a1k; d20
    is a20 in capitals with punctuation; e0..e5 form a chain of ~0.9 links; m-b ~ m-c ~ m-a
    (~0.88 each) but m-b !~ m-a (< 0.8); f1 == f2 are shorter than one shingle; g0, g1 are
    empty."""
    rng = random.Random(11)
    docs: dict[str, list[str]] = {}
    for k in range(30):
        docs[f"a{k:02d}"] = words_of(rng, rng.randint(150, 250))
    for k in range(10):
        docs[f"b{k:02d}"] = edited(docs[f"a{k:02d}"], 0.9, rng)[0]
        docs[f"c{k + 10:02d}"] = edited(docs[f"a{k + 10:02d}"], 0.3, rng)[0]
    chain = [words_of(rng, 200)]
    for _ in range(5):
        chain.append(edited(chain[-1], 0.9, rng)[0])
    for name, words in zip(["e5", "e3", "e1", "e0", "e2", "e4"], chain):
        docs[name] = words
    docs["m-b"] = words_of(rng, 220)
    docs["m-c"], changed = edited(docs["m-b"], 0.88, rng)
    docs["m-a"] = edited(docs["m-c"], 0.88, rng, avoid=changed)[0]
    texts = {name: " ".join(words) for name, words in docs.items()}
    texts["d20"] = ", ".join(docs["a20"]).upper() + "!"
    texts.update({"f1": "tiny note", "f2": "Tiny note.", "g0": "", "g1": ""})
    rows: dict[int, list[dict]] = {0: [], 1: [], 2: []}
    for i, (name, text) in enumerate(sorted(texts.items())):
        rows[(i * 7) % 3].append({"id": name, "text": text})
    for part, items in rows.items():
        write_jsonl(folder / "in" / f"p{part}.jsonl", items)
    return docs


def spec_for(folder: Path, out: str, options: str = "{verify: true}") -> Path:
    return write_spec(folder / f"{out}.yaml", f"""\
name: near-dups
input: {{format: jsonl, paths: ["in/*.jsonl"]}}
output: {{path: {out}}}
stages:
  - dedup_minhash: {options}
""")


def outcome(out: Path) -> tuple[dict[str, str | None], dict[str, tuple]]:
    """(kept id -> dup_cluster, rejected id -> (stage, reason, duplicate_of))."""
    kept = {}
    for f in (out / "data").glob("*.parquet"):
        table = pq.read_table(f)
        kept.update(zip(table["id"].to_pylist(), table["dup_cluster"].to_pylist()))
    rejected = {}
    for f in (out / "rejected").glob("*.parquet"):
        for row in pq.read_table(f).to_pylist():
            rejected[row["id"]] = (row["stage"], row["reason"], row.get("duplicate_of"))
    return dict(sorted(kept.items())), dict(sorted(rejected.items()))


@pytest.fixture(scope="module")
def clean(tmp_path_factory, ray_cluster):
    folder = tmp_path_factory.mktemp("minhash")
    docs = corpus(folder)
    run_job(load_spec(spec_for(folder, "clean")), progress=False)
    return folder, docs, outcome(folder / "clean")


# -- the stage on the runner -------------------------------------------------------------------
def test_planted_near_duplicates_rejected_and_distinct_documents_kept(clean):
    folder, docs, (kept, rejected) = clean
    near = {f"b{k:02d}": f"a{k:02d}" for k in range(10)}
    near.update({"d20": "a20", "f2": "f1", "m-b": "m-a", "m-c": "m-a",
                 **{e: "e0" for e in ("e1", "e2", "e3", "e4", "e5")}})
    assert rejected == {d: ("dedup_minhash", "near_duplicate", keeper)
                        for d, keeper in near.items()}
    assert all(jaccard(docs[d], docs[k]) >= 0.85 for d, k in near.items() if d[0] == "b")
    assert all(jaccard(docs[f"c{k}"], docs[f"a{k}"]) <= 0.3 for k in range(10, 20))
    distinct = [f"a{k:02d}" for k in range(30)] + [f"c{k}" for k in range(10, 20)]
    assert set(kept) == set(distinct) | {"e0", "f1", "g0", "g1", "m-a"}
    keepers = set(near.values())
    assert kept == {d: (d if d in keepers else None) for d in kept}  # dup_cluster
    for manifest in (folder / "clean" / "manifests").glob("part-*.json"):
        stages = json.loads(manifest.read_text())["stages"]
        assert [s["stage"] for s in stages] == ["read", "dedup_minhash"]
        assert all(s["in"] == s["kept"] + s["rejected"] for s in stages)
        assert stages[1]["in"] == stages[0]["kept"]
    assert len(kept) + len(rejected) == len(docs) + 5  # d20, f1, f2, g0, g1 beside docs
    summary = json.loads((folder / "clean" / "report" / "summary.json").read_text())
    stats = summary["global_stages"][0]["stats"]  # what plan() decided, kept for the report
    assert stats["rejected"] == len(near) and stats["bands"] * stats["rows"] <= 112


def test_chain_collapses_to_one_component_kept_by_smallest_id(clean):
    _, docs, (kept, rejected) = clean
    # m-b ~ m-c ~ m-a, while m-b and m-a are below the threshold: verify drops that pair
    # (if LSH proposed it), the chain still makes one component, kept by its smallest id.
    assert jaccard(docs["m-b"], docs["m-a"]) < 0.8 <= min(
        jaccard(docs["m-b"], docs["m-c"]), jaccard(docs["m-c"], docs["m-a"]))
    assert kept["m-a"] == "m-a"
    assert rejected["m-b"] == rejected["m-c"] == ("dedup_minhash", "near_duplicate", "m-a")
    # e0..e5: a path of five links, its smallest id in the middle.
    assert kept["e0"] == "e0" and all(rejected[f"e{k}"][2] == "e0" for k in range(1, 6))


def test_verify_removes_lsh_false_positives(tmp_path, ray_cluster):
    rng = random.Random(8)
    pairs = []
    for k in range(6):
        base = words_of(rng, 200)
        pairs.append((f"p{k}", base, f"q{k}", edited(base, 0.6, rng)[0]))
    write_jsonl(tmp_path / "in" / "p.jsonl", [{"id": i, "text": " ".join(w)} for p in pairs
                                              for i, w in (p[:2], p[2:])])
    # 28 bands of 4 rows: a pair at Jaccard 0.6 shares a bucket with probability 0.98.
    run_job(load_spec(spec_for(tmp_path, "lsh", "{bands: 28, rows: 4, verify: false}")),
            progress=False)
    run_job(load_spec(spec_for(tmp_path, "checked", "{bands: 28, rows: 4, verify: true}")),
            progress=False)
    assert len(outcome(tmp_path / "lsh")[1]) >= 5
    assert outcome(tmp_path / "checked")[1] == {}


def test_same_result_across_runs_and_partition_counts(clean):
    # The clean run used one partition; the resume tests below use 3 and 12.
    folder, _, expected = clean
    run_job(load_spec(spec_for(folder, "p7", "{verify: true, partitions: 7}")), progress=False)
    assert outcome(folder / "p7") == expected


def test_resume_inside_component_phase_gives_same_result(clean):
    folder, _, expected = clean
    spec = load_spec(spec_for(folder, "resumed", "{verify: true, partitions: 3}"))
    run_job(spec, progress=False, keep_work=True)
    out = folder / "resumed"
    phases = next((out / "_work" / "global").glob("*/*/_phases"))
    assert len(list(phases.glob("components-*"))) >= 3  # the chain needs more than one round
    # Leave what a kill during the first component phase leaves: earlier phases committed,
    # one unit of `components-00-large` committed, nothing after it.
    later = sorted(p for p in phases.iterdir() if p.name.startswith(("components", "labels",
                                                                      "members", "keepers")))
    for marker in sorted((phases / "components-00-large").glob("*.json"))[1:]:
        marker.unlink()
    for folder_ in later[1:]:
        shutil.rmtree(folder_)
    for name in ("data", "rejected", "manifests", "report"):
        shutil.rmtree(out / name)
    (phases.parent / "decisions.json").unlink()
    before = {p: p.read_text() for p in phases.glob("signatures/*.json")}
    run_job(spec, progress=False, keep_work=True)
    assert {p: p.read_text() for p in phases.glob("signatures/*.json")} == before
    assert outcome(out) == expected


def test_killed_run_resumes_in_component_phase(clean):
    folder, _, expected = clean
    # Twelve partitions make each component phase a dozen tasks, long enough to be killed in.
    spec_path = spec_for(folder, "killed", "{verify: true, partitions: 12}")
    proc = subprocess.Popen([sys.executable, "-m", "pipeline", "run", str(spec_path),
                             "--no-progress"], cwd=ROOT, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    phases = folder / "killed" / "_work" / "global"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not list(phases.glob("*/*/_phases/components-00-*/[!.]*")):
        time.sleep(0.01)
    kill_tree(proc)
    assert not (folder / "killed" / "manifests").exists(), "the kill must land in the phases"
    assert list(phases.glob("*/*/_phases/components-00-*/[!.]*.json"))
    run_job(load_spec(spec_path), progress=False)  # resumes what the killed process left
    assert outcome(folder / "killed") == expected


# -- configuration ---------------------------------------------------------------------------------
@pytest.mark.parametrize("options, message", [
    ("{bands: 10}", "give both bands and rows"),
    ("{bands: 12, rows: 10}", "bands x rows (12 x 10 = 120) exceeds num_perm (112)"),
    ("{num_perm: 64, bands: 9, rows: 8}", "exceeds num_perm (64)"),
    ("{threshold: 1.5}", "threshold"),
])
def test_bad_lsh_options_fail_before_work_with_line(tmp_path, options, message):
    write_jsonl(tmp_path / "in" / "p.jsonl", [{"text": "x"}])
    with pytest.raises(SpecError) as info:
        load_spec(spec_for(tmp_path, "out", options))
    assert "line 5" in str(info.value) and message in str(info.value)


def test_threshold_picks_datasketch_bands_and_rows():
    for threshold in (0.5, 0.7, 0.8, 0.9):
        for num_perm in (64, 112, 256):
            for weights in ((0.5, 0.5), (0.1, 0.9)):
                assert mh.optimal_bands_rows(threshold, num_perm, *weights) == \
                    _optimal_param(threshold, num_perm, *weights)


def test_default_verifies_with_fineweb_shape(tmp_path):
    # verify is on unless turned off: the LSH shape then favours recall (14 x 8 at 0.8)
    write_jsonl(tmp_path / "in" / "p.jsonl", [{"text": "x"}])
    for options, shape, verify in (("{}", (14, 8), True), ("{verify: false}", (9, 12), False)):
        step = next(s for s in load_spec(spec_for(tmp_path, "out", options)).steps
                    if s.name == "dedup_minhash")
        assert step.stage.config.verify is verify
        assert tuple(step.stage.lsh_shape()) == shape


# -- signatures ------------------------------------------------------------------------------------
def test_signatures_equal_datasketch_with_the_same_hash():
    texts = ["The quick brown fox jumps over the lazy dog, again and again!",
             "Two words", "", None, "  tabs\tand\nnew\u00a0lines \u3000 count as spaces  ",
             "Ünïcödé — “quoted” words and " + "x" * 100 + " long ones"]
    normalised = mh.normalise(pa.array(texts, pa.string()))
    a, b = mh.permutations(64, seed=3)
    sig = mh.signatures(mh.shingle_hashes(normalised, 3), a, b)
    for row, text in zip(sig, normalised.to_pylist()):
        reference = MinHash(64, seed=3, hashfunc=mh.datasketch_hashfunc)
        reference.update_batch(mh.datasketch_shingles(text, 3))
        assert np.array_equal(row, reference.hashvalues)
    assert (sig[2] == mh.EMPTY).all() and (sig[3] == mh.EMPTY).all()


def test_invalid_utf8_is_repaired_not_fatal():
    # Parquet input is not validated as UTF-8; one bad byte must not fail the shard.
    bad = pa.array([b"Caf\xe9 au lait with friends", b"ok"], pa.binary()).view(pa.string())
    shingles = mh.shingle_hashes(mh.normalise(bad), 2)
    assert list(np.diff(shingles.offsets)) == [4, 1]
