"""Helpers of the `extract` stage (the extraction engines)."""
