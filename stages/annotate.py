"""`annotate`: an LLM scores or labels documents into typed columns (docs/stages_annotate.md).

A preset says what is asked and what the answer holds - `edu` (additive 0-5 educational
value: `edu_score`, `edu_rationale`), `dataman` (1-5 per quality criterion, `dataman_overall`,
`dataman_domain`) - or `preset: custom` brings a `prompt:` (with `{text}` and any other
`{column}`) and an `answer:` schema. Each answer field becomes a column `<prefix>_<field>`;
`annotate_error` holds why a sent document's answer (or a part of it) could not be used.

Nothing is dropped and nothing is guessed: every row keeps its place, an unusable value is
null with its cause in `annotate_error`, and rows are rejected only when asked to -
`threshold` (below it: `annotate:edu_score=2`), `only_sample` (`annotate:not_sampled`),
`reject_errors` (`annotate:error`).

Engines are rephrase's (`stages/_rephrase/engines/`): `vllm` and `openai` enforce the answer's
JSON Schema (guided decoding, `response_format`) when `guided` is on; every answer is parsed
tolerantly all the same (`stages/_annotate/answer.py`). `sample` annotates a fraction chosen by
id hash; long documents are cut to `max_input_tokens` (`stages/_annotate/selection.py`).
"""

from __future__ import annotations

import json
import re
from typing import Literal

import numpy as np
import pyarrow as pa
from pydantic import Field, ValidationInfo, field_validator, model_validator

from pipeline.registry import register
from pipeline.stage import (EMPTY_TEXT, Resources, Stage, StageConfig, StageOutput, has_text,
                            reason, reasons_or_none, with_column)
from stages._annotate.answer import ARROW_TYPES, AnswerField, format_instructions, json_schema, \
    parse_answer
from stages._annotate.presets import CUSTOM_MAX_TOKENS, CUSTOM_SYSTEM, PRESETS, Preset
from stages._annotate.selection import Truncator, in_sample
from stages._rephrase.engines import Sampling, build_engine
from stages._rephrase.engines.openai import OpenAIOptions
from stages._rephrase.engines.transformers import TransformersOptions
from stages._rephrase.engines.vllm import VllmOptions
from stages._rephrase.prompts import Template, placeholders
from stages._rephrase.engines.settings import model_folder, options_match_engine

CODE = "annotate"
ERROR_COLUMN = "annotate_error"
_NAME = r"^[a-z][a-z0-9_]*$"


