"""How many threads `encode_batch` may use inside one worker.

`tokenizers` encodes a batch on Rayon's global pool, which is sized once per process from
RAYON_NUM_THREADS (default: every core of the machine) and switched off per call by
TOKENIZERS_PARALLELISM=false. Ray runs one worker per CPU it was asked for, so a pool of
every core per worker would oversubscribe the node: the pool follows the stage's `cpus`.
"""

from __future__ import annotations

import os


def limit_threads(cpus: float) -> int:
    """Set the environment before the first encode; returns the threads a batch gets.

    One CPU: no pool at all (the batch is encoded on the calling thread, no hand-offs).
    More: a pool of that many threads, unless the process already built one (another stage
    in the same worker encoded first); its size then stays as it was."""
    threads = max(1, int(cpus))
    os.environ["TOKENIZERS_PARALLELISM"] = "true" if threads > 1 else "false"
    if threads > 1:
        os.environ["RAYON_NUM_THREADS"] = str(threads)
    return threads
