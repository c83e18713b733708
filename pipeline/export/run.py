"""Plan, resume and run an export (pipeline/export/__init__.py says what the passes do).

Where units run: in this process when the job's kept files are small (under LOCAL_BYTES,
where starting Ray would cost more than the work; encoding then uses every core through
`tokenizers`' own threads), else as Ray tasks of one CPU each (the cluster in RAY_ADDRESS,
or an embedded one). `mode` forces either.

The export folder holds, besides the files: `_work/plan.json` (options, tokenizer, shards;
a re-run with other options is refused), `_work/encoded/` (the first pass, a marker JSON per
shard), `_work/files/` (an entry per finished output file) and, at the end,
`manifest.json`; `_work/` is then removed unless kept.
"""

from __future__ import annotations

import math
from itertools import accumulate
import os
import posixpath
from typing import Callable, Iterable

import fsspec

from pipeline.export.encode import EncodeUnit, Encoded, encode_shard
from pipeline.export.keys import key_bounds
from pipeline.export.options import TOKEN_FORMATS, ExportOptions, token_dtype
from pipeline.export.source import ExportError, JobSource, file_digest
from pipeline.export.write import FileUnit, Piece, Written, write_file
from pipeline.io.layout import storage_url

LOCAL_BYTES = 256 * 2**20
MANIFEST = "manifest.json"


def run_export(options: ExportOptions, mode: str = "auto", overwrite: bool = False,
               keep_work: bool = False, say: Callable[[str], None] = lambda line: None,
               cpus: int | None = None) -> dict:
    """Export and return the manifest; a finished export with the same plan is left as it is.
    `cpus`: encoding threads when run in this process (default: every core)."""
    source = JobSource(options.source)
    fs, out = fsspec.core.url_to_fs(options.out)
    work = posixpath.join(out, "_work")
    # what the tasks get: URLs, which name the filesystem as well as the path
    out_url, work_url = storage_url(fs, out), storage_url(fs, work)
    if overwrite and fs.exists(out):
        fs.rm(out, recursive=True)
    plan = _plan(source, options)
    finished = posixpath.join(out, MANIFEST)
    if fs.exists(finished):
        manifest = _read_json(fs, finished)
        if manifest.get("plan") != plan:
            raise ExportError(f"{options.out} holds another export (other options or input); "
                              "give another --out or --overwrite")
        say(f"export already complete: {options.out}/{MANIFEST}")
        return manifest
    _check_or_write_plan(fs, work, plan, options.out)

    use_ray = mode == "ray" or (mode == "auto" and (bool(os.environ.get("RAY_ADDRESS"))
                                                   or source.kept_bytes() > LOCAL_BYTES))
    threads = 1 if use_ray else (cpus or os.cpu_count() or 1)
    units = [EncodeUnit(shard, source.root, work_url, options, plan["dtype"],
                        plan["reuse_ids"], threads) for shard in source.shards]
    encoded = _committed(fs, [Encoded.marker(work, u.shard.index) for u in units], Encoded)
    todo = [u for u in units if u.shard.index not in encoded]
    say(f"encode: {len(units)} shards ({len(units) - len(todo)} already done)"
        f"{' on Ray' if use_ray else ' in this process'}")
    for result in _run(encode_shard, todo, use_ray):
        encoded[result.index] = result
    encoded_list = [encoded[u.shard.index] for u in units]

    file_units = _file_units(encoded_list, options, out_url, work_url, plan["dtype"])
    written = _committed(fs, [Written.entry(work, f.number) for f in file_units], Written,
                         key=lambda w: int(w.name.split("-")[1]))
    todo_files = [f for f in file_units if f.number not in written]
    say(f"write: {len(file_units)} files ({len(file_units) - len(todo_files)} already done)")
    for result in _run(write_file, todo_files, use_ray):
        written[int(result.name.split("-")[1])] = result

    manifest = _manifest(plan, encoded_list, [written[f.number] for f in file_units])
    _write_json(fs, finished, manifest)  # the export's commit
    if not keep_work:
        fs.rm(work, recursive=True)
    return manifest


def _plan(source: JobSource, options: ExportOptions) -> dict:
    """Everything that decides the files' content; a resume must find the same."""
    plan = {"options": {k: v for k, v in options.as_dict().items() if k not in ("out",)},
            "shards": [s.shard for s in source.shards], "dtype": None, "reuse_ids": False,
            "reuse_reason": None, "tokenizer": None}
    if options.format in TOKEN_FORMATS:
        from stages.tokenize import TokenizeConfig

        try:
            config = TokenizeConfig(tokenizer=options.tokenizer, add_bos=options.add_bos,
                                    add_eos=options.add_eos)
        except ValueError as exc:
            raise ExportError(str(exc).splitlines()[-1].strip()) from None
        tokenizer = config.load()
        vocab = tokenizer.get_vocab_size(with_added_tokens=True)
        bos, eos = config.special_ids(tokenizer)
        from stages._tokenize.loading import tokenizer_file

        plan["tokenizer"] = {"file": tokenizer_file(options.tokenizer), "vocab_size": vocab,
                             "sha256": file_digest(tokenizer_file(options.tokenizer)),
                             "bos_id": bos, "eos_id": eos}
        plan["dtype"] = token_dtype(vocab, options.format).name
        if not options.reencode:
            plan["reuse_ids"], plan["reuse_reason"] = source.reusable_ids(
                options.tokenizer, tokenizer, bos, eos)
    return plan


