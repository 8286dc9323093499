"""The engine: Program + events -> matches, dead letters, stats (no I/O, no bytewax).

`Engine` is the one API for `cep test`, the tests and single-process use;
the dataflow uses its pieces (`Intake`, `Timeline`, `Matcher`) separately.
"""

from cep.engine.api import Engine
from cep.engine.model import DeadLetter, Match, RuleStats, Stats, StreamSettings

__all__ = ["Engine", "Match", "DeadLetter", "StreamSettings", "Stats", "RuleStats"]
