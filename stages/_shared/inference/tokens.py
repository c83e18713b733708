"""Documents to token ids: the first `max_length` tokens of each (special tokens included),
or its first chunks of that size, exactly as the tokenizer truncates them.

A web page can be megabytes long while a model reads its first few hundred tokens, so only a
prefix of each long text is tokenized: cut at a word boundary `CHARS_PER_TOKEN` characters
per wanted token in. Tokenizers split text at whitespace before anything else (WordPiece,
byte-level BPE, SentencePiece's metaspace), so the tokens of a prefix ending at a word are
the full text's first tokens. The prefix is trusted only when it yields more tokens than
are kept; otherwise (very long "words", text without spaces) the whole text is tokenized.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

CHARS_PER_TOKEN = 10  # generous: web text averages about 4.5 characters per token
_LAST_SPACE = re.compile(r"\s+\S*$")


@dataclass
class Pieces:
    """Token ids of each piece (a document, or a chunk of one) and its document's index."""

    ids: list[list[int]]
    owner: list[int]


def tokenize(tokenizer, texts: Sequence[str], max_length: int, max_chunks: int = 1) -> Pieces:
    """Each text's first `max_chunks` pieces of at most `max_length` tokens."""
    limit = max_length * max_chunks * CHARS_PER_TOKEN
    cut = [_prefix(text, limit) for text in texts]
    pieces = _chunks(tokenizer, cut, max_length)
    # A cut text that did not overflow what is kept may have lost tokens: redo it whole.
    redo = [i for i, text in enumerate(texts)
            if len(cut[i]) < len(text) and len(pieces[i]) <= max_chunks]
    for i, chunks in zip(redo, _chunks(tokenizer, [texts[i] for i in redo], max_length)):
        pieces[i] = chunks
    out = Pieces([], [])
    for i, chunks in enumerate(pieces):
        for chunk in chunks[:max_chunks]:
            out.ids.append(chunk)
            out.owner.append(i)
    return out


def _prefix(text: str, limit: int) -> str:
    """`text` up to the end of the last whole word within `limit` characters; the whole
    text when it is short or has no word boundary there."""
    if len(text) <= limit:
        return text
    head = _LAST_SPACE.search(text, 0, limit + 1)
    return text[:head.start()] if head and head.start() > 0 else text


def _chunks(tokenizer, texts: list[str], max_length: int) -> list[list[list[int]]]:
    """Every chunk of each text, as the tokenizer's truncation with overflow cuts them."""
    if not texts:
        return []
    encoded = tokenizer(texts, truncation=True, max_length=max_length,
                        return_overflowing_tokens=True, return_attention_mask=False,
                        return_token_type_ids=False)
    out: list[list[list[int]]] = [[] for _ in texts]
    for ids, owner in zip(encoded["input_ids"], encoded["overflow_to_sample_mapping"]):
        out[owner].append(ids)
    return out
