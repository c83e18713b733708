"""`embed`: one L2-normalised embedding per document, from a local encoder folder.

Writes `column` (default `embedding`), a fixed-size list of float32 (`storage: float16`
halves it). Pooling follows the folder's sentence-transformers config (`1_Pooling/`: mean,
CLS or max) when there is one, else mean; `pooling:` overrides it. Through this stage a
sentence-transformers model gives the vectors its own `encode` gives (tests/test_embed.py).

Long documents: `long_documents: truncate` (default) embeds the first `max_length` tokens;
`chunk_mean` embeds up to `max_chunks` chunks of `max_length` tokens and averages them,
weighted by their tokens, before normalising. Empty text is rejected as `empty_text`.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pyarrow as pa
from pydantic import Field, field_validator

from pipeline.registry import register
from pipeline.stage import EMPTY_TEXT, SpecPath, StageOutput, has_text, \
    reasons_where, with_column
from stages._shared.inference.folder import inspect_folder
from stages._shared.inference.model_stage import ModelStage
from stages._shared.inference.options import ModelOptions
from stages._shared.inference.pooling import pool
from stages._shared.inference.runtime import Inference


class EmbedConfig(ModelOptions):
    model: SpecPath = Field(description="local encoder folder (Hugging Face or "
                            "sentence-transformers)")
    column: str = Field("embedding", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    storage: Literal["float32", "float16"] = Field("float32", description="element type "
                                                   "of the stored vectors")
    pooling: Literal["auto", "mean", "cls", "max"] = Field(
        "auto", description="auto: the folder's sentence-transformers pooling, else mean")
    long_documents: Literal["truncate", "chunk_mean"] = Field(
        "truncate", description="truncate: first max_length tokens; chunk_mean: mean over "
        "chunks of max_length tokens")
    max_chunks: int = Field(8, ge=1, description="chunk_mean: chunks per document at most")

    @field_validator("model")
    @classmethod
    def _complete_folder(cls, value):
        inspect_folder(value, "encoder")
        return value

    def model_folder(self):
        return inspect_folder(self.model, "encoder")


@register
class Embed(ModelStage):
    name = "embed"
    config_model = EmbedConfig
    description = "One normalised embedding per document (local encoder, CPU or GPU)."

    def produces(self):
        return (getattr(self.config, "column", "embedding"),)

    def setup(self) -> None:
        cfg, folder = self.config, self.config.model_folder()
        self._inference = Inference(
            folder.transformer, "AutoModel", device=cfg.device(), dtype=cfg.dtype,
            cpus=cfg.cpus, batch_tokens=cfg.batch_tokens, max_length=cfg.max_length,
            default_max_length=folder.max_length)
        self._pooling = (folder.pooling or "mean") if cfg.pooling == "auto" else cfg.pooling
        model_config = self._inference.model.config
        self._dim = getattr(model_config, "hidden_size", None) or model_config.d_model

    def process(self, table: pa.Table) -> StageOutput:
        mask = has_text(table["text"])
        texts = [t for t, keep in zip(table["text"].to_pylist(), mask) if keep]
        column = _vector_column(self.embed(texts), mask, self._dim, self.config.storage)
        return StageOutput(with_column(table, self.config.column, column),
                           reasons_where(pa.array(~mask), EMPTY_TEXT))

    def embed(self, texts: list[str]) -> np.ndarray:
        """[len(texts), dim] unit vectors (float32)."""
        if getattr(self, "_inference", None) is None:
            self.setup()
        chunks = self.config.max_chunks if self.config.long_documents == "chunk_mean" else 1
        pieces = self._inference.tokenize(texts, chunks)
        if not pieces.ids:
            return np.zeros((0, self._dim), np.float32)
        pooled = self._inference.run(pieces.ids, self._forward)
        if chunks > 1:  # each document's chunks, averaged by their token counts
            weights = np.array([len(ids) for ids in pieces.ids], np.float64)
            owner = np.array(pieces.owner, np.int64)
            sums = np.zeros((len(texts), pooled.shape[1]), np.float64)
            np.add.at(sums, owner, pooled * weights[:, None])
            pooled = sums / np.bincount(owner, weights, len(texts))[:, None]
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return (pooled / np.maximum(norms, 1e-12)).astype(np.float32)

    def _forward(self, model, input_ids, mask):
        hidden = model(input_ids=input_ids, attention_mask=mask).last_hidden_state
        return pool(hidden, mask, self._pooling)


def _vector_column(vectors: np.ndarray, mask: np.ndarray, dim: int, storage: str) -> pa.Array:
    """A fixed-size list column: each row with text gets its vector, the others null."""
    full = np.zeros((len(mask), dim), storage)
    full[mask] = vectors
    return pa.FixedSizeListArray.from_arrays(pa.array(full.reshape(-1)), dim,
                                             mask=pa.array(~mask))
