"""The Bytewax dataflow of `cep replay` (and, later, of `cep run`).

    input (one partition per file)          intake: type, time, catalog, lateness
      -> flat_map_batch "route"             event -> shard of its rule key, per key group;
                                            every watermark -> every shard
      -> branch: shard items | side items   side: dead letters and intake counts
      -> stateful_batch "match" per shard   Timeline order + Matcher
      -> merge -> output "sink"             sorted spill files per worker

Bytewax's own clocks follow the wall clock, and its per-key event clock
cannot see the other partitions, so event time travels in the stream: every
source batch carries its partition's watermark, the route step broadcasts
it to all shards, and each shard releases its buffered events in
(ts, partition, offset) order once the minimum watermark over the
partitions passes them (SPEC §3 rule 9, §3.1 Partitions).

Items are batches (a source batch is one item, a shard gets one list per
source batch), so the cost per event is a few list operations, not a
Bytewax step each.
"""

from __future__ import annotations

import os
import pickle
import threading
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import islice

import bytewax.operators as op
import orjson
from bytewax.dataflow import Dataflow
from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition
from bytewax.operators import StatefulBatchLogic
from bytewax.outputs import DynamicSink, StatelessSinkPartition

from cep.engine.model import DeadLetter, Stats
from cep.engine.timeline import Timeline
from cep.runtime import glue
from cep.runtime.inputs import STDIN, Partition, Reader
from cep.runtime.spill import SpillWriter

SIDE = "~side"  # the key of side items (dead letters, intake counts); never a shard name
BATCH = 2048  # lines read per source batch


@dataclass(slots=True)
class Progress:
    """Counters of this process, read by the progress bar's thread."""

    bytes_read: dict = field(default_factory=dict)  # partition index -> bytes
    lines: int = 0
    matches: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def reset(self) -> None:
        with self.lock:
            self.bytes_read.clear()
            self.lines = self.matches = 0


PROGRESS = Progress()


@dataclass(frozen=True, slots=True)
class FlowSpec:
    """Everything a worker needs to build the dataflow (picklable: it is also
    how `--processes` hands the job to the other processes)."""

    partitions: tuple[Partition, ...]
    out_dir: str  # where the sinks write their spill runs and statistics
    shards: int
    matcher: str = "nfa"  # "nfa", or "noop" (no matching: the throughput floor)
    batch: int = BATCH
    spill_limit: int = 50_000


# ---------------------------------------------------------------- source


class _PartitionSource(StatefulSourcePartition):
    """Reads one partition in batches; each batch is one item:
    (partition, accepted, dead, lines, watermark, max_ts, final); `accepted`
    holds (ts, offset, type, event)."""

    def __init__(self, index: int, part: Partition, env: glue.Env, batch: int):
        self._index = index
        self._reader = Reader(part, env.csv_typer)
        self._records = iter(self._reader)
        self._intake = env.intake(index, part.name)
        self._type_of = env.type_of
        self._batch = batch
        self._done = False

    def next_batch(self) -> list:
        if self._done:
            raise StopIteration
        accepted: list = []
        dead: list = []
        lines = 0
        intake = self._intake
        read = intake.read
        type_of = self._type_of
        for offset, raw, value in islice(self._records, self._batch):
            lines += 1
            if type(value) is DeadLetter:
                dead.append(value)
                continue
            got = read(value, offset, raw)
            if type(got) is DeadLetter:
                dead.append(got)
            else:
                accepted.append((got[0], offset, type_of(value), value))
        final = lines < self._batch
        if final:
            self._done = True
            self._reader.close()
        with PROGRESS.lock:
            PROGRESS.bytes_read[self._index] = self._reader.bytes_read
            PROGRESS.lines += lines
        return [(self._index, accepted, dead, lines, intake.watermark, intake.max_ts, final)]

    def snapshot(self) -> None:
        # Replay restarts from the beginning; resuming mid-file is `cep run`'s business.
        return None

    def close(self) -> None:
        self._reader.close()


class _Source(FixedPartitionedSource):
    def __init__(self, spec: FlowSpec, env: glue.Env, has_stdin: bool):
        self._spec = spec
        self._env = env
        self._has_stdin = has_stdin

    def list_parts(self) -> list[str]:
        # stdin is only this process's when it is the first one of a cluster
        return [f"{i:05d}" for i, part in enumerate(self._spec.partitions)
                if part.name != STDIN or self._has_stdin]

    def build_part(self, step_id: str, for_part: str, resume_state: object) -> _PartitionSource:
        index = int(for_part)
        return _PartitionSource(index, self._spec.partitions[index], self._env, self._spec.batch)


# ---------------------------------------------------------------- route


def shard_of(key: object, shards: int) -> int:
    """A stable hash (never Python's salted `hash`): the same key lands on
    the same shard in every process and every run."""
    data = key.encode() if type(key) is str else orjson.dumps(key, option=orjson.OPT_SORT_KEYS)
    return zlib.crc32(data) % shards


def make_router(env: glue.Env, shards: int) -> Callable[[list], list]:
    names = [f"s{i:04d}" for i in range(shards)]
    groups = env.groups  # [(group index, group, types or None for "every type")]
    key_of = env.key_of
    n_groups = max(len(groups), 1)

    def route(batches: list) -> list:
        out = []
        for part, accepted, dead, lines, wm, max_ts, final in batches:
            per: list[list] = [[] for _ in range(shards)]
            matched = 0
            for ts, offset, etype, event in accepted:
                hit = False
                for gi, group, types in groups:
                    if types is not None and etype not in types:
                        continue
                    key = key_of(group, event)
                    if key is None:
                        continue
                    # the position orders an event's copies for several groups in one shard
                    per[shard_of(key, shards)].append((ts, offset * n_groups + gi, (gi, event)))
                    hit = True
                matched += hit
            # the watermark goes to every shard, with or without events for it
            for i in range(shards):
                out.append((names[i], (part, per[i], wm, max_ts, final)))
            out.append((SIDE, (part, dead, lines, matched, len(accepted) - matched)))
        return out

    return route


