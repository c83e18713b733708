"""Finders of personal data used by the `pii` stage: one module per kind of finding, each a
function `text -> [(start, end), ...]` in character offsets, plus the code that merges
findings and rewrites text (`findings.py`) and the batch pre-filter (`prefilter.py`)."""