class AnnotateConfig(StageConfig):
    # Field order matters: each field validator sees the fields declared above it.
    preset: Literal["edu", "dataman", "custom"] = Field(
        "edu", description="edu (0-5 educational value), dataman (quality criteria + domain), "
        "custom (your prompt and answer schema)")
    engine: Literal["vllm", "openai", "transformers"] = Field(
        "vllm", description="vllm (GPU workers), openai (HTTP endpoint), transformers (CPU)")
    model: str = Field(description="local model folder (vllm, transformers) or the model name "
                       "the endpoint serves (openai)")
    tokenizer: str | None = Field(None, description="local tokenizer folder; default: the "
                                  "model's (openai: none, the budget counts words)")
    prompt: str | None = Field(None, description="custom: template with {text} and {column}s")
    system: str | None = Field(None, description="system message (default: the preset's)")
    answer: dict[str, AnswerField] | None = Field(
        None, description="custom: answer fields, e.g. {score: {type: int, min: 1, max: 10}}")
    prefix: str | None = Field(None, pattern=_NAME, description="column prefix (default: the "
                               "preset's name): columns are <prefix>_<field>")
    max_input_tokens: int | None = Field(2048, ge=16, description="cut longer documents to "
                                         "this many tokens; null: never")
    sample: float = Field(1.0, gt=0, le=1, description="annotate this fraction, chosen by id "
                          "hash; the others' columns stay null")
    sample_seed: int = Field(0, ge=0, description="another seed chooses another sample")
    only_sample: bool = Field(False, description="reject the rows outside the sample "
                              "(annotate:not_sampled) instead of keeping them")
    threshold: float | None = Field(None, description="reject rows whose threshold_field is "
                                    "below this (annotate:<column>=<value>)")
    threshold_field: str | None = Field(None, description="answer field compared with "
                                        "threshold (default: score, overall, or custom's "
                                        "first number)")
    reject_errors: bool = Field(False, description="reject rows whose answer could not be used "
                                "(annotate:error) instead of keeping them with annotate_error")
    guided: bool = Field(True, description="ask vllm/openai to enforce the answer's JSON "
                         "Schema (turn off for a server without response_format)")
    temperature: float = Field(0.0, ge=0, le=2, description="0: greedy")
    top_p: float = Field(1.0, gt=0, le=1)
    max_tokens: int | None = Field(None, ge=1, description="answer tokens at most (default: "
                                   "the preset's)")
    seed: int = Field(0, ge=0, description="sampling seed")
    vllm: VllmOptions | None = Field(None, validate_default=True, description="engine vllm "
                                     "options (as rephrase's)")
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

    @field_validator("answer")
    @classmethod
    def _answer_names(cls, value):
        for name in value or {}:
            if not re.match(_NAME, name):
                raise ValueError(f"answer field {name!r} must be lower-case letters, digits and "
                                 "_ (it names a column)")
        if value is not None and not value:
            raise ValueError("answer needs at least one field")
        return value

    @field_validator("vllm", "openai", "transformers")
    @classmethod
    def _options_match_engine(cls, value, info: ValidationInfo):
        options_match_engine(value, info)
        return value

    @model_validator(mode="after")
    def _preset_fits(self):
        custom = self.preset == "custom"
        if custom and (self.prompt is None or self.answer is None):
            raise ValueError("preset custom needs `prompt:` (with {text}) and `answer:` (e.g. "
                             "{score: {type: int, min: 1, max: 10}})")
        if not custom and (self.prompt is not None or self.answer is not None):
            raise ValueError(f"preset {self.preset} has its own prompt and answer; use preset: "
                             "custom for your own")
        fields = answer_fields(self)
        if self.threshold_field is not None and self.threshold_field not in fields:
            raise ValueError(f"threshold_field {self.threshold_field!r} is not an answer field "
                             f"(fields: {', '.join(fields)})")
        if self.threshold is not None and fields[threshold_field(self)].type not in (
                "int", "float"):
            raise ValueError(f"threshold compares a number; answer field "
                             f"{threshold_field(self)!r} is not one (set threshold_field)")
        limit = self.vllm.max_model_len if self.vllm else None
        if limit and self.max_input_tokens and self.max_input_tokens + answer_tokens(self) > limit:
            raise ValueError(f"max_input_tokens ({self.max_input_tokens}) + max_tokens "
                             f"({answer_tokens(self)}) exceed vllm.max_model_len ({limit}), "
                             "leaving no room for the instructions; lower one or raise it")
        return self


def preset_of(config: AnnotateConfig) -> Preset | None:
    return PRESETS.get(getattr(config, "preset", "edu"))


def answer_fields(config: AnnotateConfig) -> dict[str, AnswerField]:
    preset = preset_of(config)
    return preset.fields if preset else dict(config.answer or {})


def column_prefix(config: AnnotateConfig) -> str:
    return getattr(config, "prefix", None) or getattr(config, "preset", "edu")


def threshold_field(config: AnnotateConfig) -> str:
    """The field `threshold` compares: the configured one, the preset's main one, or the
    custom schema's first number (else its first field, which validation then refuses)."""
    if getattr(config, "threshold_field", None):
        return config.threshold_field
    preset, fields = preset_of(config), answer_fields(config)
    if preset:
        return preset.main_field
    return next((n for n, f in fields.items() if f.type in ("int", "float")), next(iter(fields)))


def answer_tokens(config: AnnotateConfig) -> int:
    preset = preset_of(config)
    return config.max_tokens or (preset.max_tokens if preset else CUSTOM_MAX_TOKENS)


