"""The Bytewax dataflow of `cep replay`.

    input (one partition per file)          read a chunk, parse, intake (type, time,
                                            catalog, lateness) and route, in one loop:
                                            event -> shard of its rule key, per key group;
                                            every watermark -> every shard
      -> branch: shard items | side items   side: dead letters and intake counts
      -> stateful_batch "match" per shard   ReplayShard: (ts, partition, position) order + Matcher
      -> merge -> output "sink"             sorted spill files per worker

Bytewax's own clocks follow the wall clock, and its per-key event clock
cannot see the other partitions, so event time travels in the stream: every
source batch carries its partition's watermark to all shards, and each shard
releases its buffered events in (ts, partition, offset) order once the
minimum watermark over the partitions passes them (SPEC §3 rule 9, §3.1
Partitions).

Items are batches (a source batch gives one item per shard and one side
item), so Bytewax's cost is per batch, not per event; one worker has one
shard. Per event the source does one orjson.loads, a few dict lookups and an
append (the common case inline: a flat string type, an integer epoch-ms
time; anything else through the engine's Intake, so dead letters read the
same), and the shard a sort of mostly ordered tuples and the Matcher call.
"""

from __future__ import annotations

import os
import pickle
from bisect import bisect_left
import threading
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from itertools import islice

import bytewax.operators as op
import orjson
from bytewax.dataflow import Dataflow
from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition
from bytewax.operators import StatefulBatchLogic
from bytewax.outputs import DynamicSink, StatelessSinkPartition

from cep.engine.model import CATALOG, DeadLetter, Stats, json_bytes
from cep.engine.timefmt import MAX_MS, MIN_MS
from cep.runtime import glue
from cep.runtime.inputs import CHUNK, STDIN, Partition, Reader
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
    batch: int = BATCH  # CSV records per source batch
    chunk: int = CHUNK  # JSON lines: bytes read per source batch
    spill_limit: int = 50_000


# ---------------------------------------------------------------- source


