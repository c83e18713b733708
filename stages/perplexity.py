"""`perplexity`: how surprising each document is to a causal language model (CCNet's and
Data-Juicer's perplexity filter; the per-document signal perplexity-based selection and
Min-K%-style detection start from).

Over the first `max_length` tokens of a document (as the tokenizer encodes it, e.g. with a
BOS token), every token after the first is scored: `<column>_logprob` = the mean natural
log-probability of those tokens and `<column>` (default `perplexity`) = exp(-that). A
document of a single token has nothing scored: both stay null and it is never rejected.

`min` / `max` reject documents outside the bounds as `perplexity_low:ppl=<value>` /
`perplexity_high:ppl=<value>`; `mode: annotate` keeps every document. Empty text is rejected
as `empty_text` (kept with nulls in annotate mode).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pyarrow as pa
from pydantic import Field, field_validator, model_validator

from pipeline.registry import register
from pipeline.stage import (EMPTY_TEXT, SpecPath, StageOutput, has_text, reason,
                            reasons_or_none, scatter, with_column)
from stages._shared.inference.folder import inspect_folder
from stages._shared.inference.model_stage import ModelStage
from stages._shared.inference.options import ModelOptions
from stages._shared.inference.runtime import Inference


class PerplexityConfig(ModelOptions):
    model: SpecPath = Field(description="local causal language model folder")
    # every position's logits over the vocabulary are held at once: a smaller budget
    batch_tokens: int = Field(4096, ge=16, description="padded tokens per forward pass")
    min: float | None = Field(None, gt=0, description="reject documents below")
    max: float | None = Field(None, gt=0, description="reject documents above")
    mode: Literal["filter", "annotate"] = Field("filter")
    column: str = Field("perplexity", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")

    @field_validator("model")
    @classmethod
    def _complete_folder(cls, value):
        inspect_folder(value, "causal_lm")
        return value

    @model_validator(mode="after")
    def _bounds_in_order(self):
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min {self.min} is above max {self.max}")
        return self

    def model_folder(self):
        return inspect_folder(self.model, "causal_lm")


@register
class Perplexity(ModelStage):
    name = "perplexity"
    config_model = PerplexityConfig
    description = "Perplexity of each document under a causal LM; min/max filter or annotate."

    def produces(self):
        column = getattr(self.config, "column", "perplexity")
        return (column, f"{column}_logprob")

    def setup(self) -> None:
        cfg, folder = self.config, self.config.model_folder()
        self._inference = Inference(
            folder.transformer, "AutoModelForCausalLM", device=cfg.device(), dtype=cfg.dtype,
            cpus=cfg.cpus, batch_tokens=cfg.batch_tokens, max_length=cfg.max_length,
            default_max_length=folder.max_length)

    def process(self, table: pa.Table) -> StageOutput:
        mask = has_text(table["text"])
        texts = [t for t, keep in zip(table["text"].to_pylist(), mask) if keep]
        logprob = self.mean_logprob(texts)
        perplexity = np.exp(-logprob)
        column = self.config.column
        table = with_column(table, column, scatter(_floats(perplexity), mask, pa.float64()))
        table = with_column(table, f"{column}_logprob",
                            scatter(_floats(logprob), mask, pa.float64()))
        if self.config.mode == "annotate":
            return StageOutput(table, None)
        verdicts = iter(self._verdict(p) for p in perplexity)
        return StageOutput(table, reasons_or_none([next(verdicts) if keep else EMPTY_TEXT
                                                   for keep in mask]))

    def mean_logprob(self, texts: list[str]) -> np.ndarray:
        """Mean log-probability of each text's tokens after the first (nan: none)."""
        if getattr(self, "_inference", None) is None:
            self.setup()
        if not texts:
            return np.zeros(0)
        sums = self._inference.run(self._inference.tokenize(texts).ids, _token_logprobs)
        with np.errstate(invalid="ignore", divide="ignore"):
            return sums[:, 0].astype(np.float64) / sums[:, 1]

    def _verdict(self, perplexity: float) -> str | None:
        low, high = self.config.min, self.config.max
        if low is not None and perplexity < low:
            return reason("perplexity_low", "ppl", float(perplexity))
        if high is not None and perplexity > high:
            return reason("perplexity_high", "ppl", float(perplexity))
        return None  # nan (nothing scored) compares false: kept


def _token_logprobs(model, input_ids, mask):
    """Per row: (sum of log p(token | the tokens before it), tokens scored)."""
    import torch

    logits = model(input_ids=input_ids, attention_mask=mask).logits[:, :-1]
    logprobs = torch.log_softmax(logits.float(), dim=-1)
    scored = logprobs.gather(-1, input_ids[:, 1:].unsqueeze(-1)).squeeze(-1)
    weights = mask[:, 1:].to(scored.dtype)
    return torch.stack([(scored * weights).sum(dim=1), weights.sum(dim=1)], dim=1)


def _floats(values: np.ndarray) -> list[float | None]:
    return [None if np.isnan(v) else float(v) for v in values]
