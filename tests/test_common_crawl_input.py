"""Common Crawl by name (`input: {format: warc, crawl: CC-MAIN-2024-51, files: "1:3"}`): the
crawl's listing is read once, a slice or a deterministic sample of it picks the files, only
those are opened, under an s3://, http(s):// or local base (docs/common_crawl.md, "A crawl
by name").

S3 is moto's threaded server on 127.0.0.1, reached only through the standard AWS environment
variables, as in tests/test_object_storage.py. Both modules set the endpoint when they are
imported (before the session's Ray cluster starts, whose workers inherit the environment);
the one imported last wins, so the server here listens on whatever port the environment
names when the fixture starts.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import socket
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from pipeline.cli import main as cli_main
from pipeline.io import formats
from pipeline.runner import run_job
from pipeline.spec import SpecError, parse_spec
from tests.conftest import assert_accounting, make_text, write_spec
from tests.warc_files import article, conversion, record_id, response, warcinfo, write_warc

CRAWL = "CC-MAIN-2024-51"
LISTING = f"crawl-data/{CRAWL}/warc.paths.gz"
WET_LISTING = f"crawl-data/{CRAWL}/wet.paths.gz"
STAGES = "stages:\n  - extract: {engine: resiliparse}\n"


def _loopback_endpoint() -> str:
    current = os.environ.get("AWS_ENDPOINT_URL_S3", "")
    if current.startswith("http://127.0.0.1:"):
        return current
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


os.environ["AWS_ENDPOINT_URL_S3"] = _loopback_endpoint()  # never the real Common Crawl
os.environ.setdefault("AWS_ACCESS_KEY_ID", "moto-test-key")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "moto-test-secret")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")


# -- a crawl: a listing, and WARC files at the paths it names --------------------------------
def warc_line(i: int) -> str:
    return (f"crawl-data/{CRAWL}/segments/1733066035857.{i}/warc/"
            f"CC-MAIN-20241201000000-20241201030000-{i:05d}.warc.gz")


def wet_line(i: int) -> str:
    return (f"crawl-data/{CRAWL}/segments/1733066035857.{i}/wet/"
            f"CC-MAIN-20241201000000-20241201030000-{i:05d}.warc.wet.gz")


def page_id(file: int, page: int) -> str:
    return record_id(file * 1000 + page)


def write_crawl(root: Path, files: int = 5, pages: int = 3) -> dict[str, bytes]:
    """Listings and files of a small crawl under `root`, as {relative path: bytes}. WARC
    file 3 is not a WARC and file 4 is listed but missing: a job that opens either fails."""
    objects = {}
    for i in range(files):
        if i == 3:
            objects[warc_line(i)] = b"this is not a WARC file\n"
        elif i != 4:
            path = root / warc_line(i)
            write_warc(path, [warcinfo()] + [
                response(i * 1000 + p, article(f"File {i} page {p}", [make_text(i * 7 + p, 60)]),
                         url=f"https://example.org/{i}/{p}") for p in range(pages)])
            objects[warc_line(i)] = path.read_bytes()
        wet = root / wet_line(i)
        write_warc(wet, [warcinfo()] + [conversion(i * 1000 + p, make_text(i + p, 30))
                                        for p in range(pages)])
        objects[wet_line(i)] = wet.read_bytes()
    objects[LISTING] = gzip.compress("".join(f"{warc_line(i)}\n" for i in range(files)).encode())
    objects[WET_LISTING] = gzip.compress("".join(f"{wet_line(i)}\n"
                                                 for i in range(files)).encode())
    for name, body in objects.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(body)
    return objects


def spec_text(input_keys: str, out: Path | str, stages: str = STAGES) -> str:
    return (f"name: cc\ninput: {{{input_keys}}}\noutput: {{path: \"{out}\"}}\n{stages}"
            "errors: {max_failed_fraction: 0}\n")


def read_everything(spec) -> tuple[list[dict], list[dict]]:
    """Every shard of the spec's plan read in this process: (documents, shards)."""
    reader = formats.get(spec.input.format)
    shards = reader.plan_shards(spec.input, spec.input_files)
    content = "html" if spec.input.format == "warc" else "text"
    rows = [row for shard in shards for batch in reader.read(spec.input, shard, content, 64)
            for row in batch.table.to_pylist()]
    return rows, shards


