"""One small interface over the generation engines of `rephrase`.

An engine turns chat prompts into generations: `generate(prompts, sampling)` returns one
`Generation(text, finish_reason, n_tokens)` per prompt, in order. `finish_reason` is
"stop" (the model ended), "length" (it hit `max_tokens`) or "content_filter" (a hosted API
refused). Engines are imported by name only when a worker builds one, so a missing `torch`
or `vllm` never breaks a base install or a stage that does not use them.

Determinism: every prompt gets its own seed, derived from the spec's `seed` and the prompt
itself (`Sampling.seed_for`), so the same prompt yields the same text on a re-run, whichever
batch or worker it lands in (exactly so for vLLM and the transformers engine; an OpenAI-
compatible server honours it when it supports `seed`, as `vllm serve` does).

Structured answers: `Sampling.json_schema` (JSON text of a JSON Schema) asks an engine that
can enforce one to do so - `openai` sends it as `response_format`, `vllm` as guided decoding;
`transformers` ignores it (its caller parses the answer tolerantly). None, the default, changes
nothing about a request.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import NamedTuple, Protocol, Sequence

import xxhash

Chat = list[dict[str, str]]  # [{"role": "system" | "user", "content": ...}, ...]

# engine name -> module under stages._rephrase.engines and the class it defines
_ENGINES = {"transformers": ("transformers", "TransformersEngine"),
            "openai": ("openai", "OpenAIEngine"),
            "vllm": ("vllm", "VllmEngine")}


@dataclass(frozen=True)
class Sampling:
    temperature: float
    top_p: float
    max_tokens: int
    seed: int
    json_schema: str | None = None  # JSON Schema (as JSON text) the answer must follow

    def seed_for(self, prompt: str) -> int:
        """A 31-bit seed for one prompt: stable across runs, batches and workers."""
        return xxhash.xxh3_64_intdigest(f"{self.seed}\0{prompt}".encode()) & 0x7FFF_FFFF


class Generation(NamedTuple):
    text: str
    finish_reason: str
    n_tokens: int


class Engine(Protocol):
    def generate(self, prompts: Sequence[Chat], sampling: Sampling) -> list[Generation]:
        """One generation per prompt, in the order of `prompts`."""

    def chunking_tokenizer(self):
        """The model's `tokenizers.Tokenizer` (for splitting long documents), or None."""


class EngineError(RuntimeError):
    """An engine could not produce generations (endpoint down, bad model path, ...)."""


def build_engine(name: str, model: str, options, tokenizer: str | None = None) -> Engine:
    module_name, class_name = _ENGINES[name]
    module = importlib.import_module(f"{__name__}.{module_name}")
    return getattr(module, class_name)(model, options, tokenizer)


def chat_to_text(chat: Chat) -> str:
    """A plain rendering for models without a chat template (and the key of a prompt's seed)."""
    parts = [f"{m['role'].capitalize()}: {m['content']}" for m in chat]
    return "\n\n".join(parts) + "\n\nAssistant:"
