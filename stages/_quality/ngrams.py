"""Word n-gram repetition measures (Gopher), vectorised with numpy.

Words arrive as 64-bit hashes with their lengths. The n-grams of every order are hashed by
extending the (n-1)-gram hash at the same position with one more word, and order n only
looks at positions whose (n-1)-gram occurs more than once: an n-gram that repeats starts
with an (n-1)-gram that repeats. On ordinary prose that set shrinks fast, so the orders
5..10 cost little after the first sort.

Measures, as fractions of the document's characters (`text_chars`):
- top n-gram: occurrences of the most frequent n-gram x its length in characters (words and
  the spaces between them). 0 when no n-gram occurs twice: a text without repeats has no
  repetition to measure. Ties between equally frequent n-grams take the longest.
- duplicate n-grams: characters of the words covered by an occurrence of an n-gram that
  appeared earlier in the text, each character counted once.
All results depend only on which words are equal, never on the hash values themselves, so
they are the same in every process.
"""

from __future__ import annotations

import numpy as np

_MIX = np.uint64(0x100000001B3)  # odd multiplier: spreads one hash before the next is xored in


def repetition(hashes: np.ndarray, lengths: np.ndarray, text_chars: int,
               top_orders: tuple[int, ...], dup_orders: tuple[int, ...]) -> dict[int, float]:
    """{n: fraction} for each order in `top_orders` (top n-gram) and `dup_orders` (duplicates).

    `hashes` (uint64) and `lengths` (int64) describe the words in order.
    """
    results = {n: 0.0 for n in (*top_orders, *dup_orders)}
    count = len(hashes)
    if not results or count == 0 or text_chars <= 0:
        return results
    top, dup = set(top_orders), set(dup_orders)
    first_order, last_order = min(results), max(results)
    starts = np.arange(count)
    grams = hashes
    chars = lengths
    for n in range(1, last_order + 1):
        if n > 1:
            fits = starts + (n - 1) < count
            starts, grams, chars = starts[fits], grams[fits], chars[fits]
            nxt = starts + (n - 1)
            grams = (grams * _MIX) ^ hashes[nxt]
            chars = chars + lengths[nxt] + 1
        if n < first_order:
            continue  # nothing measured at this order; the next one starts from all positions
        if starts.size < 2:
            break  # nothing can repeat any more; the remaining orders stay 0
        occurrences, later = _occurrences(grams)
        if n in top:
            most = occurrences.max()
            if most > 1:
                results[n] = float(most * chars[occurrences == most].max()) / text_chars
        if n in dup:
            results[n] = _covered_chars(starts[later], n, lengths) / text_chars
        repeated = occurrences > 1
        starts, grams, chars = starts[repeated], grams[repeated], chars[repeated]
    return results


def _occurrences(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each element: how often its value occurs, and whether an earlier one is equal."""
    order = np.argsort(values, kind="stable")  # stable: equal values keep position order
    ordered = values[order]
    starts_group = np.empty(values.size, dtype=bool)
    starts_group[0] = True
    np.not_equal(ordered[1:], ordered[:-1], out=starts_group[1:])
    bounds = np.flatnonzero(np.append(starts_group, True))
    sizes = np.diff(bounds)
    occurrences = np.empty(values.size, dtype=np.int64)
    occurrences[order] = np.repeat(sizes, sizes)
    later = np.empty(values.size, dtype=bool)
    later[order] = ~starts_group
    return occurrences, later


def _covered_chars(span_starts: np.ndarray, n: int, lengths: np.ndarray) -> float:
    """Characters of the words inside any of the spans [start, start + n), counted once,
    with the spaces between covered neighbours."""
    if span_starts.size == 0:
        return 0.0
    edges = np.zeros(lengths.size + 1, dtype=np.int64)
    edges[span_starts] += 1  # starts are distinct, so plain fancy indexing adds each once
    edges[span_starts + n] -= 1
    covered = np.cumsum(edges[:-1]) > 0
    words = int(covered.sum())
    runs = int(covered[0]) + int(np.count_nonzero(covered[1:] & ~covered[:-1]))
    return float(lengths[covered].sum() + (words - runs))
