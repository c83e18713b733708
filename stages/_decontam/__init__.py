"""Helpers of the `decontam` stage (n-grams, the benchmark index, the report command)."""
