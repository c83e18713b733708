"""Helpers of the `dedup_spans` stage."""