# ---------------------------------------------------------------- match


class ShardLogic(StatefulBatchLogic):
    """The engine for the keys of one shard: the engine's Timeline (events
    released in (ts, partition, position) order below the minimum watermark of
    the open partitions) feeding a Matcher (SPEC §3.1 Partitions).

    A value is one source batch's share: (partition, items, watermark,
    max_ts, final), items being (ts, seq, (group, event))."""

    def __init__(self, env: glue.Env, partitions: int, noop: bool, state: bytes | None = None):
        if state is None:
            self._timeline = Timeline(partitions)
            self._time = None  # the last watermark given to the matcher
            self._matcher = None if noop else env.matcher()
        else:
            self._timeline, self._time, matcher = pickle.loads(state)
            self._matcher = None if noop else env.restore_matcher(matcher)

    def on_batch(self, values: list) -> tuple[list, bool]:
        timeline = self._timeline
        push = timeline.push
        for part, items, wm, max_ts, final in values:
            for ts, seq, item in items:
                push(ts, part, seq, item)
            timeline.set_watermark(part, wm)
            if final:
                timeline.close(part, max_ts)
        matches = self._release()
        if timeline.closed:
            # §3 rule 9: everything is out, the watermark was the largest time of the input
            return [("m", matches), ("stats", self._rule_stats())], StatefulBatchLogic.DISCARD
        return ([("m", matches)] if matches else []), StatefulBatchLogic.RETAIN

    def _release(self) -> list:
        """Feed the events below the frontier in timeline order, then resolve
        the deadlines at or before it."""
        timeline = self._timeline
        matcher = self._matcher
        frontier = timeline.frontier
        out: list = []
        if matcher is None:
            for _ in timeline.ready():
                pass
            return out
        on_event = matcher.on_event
        for ts, (group, event) in timeline.ready():
            got = on_event(ts, event, group)
            if got:
                out.extend(got)
        if frontier is not None and (self._time is None or frontier > self._time):
            self._time = frontier
            got = matcher.on_time(frontier)
            if got:
                out.extend(got)
        return out

    def _rule_stats(self) -> Stats:
        stats = Stats()
        if self._matcher is not None:
            # only the per-rule counters: events and relevance are counted once, at the route
            stats.rules = self._matcher.stats.rules
        return stats

    def snapshot(self) -> bytes:
        matcher = None if self._matcher is None else self._matcher.snapshot()
        return pickle.dumps((self._timeline, self._time, matcher), protocol=pickle.HIGHEST_PROTOCOL)


# ---------------------------------------------------------------- sink


class _SinkPart(StatelessSinkPartition):
    """Per worker: matches and dead letters into sorted spill runs; statistics
    into `w<worker>.stats` at the end."""

    def __init__(self, spec: FlowSpec, worker: int):
        self._dir = spec.out_dir
        self._worker = worker
        self._matches = SpillWriter(spec.out_dir, f"w{worker:04d}-m", spec.spill_limit)
        self._dead = SpillWriter(spec.out_dir, f"w{worker:04d}-d", spec.spill_limit)
        self._stats = Stats()

    def write_batch(self, items: list) -> None:
        stats = self._stats
        for key, value in items:
            if key == SIDE:
                part, dead, lines, matched, irrelevant = value
                stats.events += lines
                stats.matched_against += matched
                stats.irrelevant += irrelevant
                for letter in dead:
                    stats.dead_letters[letter.reason] += 1
                    self._dead.add([part, letter.offset if isinstance(letter.offset, int) else 0],
                                   orjson.dumps(letter.to_json()))
                continue
            kind, payload = value
            if kind == "m":
                for m in payload:
                    self._matches.add([m.end_ts, m.rule, m.sort_key()[2].decode(), m.start_ts],
                                      orjson.dumps(m.to_json()))
                if payload:
                    with PROGRESS.lock:
                        PROGRESS.matches += len(payload)
            else:
                stats.merge(payload)

    def close(self) -> None:
        self._matches.close()
        self._dead.close()
        path = os.path.join(self._dir, f"w{self._worker:04d}.stats")
        with open(path, "wb") as fh:
            fh.write(orjson.dumps(self._stats.to_json()))


class _Sink(DynamicSink):
    def __init__(self, spec: FlowSpec):
        self._spec = spec

    def build(self, step_id: str, worker_index: int, worker_count: int) -> _SinkPart:
        return _SinkPart(self._spec, worker_index)


# ---------------------------------------------------------------- flow


def build_flow(spec: FlowSpec, env: glue.Env, has_stdin: bool = True) -> Dataflow:
    """`has_stdin`: this process reads the `-` partition (in a cluster, process 0 does)."""
    flow = Dataflow("cep_replay")
    batches = op.input("read", flow, _Source(spec, env, has_stdin))
    routed = op.flat_map_batch("route", batches, make_router(env, spec.shards))
    split = op.branch("split", routed, lambda item: item[0] != SIDE)
    nparts = len(spec.partitions)
    noop = spec.matcher == "noop"
    matched = op.stateful_batch(
        "match", split.trues, lambda state: ShardLogic(env, nparts, noop, state))
    op.output("sink", op.merge("all", matched, split.falses), _Sink(spec))
    return flow