class _PartitionSource(StatefulSourcePartition):
    """Reads one partition and routes it in the same loop: each call reads one
    large chunk (JSON lines) or `batch` records (CSV), runs the intake and
    hands every shard its share at once. The items are

        (shard name, (partition, events, watermark, max_ts, final))   one per shard
        (SIDE, (partition, dead letters, lines, matched, irrelevant))

    `events` holds `(ts, partition, position, group, event)` tuples; the
    position orders an event's copies for several key groups."""

    def __init__(self, index: int, part: Partition, env: glue.Env, spec: FlowSpec):
        self._index = index
        self._reader = Reader(part, env.csv_typer)
        self._jsonl = part.fmt == "jsonl"
        self._records = None if self._jsonl else iter(self._reader)
        self._intake = env.intake(index, part.name)
        self._source = part.name
        self._spec = spec
        self._env = env
        self._router = _Router(env, spec.shards)
        self._number = 0  # JSON lines: the line number of the last line read
        self._done = False
        settings = env.settings
        # the inline intake (below) covers flat type/time fields with epoch-ms
        # integers; anything else goes through the Intake itself
        self._flat = ("." not in settings.type_field and "." not in settings.time_field
                      and settings.time_format in ("auto", "epoch_ms"))

    def next_batch(self) -> list:
        if self._done:
            raise StopIteration
        if self._jsonl:
            lines, final = self._reader.read_lines(self._spec.chunk)
            got = self._read_jsonl(lines, final)
        else:
            records = list(islice(self._records, self._spec.batch))
            final = len(records) < self._spec.batch
            got = self._read_records(records)
        if final:
            self._done = True
            self._reader.close()
        per, dead, n_lines, matched, irrelevant = got
        intake = self._intake
        wm, max_ts, part = intake.watermark, intake.max_ts, self._index
        with PROGRESS.lock:
            PROGRESS.bytes_read[part] = self._reader.bytes_read
            PROGRESS.lines += n_lines
        # the watermark goes to every shard, with or without events for it
        out = [(name, (part, events, wm, max_ts, final)) for name, events in zip(self._router.names, per)]
        out.append((SIDE, (part, dead, n_lines, matched, irrelevant)))
        return out

    def _read_records(self, records: list):
        router = self._router
        per = router.empty()
        dead: list = []
        matched = 0
        type_of = self._env.type_of
        read = self._intake.read
        part = self._index
        for offset, raw, value in records:
            if type(value) is DeadLetter:
                dead.append(value)
                continue
            got = read(value, offset, raw)
            if type(got) is DeadLetter:
                dead.append(got)
            else:
                matched += router.route(per, got[0], part, offset, type_of(value), value)
        return per, dead, len(records), matched, len(records) - len(dead) - matched

    def _read_jsonl(self, lines: list, ended: bool):
        """The fused loop: parse, intake and route per line, with the common
        case (a flat string type, an integer epoch-ms time, not late) inline and
        everything else through the Intake (so dead letters read exactly as the
        Intake words them)."""
        router = self._router
        per = router.empty()
        dead: list = []
        matched = 0
        part = self._index
        intake = self._intake
        settings = self._env.settings
        type_field, time_field, lateness = settings.type_field, settings.time_field, settings.lateness_ms
        validator = self._env.validator
        checkers = self._env.catalog_checks
        flat = self._flat
        type_of = self._env.type_of
        route = router.route
        inline = router.inline is not None
        if inline:
            in_group, in_types, in_key = router.inline
            in_list = per[0]
        loads = orjson.loads
        decode_error = orjson.JSONDecodeError
        # sentinels instead of None, so the common case is two int comparisons:
        # `low` is below every integer orjson reads; while `top` is `low` the
        # fast path has not moved it and the Intake's own max_ts stands
        low = -(1 << 63) - 1
        max_ts = intake.max_ts
        top = low if max_ts is None else max_ts
        wm = intake.watermark
        floor = low if wm is None else wm
        first = self._number + 1
        number = first - 1
        final_number = first + len(lines) - 1 if ended else -1  # a final line has no newline
        blank = 0
        for line in lines:
            number += 1
            try:
                event = loads(line)
            except decode_error:
                if not line.strip():
                    blank += 1
                    continue  # a blank line is not an event (documented in `cep replay --help`)
                event = None
            if type(event) is not dict:
                # the Reader's own dead letter, from the line as the file had it
                # (orjson's error positions count the newline)
                raw = line if number == final_number else line + b"\n"
                dead.append(self._reader.jsonl_record(number, raw)[2])
                continue
            if flat:
                etype = event.get(type_field)
                ts = event.get(time_field)
                if type(etype) is str and etype and type(ts) is int and ts >= floor and MIN_MS <= ts <= MAX_MS:
                    # §3 rule 9: the partition's watermark is its largest time minus the lateness
                    if ts > top:
                        top = ts
                        if ts - lateness > floor:
                            floor = ts - lateness
                    # the validator only for an event the precheck cannot vouch for
                    if validator is not None and (check := checkers.get(etype)) is not None and not check(event):
                        problem = validator(etype, event)
                        if problem is not None:
                            dead.append(DeadLetter(CATALOG, problem, self._source, number,
                                                   line.decode("utf-8", "replace").rstrip("\r\n")))
                            continue
                    if inline:
                        # _Router.inline: one shard, one key group keyed by one flat field
                        if (in_types is None or etype in in_types) and event.get(in_key) is not None:
                            in_list.append((ts, part, number, in_group, event))
                            matched += 1
                    else:
                        matched += route(per, ts, part, number, etype, event)
                    continue
            # the general path: the Intake itself, with its state brought up to date
            if top != low:
                intake.max_ts = top
            # raw text only for a dead letter: decoding every line would cost more than the rest
            got = intake.read(event, number)
            top = low if intake.max_ts is None else intake.max_ts
            wm = intake.watermark
            floor = low if wm is None else wm
            if type(got) is DeadLetter:
                dead.append(DeadLetter(got.reason, got.detail, got.source, got.offset,
                                       line.decode("utf-8", "replace").rstrip("\r\n")))
                continue
            matched += route(per, got[0], part, number, type_of(event), event)
        if top != low:
            intake.max_ts = top
        self._number = number
        n_lines = len(lines) - blank
        return per, dead, n_lines, matched, n_lines - len(dead) - matched

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
        return _PartitionSource(index, self._spec.partitions[index], self._env, self._spec)


