"""One vector per document from an encoder's token states, as sentence-transformers pools
them: `mean` over the real (unpadded) tokens, `cls` the first token, `max` per dimension."""

from __future__ import annotations

POOLINGS = ("mean", "cls", "max")


def pool(hidden, mask, mode: str):
    """`hidden` [rows, tokens, dim] and `mask` [rows, tokens] (1 = real token) -> [rows, dim]
    in float32."""
    hidden = hidden.float()
    if mode == "cls":
        return hidden[:, 0]
    weights = mask.unsqueeze(-1).to(hidden.dtype)
    if mode == "max":
        return hidden.masked_fill(weights == 0, -1e9).max(dim=1).values
    if mode == "mean":
        return (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1e-9)
    raise ValueError(f"unknown pooling {mode!r}; use one of {', '.join(POOLINGS)}")


def normalize(vectors):
    """Rows scaled to unit length (a zero row stays zero)."""
    import torch

    return torch.nn.functional.normalize(vectors.float(), p=2, dim=-1)
