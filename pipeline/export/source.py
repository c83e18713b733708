"""The job an export reads: its committed shards' kept files (docs/architecture.md, "Data
layout"), and whether the `token_ids` its `tokenize` step wrote can be written as they are.

Reuse is decided from the spec as run (`spec.yaml`), never guessed from the data: the ids
are reused only when the job's last `tokenize` step wrote them (`ids: true`) with a
tokenizer file of the same content (sha256) as the export's and the same `add_bos` /
`add_eos`, and every step after it is one that leaves `text` as it is. Anything else, or
`--reencode`, encodes the texts again.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import pyarrow.parquet as pq
import yaml

from pipeline.io.layout import JobLayout, open_for_arrow
from stages._tokenize.loading import special_token_id, tokenizer_file

# Stages that only annotate or reject rows: a `text` they saw is the text they keep.
# (pii and decontam may redact, dedup_spans cuts, rephrase and extract rewrite: after any of
# those, or a stage not listed here, the ids are encoded again.)
TEXT_UNCHANGED = frozenset({
    "tokenize", "bucket", "mix", "length_filter", "langid", "quality", "classify", "embed",
    "perplexity", "dedup_exact", "dedup_minhash", "url_filter", "keyword_filter", "badwords",
    "license"})


class ExportError(ValueError):
    """A problem with the export asked for; the CLI prints it as `error: ...`."""


@dataclass(frozen=True)
class InputShard:
    index: int  # position among the job's committed shards (the order of the export)
    shard: str  # the job's shard name
    data: str  # its kept file (absent when the shard kept nothing)


class JobSource:
    def __init__(self, root: str):
        self.root = root
        self.layout = JobLayout(root)
        paths = sorted(self.layout.fs.glob(self.layout.path("manifests", "part-*.json")))
        if not paths:
            raise ExportError(f"no committed shard in {root}: export reads a job's output "
                              "folder (`pipeline run` writes it)")
        # Only committed shards count: a shard's manifest is written last.
        names = [self.layout.read_json(p)["shard"] for p in paths]
        self.shards = [InputShard(i, name, self.layout.data(name))
                       for i, name in enumerate(names)]

    def columns(self) -> set[str]:
        for shard in self.shards:
            if self.layout.exists(shard.data):
                with open_for_arrow(self.layout.fs, shard.data, "rb") as f:
                    return set(pq.ParquetFile(f).schema_arrow.names)
        return set()

    def kept_bytes(self) -> int:
        return sum(self.layout.fs.size(s.data) for s in self.shards
                   if self.layout.exists(s.data))

    def steps(self) -> list[tuple[str, dict]]:
        if not self.layout.exists(self.layout.spec()):
            return []
        with self.layout.fs.open(self.layout.spec(), "r") as f:
            spec = yaml.safe_load(f) or {}
        return [next(iter(entry.items())) for entry in spec.get("stages") or []]

    def reusable_ids(self, tokenizer_path: str, tokenizer, bos: int | None,
                     eos: int | None) -> tuple[bool, str]:
        """Whether the job's `token_ids` are the export's encoding, and why (or why not):
        `tokenizer` is the export's, loaded, with its BOS/EOS ids."""
        steps = self.steps()
        last = max((i for i, (name, _) in enumerate(steps) if name == "tokenize"), default=None)
        if last is None or "token_ids" not in self.columns():
            return False, "the job wrote no token_ids"
        options = steps[last][1] or {}
        if not options.get("ids"):
            return False, "the job's tokenize step did not keep ids"
        after = [name for name, _ in steps[last + 1:] if name not in TEXT_UNCHANGED]
        if after:
            return False, f"{', '.join(after)} ran after tokenize and may change the text"
        try:
            theirs = file_digest(tokenizer_file(str(options.get("tokenizer"))))
        except ValueError:
            return False, "the job's tokenizer file is no longer there"
        if theirs != file_digest(tokenizer_file(tokenizer_path)):
            return False, "the job's tokenizer file differs from --tokenizer (sha256)"
        try:
            specials = (special_token_id(tokenizer, options.get("add_bos"), "add_bos"),
                        special_token_id(tokenizer, options.get("add_eos"), "add_eos"))
        except ValueError:
            specials = None
        if specials != (bos, eos):
            return False, "the job's add_bos/add_eos differ from the export's"
        return True, ("the job's tokenize step wrote them with a tokenizer file of the same "
                      "content (sha256) and the same BOS/EOS, and no later step changes text")


def file_digest(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(2**20), b""):
            digest.update(block)
    return digest.hexdigest()
