"""Helpers of the `annotate` stage: answer schemas and their parser, prompt presets, the
deterministic sample and the token budget."""
