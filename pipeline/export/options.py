"""What an export is asked for, and the rules that follow from it (token dtype, names)."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass

import numpy as np

FORMATS = ("megatron", "numpy", "jsonl")
TOKEN_FORMATS = ("megatron", "numpy")
DEFAULT_FILE_SIZE = 512 * 2**20
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(i?B)?\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class ExportOptions:
    source: str  # the finished job's output folder (local path or fsspec URL)
    out: str  # where the exported files go
    format: str = "megatron"
    tokenizer: str | None = None  # tokenizer.json or a folder holding one (token formats)
    add_bos: str | int | None = None
    add_eos: str | int | None = None
    file_size: int = DEFAULT_FILE_SIZE  # target bytes per output file
    shuffle: bool = False
    seed: int = 0
    reencode: bool = False  # never reuse the job's token_ids

    def __post_init__(self):
        if self.format not in FORMATS:
            raise ValueError(f"--format must be one of {', '.join(FORMATS)}, not {self.format!r}")
        if self.format in TOKEN_FORMATS and not self.tokenizer:
            raise ValueError(f"--format {self.format} needs --tokenizer (a tokenizer.json or "
                             "a folder holding one)")
        if self.file_size < 1:
            raise ValueError("--file-size must be positive")

    def as_dict(self) -> dict:
        return asdict(self)


def parse_size(text: str) -> int:
    """'512MB', '1GiB', '2e6'-free plain numbers: bytes (K/M/G/T are powers of 1024)."""
    found = _SIZE.match(text)
    if not found:
        raise ValueError(f"not a size: {text!r} (e.g. 512MB, 1GB, 1048576)")
    number, unit = float(found.group(1)), found.group(2).upper()
    return int(number * 1024 ** " KMGT".index(unit or " "))


def token_dtype(vocab_size: int, format: str) -> np.dtype:
    """The narrowest dtype that holds every id of the vocabulary: uint16 when all ids are
    below 2^16, else uint32; Megatron's index has no uint32 code, so int32 there."""
    if vocab_size <= 2**16:
        return np.dtype(np.uint16)
    return np.dtype(np.int32 if format == "megatron" else np.uint32)
