"""Jobs on object storage: every input format read from s3://, output written to s3://, resume
after a killed job, global stages' `_work/` on s3://, and credentials kept out of the output
(docs/architecture.md, "Object storage").

The S3 server is moto's threaded server on 127.0.0.1 (the way s3fs tests itself), one per
module. The endpoint and credentials reach s3fs only through the standard AWS environment
variables. They are set when this module is imported, i.e. at collection, before any test
starts the shared Ray cluster: Ray's workers inherit the environment the cluster started with,
not later changes of the driver's.
"""

from __future__ import annotations

import json
import os
import posixpath
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipeline.runner import run_job
from pipeline.spec import SpecError, load_spec, parse_spec
from tests.conftest import kill_tree, make_text, write_jsonl, write_parquet, write_spec

ROOT = Path(__file__).resolve().parents[1]
SECRET = "moto-secret-9f3c1e7a5b"  # must appear in no output file and no log
BUCKET = "curation-test"
pytest_plugins = ["tests.api_fixtures"]  # the control-plane test's Ray head


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


PORT = _free_port()
ENDPOINT = f"http://127.0.0.1:{PORT}"
os.environ.update({
    "AWS_ENDPOINT_URL_S3": ENDPOINT,  # botocore's service endpoint variable, honoured by s3fs
    "AWS_ACCESS_KEY_ID": "moto-test-key",
    "AWS_SECRET_ACCESS_KEY": SECRET,
    "AWS_DEFAULT_REGION": "us-east-1",
})


@pytest.fixture(scope="module")
def s3():
    moto_server = pytest.importorskip("moto.server")
    s3fs = pytest.importorskip("s3fs")
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=PORT, verbose=False)
    server.start()
    fs = s3fs.S3FileSystem(skip_instance_cache=True)  # endpoint and keys from the environment
    fs.mkdir(BUCKET)
    yield fs
    server.stop()


def rows(n: int, offset: int = 0) -> list[dict]:
    # every 5th document is too short for length_filter(min_words=5)
    return [{"text": make_text(i, 3 if i % 5 == 0 else 8 + i % 40), "url": f"https://x.org/{i}"}
            for i in range(offset, offset + n)]


def spec_text(inputs: str, fmt: str, out: str, stages: str, extra: str = "") -> str:
    return (f"name: s3-job\ninput: {{format: {fmt}, paths: [\"{inputs}\"]{extra}}}\n"
            f"output: {{path: \"{out}\"}}\nstages:\n{stages}")


LENGTH = "  - length_filter: {min_words: 5}\n"
WARC_STAGES = "  - extract: {engine: resiliparse}\n  - length_filter: {min_words: 5}\n"


def s3_ids(fs, out: str, folder: str) -> list[str]:
    import pyarrow.parquet as pq
    files = sorted(fs.glob(f"{out}/{folder}/part-*.parquet"))
    return [i for f in files for i in pq.read_table(f, columns=["id"], filesystem=fs)["id"]
            .to_pylist()]


def local_ids(out: Path, folder: str) -> list[str]:
    import pyarrow.parquet as pq
    return [i for f in sorted((out / folder).glob("part-*.parquet"))
            for i in pq.read_table(f, columns=["id"])["id"].to_pylist()]


