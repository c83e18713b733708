"""Split long documents into chunks of about `chunk_tokens` model tokens; join the outputs.

A model rewrites a few hundred tokens well and a long page badly (it summarises, skips or
runs out of `max_tokens`), so long documents are rephrased chunk by chunk. Cuts fall at token
boundaries, preferably where a paragraph ends, else a line, else a sentence, within the last
half of the window; the chunks are exact slices of the text, so together they are the
document. Outputs are joined with a blank line.

Tokens are counted with the model's own tokenizer (a `tokenizers.Tokenizer`, batched in Rust).
Without one (an `openai` engine with no local `tokenizer:`), words stand in for tokens.
"""

from __future__ import annotations

import re
from typing import Sequence

_WORD = re.compile(r"\S+")
_SENTENCE_END = re.compile(r"[.!?\u3002\uff01\uff1f][\"')\]\u201d\u2019]*\s*$")


class Chunker:
    def __init__(self, chunk_tokens: int | None, tokenizer=None):
        self.chunk_tokens = chunk_tokens
        self.tokenizer = tokenizer

    def split(self, texts: Sequence[str | None]) -> list[list[str]]:
        """Chunks of each text; an empty or missing text has none."""
        present = [i for i, t in enumerate(texts) if t and t.strip()]
        chunks: list[list[str]] = [[] for _ in texts]
        if not self.chunk_tokens:
            for i in present:
                chunks[i] = [texts[i]]
            return chunks
        for i, offsets in zip(present, self._offsets([texts[i] for i in present])):
            chunks[i] = split_at_tokens(texts[i], offsets, self.chunk_tokens)
        return chunks

    def _offsets(self, texts: list[str]) -> list[list[tuple[int, int]]]:
        if self.tokenizer is None:
            return [[m.span() for m in _WORD.finditer(t)] for t in texts]
        encodings = self.tokenizer.encode_batch(texts, add_special_tokens=False)
        return [[span for span in e.offsets if span[1] > span[0]] for e in encodings]


def split_at_tokens(text: str, offsets: list[tuple[int, int]], size: int) -> list[str]:
    """Slices of `text` of at most `size` tokens each (by `offsets`), cut at good places."""
    if len(offsets) <= size:
        return [text]
    cuts = [0]
    first = 0  # index of the first token of the current chunk
    while len(offsets) - first > size:
        end = first + size  # the token that no longer fits
        best = max(range(first + max(1, size // 2), end + 1),
                   key=lambda k: (_boundary(text, offsets, k), k))
        cuts.append(offsets[best][0])
        first = best
    cuts.append(len(text))
    return [text[a:b] for a, b in zip(cuts, cuts[1:]) if a < b]


def _boundary(text: str, offsets, k: int) -> int:
    """How good a cut is just before token `k`: 3 paragraph, 2 line, 1 sentence, 0 other."""
    before = text[offsets[k - 1][0]:offsets[k][0]]
    if "\n\n" in before or "\n\r\n" in before:
        return 3
    if "\n" in before:
        return 2
    return 1 if _SENTENCE_END.search(before) else 0


def reassemble(outputs: Sequence[str]) -> str:
    return "\n\n".join(part.strip() for part in outputs if part.strip())
