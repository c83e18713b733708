"""Helpers of the `tokenize` stage: finding and loading the tokenizer file, special tokens,
and the Rust thread pool's size."""
