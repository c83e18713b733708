"""`tokenize`: count each document's tokens (`n_tokens`, int64) with a local Hugging Face
`tokenizers` tokenizer, and optionally keep the ids (`ids: true` -> `token_ids`,
list<uint32>).

`tokenizer` is a `tokenizer.json` file or a folder holding one; nothing is downloaded.
Special tokens: by default the tokenizer's own post-processor decides (BERT adds [CLS] and
[SEP], GPT-2 adds nothing); with `add_bos` and/or `add_eos` (a token string or an id) the
post-processor is off and only those are added. Truncation and padding in the file are
ignored: whole documents are counted. Null or whitespace-only text counts 0 tokens (no ids)
and is kept: this stage annotates, unless `min_tokens`/`max_tokens` reject.
Threads: see stages/_tokenize/threads.py (docs/stages_mixture.md, "tokenize").
"""

from __future__ import annotations

from itertools import chain

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field, field_validator, model_validator

from pipeline.registry import register
from pipeline.stage import Resources, SpecPath, Stage, StageConfig, StageOutput, has_text, \
    reasons_where, with_column
from stages._tokenize.loading import load_tokenizer, special_token_id, tokenizer_file
from stages._tokenize.threads import limit_threads


class TokenizeConfig(StageConfig):
    tokenizer: SpecPath = Field(description="local tokenizer.json, or a folder holding one")
    ids: bool = Field(False, description="also write the ids as token_ids (list<uint32>)")
    add_bos: str | int | None = Field(None, description="token (or id) put before each "
                                      "document; set: the tokenizer's post-processor is off")
    add_eos: str | int | None = Field(None, description="token (or id) put after each "
                                      "document; set: the tokenizer's post-processor is off")
    min_tokens: int | None = Field(None, ge=0, description="reject below this many tokens")
    max_tokens: int | None = Field(None, ge=0, description="reject above this many tokens")
    cpus: float = Field(1, gt=0, description="CPUs per worker (encoding threads)")

    @field_validator("tokenizer")
    @classmethod
    def _tokenizer_loads(cls, value):
        load_tokenizer(tokenizer_file(value))
        return value

    @field_validator("add_bos", "add_eos", mode="before")
    @classmethod
    def _token_not_a_flag(cls, value):
        if isinstance(value, bool):
            raise ValueError("give the token itself (e.g. '</s>') or its id, not true/false")
        return value

    @model_validator(mode="after")
    def _tokenizer_and_tokens(self):
        self.special_ids()  # the tokenizer holds the BOS/EOS tokens
        if None not in (self.min_tokens, self.max_tokens) and self.min_tokens > self.max_tokens:
            raise ValueError(f"min_tokens ({self.min_tokens}) is greater than max_tokens "
                             f"({self.max_tokens})")
        return self

    def load(self):
        return load_tokenizer(tokenizer_file(self.tokenizer))

    def special_ids(self, tokenizer=None) -> tuple[int | None, int | None]:
        tokenizer = tokenizer or self.load()
        return (special_token_id(tokenizer, self.add_bos, "add_bos"),
                special_token_id(tokenizer, self.add_eos, "add_eos"))


@register
class Tokenize(Stage):
    name = "tokenize"
    config_model = TokenizeConfig
    description = "Count tokens per document (n_tokens), optionally keep the ids."

    def __getstate__(self):  # each worker loads its own tokenizer
        return dict(self.__dict__, _tokenizer=None)

    def produces(self):
        return ("n_tokens", "token_ids") if getattr(self.config, "ids", False) \
            else ("n_tokens",)

    def resources(self):
        return Resources(cpus=self.config.cpus)

    def packages(self):
        return {"tokenizers": "models"}

    def setup(self) -> None:
        limit_threads(self.config.cpus)
        self._tokenizer = self.config.load()
        self._bos, self._eos = self.config.special_ids(self._tokenizer)

    def process(self, table: pa.Table) -> StageOutput:
        counts, ids = self.encode(table["text"])
        table = with_column(table, "n_tokens", counts)
        if ids is not None:
            table = with_column(table, "token_ids", ids)
        cfg, reasons = self.config, pa.nulls(table.num_rows, pa.string())
        for bound, code, fails in ((cfg.min_tokens, "too_few_tokens", pc.less),
                                   (cfg.max_tokens, "too_many_tokens", pc.greater)):
            if bound is not None:
                reasons = reasons_where(fails(counts, bound), code, "tokens", counts, reasons)
        return StageOutput(table, reasons if reasons.null_count < len(reasons) else None)

    def encode(self, texts) -> tuple[pa.Array, pa.Array | None]:
        """(n_tokens, token_ids or None) for a text column; rows without text get 0 / []."""
        if getattr(self, "_tokenizer", None) is None:
            self.setup()
        mask = has_text(texts)
        present = (texts if mask.all() else pc.filter(texts, pa.array(mask))).to_pylist()
        extra = (self._bos is not None) + (self._eos is not None)
        # offsets are not needed: encode_batch_fast skips them (same ids as encode_batch)
        encodings = self._tokenizer.encode_batch_fast(present, add_special_tokens=not extra)
        counts = np.zeros(len(mask), np.int64)
        counts[mask] = np.fromiter(map(len, encodings), np.int64, len(encodings)) + extra
        if not self.config.ids:
            return pa.array(counts), None
        return pa.array(counts), _id_lists(encodings, mask, counts, self._bos, self._eos)


def _id_lists(encodings, mask: np.ndarray, counts: np.ndarray, bos: int | None,
              eos: int | None) -> pa.Array:
    """One list<uint32> per row: BOS, the encoding's ids, EOS on the rows of `mask` (the
    encodings in order), an empty list on the others."""
    offsets = np.zeros(len(counts) + 1, np.int32)
    np.cumsum(counts, out=offsets[1:])
    own = np.fromiter(chain.from_iterable(e.ids for e in encodings), np.uint32,
                      int(sum(map(len, encodings))))
    if bos is None and eos is None:
        return pa.ListArray.from_arrays(pa.array(offsets), pa.array(own, pa.uint32()))
    values = np.empty(int(offsets[-1]), np.uint32)
    starts, ends = offsets[:-1][mask], offsets[1:][mask]
    inner = np.ones(len(values), bool)  # the places the encodings' own ids go
    if bos is not None:
        values[starts], inner[starts] = bos, False
    if eos is not None:
        values[ends - 1], inner[ends - 1] = eos, False
    values[inner] = own
    return pa.ListArray.from_arrays(pa.array(offsets), pa.array(values, pa.uint32()))
