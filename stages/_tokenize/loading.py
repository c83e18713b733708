"""Find a local `tokenizer.json`, load it with the `tokenizers` library, and turn BOS/EOS
options into token ids. Every problem is a `ValueError` naming the file or token, so
`pipeline validate` shows it on the spec's line: a tokenizer is never downloaded."""

from __future__ import annotations

import os

TOKENIZER_FILE = "tokenizer.json"
HINT = ("tokenizers are never downloaded at run time: save one once (e.g. `hf download NAME "
        "tokenizer.json --local-dir /models/NAME`) and give that file or folder")


def tokenizer_file(path: str) -> str:
    """`path` itself if it is a file, else `path/tokenizer.json`; a ValueError naming the
    file when it is not there."""
    if "://" in path:
        raise ValueError(f"{path}: give a local tokenizer.json or model folder ({HINT})")
    file = os.path.join(path, TOKENIZER_FILE) if os.path.isdir(path) else path
    if not os.path.isfile(file):
        where = f"folder {path} has no {TOKENIZER_FILE}" if os.path.isdir(path) \
            else f"tokenizer file not found: {file}"
        raise ValueError(f"{where} (relative paths start at the spec's folder); {HINT}")
    return file


def load_tokenizer(file: str):
    """The tokenizer in `file`, set to count whole documents: the truncation and padding a
    model's file carries (MiniLM's 128 tokens) are turned off."""
    from tokenizers import Tokenizer

    try:
        tokenizer = Tokenizer.from_file(file)
    except Exception as exc:  # the Rust side raises its own exception types
        raise ValueError(f"{file} is not a tokenizers tokenizer.json: {exc}") from None
    tokenizer.no_truncation()
    tokenizer.no_padding()
    return tokenizer


def special_token_id(tokenizer, token: str | int | None, option: str) -> int | None:
    """The id of a BOS/EOS option given as a token string or an id; None when unset."""
    if token is None:
        return None
    if isinstance(token, int):
        if not 0 <= token < tokenizer.get_vocab_size(with_added_tokens=True):
            raise ValueError(f"{option}: id {token} is outside the vocabulary (0.."
                             f"{tokenizer.get_vocab_size(with_added_tokens=True) - 1})")
        return token
    found = tokenizer.token_to_id(token)
    if found is None:
        raise ValueError(f"{option}: token {token!r} is not in the tokenizer's vocabulary")
    return found