# -- S3 (moto on loopback) --------------------------------------------------------------------
@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    moto_server = pytest.importorskip("moto.server")
    s3fs = pytest.importorskip("s3fs")
    endpoint = os.environ["AWS_ENDPOINT_URL_S3"]
    assert endpoint.startswith("http://127.0.0.1:"), endpoint
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1",
                                            port=int(endpoint.rsplit(":", 1)[1]), verbose=False)
    server.start()
    fs = s3fs.S3FileSystem(skip_instance_cache=True)
    objects = write_crawl(tmp_path_factory.mktemp("crawl"))
    # "commoncrawl": the default base, private as Common Crawl's bucket is (signed reads);
    # "cc-public": a mirror that allows unsigned reads
    for bucket, acl in (("commoncrawl", "private"), ("cc-public", "public-read")):
        fs.mkdir(bucket)
        for name, body in objects.items():
            fs.pipe(f"{bucket}/{name}", body, ACL=acl)
    yield fs
    server.stop()


def test_a_slice_of_the_listing_reads_exactly_those_files(s3, tmp_path, ray_cluster):
    out = tmp_path / "out"
    path = write_spec(tmp_path / "cc.yaml", spec_text(
        f'format: warc, crawl: {CRAWL}, files: "1:3"', out))
    spec = parse_spec(path.read_text(), base_dir=str(tmp_path))
    assert spec.input_files == [f"s3://commoncrawl/{warc_line(1)}",
                                f"s3://commoncrawl/{warc_line(2)}"]

    # file 3 (not a WARC) and file 4 (missing) are listed too: opening either would fail a
    # shard, and the job allows no failed shard
    result = run_job(spec, progress=False)
    assert result.failed == [] and result.shards == 2
    assert_accounting(out)
    rows = [row for part in sorted((out / "data").glob("part-*.parquet"))
            for row in pq.read_table(part, columns=["id", "source"]).to_pylist()]
    assert sorted(r["id"] for r in rows) == sorted(page_id(f, p) for f in (1, 2)
                                                   for p in range(3))
    plan = json.loads((out / "_work" / "plan.json").read_text())
    # a file's name is its listing line, Common Crawl's own `filename`, whatever the base
    assert [s["name"] for s in plan["shards"]] == [warc_line(1), warc_line(2)]
    assert {r["source"].split("#")[0] for r in rows} == {warc_line(1), warc_line(2)}

    again = run_job(parse_spec(path.read_text(), base_dir=str(tmp_path)), progress=False)
    assert (again.shards, again.skipped) == (2, 2)  # same files, same shards: resumed


def test_validate_prints_the_crawls_files(s3, tmp_path, capsys):
    path = write_spec(tmp_path / "cc.yaml", spec_text(
        f'format: warc, crawl: {CRAWL}, files: "0:3"', tmp_path / "o"))
    assert cli_main(["validate", str(path)]) == 0
    assert "input:  warc, 3 files, 3 shards" in capsys.readouterr().out


def test_a_missing_listing_is_named_with_its_url(s3, tmp_path):
    with pytest.raises(SpecError) as error:
        parse_spec(spec_text('format: warc, crawl: CC-MAIN-2023-50, files: "0:10"',
                             tmp_path / "o"))
    message = str(error.value)
    assert "line 2:" in message
    assert "no listing at s3://commoncrawl/crawl-data/CC-MAIN-2023-50/warc.paths.gz" in message


@pytest.fixture
def no_credentials(s3, monkeypatch):
    """No AWS keys in the environment, and no cached filesystem that loaded them; the
    filesystems cached meanwhile, without keys, are dropped again afterwards."""
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(key)
    s3.clear_instance_cache()
    yield
    s3.clear_instance_cache()


def test_anonymous_reads_a_public_mirror_without_credentials(no_credentials, tmp_path):
    text = spec_text(f'format: warc, crawl: {CRAWL}, files: "0:1", base: "s3://cc-public/", '
                     "anonymous: true", tmp_path / "o")
    rows, shards = read_everything(parse_spec(text))
    assert [r["id"] for r in rows] == [page_id(0, p) for p in range(3)]

    # the same read signed, without credentials, fails: the reads above were unsigned
    with pytest.raises(SpecError, match="Unable to locate credentials; .* takes signed "
                                        "requests only"):
        parse_spec(text.replace(", anonymous: true", ""))
    # a bucket that takes signed requests only says so, and names the ways in
    with pytest.raises(SpecError, match=r"access denied to s3://commoncrawl/crawl-data/.*"
                                        r"https://data.commoncrawl.org/"):
        parse_spec(text.replace("s3://cc-public/", "s3://commoncrawl/"))