# ---------------------------------------------------------------- route


def shard_of(key: object, shards: int) -> int:
    """A stable hash (never Python's salted `hash`): the same key lands on
    the same shard in every process and every run."""
    data = key.encode() if type(key) is str else json_bytes(key, option=orjson.OPT_SORT_KEYS)
    return zlib.crc32(data) % shards


def shard_names(shards: int) -> list[str]:
    return [f"s{i:04d}" for i in range(shards)]


class _Router:
    """Puts accepted events into per-shard lists, once per key group whose
    rules can use the event's type and whose key the event has (architecture:
    matched against). `route` returns 1 for a matched-against event, else 0
    (irrelevant: no shard sees it, so no Matcher call for it)."""

    __slots__ = ("names", "_shards", "_groups", "_n_groups", "route", "inline")

    def __init__(self, env: glue.Env, shards: int):
        self.names = shard_names(shards)
        self._shards = shards
        program = env.program
        getters = getattr(program, "key_getters", None)
        self._groups = [(gi, types, getters[g] if getters is not None else partial(env.key_of, g))
                        for gi, g, types in env.groups]
        self._n_groups = max(len(self._groups), 1)
        if shards == 1 and len(self._groups) == 1:
            self.route = self._one_shard_one_group()
        else:
            self.route = self._general
        # (group, types, key field) when the source may route in its own loop:
        # one shard, one key group, keyed by one flat field (program: a missing
        # or null key field means no key)
        self.inline = None
        key_groups = getattr(program, "key_groups", ())
        if shards == 1 and len(self._groups) == 1 and len(key_groups) == 1:
            fields = key_groups[0].fields
            if len(fields) == 1 and len(fields[0]) == 1:
                gi, types, _ = self._groups[0]
                self.inline = (gi, types, fields[0][0])

    def empty(self) -> list[list]:
        return [[] for _ in range(self._shards)]

    def _one_shard_one_group(self) -> Callable:
        # the common case, unrolled: no hashing, no loop over groups
        gi, types, getter = self._groups[0]

        def route(per: list, ts: int, part: int, offset: int, etype: object, event: dict) -> int:
            if (types is None or etype in types) and getter(event) is not None:
                per[0].append((ts, part, offset, gi, event))
                return 1
            return 0

        return route

    def _general(self, per: list, ts: int, part: int, offset: int, etype: object, event: dict) -> int:
        shards = self._shards
        n_groups = self._n_groups
        hit = 0
        for gi, types, getter in self._groups:
            if types is not None and etype not in types:
                continue
            key = getter(event)
            if key is None:
                continue
            per[0 if shards == 1 else shard_of(key, shards)].append((ts, part, offset * n_groups + gi, gi, event))
            hit = 1
        return hit


# ---------------------------------------------------------------- match