def test_missing_filesystem_package_names_the_extra():
    # A fresh interpreter where s3fs cannot be imported, as on an install without [s3].
    code = ("import sys; sys.modules['s3fs'] = None\n"
            "from pipeline.spec import parse_spec, SpecError\n"
            "try:\n"
            "    parse_spec('name: j\\ninput: {format: jsonl, paths: [s3://b/in/*.jsonl]}\\n'\n"
            "               'output: {path: s3://b/out}\\n')\n"
            "except SpecError as exc:\n"
            "    print(exc)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=ROOT, timeout=120)
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 2, result.stdout  # the input path and the output path, each once
    assert all("pip install 'curation-pipeline[s3]'" in line for line in lines)
    assert "line 2" in lines[0] and "line 3" in lines[1]


def test_unknown_url_protocol_is_a_spec_problem():
    with pytest.raises(SpecError, match="unknown URL protocol 'nosuchfs'"):
        parse_spec("name: j\ninput: {format: jsonl, paths: [in.jsonl]}\n"
                   "output: {path: 'simplecache::nosuchfs://b/out'}\n", check_files=False)
    # a chain of known filesystems passes
    spec = parse_spec("name: j\ninput: {format: jsonl, paths: [in.jsonl]}\n"
                      "output: {path: 'simplecache::memory://b/out'}\n", check_files=False)
    assert spec.output.path == "simplecache::memory://b/out"


@pytest.mark.parametrize("fmt", ["jsonl", "parquet", "warc"])
def test_every_input_format_reads_from_s3_and_writes_to_s3(fmt, s3, tmp_path, ray_cluster):
    if fmt == "jsonl":
        local = write_jsonl(tmp_path / "in" / "a.jsonl", rows(300))
    elif fmt == "parquet":
        local = write_parquet(tmp_path / "in" / "a.parquet", rows(300), row_group_size=100)
    else:
        local = ROOT / "examples" / "data" / "crawl-sample.warc.gz"
    name = local.name
    s3.put(str(local), f"{BUCKET}/in-{fmt}/{name}")
    stages = WARC_STAGES if fmt == "warc" else LENGTH
    extra = ", shard_rows: 100" if fmt == "parquet" else ""
    out = f"s3://{BUCKET}/out-{fmt}"
    remote = load_spec(write_spec(tmp_path / "s3.yaml", spec_text(
        f"s3://{BUCKET}/in-{fmt}/*", fmt, out, stages, extra)))
    assert remote.input_files == [f"s3://{BUCKET}/in-{fmt}/{name}"]
    result = run_job(remote, progress=False)

    twin = load_spec(write_spec(tmp_path / "local.yaml", spec_text(
        str(local), fmt, str(tmp_path / "out"), stages, extra)))
    run_job(twin, progress=False)
    manifests = s3.glob(f"{BUCKET}/out-{fmt}/manifests/part-*.json")
    assert len(manifests) == result.shards >= (3 if fmt == "parquet" else 1)
    for folder in ("data", "rejected"):
        ids = s3_ids(s3, f"{BUCKET}/out-{fmt}", folder)
        assert ids == local_ids(tmp_path / "out", folder) and ids
    assert s3.exists(f"{BUCKET}/out-{fmt}/spec.yaml")
    assert s3.exists(f"{BUCKET}/out-{fmt}/report/summary.json")


def test_global_stage_keeps_its_work_on_s3(s3, tmp_path, ray_cluster):
    docs = rows(200)
    for i in range(0, 200, 4):  # every 4th document repeats an earlier one's text
        docs[i] = dict(docs[i], text=docs[(i + 7) % 200]["text"])
    s3.put(str(write_jsonl(tmp_path / "a.jsonl", docs[:100])), f"{BUCKET}/dup/a.jsonl")
    s3.put(str(write_jsonl(tmp_path / "b.jsonl", docs[100:])), f"{BUCKET}/dup/b.jsonl")
    out = f"{BUCKET}/out-dedup"
    spec = load_spec(write_spec(tmp_path / "dedup.yaml", spec_text(
        f"s3://{BUCKET}/dup/*.jsonl", "jsonl", f"s3://{out}", "  - dedup_exact: {}\n")))
    run_job(spec, progress=False, keep_work=True)

    assert s3.glob(f"{out}/_work/global/*"), "the global phase's units live on s3"
    assert s3.glob(f"{out}/manifests/global-*.json")
    kept = s3_ids(s3, out, "data")
    distinct = len({d["text"] for d in docs})
    assert len(kept) == len(set(kept)) == distinct < 200
    assert len(s3_ids(s3, out, "rejected")) == 200 - distinct


def test_resume_after_kill_on_s3(s3, tmp_path, ray_cluster, capfd):
    write_parquet(tmp_path / "big.parquet", rows(2000), row_group_size=200)
    s3.put(str(tmp_path / "big.parquet"), f"{BUCKET}/big/big.parquet")
    out = f"{BUCKET}/out-killed"
    text = spec_text(f"s3://{BUCKET}/big/*.parquet", "parquet", f"s3://{out}", LENGTH,
                     ", shard_rows: 200")
    spec_path = write_spec(tmp_path / "killed.yaml", text)
    proc = subprocess.Popen([sys.executable, "-m", "pipeline", "run", str(spec_path),
                             "--no-progress"], cwd=ROOT, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(s3.glob(f"{out}/manifests/part-*.json")) < 3:
        time.sleep(0.1)
        s3.invalidate_cache()
    kill_tree(proc)  # driver, raylet and workers: nothing can commit a shard after this
    s3.invalidate_cache()
    before = {p: s3.cat(p) for p in s3.glob(f"{out}/manifests/part-*.json")}
    assert 3 <= len(before) < 10, "the kill must land mid-way"

    result = run_job(load_spec(spec_path), progress=False)
    assert (result.shards, result.skipped) == (10, len(before))
    assert SECRET not in "".join(capfd.readouterr())
    s3.invalidate_cache()
    for path, body in before.items():  # committed shards were not redone
        assert s3.cat(path) == body
    kept = s3_ids(s3, out, "data")
    assert len(kept) == len(set(kept)) == 1600
    assert len(s3_ids(s3, out, "rejected")) == 400
    assert not s3.glob(f"{out}/**/.tmp-*")


def test_control_plane_runs_a_job_under_an_s3_storage_root(s3, tmp_path, ray_head):
    from tests.api_support import ServiceThread, finished, service_config, submit_yaml, wait_for
    s3.put(str(write_jsonl(tmp_path / "cp.jsonl", rows(100))), f"{BUCKET}/cp/in/a.jsonl")
    root = f"s3://{BUCKET}/cp"
    local_root = tmp_path / "local-root"
    local_root.mkdir()
    config = service_config(tmp_path, ray_head, local_root,
                            storage_roots=[str(local_root), root])
    with ServiceThread(config) as service:
        client = service.client()
        outside = submit_yaml(client, spec_text(f"s3://{BUCKET}/in-jsonl/*", "jsonl",
                                                f"{root}/out", LENGTH))
        assert outside.status_code == 422 and "outside the storage roots" in outside.text
        response = submit_yaml(client, spec_text(f"{root}/in/*.jsonl", "jsonl",
                                                 f"{root}/out-cp", LENGTH))
        assert response.status_code == 201, response.text
        job = wait_for(client, response.json()["id"], finished, what="a final state")
        assert job["state"] == "SUCCEEDED", job
        assert job["progress"]["docs"] == {"in": 100, "kept": 80, "rejected": 20}
        record = json.dumps(job) + client.get(f"/jobs/{job['id']}/logs").text
        assert SECRET not in record
    assert len(s3_ids(s3, f"{BUCKET}/cp/out-cp", "data")) == 80
    for path in (tmp_path / "state").rglob("*"):  # the job store: SQLite and its files
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path


def test_credentials_are_in_no_output_object(s3):
    objects = [p for p in s3.find(BUCKET) if "/out-" in p]
    assert any(p.endswith("spec.yaml") for p in objects)
    assert any("/manifests/" in p for p in objects)
    for path in objects:
        body = s3.cat(path)
        assert SECRET.encode() not in body and b"moto-test-key" not in body, path
    spec = json.dumps(load_spec_from_s3(s3, f"{BUCKET}/out-jsonl/spec.yaml"))
    assert ENDPOINT not in spec  # the endpoint comes from the environment, not the record


def load_spec_from_s3(fs, path: str) -> dict:
    import yaml
    return yaml.safe_load(fs.cat(path))


def test_export_reads_a_job_on_s3_and_writes_the_same_files_to_s3(s3, tmp_path, ray_cluster):
    """`pipeline export` from an output on s3:// to s3://, in this process and as Ray tasks,
    writes byte for byte what it writes from the same job run on local disk."""
    from pipeline.export.options import ExportOptions
    from pipeline.export.run import run_export
    data = [dict(row, id=f"doc-{i:03d}") for i, row in enumerate(rows(60))]
    write_parquet(tmp_path / "in" / "a.parquet", data, row_group_size=15)
    s3.put(str(tmp_path / "in" / "a.parquet"), f"{BUCKET}/exp/in/a.parquet")
    for name, inputs, out in (("local", str(tmp_path / "in" / "*.parquet"), str(tmp_path / "job")),
                              ("s3", f"s3://{BUCKET}/exp/in/*.parquet", f"s3://{BUCKET}/exp/job")):
        spec = write_spec(tmp_path / f"{name}.yaml",
                          spec_text(inputs, "parquet", out, LENGTH, ", shard_rows: 15"))
        run_job(load_spec(spec), progress=False)
    options = dict(format="jsonl", shuffle=True, seed=3, file_size=2000)
    run_export(ExportOptions(source=str(tmp_path / "job"), out=str(tmp_path / "exported"),
                             **options), mode="local")
    expected = {p.name: p.read_bytes() for p in (tmp_path / "exported").glob("*.jsonl")}
    assert len(expected) > 1 and sum(map(len, expected.values())) > 0
    for mode in ("local", "ray"):
        out = f"{BUCKET}/exp/exported-{mode}"
        manifest = run_export(ExportOptions(source=f"s3://{BUCKET}/exp/job", out=f"s3://{out}",
                                            **options), mode=mode)
        s3.invalidate_cache()
        got = {posixpath.basename(p): s3.cat(p) for p in s3.glob(f"{out}/*.jsonl")}
        assert got == expected, mode
        assert manifest["documents"] == 48  # every 5th of the 60 is too short
        assert not s3.glob(f"{out}/_work/**"), "the export's scratch files are removed"
    assert not Path(BUCKET).exists(), "nothing written to a local path named like the bucket"
