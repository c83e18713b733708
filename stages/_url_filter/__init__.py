"""Helpers of the `url_filter` stage: URL normalisation, list reading, the matcher."""
