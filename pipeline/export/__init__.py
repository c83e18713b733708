"""`pipeline export`: a finished job's kept documents (repeats included) as the files a
trainer reads: Megatron-LM indexed datasets (`.bin`/`.idx`), flat token memmaps with a
document index (OLMo/Dolma style), or JSONL; cut at a target size, optionally in a seeded
global order, resumable file by file, with a manifest of token and document counts.
Guide: docs/stages_mixture.md, "export".

Two passes over the job's storage, never through one process: `encode` (one unit per input
shard: tokens, copies, order keys, sorted) and `write` (one unit per output file: the key
range it holds, from every shard). `run` plans, resumes and runs the units in-process or as
Ray tasks.
"""