class ReplayShard(StatefulBatchLogic):
    """Replay's shard: the same order as the engine's Timeline — events
    released in (ts, partition, position) order once below the minimum
    watermark of the open partitions, everything once all are closed, then the
    deadlines at or before that frontier (SPEC §3 rule 9, §3.1 Partitions) —
    kept as one list that is sorted per batch instead of a heap push and pop
    per event: replay input is mostly in time order, so the sort is a linear
    scan and the cut a bisection.

    A value is one source batch's share: (partition, events, watermark,
    max_ts, final), events being (ts, partition, position, group, event)."""

    def __init__(self, env: glue.Env, partitions: int, noop: bool, state: bytes | None = None):
        if state is None:
            self._buf: list = []
            self._wm: list = [None] * partitions  # per partition, never moves back
            self._closed = [False] * partitions
            self._max: list = [None] * partitions  # largest time read per partition
            self._time = None  # the last watermark given to the matcher
            self._matcher = None if noop else env.matcher()
        else:
            self._buf, self._wm, self._closed, self._max, self._time, matcher = pickle.loads(state)
            self._matcher = None if noop else env.restore_matcher(matcher)

    def on_batch(self, values: list) -> tuple[list, bool]:
        buf = self._buf
        wms, closed, tops = self._wm, self._closed, self._max
        for part, events, wm, max_ts, final in values:
            if events:
                buf += events
            cur = wms[part]
            if wm is not None and (cur is None or wm > cur):
                wms[part] = wm
            # max_ts covers every event of the partition read so far, this shard's included
            top = tops[part]
            if max_ts is not None and (top is None or max_ts > top):
                tops[part] = max_ts
            if final:
                closed[part] = True
        done = all(closed)
        matches = self._release(done)
        if done:
            # §3 rule 9: everything is out, the watermark was the largest time of the input
            return [("m", matches), ("stats", self._rule_stats())], StatefulBatchLogic.DISCARD
        return ([("m", matches)] if matches else []), StatefulBatchLogic.RETAIN

    def _frontier(self, done: bool) -> int | None:
        if done:
            top = None
            for value in (*self._max, *self._wm):
                if value is not None and (top is None or value > top):
                    top = value
            return top
        low = None
        for p, wm in enumerate(self._wm):
            if self._closed[p]:
                continue
            if wm is None:
                return None
            if low is None or wm < low:
                low = wm
        return low

    def _release(self, done: bool) -> list:
        frontier = self._frontier(done)
        buf = self._buf
        if done:
            buf.sort()  # (ts, partition, position) is unique: the event dicts are never compared
            ready, self._buf = buf, []
        elif frontier is None or not buf:
            ready = ()
        else:
            buf.sort()
            cut = bisect_left(buf, (frontier,))  # the first event at or after the frontier
            if cut == len(buf):
                ready, self._buf = buf, []
            else:
                ready = buf[:cut]
                del buf[:cut]
        matcher = self._matcher
        out: list = []
        if matcher is None:
            return out
        matcher.on_batch(ready, out)
        if frontier is not None and (self._time is None or frontier > self._time):
            self._time = frontier
            got = matcher.on_time(frontier)
            if got:
                out += got
        return out

    def _rule_stats(self) -> Stats:
        stats = Stats()
        if self._matcher is not None:
            # only the per-rule counters: events and relevance are counted once, at the source
            stats.rules = self._matcher.stats.rules
        return stats

    def snapshot(self) -> bytes:
        matcher = None if self._matcher is None else self._matcher.snapshot()
        return pickle.dumps((self._buf, self._wm, self._closed, self._max, self._time, matcher),
                            protocol=pickle.HIGHEST_PROTOCOL)


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
                                   json_bytes(letter.to_json()))
                continue
            kind, payload = value
            if kind == "m":
                for m in payload:
                    self._matches.add([m.end_ts, m.rule, m.sort_key()[2].decode(), m.start_ts],
                                      json_bytes(m.to_json()))
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
            fh.write(json_bytes(self._stats.to_json()))


class _Sink(DynamicSink):
    def __init__(self, spec: FlowSpec):
        self._spec = spec

    def build(self, step_id: str, worker_index: int, worker_count: int) -> _SinkPart:
        return _SinkPart(self._spec, worker_index)


# ---------------------------------------------------------------- flow


def build_flow(spec: FlowSpec, env: glue.Env, has_stdin: bool = True) -> Dataflow:
    """`has_stdin`: this process reads the `-` partition (in a cluster, process 0 does).
    The source routes its events itself (`_Router`): the shards and the side
    items leave the input step already keyed."""
    flow = Dataflow("cep_replay")
    routed = op.input("read", flow, _Source(spec, env, has_stdin))
    split = op.branch("split", routed, lambda item: item[0] != SIDE)
    nparts = len(spec.partitions)
    noop = spec.matcher == "noop"
    matched = op.stateful_batch(
        "match", split.trues, lambda state: ReplayShard(env, nparts, noop, state))
    op.output("sink", op.merge("all", matched, split.falses), _Sink(spec))
    return flow
