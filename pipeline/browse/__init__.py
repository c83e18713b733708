"""Reading a finished job's output without re-running it: `pipeline inspect` (documents by
stage, reason and a validated filter), `pipeline whatif` (what other thresholds would keep,
from the columns the stages wrote) and `pipeline diff` (two runs side by side).
Guide: docs/inspect.md."""