# -- HTTP(S) base: a server on loopback that answers range requests, as Common Crawl's does --
class _RangeHandler(SimpleHTTPRequestHandler):
    requested: list[str] = []
    served: list[int] = []  # body bytes sent, per response

    def do_HEAD(self):
        self._respond(body=False)

    def do_GET(self):
        self._respond(body=True)

    def _respond(self, body: bool):
        path = Path(self.translate_path(self.path))
        if not path.is_file():
            self.send_error(404)
            return
        self.requested.append(self.path)
        data = path.read_bytes()
        wanted = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range", ""))
        if wanted:
            start = int(wanted[1])
            end = min(int(wanted[2]) if wanted[2] else len(data) - 1, len(data) - 1)
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{end}/{len(data)}")
            data = data[start:end + 1]
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        if body:
            self.wfile.write(data)
            self.served.append(len(data))

    def log_message(self, *args):
        pass


@pytest.fixture
def http_mirror(tmp_path):
    pytest.importorskip("aiohttp")
    root = tmp_path / "mirror"
    write_crawl(root, pages=PAGES)
    handler = type("Handler", (_RangeHandler,), {"requested": [], "served": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0),
                                 lambda *a: handler(*a, directory=str(root)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/", handler, root
    server.shutdown()


PAGES = 300  # ~200 KB per WARC file


def test_an_http_base_reads_the_picked_files_in_byte_ranges(http_mirror, tmp_path):
    base, handler, root = http_mirror
    spec = parse_spec(spec_text(f'format: warc, crawl: {CRAWL}, files: "1:3", base: "{base}", '
                                "shard_bytes: 65536", tmp_path / "o"))
    assert handler.requested == [f"/{LISTING}"] * 2  # the size, then the listing itself

    # planning sizes each file and reads only the start of it, to see that it is gzipped
    # per record (an object store's default block would fetch 5-50 MiB of each file)
    before = sum(handler.served)
    shards = formats.get("warc").plan_shards(spec.input, spec.input_files)
    sizes = [(root / warc_line(i)).stat().st_size for i in (1, 2)]
    assert sum(handler.served) - before < sum(sizes) / 2
    assert len(shards) > 4  # each file split into byte ranges, read over HTTP

    rows, _ = read_everything(spec)
    assert sorted(r["id"] for r in rows) == sorted(page_id(f, p) for f in (1, 2)
                                                   for p in range(PAGES))
    assert set(handler.requested) == {f"/{LISTING}", f"/{warc_line(1)}", f"/{warc_line(2)}"}


# -- local mirror: WET, samples, and what validation refuses ----------------------------------
@pytest.fixture(scope="module")
def mirror(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("mirror")
    write_crawl(root)
    return root


def test_wet_reads_the_wet_listing(mirror, tmp_path):
    spec = parse_spec(spec_text(f'format: wet, crawl: {CRAWL}, files: "-2:", base: "{mirror}"',
                                tmp_path / "o", stages=""))
    assert spec.input_files == [f"{mirror}/{wet_line(3)}", f"{mirror}/{wet_line(4)}"]
    rows, _ = read_everything(spec)
    assert sorted(r["id"] for r in rows) == sorted(page_id(f, p) for f in (3, 4)
                                                   for p in range(3))
    assert rows[0]["source"].startswith(wet_line(3) + "#")


def big_listing(root: Path, lines: int = 200) -> list[str]:
    """A listing of `lines` files that do not exist: choosing files never opens them."""
    names = [warc_line(i) for i in range(lines)]
    listing = root / "big" / LISTING
    listing.parent.mkdir(parents=True, exist_ok=True)
    listing.write_bytes(gzip.compress("\n".join(names).encode()))
    return names


def picked(root: Path, keys: str) -> list[str]:
    spec = parse_spec(spec_text(f'format: warc, crawl: {CRAWL}, base: "{root}/big", {keys}',
                                root / "o"))
    return [f.removeprefix(f"{root}/big/") for f in spec.input_files]


def test_slices_have_python_meaning(tmp_path):
    names = big_listing(tmp_path)
    assert picked(tmp_path, 'files: "0:100"') == names[:100]  # end excluded
    assert picked(tmp_path, 'files: "190:"') == names[190:]
    assert picked(tmp_path, 'files: "-3:"') == names[-3:]
    assert picked(tmp_path, 'files: "::50"') == names[::50]
    assert picked(tmp_path, 'files: ":"') == names


def test_a_sample_is_deterministic_and_grows_by_adding_files(tmp_path):
    names = big_listing(tmp_path)
    ten = picked(tmp_path, "sample: {count: 10, seed: 0}")
    assert ten == picked(tmp_path, "sample: {count: 10, seed: 0}")
    assert ten == sorted(ten, key=names.index) and len(set(ten)) == 10  # in listing order
    # pinned: the choice depends on nothing but the seed and the lines (not on the machine,
    # the Python version or the listing's order), so a re-run next year picks the same files
    assert [names.index(n) for n in ten] == [31, 41, 50, 68, 74, 125, 138, 157, 180, 181]
    assert set(ten) < set(picked(tmp_path, "sample: {count: 30, seed: 0}"))
    assert picked(tmp_path, "sample: {count: 10, seed: 1}") != ten
    assert len(picked(tmp_path, "sample: {fraction: 0.05, seed: 0}")) == 10
    assert picked(tmp_path, "sample: {fraction: 0.05}") == ten  # seed 0 is the default


@pytest.mark.parametrize("keys, message", [
    ('crawl: CC-MAIN-24-51, files: "0:10"',
     "'CC-MAIN-24-51' is not a Common Crawl crawl name; write CC-MAIN-<year>-<week>"),
    (f'crawl: {CRAWL}, files: "0-10"', "files '0-10' is not a slice of the listing"),
    (f'crawl: {CRAWL}, files: "::0"', "files '::0' is not a slice of the listing"),
    (f"crawl: {CRAWL}, files: 1:30", "files is a quoted slice such as \"0:100\"; got 90"),
    (f'crawl: {CRAWL}, files: "0:10", paths: [x.warc.gz]', "give `crawl` or `paths`, not both"),
    (f"crawl: {CRAWL}", "say which of the crawl's files to read"),
    (f'crawl: {CRAWL}, files: "0:1", sample: {{count: 1}}', "give `files`"),
    (f"crawl: {CRAWL}, sample: {{seed: 3}}", "give one of sample.count or sample.fraction"),
    ('files: "0:10", paths: [x.warc.gz]', "`files` goes with `crawl`"),
    (f'crawl: {CRAWL}, files: "7:9"', "files '7:9' selects none of the 5 files listed in"),
    (f"crawl: {CRAWL}, sample: {{count: 6}}", "sample.count 6 is more than the 5 files"),
    (f'crawl: {CRAWL}, files: "0:1", anonymous: true',
     "`anonymous` applies to s3:// and gs:// bases"),
])
def test_validate_refuses_with_a_clear_message(mirror, tmp_path, capsys, keys, message):
    path = write_spec(tmp_path / "bad.yaml", spec_text(f'format: warc, base: "{mirror}", {keys}',
                                                       tmp_path / "o"))
    assert cli_main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert "line 2:" in err and message in err, err


def test_other_formats_have_no_crawl(tmp_path):
    with pytest.raises(SpecError, match="unknown key 'input.crawl' for this format"):
        parse_spec(spec_text(f'format: jsonl, crawl: {CRAWL}, files: "0:1"', tmp_path / "o",
                             stages=""))


def test_a_listing_line_cannot_leave_the_base(tmp_path):
    listing = tmp_path / LISTING
    listing.parent.mkdir(parents=True)
    listing.write_bytes(gzip.compress(f"{warc_line(0)}\n../../etc/passwd\n".encode()))
    with pytest.raises(SpecError, match="line 2 is not a path below the base"):
        parse_spec(spec_text(f'format: warc, crawl: {CRAWL}, files: ":", base: "{tmp_path}"',
                             tmp_path / "o"))


def test_a_relative_base_starts_at_the_specs_folder(mirror, tmp_path):
    spec = parse_spec(spec_text(f'format: warc, crawl: {CRAWL}, files: "0:1", '
                                f'base: {mirror.name}', tmp_path / "o"),
                      base_dir=str(mirror.parent))
    assert spec.input_files == [f"{mirror}/{warc_line(0)}"]
    assert spec.input.model_extra["base"] == str(mirror)  # resolved in spec.yaml too
