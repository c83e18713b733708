"""Checks of the engine settings that every LLM stage (`rephrase`, `annotate`) shares:
`model`/`tokenizer` folders and the one options block that matches `engine`. Each stage's
pydantic validators call these, so the rules and their messages live once."""

from __future__ import annotations

import os

from pydantic import ValidationInfo


def model_folder(value: str | None, info: ValidationInfo) -> str | None:
    """A `model` or `tokenizer` folder made absolute; for openai, `model` is a served name."""
    engine = info.data.get("engine")
    if value is None or engine == "openai" and info.field_name == "model":
        return value
    return local_folder(value, info.field_name, mounted_ok=engine == "vllm",
                        base_dir=(info.context or {}).get("base_dir"))


def options_match_engine(value, info: ValidationInfo):
    """The `vllm:`/`openai:`/`transformers:` block is given only for the chosen engine."""
    engine, name = info.data.get("engine"), info.field_name
    if value is not None and engine != name:
        raise ValueError(f"`{name}:` options are given but engine is {engine!r}; remove "
                         f"them or set engine: {name}")
    if value is None and engine == name == "openai":
        raise ValueError("engine openai needs `openai: {base_url: http://host:8000/v1}`")
    return value


def local_folder(path: str, what: str, mounted_ok: bool, base_dir: str | None) -> str:
    """`path` made absolute (relative paths start at the spec's folder) if it exists here.
    An absolute path that does not is accepted for vllm: a volume mounted on the GPU workers
    need not be mounted on the driver."""
    expanded = os.path.expanduser(path)
    full = os.path.normpath(os.path.join(base_dir or os.getcwd(), expanded))
    if os.path.exists(full):
        return full
    if mounted_ok and os.path.isabs(expanded):
        return path
    raise ValueError(f"{what} folder not found: {path!r}; give a local folder (models are "
                     "never downloaded at run time: fetch one once, e.g. `huggingface-cli "
                     "download NAME --local-dir /models/NAME`, and give that path)")
