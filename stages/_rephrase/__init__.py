"""Private helpers of the `rephrase` stage: prompts, chunking, post-checks and engines."""
