"""`Engine`: one API over intake, timeline and matcher, for `cep test`, the
tests, and any single-process use (docs/architecture.md "cep.engine").

    eng = Engine(program, StreamSettings(lateness_ms=30_000), partitions=2)
    eng.feed(event, partition=0, source="a.jsonl", offset=1, raw=line)
    eng.finish()
    eng.take_matches(), eng.take_dead_letters(), eng.stats

Each partition has its own `Intake` (per-partition lateness and watermark,
§3.1 Partitions); accepted events go through the `Timeline`, which releases
them in (time, partition, position) order below the minimum watermark; the
`Matcher` consumes them in that order and resolves deadlines up to that
minimum. No I/O, no clock: time is only what the events and `advance` say.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from cep.compile.catalog import catalog_validator
from cep.engine.intake import Intake
from cep.engine.matcher import Matcher
from cep.engine.model import DeadLetter, Match, Stats, StreamSettings
from cep.engine.timeline import Timeline


class Engine:
    def __init__(self, program, settings: StreamSettings | None = None, partitions: int = 1,
                 max_runs_per_key: int = 1000, sources: Sequence[str] | None = None) -> None:
        if partitions < 1:
            raise ValueError("an engine needs at least one partition")
        if sources is not None and len(sources) != partitions:
            raise ValueError(f"{len(sources)} source names for {partitions} partitions")
        self.program = program
        self.settings = settings if settings is not None else StreamSettings()
        catalog = getattr(program, "catalog", None)
        validator = catalog_validator(catalog) if catalog else None
        names = list(sources) if sources is not None else ["-"] * partitions
        self._intakes = [Intake(self.settings, validator, p, names[p]) for p in range(partitions)]
        self._seq = [0] * partitions  # the position of the next event in each partition
        self._timeline = Timeline(partitions)
        self._matcher = Matcher(program, max_runs_per_key=max_runs_per_key,
                                type_field=self.settings.type_field)
        self._time: int | None = None  # the last watermark handed to the matcher
        self._matches: list[Match] = []
        self._dead: list[DeadLetter] = []
        self._events = 0
        self._dead_counts: Counter = Counter()
        self._finished = False

    # -- input -----------------------------------------------------------

    def feed(self, event: object, partition: int = 0, source: str | None = None, offset: object = None,
             raw: str | None = None) -> None:
        """One event of one partition, in the partition's input order. `source`
        overrides the partition's name in a dead letter (e.g. a file of a glob)."""
        if self._finished:
            raise RuntimeError("feed after finish: the input has already ended")
        self._events += 1
        intake = self._intakes[partition]
        seq = self._seq[partition]
        self._seq[partition] = seq + 1
        got = intake.read(event, seq + 1 if offset is None else offset, raw)
        if type(got) is DeadLetter:
            if source is not None and source != got.source:
                got = DeadLetter(got.reason, got.detail, source, got.offset, got.raw)
            self._dead.append(got)
            self._dead_counts[got.reason] += 1
        else:
            ts, accepted = got
            self._timeline.push(ts, partition, seq, accepted)
        # a catalog dead letter has moved the watermark too (§3.1)
        self._timeline.set_watermark(partition, intake.watermark)
        self._drain()

    def advance(self, watermark_ms: int) -> None:
        """Move time on without an event: every partition's watermark becomes at
        least `watermark_ms` (live idle-advance; the silence at the end of a rule
        test). Events that then arrive below it are late."""
        if self._finished:
            raise RuntimeError("advance after finish: the input has already ended")
        for p, intake in enumerate(self._intakes):
            intake.advance(watermark_ms)
            self._timeline.set_watermark(p, intake.watermark)
        self._drain()

    def close(self, partition: int) -> None:
        """One partition's input ended: it no longer holds the watermark back."""
        self._timeline.close(partition, self._intakes[partition].max_ts)
        self._drain()

    def finish(self) -> None:
        """End of input (§3 rule 9): the watermark becomes the largest event time of
        all partitions; everything buffered is matched and deadlines up to it resolve."""
        if self._finished:
            return
        for p, intake in enumerate(self._intakes):
            self._timeline.close(p, intake.max_ts)
        self._finished = True
        self._drain()

    def _drain(self) -> None:
        matcher = self._matcher
        out = self._matches
        for ts, event in self._timeline.ready():
            out.extend(matcher.on_event(ts, event))  # resolves deadlines <= ts first
        frontier = self._timeline.frontier
        if frontier is not None and (self._time is None or frontier > self._time):
            self._time = frontier
            out.extend(matcher.on_time(frontier))

    # -- output ----------------------------------------------------------

    def take_matches(self) -> list[Match]:
        """The matches emitted since the last call, in timeline (completion) order."""
        got, self._matches = self._matches, []
        return got

    def take_dead_letters(self) -> list[DeadLetter]:
        got, self._dead = self._dead, []
        return got

    @property
    def watermark(self) -> int | None:
        """The last watermark handed to the matcher (deadlines up to it have resolved)."""
        return self._time

    @property
    def matcher(self):
        """The matcher, for `cep test` to describe live runs of a failing test."""
        return self._matcher

    @property
    def stats(self) -> Stats:
        """A fresh `Stats`: events fed and dead letters counted here; relevance and
        per-rule counters from the matcher."""
        stats = Stats()
        stats.merge(self._matcher.stats)
        stats.events = self._events
        stats.dead_letters = Counter(self._dead_counts)
        return stats