@register
class Annotate(Stage):
    name = CODE
    config_model = AnnotateConfig
    description = ("Score or label documents with an LLM (presets edu, dataman, or your "
                   "prompt) into typed columns; engines vllm, openai, transformers.")

    # -- contract ------------------------------------------------------------------------------
    def requires(self):
        cfg = self.config
        columns = ["text"] + (["id"] if getattr(cfg, "sample", 1.0) < 1 else [])
        prompt = getattr(cfg, "prompt", None)
        return tuple(columns + [c for c in placeholders(prompt) if c not in columns]
                     if prompt else columns)

    def produces(self):
        prefix = column_prefix(self.config)
        return tuple(f"{prefix}_{name}" for name in answer_fields(self.config)) + (ERROR_COLUMN,)

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
        self.fields = answer_fields(cfg)
        self.prefix = column_prefix(cfg)
        self.engine = build_engine(cfg.engine, cfg.model, getattr(cfg, cfg.engine), cfg.tokenizer)
        self.truncator = Truncator(cfg.max_input_tokens, self.engine.chunking_tokenizer())
        preset = preset_of(cfg)
        self.template = Template(preset.task if preset else cfg.prompt,
                                 cfg.system or (preset.system if preset else CUSTOM_SYSTEM))
        self.instructions = format_instructions(self.fields)
        schema = json.dumps(json_schema(self.fields)) if cfg.guided else None
        self.sampling = Sampling(cfg.temperature, cfg.top_p, answer_tokens(cfg), cfg.seed,
                                 json_schema=schema)

    # -- the batch function --------------------------------------------------------------------
    def process(self, table: pa.Table) -> StageOutput:
        cfg, n = self.config, table.num_rows
        sampled = in_sample(table["id"].to_pylist(), cfg.sample, cfg.sample_seed) \
            if cfg.sample < 1 else np.ones(n, dtype=bool)
        present = has_text(table["text"])
        todo = np.flatnonzero(sampled & present)
        texts, truncated = self.truncator.cut(
            table["text"].take(pa.array(todo, pa.int64())).to_pylist())
        chats = self._chats(table, todo, texts)
        generations = self.engine.generate(chats, self.sampling) if chats else []

        values = {name: [None] * n for name in self.fields}
        errors: list[str | None] = [EMPTY_TEXT if s and not p else None
                                    for s, p in zip(sampled, present)]
        for row, generation in zip(todo, generations):
            answer, errors[row] = parse_answer(generation.text, generation.finish_reason,
                                               self.fields, self.prefix)
            for name, value in answer.items():
                values[name][row] = value
        out = table
        for name, field in self.fields.items():
            out = with_column(out, f"{self.prefix}_{name}",
                              pa.array(values[name], ARROW_TYPES[field.type]))
        out = with_column(out, ERROR_COLUMN, pa.array(errors, pa.string()))
        counters = {"annotated": len(todo), "annotate_errors": sum(e is not None for e in errors),
                    "truncated": truncated}
        scores = values[threshold_field(cfg)]
        return StageOutput(out, self.verdict(sampled, scores, errors), counters=counters)

    def _chats(self, table: pa.Table, rows: np.ndarray, texts: list[str]) -> list:
        others = [c for c in self.template.columns() if c != "text"]
        picked = table.select(others).take(pa.array(rows, pa.int64())).to_pylist() \
            if others else [{}] * len(rows)
        chats = []
        for text, row in zip(texts, picked):
            system, user = self.template.chat(text, row)
            chats.append([system, {**user, "content": user["content"] + "\n\n" +
                                   self.instructions}])
        return chats

    def verdict(self, sampled: np.ndarray, scores: list, errors: list) -> pa.Array | None:
        """One reason per row (or None when all pass) from whether it was sampled, the
        threshold field's value and the answer's error; `pipeline whatif` asks it too."""
        cfg = self.config
        column = f"{column_prefix(cfg)}_{threshold_field(cfg)}"
        reasons: list[str | None] = []
        for in_it, value, error in zip(sampled, scores, errors):
            if not in_it:
                reasons.append(reason(CODE, "not_sampled") if cfg.only_sample else None)
            elif error is not None and cfg.reject_errors:
                reasons.append(reason(CODE, "error"))
            elif cfg.threshold is not None and value is not None and value < cfg.threshold:
                reasons.append(reason(CODE, column, value))
            else:
                reasons.append(None)
        return reasons_or_none(reasons)