def _file_units(encoded: list[Encoded], options: ExportOptions, out: str, work: str,
                dtype: str | None) -> list[FileUnit]:
    """The output files as key ranges: with shuffle, equal ranges of the key space (each
    about --file-size); without, consecutive --file-size ranges of the export's bytes, a
    document going to the file where it starts (up to the file where the last one starts)."""
    total = sum(e.bytes for e in encoded)
    count = max(1, math.ceil(total / options.file_size))
    if not options.shuffle:
        starts = accumulate((e.bytes for e in encoded), initial=0)
        last_start = max((s + e.last_start for s, e in zip(starts, encoded) if e.documents),
                         default=0)
        count = last_start // options.file_size + 1
    holding = [e for e in encoded if e.documents]
    pieces: list[list[Piece]] = [[] for _ in range(count)]
    if options.shuffle:
        bounds = key_bounds(count)
        for number in range(count):
            pieces[number] = [Piece(e.index, e.path, bounds[number], bounds[number + 1])
                              for e in holding]
    else:
        start = 0
        for e in encoded:
            if e.documents:
                for number in range(start // options.file_size,
                                    min(count, math.ceil((start + e.bytes) / options.file_size))):
                    low = number * options.file_size - start
                    high = (number + 1) * options.file_size - start \
                        if number < count - 1 else e.bytes
                    pieces[number].append(Piece(e.index, e.path, max(0, low), high))
            start += e.bytes
    return [FileUnit(n, tuple(p), out, work, options.format, dtype or "uint8",
                     options.shuffle) for n, p in enumerate(pieces)]


def _manifest(plan: dict, encoded: list[Encoded], written: list[Written]) -> dict:
    documents = sum(w.documents for w in written)
    expected = sum(e.documents for e in encoded)
    if documents != expected:
        raise ExportError(f"accounting: the files hold {documents} documents, the shards "
                          f"gave {expected}")
    return {
        "plan": plan, "format": plan["options"]["format"], "dtype": plan["dtype"],
        "input": {"shards": len(encoded), "rows": sum(e.rows for e in encoded),
                  "copies": sum(e.copies for e in encoded),
                  "empty": sum(e.empty for e in encoded)},
        "documents": documents, "tokens": sum(w.tokens for w in written),
        "bytes": sum(w.bytes for w in written),
        "files": [{"name": w.name, "files": w.files, "documents": w.documents,
                   "tokens": w.tokens, "bytes": w.bytes} for w in written if w.files]}


def _run(fn, units: list, use_ray: bool) -> Iterable:
    if not units:
        return
    if not use_ray:
        yield from map(fn, units)
        return
    import ray

    from pipeline.ray_env import ensure_ray

    ensure_ray()
    remote = ray.remote(num_cpus=1, max_retries=2)(fn)
    pending = [remote.remote(u) for u in units]
    while pending:
        done, pending = ray.wait(pending, num_returns=1)
        yield ray.get(done[0])


def _committed(fs, markers: list[str], kind, key=None) -> dict:
    found = {}
    for marker in markers:
        if fs.exists(marker):
            record = kind(**_read_json(fs, marker))
            found[key(record) if key else record.index] = record
    return found


def _check_or_write_plan(fs, work: str, plan: dict, out: str) -> None:
    path = posixpath.join(work, "plan.json")
    if fs.exists(path):
        if _read_json(fs, path) != plan:
            raise ExportError(f"{out} holds an unfinished export with other options or "
                              "input; run it with those, or give --overwrite")
        return
    out_dir = posixpath.dirname(work)
    if fs.exists(out_dir) and any(posixpath.basename(p.rstrip("/")) != "_work"
                                  for p in fs.ls(out_dir, detail=False)):
        raise ExportError(f"{out} exists and is not an export: give an empty or new --out")
    _write_json(fs, path, plan)


def _read_json(fs, path: str) -> dict:
    import json

    with fs.open(path, "r") as f:
        return json.load(f)


def _write_json(fs, path: str, payload: dict) -> None:
    import json

    fs.makedirs(posixpath.dirname(path), exist_ok=True)
    tmp = f"{path}.tmp-{os.getpid()}"
    with fs.open(tmp, "w") as f:
        json.dump(payload, f, indent=1)
    fs.mv(tmp, path)
