"""`engine: transformers` - Hugging Face transformers on the CPU (or one GPU).

For small jobs, development and the tests. Prompts are rendered with the model's chat
template (a plain "Role: text" layout when it has none), sorted by length and generated in
micro-batches of `batch_size` with left padding, so a batch wastes little on padding.

Seeds: `generate` draws from torch's global generator, so each micro-batch is seeded from the
spec's seed and its own prompts. A prompt's output therefore depends on the prompts batched
with it, which are fixed by the shard, `batch_rows` and `batch_size`: re-runs and resumed
shards repeat it exactly. (vLLM seeds per request and has no such coupling.)
"""

from __future__ import annotations

import os
from typing import Literal, Sequence

from pydantic import BaseModel, ConfigDict, Field

from stages._rephrase.engines import Chat, EngineError, Generation, Sampling, chat_to_text


class TransformersOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    device: Literal["cpu", "cuda"] = Field("cpu", description="cuda takes one GPU per worker")
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        "auto", description="auto: float32 on the CPU, bfloat16 on a GPU")
    batch_size: int = Field(8, gt=0, description="prompts generated together")
    cpus: float = Field(1, gt=0, description="CPUs per worker (torch threads)")


class TransformersEngine:
    def __init__(self, model: str, options: TransformersOptions | None,
                 tokenizer: str | None = None):
        offline_hub()
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        self.options = options or TransformersOptions()
        self.torch = torch
        if not os.path.isdir(model):
            raise EngineError(f"model folder not found: {model}; give a local folder saved "
                              "with save_pretrained (models are never downloaded at run time)")
        torch.set_num_threads(max(1, int(self.options.cpus)))
        self.tokenizer = AutoTokenizer.from_pretrained(tokenizer or model, local_files_only=True)
        self.tokenizer.padding_side = "left"  # generated tokens follow every prompt directly
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        dtype = self.options.dtype
        if dtype == "auto":
            dtype = "bfloat16" if self.options.device == "cuda" else "float32"
        self.model = AutoModelForCausalLM.from_pretrained(
            model, local_files_only=True, dtype=getattr(torch, dtype)).to(self.options.device)
        self.model.eval()
        self.eos_ids = _eos_ids(self.model.generation_config, self.tokenizer)
        self.context = getattr(self.model.config, "max_position_embeddings", None)

    def chunking_tokenizer(self):
        return getattr(self.tokenizer, "backend_tokenizer", None)

    def render(self, prompts: Sequence[Chat]) -> list[str]:
        if self.tokenizer.chat_template:
            return list(self.tokenizer.apply_chat_template(list(prompts), tokenize=False,
                                                           add_generation_prompt=True))
        return [chat_to_text(chat) for chat in prompts]

    def generate(self, prompts: Sequence[Chat], sampling: Sampling) -> list[Generation]:
        texts = self.render(prompts)
        lengths = [len(ids) for ids in self.tokenizer(texts, add_special_tokens=False)
                   ["input_ids"]]
        order = sorted(range(len(texts)), key=lambda i: lengths[i])
        results: list[Generation | None] = [None] * len(texts)
        size = self.options.batch_size
        for start in range(0, len(order), size):
            batch = order[start:start + size]
            self._check_context(max(lengths[i] for i in batch), sampling.max_tokens)
            for i, generation in zip(batch, self._generate([texts[i] for i in batch],
                                                           sampling)):
                results[i] = generation
        return results

    def _generate(self, texts: list[str], sampling: Sampling) -> list[Generation]:
        torch = self.torch
        encoded = self.tokenizer(texts, return_tensors="pt", padding=True,
                                 add_special_tokens=False).to(self.options.device)
        greedy = sampling.temperature == 0
        torch.manual_seed(sampling.seed_for("\0".join(texts)))
        with torch.inference_mode():
            output = self.model.generate(
                **encoded, max_new_tokens=sampling.max_tokens, do_sample=not greedy,
                temperature=None if greedy else sampling.temperature,
                top_p=None if greedy else sampling.top_p, top_k=None,
                pad_token_id=self.tokenizer.pad_token_id, eos_token_id=sorted(self.eos_ids))
        new_tokens = output[:, encoded["input_ids"].shape[1]:].tolist()
        return [self._finish(ids, sampling.max_tokens) for ids in new_tokens]

    def _finish(self, ids: list[int], max_tokens: int) -> Generation:
        end = next((k for k, token in enumerate(ids) if token in self.eos_ids), None)
        if end is None:  # no end-of-sequence: the model was cut off at max_tokens
            n, reason = len(ids), "length" if len(ids) >= max_tokens else "stop"
        else:
            n, reason = end + 1, "stop"
        return Generation(self.tokenizer.decode(ids[:n], skip_special_tokens=True), reason, n)

    def _check_context(self, prompt_tokens: int, max_tokens: int) -> None:
        if self.context and prompt_tokens + max_tokens > self.context:
            raise EngineError(
                f"a prompt of {prompt_tokens} tokens plus max_tokens {max_tokens} exceeds the "
                f"model's context of {self.context} tokens; lower chunk_tokens or max_tokens")


def offline_hub() -> None:
    """Never reach the Hugging Face Hub from a worker: models come from local folders."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")


def _eos_ids(generation_config, tokenizer) -> set[int]:
    ids = generation_config.eos_token_id
    ids = set(ids if isinstance(ids, list) else [ids] if ids is not None else [])
    if tokenizer.eos_token_id is not None:
        ids.add(tokenizer.eos_token_id)
    return ids
