"""A model and its tokenizer on one device, run over documents in token-budget batches.

Models are loaded from local folders only (offline, `local_files_only`), once per worker
process: stages that use the same folder, class, device and dtype share one copy. The same
code runs on the CPU (float32) and on a GPU (bfloat16, or float16 where bf16 is missing).
"""

from __future__ import annotations

import os
from typing import Callable, Sequence

import numpy as np

from stages._shared.inference.batching import halve_on_out_of_memory, token_budget_batches
from stages._shared.inference.tokens import Pieces, tokenize

# This process's models and tokenizers, by what they are; the oldest are dropped past
# _KEEP, so a long-lived worker does not hold every model it ever ran.
_LOADED: dict[tuple, object] = {}
_KEEP = 6
# Keys whose absence in the weights is harmless: BERT's pooler feeds no output we read.
_UNUSED_KEYS = ("pooler.",)


def offline_hub() -> None:
    """Never reach the Hugging Face Hub from a worker: models come from local folders."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")


def resolve_dtype(dtype: str, device: str) -> str:
    if dtype != "auto":
        return dtype
    if device == "cpu":
        return "float32"
    import torch

    return "bfloat16" if torch.cuda.is_bf16_supported() else "float16"


class Inference:
    """`model_class` (a transformers Auto class name) loaded from `folder`, truncating to
    `max_length` tokens (default: `default_max_length`, else the tokenizer's limit)."""

    def __init__(self, folder: str, model_class: str, *, device: str = "cpu",
                 dtype: str = "auto", cpus: float = 1, batch_tokens: int = 16384,
                 max_length: int | None = None, default_max_length: int | None = None):
        offline_hub()
        import torch

        if device == "cuda" and not torch.cuda.is_available():
            raise RuntimeError("the stage asks for a GPU (gpus > 0) but torch sees no CUDA "
                               "device on this worker (a CPU-only torch build?); install a "
                               "CUDA build of torch, or set gpus: 0 to run on the CPU")
        if device == "cpu":
            torch.set_num_threads(max(1, int(cpus)))
        self.torch, self.device, self.batch_tokens = torch, device, batch_tokens
        self.dtype = resolve_dtype(dtype, device)
        self.tokenizer = _tokenizer(folder)
        self.model = _model(folder, model_class, device, self.dtype)
        limit = self.tokenizer.model_max_length
        self.max_length = max_length or default_max_length or (
            limit if limit < 1_000_000 else 512)
        self.pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None \
            else (self.tokenizer.eos_token_id or 0)

    def tokenize(self, texts: Sequence[str], max_chunks: int = 1) -> Pieces:
        return tokenize(self.tokenizer, texts, self.max_length, max_chunks)

    def run(self, ids: Sequence[Sequence[int]], forward: Callable) -> np.ndarray:
        """`forward(model, input_ids, attention_mask)` -> a tensor with one row per input
        row, over length-sorted token-budget batches; rows come back in input order."""
        if not ids:
            return np.zeros((0,), np.float32)
        results: list = [None] * len(ids)

        def run_batch(rows: list[int]) -> list:
            input_ids, mask = self._padded([ids[i] for i in rows])
            with self.torch.inference_mode():
                return list(forward(self.model, input_ids, mask).float().cpu().numpy())

        release = self.torch.cuda.empty_cache if self.device == "cuda" else lambda: None
        for batch in token_budget_batches([len(row) for row in ids], self.batch_tokens):
            for i, value in zip(batch, halve_on_out_of_memory(batch, run_batch, release)):
                results[i] = value
        return np.stack(results)

    def _padded(self, rows: list[Sequence[int]]):
        """Right-padded ids and the attention mask (1 = real token), on the device."""
        torch = self.torch
        width = max(len(row) for row in rows)
        input_ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for k, row in enumerate(rows):
            input_ids[k, :len(row)] = torch.tensor(row, dtype=torch.long)
            mask[k, :len(row)] = 1
        return input_ids.to(self.device), mask.to(self.device)


def _cached(key: tuple, build: Callable[[], object]):
    if key not in _LOADED:
        _LOADED[key] = build()
        for old in list(_LOADED)[:-_KEEP]:
            del _LOADED[old]
    return _LOADED[key]


def _tokenizer(folder: str):
    return _cached(("tokenizer", folder), lambda: _load_tokenizer(folder))


def _model(folder: str, model_class: str, device: str, dtype: str):
    return _cached((folder, model_class, device, dtype),
                   lambda: _load_model(folder, model_class, device, dtype))


def _load_tokenizer(folder: str):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    if not tokenizer.is_fast:
        raise ValueError(f"{folder}: the model stages need a fast tokenizer "
                         "(tokenizer.json); save one with the model")
    tokenizer.truncation_side = "right"  # documents are read from their start
    return tokenizer


def _load_model(folder: str, model_class: str, device: str, dtype: str):
    import torch
    import transformers
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    auto = getattr(transformers, model_class)
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # its load report: missing keys are judged below
    try:
        model, info = auto.from_pretrained(folder, local_files_only=True,
                                           dtype=getattr(torch, dtype),
                                           output_loading_info=True)
    finally:
        hf_logging.set_verbosity(verbosity)
    missing = [k for k in info.get("missing_keys", []) if not k.startswith(_UNUSED_KEYS)]
    if missing:
        raise ValueError(f"{folder}: the weights lack {len(missing)} tensors the model "
                         f"needs (e.g. {sorted(missing)[0]}); they would be random. Is it "
                         "the right folder, saved completely?")
    return model.to(device).eval()
