"""Length-sorted, token-budget batches, and the retry that halves a batch when the GPU runs
out of memory.

Web pages differ in length by orders of magnitude. Batching them in arrival order pads every
row to the batch's longest one; sorted by length, rows of similar length share a batch and
padding nearly vanishes. A token budget (rows x longest row) instead of a fixed row count
keeps each forward pass about the same size: many short rows or a few long ones.
"""

from __future__ import annotations

from typing import Callable, Sequence, TypeVar

Row = TypeVar("Row")


def token_budget_batches(lengths: Sequence[int], budget: int) -> list[list[int]]:
    """Row indices, longest first, cut so that each batch's padded size (rows x its longest
    row) stays within `budget`. A row longer than the budget is a batch of its own."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    batches: list[list[int]] = []
    for i in order:
        # rows come longest first, so a batch's first row is its longest
        if batches and (len(batches[-1]) + 1) * lengths[batches[-1][0]] <= budget:
            batches[-1].append(i)
        else:
            batches.append([i])
    return batches


def halve_on_out_of_memory(rows: list[Row], run: Callable[[list[Row]], list],
                           release: Callable[[], None] = lambda: None) -> list:
    """`run(rows)`; when it runs out of GPU memory, `release()` and run each half in turn
    (recursively), so a batch that does not fit costs time, never the job. A single row that
    does not fit raises, saying so."""
    try:
        return list(run(rows))
    except Exception as exc:  # noqa: BLE001 - anything but out-of-memory is re-raised
        if not is_out_of_memory(exc):
            raise
        if len(rows) == 1:
            raise MemoryError("one document does not fit in GPU memory even alone; lower "
                              "max_length, or give the stage a larger GPU") from exc
    # retried outside the except block, so the failed attempt's tensors can be freed first
    release()
    half = len(rows) // 2
    return (halve_on_out_of_memory(rows[:half], run, release)
            + halve_on_out_of_memory(rows[half:], run, release))


def is_out_of_memory(exc: BaseException) -> bool:
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is needed to run a model at all
        return False
    if isinstance(exc, torch.OutOfMemoryError):  # torch.cuda.OutOfMemoryError is this class
        return True
    # older CUDA paths raise a plain RuntimeError (e.g. cuBLAS failing to allocate)
    return isinstance(exc, RuntimeError) and ("out of memory" in str(exc)
                                              or "CUBLAS_STATUS_ALLOC_FAILED" in str(exc))
