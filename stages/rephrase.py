"""`rephrase`: rewrite documents with an instruction model (synthetic data, WRAP-style).

Each document (split into chunks of about `chunk_tokens` model tokens when long) is sent to a
model with a style's prompt - `wikipedia`, `qa`, `distill`, `extract_knowledge`,
`knowledge_list` (see `stages/_rephrase/prompts.py`) - or with a `prompt:` of the user's
that may name other columns (`{title}`); the chunk outputs are joined again.

Modes:
- `append` (default) keeps every original row and adds one synthetic row per document and
  style, right after its parent: `id` = xxh3(parent id + ":" + style), `parent_id`, `style`,
  `synthetic: true`, and the parent's other columns (url, source, lang, license ...). Original
  rows get `synthetic: false`. The stage returns more rows than it received; the runner
  counts them as `added` (in + added = kept + rejected).
- `replace` rewrites `text` in place and keeps the input in `original_text`.

A generation that fails a post-check (`checks:`; empty, truncated, refusal, length ratio,
language) is rejected with a `rephrase:*` reason: in append mode the synthetic row, in replace
mode the document (its rejected row holds the failed output and `original_text`).

Engines (`engine:`): `vllm` on GPU workers (production), `openai` for any OpenAI-compatible
endpoint, `transformers` on the CPU or one GPU for small jobs and tests. Sampling is seeded
per prompt (`seed`, default 0), so a re-run or a resumed shard yields the same texts.
"""

from __future__ import annotations

from typing import Literal

import pyarrow as pa
import xxhash
from pydantic import Field, ValidationInfo, field_validator

from pipeline.registry import register
from pipeline.stage import (Resources, Stage, StageConfig, StageOutput, reason, reasons_or_none,
                            with_column)
from stages._rephrase.checks import CODE, Checker, ChecksConfig
from stages._rephrase.chunking import Chunker, reassemble
from stages._rephrase.engines import Sampling, build_engine
from stages._rephrase.engines.openai import OpenAIOptions
from stages._rephrase.engines.settings import model_folder, options_match_engine
from stages._rephrase.engines.transformers import TransformersOptions
from stages._rephrase.engines.vllm import VllmOptions
from stages._rephrase.prompts import DEFAULT_SYSTEM, STYLES, Template, placeholders

CUSTOM_STYLE = "custom"


class RephraseConfig(StageConfig):
    # Field order matters: each validator sees the fields declared above it.
    engine: Literal["vllm", "openai", "transformers"] = Field(
        "vllm", description="vllm (GPU workers), openai (HTTP endpoint), transformers (CPU)")
    model: str = Field(description="local model folder (vllm, transformers) or the model name "
                       "the endpoint serves (openai)")
    tokenizer: str | None = Field(None, description="local tokenizer folder; default: the "
                                  "model's (openai: none, chunks counted in words)")
    mode: Literal["append", "replace"] = Field(
        "append", description="append synthetic rows, or replace text (keeps original_text)")
    prompt: str | None = Field(None, description="own template: {text} and {column} names")
    system: str | None = Field(None, description="system message (default: the style's)")
    style: str | list[str] = Field(
        "wikipedia", description=f"one or more of {', '.join(STYLES)}; with `prompt`, a label "
        "for the rows it makes (default: custom)")
    chunk_tokens: int | None = Field(512, ge=16, description="split longer documents into "
                                     "chunks of about this many tokens; null: never")
    temperature: float = Field(0.7, ge=0, le=2)
    top_p: float = Field(0.9, gt=0, le=1)
    max_tokens: int = Field(1024, ge=1, description="tokens generated per chunk at most")
    seed: int = Field(0, ge=0, description="sampling seed; same seed, same outputs")
    checks: ChecksConfig = Field(default_factory=ChecksConfig, description="post-checks: "
                                 "empty, truncated, refusal, min_ratio, max_ratio, lang, ...")
    vllm: VllmOptions | None = Field(None, validate_default=True, description="engine vllm: "
                                     "tensor_parallel_size, gpus_per_replica, max_model_len, "
                                     "max_num_seqs, gpu_memory_utilization, ...")
    openai: OpenAIOptions | None = Field(None, validate_default=True, description="engine "
                                         "openai: base_url, api_key_env, max_concurrency, "
                                         "timeout_s, max_retries, ...")
    transformers: TransformersOptions | None = Field(
        None, validate_default=True, description="engine transformers: device, dtype, "
        "batch_size, cpus")

    @field_validator("model", "tokenizer")
    @classmethod
    def _local_folder(cls, value, info: ValidationInfo):
        return model_folder(value, info)

    @field_validator("prompt")
    @classmethod
    def _prompt_placeholders(cls, value):
        if value is not None:
            placeholders(value)  # raises with the offending placeholder
        return value

    @field_validator("style")
    @classmethod
    def _known_styles(cls, value, info: ValidationInfo):
        labels = [value] if isinstance(value, str) else list(value)
        if info.data.get("prompt") is not None:
            if len(labels) != 1 or labels[0] in STYLES or not labels[0].isidentifier():
                raise ValueError("with `prompt:`, style is one new label for the rows it makes "
                                 "(e.g. style: my_summary), not a built-in style")
            return value
        unknown = [s for s in labels if s not in STYLES]
        if unknown:
            raise ValueError(f"unknown style {unknown[0]!r}; use one of {', '.join(STYLES)}, "
                             "or write your own `prompt:`")
        if len(set(labels)) != len(labels):
            raise ValueError("a style is listed twice")
        if info.data.get("mode") == "replace" and len(labels) > 1:
            raise ValueError("mode replace rewrites text once: give one style")
        return value

    @field_validator("vllm", "openai", "transformers")
    @classmethod
    def _options_match_engine(cls, value, info: ValidationInfo):
        options_match_engine(value, info)
        if info.field_name == "vllm" and value is not None and value.max_model_len:
            chunk, limit = info.data.get("chunk_tokens"), value.max_model_len
            if chunk and chunk + info.data.get("max_tokens", 0) > limit:
                raise ValueError(f"chunk_tokens ({chunk}) + max_tokens "
                                 f"({info.data.get('max_tokens')}) exceed vllm.max_model_len "
                                 f"({limit}), leaving no room for the prompt; lower one or "
                                 "raise max_model_len")
        return value

    def engine_options(self):
        return getattr(self, self.engine)


