"""Check a local model folder when the spec is validated, and read what the stages need to
know before loading it (labels, head type, context length, pooling).

A folder is what `save_pretrained` writes (Hugging Face format): `config.json`, the weights
(`model.safetensors`, `pytorch_model.bin`, or a sharded index and its shards) and the
tokenizer (`tokenizer.json`, or a slow tokenizer's vocabulary files). A sentence-transformers
folder (`modules.json`) may keep its transformer in a subfolder and adds `1_Pooling/`. Every
problem is a `ValueError` naming the missing file, so `pipeline validate` shows it on the
spec's line: models are never downloaded at run time.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

WEIGHTS = ("model.safetensors", "pytorch_model.bin")
WEIGHT_INDEXES = ("model.safetensors.index.json", "pytorch_model.bin.index.json")
# A fast tokenizer's one file, or the vocabulary files a slow tokenizer is built from.
TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "spiece.model", "tokenizer.model",
                   "sentencepiece.bpe.model", "vocab.json")
ST_MODULES = {"sentence_transformers.models.Transformer": "transformer",
              "sentence_transformers.models.Pooling": "pooling",
              "sentence_transformers.models.Normalize": "normalize"}
KINDS = {"classifier": ("ForSequenceClassification",),
         "causal_lm": ("ForCausalLM", "LMHeadModel"),
         "encoder": ()}  # any architecture: its base model is loaded
HINT = ("models are never downloaded at run time: fetch one once, e.g. `hf download NAME "
        "--local-dir /models/NAME`, and give that folder")


@dataclass(frozen=True)
class ModelFolder:
    path: str  # the folder as given (for a sentence-transformers folder, its root)
    transformer: str  # the folder holding config.json, weights and tokenizer
    config: dict
    max_length: int | None  # longest input the model takes, in tokens
    pooling: str | None  # from 1_Pooling/config.json; None: the folder does not say

    @property
    def labels(self) -> list[str]:
        id2label = self.config.get("id2label") or {}
        return [str(id2label[k]) for k in sorted(id2label, key=int)]

    @property
    def problem_type(self) -> str:
        """regression, single_label_classification or multi_label_classification."""
        given = self.config.get("problem_type")
        if given:
            return given
        return "regression" if len(self.labels) == 1 else "single_label_classification"


def check_model_folder(path: str, kind: str) -> str:
    """`path` (absolute) if it holds a complete model of `kind`, else a ValueError saying
    which file is missing and what to do."""
    inspect_folder(path, kind)
    return path


def inspect_folder(path: str, kind: str) -> ModelFolder:
    if "://" in path:
        raise ValueError(f"{path}: give a local folder; model stages load from local "
                         f"folders only ({HINT})")
    if not os.path.isdir(path):
        what = "a file, not a folder" if os.path.exists(path) else "not found"
        raise ValueError(f"model folder {what}: {path} (relative paths start at the spec's "
                         f"folder); {HINT}")
    transformer, pooling = _sentence_transformers_layout(path)
    config = _read_json(transformer, "config.json", "the model's configuration")
    _check_weights(transformer)
    _check_tokenizer(transformer)
    _check_architecture(transformer, config, kind)
    return ModelFolder(path, transformer, config, _max_length(path, transformer, config),
                       pooling)


def _sentence_transformers_layout(path: str) -> tuple[str, str | None]:
    """(folder of the transformer, pooling mode) of a sentence-transformers folder; a plain
    Hugging Face folder is its own transformer, with no pooling said."""
    if not os.path.isfile(os.path.join(path, "modules.json")):
        return path, None
    modules = _read_json(path, "modules.json", "the sentence-transformers module list")
    transformer, pooling = path, None
    for module in modules:
        role = ST_MODULES.get(module.get("type", ""))
        if role is None:
            raise ValueError(
                f"{path}/modules.json: module {module.get('type')!r} is not supported (the "
                "model stages run a transformer, its pooling and normalisation only; a Dense "
                "or other layer would be skipped and change the vectors)")
        folder = os.path.normpath(os.path.join(path, module.get("path", "")))
        if role == "transformer":
            transformer = folder
        elif role == "pooling":
            pooling = pooling_mode(_read_json(folder, "config.json", "the pooling settings"),
                                   folder)
    return transformer, pooling


def pooling_mode(settings: dict, where: str) -> str:
    modes = [name for name in ("cls_token", "mean_tokens", "max_tokens")
             if settings.get(f"pooling_mode_{name}")]
    others = [k for k, on in settings.items() if k.startswith("pooling_mode_") and on
              and k[len("pooling_mode_"):] not in ("cls_token", "mean_tokens", "max_tokens")]
    if len(modes) != 1 or others:
        raise ValueError(f"{where}/config.json: pooling {modes + others} is not supported; "
                         "one of cls_token, mean_tokens or max_tokens is")
    return {"cls_token": "cls", "mean_tokens": "mean", "max_tokens": "max"}[modes[0]]


def _read_json(folder: str, name: str, what: str):
    file = os.path.join(folder, name)
    if not os.path.isfile(file):
        raise ValueError(f"model folder {folder} has no {name} ({what}); {HINT}")
    try:
        with open(file, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError) as exc:
        raise ValueError(f"{file} cannot be read as JSON: {exc}") from None


def _check_weights(folder: str) -> None:
    if any(os.path.isfile(os.path.join(folder, name)) for name in WEIGHTS):
        return
    for index in WEIGHT_INDEXES:
        if os.path.isfile(os.path.join(folder, index)):
            shards = set(_read_json(folder, index, "the weight shards").get("weight_map",
                                                                             {}).values())
            missing = sorted(s for s in shards if not os.path.isfile(os.path.join(folder, s)))
            if missing:
                raise ValueError(f"model folder {folder} lacks weight shard {missing[0]} "
                                 f"(listed in {index}); copy the whole folder")
            return
    raise ValueError(f"model folder {folder} has no weights: no {WEIGHTS[0]} (or "
                     f"{', '.join(WEIGHTS[1:] + WEIGHT_INDEXES)}); copy the whole folder")


def _check_tokenizer(folder: str) -> None:
    present = [n for n in TOKENIZER_FILES if os.path.isfile(os.path.join(folder, n))]
    if present == ["vocab.json"] and not os.path.isfile(os.path.join(folder, "merges.txt")):
        raise ValueError(f"model folder {folder} has vocab.json but no merges.txt (the BPE "
                         "tokenizer's merges); copy the whole folder")
    if not present:
        raise ValueError(f"model folder {folder} has no tokenizer: no tokenizer.json (or "
                         f"{', '.join(TOKENIZER_FILES[1:])}); save the tokenizer with the "
                         "model (tokenizer.save_pretrained)")


def _check_architecture(folder: str, config: dict, kind: str) -> None:
    wanted = KINDS[kind]
    architectures = config.get("architectures") or []
    if wanted and not any(a.endswith(wanted) for a in architectures):
        shown = ", ".join(architectures) or "none named"
        raise ValueError(
            f"{folder}/config.json: architecture {shown} is not a *{wanted[0]} model; "
            + ("an encoder with a trained head is a folder with head.json and "
               "head.safetensors (docs/stages_models.md)" if kind == "classifier"
               else "perplexity needs a causal language model"))


def _max_length(path: str, transformer: str, config: dict) -> int | None:
    """The longest input the model takes: sentence-transformers' max_seq_length when set,
    else the smaller of the tokenizer's limit and the position embeddings."""
    for folder in (path, transformer):
        settings = os.path.join(folder, "sentence_bert_config.json")
        if os.path.isfile(settings):
            value = _read_json(folder, "sentence_bert_config.json", "").get("max_seq_length")
            if value:
                return int(value)
    limits = []
    positions = next((config[k] for k in ("max_position_embeddings", "n_positions",
                                          "max_seq_len") if config.get(k)), None)
    if positions:
        # RoBERTa-style models number positions from padding_idx + 1: two fewer usable
        roberta = "roberta" in config.get("model_type", "") or \
            config.get("model_type") in ("camembert", "longformer")
        limits.append(int(positions) - (2 if roberta else 0))
    tokenizer_config = os.path.join(transformer, "tokenizer_config.json")
    if os.path.isfile(tokenizer_config):
        value = _read_json(transformer, "tokenizer_config.json", "").get("model_max_length")
        if isinstance(value, (int, float)) and value < 1_000_000:  # HF writes 1e30 for "none"
            limits.append(int(value))
    return min(limits) if limits else None
