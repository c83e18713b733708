"""Heuristic quality rules used by the `quality` stage, one module per rule set.

The package name starts with an underscore so the stage registry, which imports every
public module of `stages/`, does not take it for a stage.
"""

from stages._quality.base import Rule, RuleConfig
from stages._quality.c4 import C4
from stages._quality.document import Document
from stages._quality.fineweb import FineWeb
from stages._quality.gopher_quality import GopherQuality
from stages._quality.gopher_repetition import GopherRepetition

RULES: dict[str, type[Rule]] = {cls.name: cls for cls in
                                (GopherQuality, GopherRepetition, C4, FineWeb)}
# Short names for groups of rules, as a spec writes them (`rules: [gopher, c4]`).
ALIASES: dict[str, tuple[str, ...]] = {"gopher": ("gopher_quality", "gopher_repetition")}

__all__ = ["ALIASES", "RULES", "Document", "Rule", "RuleConfig"]