@register
class Rephrase(Stage):
    name = "rephrase"
    config_model = RephraseConfig
    description = ("Rewrite documents with an LLM (styles or a prompt): append synthetic rows "
                   "or replace text; engines vllm, openai, transformers.")

    # -- contract ------------------------------------------------------------------------------
    def requires(self):
        cfg = self.config
        columns = ["text"] + (["id"] if cfg.mode == "append" else [])
        columns += [c for c in self._template_columns() if c not in columns]
        if cfg.checks.lang:
            columns.append("lang")
        return tuple(columns)

    def produces(self):
        if self.config.mode == "replace":
            return ("original_text", "style", "rephrase_tokens")
        return ("parent_id", "style", "synthetic", "rephrase_tokens")

    def resources(self) -> Resources:
        cfg = self.config
        if cfg.engine == "vllm":
            options = cfg.vllm or VllmOptions()
            return Resources(cpus=options.cpus, gpus=options.gpus,
                             wait_for_gpus=options.wait_for_gpus)
        if cfg.engine == "transformers":
            options = cfg.transformers or TransformersOptions()
            return Resources(cpus=options.cpus, gpus=1.0 if options.device == "cuda" else 0.0)
        return Resources(cpus=1.0)

    def packages(self) -> dict[str, str]:
        extras = {"vllm": "gpu", "transformers": "llm"}  # openai: httpx, a core dependency
        engine = self.config.engine
        return {engine: extras[engine]} if engine in extras else {}

    def setup(self) -> None:
        cfg = self.config
        self.engine = build_engine(cfg.engine, cfg.model, cfg.engine_options(), cfg.tokenizer)
        self.chunker = Chunker(cfg.chunk_tokens, self.engine.chunking_tokenizer())
        self.checker = Checker(cfg.checks)
        self.checker.setup_language()
        self.templates = self._templates()
        self.sampling = Sampling(cfg.temperature, cfg.top_p, cfg.max_tokens, cfg.seed)

    # -- the batch function --------------------------------------------------------------------
    def process(self, table: pa.Table) -> StageOutput:
        texts = table["text"].to_pylist()
        chunks = self.chunker.split(texts)
        outputs, tokens, reasons = self._rephrase(table, texts, chunks)
        if self.config.mode == "replace":
            return self._replace(table, chunks, outputs, tokens, reasons)
        return self._append(table, chunks, outputs, tokens, reasons)

    def _rephrase(self, table, texts, chunks):
        """Generate every (document, style) pair; return its output, tokens and reason."""
        row_columns = {c: table[c].to_pylist() for c in self._template_columns() if c != "text"}
        prompts, owners = [], []
        for doc, doc_chunks in enumerate(chunks):
            row = {c: values[doc] for c, values in row_columns.items()}
            for style, (_, template) in enumerate(self.templates):
                for chunk in doc_chunks:
                    prompts.append(template.chat(chunk, row))
                    owners.append((doc, style))
        generations = self.engine.generate(prompts, self.sampling) if prompts else []
        parts: dict[tuple[int, int], list] = {}
        for owner, generation in zip(owners, generations):
            parts.setdefault(owner, []).append(generation)
        outputs, tokens, reasons = {}, {}, {}
        for (doc, style), gens in parts.items():
            outputs[doc, style] = reassemble([g.text for g in gens])
            tokens[doc, style] = sum(g.n_tokens for g in gens)
            reasons[doc, style] = next(
                (r for g in gens if (r := self.checker.generation_reason(g))), None) or \
                self.checker.ratio_reason(outputs[doc, style], texts[doc])
        if "lang" in table.column_names:
            langs = table["lang"].to_pylist()
            todo = [key for key in parts if reasons[key] is None]
            found = self.checker.language_reasons([outputs[k] for k in todo],
                                                  [langs[k[0]] for k in todo])
            reasons.update({k: r for k, r in zip(todo, found) if r})
        return outputs, tokens, reasons

    def _append(self, table, chunks, outputs, tokens, reasons) -> StageOutput:
        n = table.num_rows
        base = _with_default(table, "parent_id", pa.nulls(n, pa.string()))
        base = _with_default(base, "style", pa.nulls(n, pa.string()))
        base = _with_default(base, "synthetic", pa.array([False] * n, pa.bool_()))
        base = _with_default(base, "rephrase_tokens", pa.nulls(n, pa.int64()))
        pairs = [(doc, style) for doc in range(n) if chunks[doc]
                 for style in range(len(self.templates))]
        parents = base.take(pa.array([doc for doc, _ in pairs], pa.int64()))
        parent_ids = [str(i) for i in parents["id"].to_pylist()]
        labels = [self.templates[style][0] for _, style in pairs]
        new = {"id": pa.array([xxhash.xxh3_64_hexdigest(f"{p}:{s}".encode())
                               for p, s in zip(parent_ids, labels)], pa.string()),
               "text": pa.array([outputs[k] for k in pairs], pa.string()),
               "parent_id": pa.array(parent_ids, pa.string()),
               "style": pa.array(labels, pa.string()),
               "synthetic": pa.array([True] * len(pairs), pa.bool_()),
               "rephrase_tokens": pa.array([tokens[k] for k in pairs], pa.int64())}
        for column, values in new.items():
            parents = with_column(parents, column, values.cast(base.schema.field(column).type))
        # Each synthetic row right after its parent: (doc, 0) original, (doc, 1 + k) synthetic.
        order = sorted(range(n + len(pairs)),
                       key=lambda i: (i, 0) if i < n else (pairs[i - n][0], 1 + i))
        combined = pa.concat_tables([base, parents]).take(pa.array(order, pa.int64()))
        row_reasons = [None] * n + [reasons[k] for k in pairs]
        return StageOutput(combined, reasons_or_none([row_reasons[i] for i in order]))

    def _replace(self, table, chunks, outputs, tokens, reasons) -> StageOutput:
        n = table.num_rows
        label = self.templates[0][0]
        texts = table["text"].to_pylist()
        new_text = [outputs.get((doc, 0), texts[doc]) for doc in range(n)]
        row_reasons = [reasons.get((doc, 0)) if chunks[doc] else reason(CODE, "empty_input")
                       for doc in range(n)]
        out = with_column(table, "original_text", table["text"])
        out = with_column(out, "text", pa.array(new_text, pa.string()))
        out = with_column(out, "style", pa.array([label] * n, pa.string()))
        out = with_column(out, "rephrase_tokens",
                          pa.array([tokens.get((doc, 0)) for doc in range(n)], pa.int64()))
        return StageOutput(out, reasons_or_none(row_reasons))

    # -- helpers -------------------------------------------------------------------------------
    def _templates(self) -> list[tuple[str, Template]]:
        cfg = self.config
        if cfg.prompt is not None:
            return [(style_labels(cfg)[0], Template(cfg.prompt, cfg.system or DEFAULT_SYSTEM))]
        return [(label, Template(STYLES[label].user, cfg.system or STYLES[label].system))
                for label in style_labels(cfg)]

    def _template_columns(self) -> list[str]:
        prompt = getattr(self.config, "prompt", None)
        return placeholders(prompt) if prompt else ["text"]


def style_labels(config: RephraseConfig) -> list[str]:
    style = getattr(config, "style", "wikipedia")
    if config.prompt is not None and "style" not in config.model_fields_set:
        return [CUSTOM_STYLE]
    return [style] if isinstance(style, str) else list(style)


def _with_default(table: pa.Table, name: str, values: pa.Array) -> pa.Table:
    """`table` with column `name`, added as `values` only if an earlier stage did not."""
    return table if name in table.column_names else table.append_column(name, values)
