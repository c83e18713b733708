"""`engine: vllm` - vLLM's offline engine inside our GPU worker actors (the production path).

Why the offline `vllm.LLM` in the stage's worker rather than Ray Data's
`ray.data.llm.build_processor(vLLMEngineProcessorConfig(...))`: our runner already runs each
segment as a pool of Ray actors, one per shard in flight, that commit a shard's data,
rejected rows and manifest together. The processor API wants to own the dataset stream
(its own read -> map_batches -> write, with its own actor pool), which would bypass the
per-shard commit, the accounting and resume. Here the worker actor asks Ray for
`num_gpus = gpus_per_replica` (the stage's `resources()`); `setup()` builds one `LLM` per
worker; each batch of a shard becomes one `LLM.generate` call, which vLLM schedules with
continuous batching (`max_num_seqs` sequences at a time). Replicas are the worker pool: the
runner starts `cluster GPUs // gpus_per_replica` workers (capped by the shards to do), and
Ray places them on the GPU nodes (a KubeRay autoscaler adds GPU nodes on demand).

Tensor parallelism stays inside one worker: the actor holds `tensor_parallel_size` GPUs of
one node and vLLM starts its own processes on them (`distributed_executor_backend="mp"`).

Models come from a local folder or a mounted volume; the Hub is switched off in the worker
before vLLM is imported, so a missing model fails instead of downloading.

`vllm` is imported only when a worker builds the engine: the `[gpu]` extra is needed on the
GPU workers only, and `llm_kwargs`/`sampling_kwargs` can be checked without it.
"""

from __future__ import annotations

import json
import os
from typing import Sequence

from pydantic import BaseModel, ConfigDict, Field, model_validator

from stages._rephrase.engines import Chat, EngineError, Generation, Sampling, chat_to_text
from stages._rephrase.engines.transformers import offline_hub


class VllmOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    tensor_parallel_size: int = Field(1, ge=1, description="GPUs one model is split over")
    gpus_per_replica: float | None = Field(
        None, gt=0, description="GPUs a worker requests; default tensor_parallel_size "
        "(below 1 lets small models share a GPU: lower gpu_memory_utilization too)")
    max_model_len: int | None = Field(None, gt=0, description="context length to allocate")
    max_num_seqs: int = Field(256, gt=0, description="sequences batched per engine step")
    gpu_memory_utilization: float = Field(0.9, gt=0, le=1)
    dtype: str = Field("auto", pattern=r"^(auto|bfloat16|float16|float32|half|float)$")
    cpus: float = Field(2, gt=0, description="CPUs per worker (tokenizing, scheduling)")
    enforce_eager: bool = Field(False, description="skip CUDA graphs (faster start)")
    wait_for_gpus: bool = Field(False, description="start even if the cluster has no GPU "
                                "yet (an autoscaler adds GPU nodes on demand)")

    @model_validator(mode="after")
    def _whole_gpus_for_tensor_parallel(self):
        if self.tensor_parallel_size > 1 and self.gpus_per_replica is not None \
                and self.gpus_per_replica != self.tensor_parallel_size:
            raise ValueError(f"gpus_per_replica ({self.gpus_per_replica}) must equal "
                             f"tensor_parallel_size ({self.tensor_parallel_size})")
        return self

    @property
    def gpus(self) -> float:
        return self.gpus_per_replica or float(self.tensor_parallel_size)


def llm_kwargs(model: str, options: VllmOptions, tokenizer: str | None) -> dict:
    """Arguments of `vllm.LLM(...)` for one worker. (Its `seed` only matters for requests
    without one; every request of ours carries its own.)"""
    kwargs = {"model": model, "tokenizer": tokenizer or model,
              "tensor_parallel_size": options.tensor_parallel_size, "dtype": options.dtype,
              "gpu_memory_utilization": options.gpu_memory_utilization,
              "max_num_seqs": options.max_num_seqs, "enforce_eager": options.enforce_eager,
              "seed": 0, "trust_remote_code": False}
    if options.max_model_len:
        kwargs["max_model_len"] = options.max_model_len
    if options.tensor_parallel_size > 1:
        kwargs["distributed_executor_backend"] = "mp"  # on the GPUs this actor holds
    return kwargs


def sampling_kwargs(sampling: Sampling, prompt: str) -> dict:
    """Arguments of `vllm.SamplingParams(...)` for one prompt (its own seed)."""
    return {"n": 1, "temperature": sampling.temperature, "top_p": sampling.top_p,
            "max_tokens": sampling.max_tokens, "seed": sampling.seed_for(prompt)}


class VllmEngine:
    def __init__(self, model: str, options: VllmOptions | None, tokenizer: str | None = None):
        offline_hub()
        options = options or VllmOptions()
        if not os.path.isdir(model):
            raise EngineError(f"model folder not found on this GPU worker: {model}; mount it "
                              "there (models are never downloaded at run time)")
        try:
            from vllm import LLM, SamplingParams
        except ImportError as exc:
            raise EngineError(f"engine vllm needs the vllm package on the GPU workers "
                              f"(pip install 'curation-pipeline[gpu]'): {exc}") from None
        self._params = SamplingParams
        self.llm = LLM(**llm_kwargs(model, options, tokenizer))
        self.tokenizer = self.llm.get_tokenizer()

    def chunking_tokenizer(self):
        return getattr(self.tokenizer, "backend_tokenizer", None)

    def render(self, prompts: Sequence[Chat]) -> list[str]:
        if getattr(self.tokenizer, "chat_template", None):
            return [self.tokenizer.apply_chat_template(chat, tokenize=False,
                                                       add_generation_prompt=True)
                    for chat in prompts]
        return [chat_to_text(chat) for chat in prompts]

    def generate(self, prompts: Sequence[Chat], sampling: Sampling) -> list[Generation]:
        texts = self.render(prompts)
        guided = structured_outputs(sampling.json_schema) if sampling.json_schema else {}
        params = [self._params(**sampling_kwargs(sampling, text), **guided) for text in texts]
        outputs = self.llm.generate(texts, params, use_tqdm=False)
        return [Generation(o.outputs[0].text, o.outputs[0].finish_reason or "stop",
                           len(o.outputs[0].token_ids)) for o in outputs]


def structured_outputs(schema: str) -> dict:
    """`SamplingParams` arguments that make vLLM decode JSON following `schema` (JSON text).
    Newer vLLM releases call them `structured_outputs`, older ones `guided_decoding`.
    (Unverified: no vLLM on the development machine; docs/stages_annotate.md says so.)"""
    try:
        from vllm.sampling_params import StructuredOutputsParams
    except ImportError:
        from vllm.sampling_params import GuidedDecodingParams

        return {"guided_decoding": GuidedDecodingParams(json=json.loads(schema))}
    return {"structured_outputs": StructuredOutputsParams(json=json.loads(schema))}
