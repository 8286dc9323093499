"""`cep run`: the replay dataflow on live sources and sinks (SPEC §5).

    input "read"      one partition per source partition (Kafka partition, Redis
                      stream, file): connector reader + Intake, batches as replay's
      -> route          each event to the shard of its rule key, per key group;
                      every watermark to every shard
      -> stateful_batch "match"   the engine's Timeline (with idle partitions) + Matcher
      -> output "sink"  one sink partition: matches to --sink, dead letters to
                      --dead-letter, failed webhook deliveries to the dead letters

The replay builder (`dataflow.build_flow`) reads files and writes sorted
spill runs; it takes no other source or sink, and its routing and shard
internals are tuned for files. This module builds the same shape of flow
from the engine's public pieces (Intake, Timeline, Matcher, `Env`), so the
matches are the same by construction of the engine, not by sharing code.

Time (SPEC §3 rule 9, §3.1 Partitions). Without `--idle-advance` the shards
do exactly what replay does, so the matches equal `cep replay`'s on the same
events (only the moment they are written differs). With `--idle-advance D`,
a partition that has read nothing for D of wall-clock time is *idle*: its
source sends, every tick, the watermark moved on with the clock (its largest
event time plus the wall time since that event arrived, minus the lateness)
and its Intake adopts it, so later events below it are late. A shard leaves
idle partitions out of the minimum; when every partition is idle the
watermark is the largest of their clock watermarks. An event that reaches a
shard below the time it has already resolved (a partition that went idle
and came back) is dead-lettered as `late`.

Recovery: Bytewax recovery (`--recovery-dir`), whose partition database is
created on first use. A source partition's snapshot is its connector
position (Kafka offset, Redis stream id, file line) with its Intake's
watermark; the shards snapshot their buffer and Matcher; the sink snapshots
each writer (a file's length: a restart cuts back to it, so a file sink
holds no duplicate).

Stop: SIGTERM or SIGINT sets a flag; every source partition then ends, the
dataflow drains, the sink flushes, Bytewax writes the last snapshot, and the
process exits 0. The shards keep their state (no end-of-input flush), so a
restart continues where the stop left off.
"""

from __future__ import annotations

import logging
import os
import pickle
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import bytewax.operators as op
from bytewax.dataflow import Dataflow
from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition
from bytewax.operators import StatefulBatchLogic
from bytewax.outputs import FixedPartitionedSink, StatefulSinkPartition

from cep.engine.model import LATE, DeadLetter, Stats, json_bytes
from cep.engine.timeline import Timeline
from cep.runtime import metrics
from cep.runtime.connectors import log, open_source, open_writer
from cep.runtime.connectors.uri import parse
from cep.runtime.dataflow import shard_of
from cep.runtime.replay import free_ports
from cep.runtime.glue import Env, EnvSpec

SHARDS_PER_WORKER = 32
SIDE = "~side"  # the key of side items (dead letters, intake counts); never a shard name
STOP = threading.Event()  # set by SIGTERM / SIGINT: every source partition ends
IDLE = "idle"
OUT = "out"  # the one sink partition


@dataclass(frozen=True, slots=True)
class LiveSpec:
    """Everything a process needs to run its share (picklable, for `--processes`)."""

    env: EnvSpec
    source: str
    sink: str
    dead_letter: str
    workers: int = 1
    processes: int = 1
    recovery_dir: str | None = None
    snapshot_interval_s: float = 10.0
    backup_interval_s: float = 0.0
    idle_advance_ms: int | None = None
    metrics_port: int | None = None
    metrics_host: str = "127.0.0.1"
    batch: int = 1000
    webhook: dict = field(default_factory=dict)  # WebhookWriter options
    addresses: tuple[str, ...] = ()

    @property
    def shards(self) -> int:
        return SHARDS_PER_WORKER * self.workers * self.processes


# ---------------------------------------------------------------- source


GAUGE_EVERY_MS = 1000  # how often a shard recounts its live runs for cep_live_runs


def _wall_ms() -> int:
    return time.time_ns() // 1_000_000


class _LivePartition(StatefulSourcePartition):
    """One source partition: each batch is one item shaped as replay's,
    (partition, accepted, dead, lines, watermark, max_ts, final), where
    `final` is False, True (a finite source ended) or ("idle", clock watermark)."""

    def __init__(self, index: int, name: str, reader, intake, type_of, idle_ms: int | None, batch: int,
                 lateness_ms: int):
        self._index = index
        self._name = name
        self._reader = reader
        self._intake = intake
        self._type_of = type_of
        self._idle_ms = idle_ms
        self._batch = batch
        self._lateness = lateness_ms
        now = _wall_ms()
        self._last_read = now  # wall time of the last record (a restart counts as one)
        self._max_arrived = now  # wall time the partition's largest event time arrived
        self._tick = max(50, min(1000, (idle_ms or 0) // 10))
        self._next_tick = 0
        self._awake: datetime | None = None
        self._done = False
        self._seq = 0
        self._events_in = metrics.EVENTS_IN.labels(partition=name)
        self._lag = metrics.WATERMARK_LAG.labels(partition=name)

    def next_batch(self) -> list:
        if self._done or STOP.is_set():
            raise StopIteration
        records = self._reader.poll(self._batch)
        now = _wall_ms()
        if not records:
            if self._reader.ended:
                self._done = True
                return [self._item([], [], 0, True)]
            self._awake = datetime.now(timezone.utc) + timedelta(milliseconds=20)
            return self._idle(now)
        self._awake = None
        self._last_read = now
        intake = self._intake
        read = intake.read
        type_of = self._type_of
        accepted: list = []
        dead: list = []
        before = intake.max_ts
        for offset, raw, value in records:
            if type(value) is DeadLetter:
                dead.append(value)
                continue
            got = read(value, offset, raw)
            if type(got) is DeadLetter:
                dead.append(got)
            else:
                # the router orders ties by an int position: Kafka offsets and file lines are
                # ints; Redis stream ids are not, so they get the partition's own count
                self._seq += 1
                accepted.append((got[0], offset if type(offset) is int else self._seq, type_of(value), value))
        if intake.max_ts != before:
            self._max_arrived = now
        self._events_in.inc(len(records))
        return [self._item(accepted, dead, len(records), False)]

    def _idle(self, now: int) -> list:
        """§3 rule 9 in live runs: after D of silence the watermark moves on with the clock."""
        if self._idle_ms is None or now - self._last_read < self._idle_ms or now < self._next_tick:
            return []
        self._next_tick = now + self._tick
        mark = None
        if self._intake.max_ts is not None:
            mark = self._intake.max_ts + (now - self._max_arrived) - self._lateness
            self._intake.advance(mark)  # events below it are late from now on
        return [self._item([], [], 0, (IDLE, mark))]

    def _item(self, accepted: list, dead: list, lines: int, final: object) -> tuple:
        wm = self._intake.watermark
        if wm is not None:
            self._lag.set(max(0.0, (_wall_ms() - wm) / 1000))
        return (self._index, accepted, dead, lines, wm, self._intake.max_ts, final)

    def next_awake(self) -> datetime | None:
        return self._awake

    def snapshot(self) -> tuple:
        return (self._reader.position(), self._intake.max_ts, self._intake.watermark, self._done, self._seq)

    def close(self) -> None:
        self._reader.close()


class _LiveSource(FixedPartitionedSource):
    def __init__(self, spec: LiveSpec, env: Env, process_id: int):
        self._spec = spec
        self._env = env
        self._process_id = process_id
        self._source = open_source(parse(spec.source, "source"), csv_typer=env.csv_typer, batch=spec.batch)
        self.names = self._source.partitions()

    def list_parts(self) -> list[str]:
        # stdin belongs to the first process only; every other source is reachable from all
        if self._spec.source == "-" and self._process_id:
            return []
        return [f"{i:05d}" for i in range(len(self.names))]

    def build_part(self, step_id: str, for_part: str, resume_state: object) -> _LivePartition:
        index = int(for_part)
        name = self.names[index]
        position, max_ts, watermark, done, seq = resume_state if resume_state is not None else (
            None, None, None, False, 0)
        intake = self._env.intake(index, name)
        if max_ts is not None:
            intake.max_ts = max_ts
        if watermark is not None:
            intake.advance(watermark)
        settings = self._env.settings
        part = _LivePartition(index, name, self._source.open(index, position), intake, self._env.type_of,
                              self._spec.idle_advance_ms, self._spec.batch, settings.lateness_ms)
        part._seq = seq
        if done:
            part._done = True  # a finite source that ended before the restart stays ended
        if resume_state is not None:
            log.info("resumed %s at %r", name, position)
        return part


# ---------------------------------------------------------------- shards


class LiveTimeline(Timeline):
    """The engine's Timeline plus idle partitions (`--idle-advance`, SPEC §3.1
    Partitions): an idle partition does not hold the frontier back; when every
    open partition is idle the frontier is the largest of their clock watermarks."""

    __slots__ = ("_idle",)

    def __init__(self, partitions: int) -> None:
        super().__init__(partitions)
        self._idle: dict[int, int | None] = {}

    def __getstate__(self) -> tuple:
        return (super().__getstate__(), self._idle)

    def __setstate__(self, state: tuple) -> None:
        base, self._idle = state
        super().__setstate__(base)

    def set_idle(self, partition: int, mark: int | None) -> None:
        self._idle[partition] = mark

    def set_active(self, partition: int) -> None:
        self._idle.pop(partition, None)

    @property
    def frontier(self) -> int | None:
        idle = self._idle
        if not idle or self.closed:
            return Timeline.frontier.fget(self)
        active = [w for p, w in enumerate(self._wm) if not self._closed[p] and p not in idle]
        if active:
            return None if any(w is None for w in active) else min(active)
        marks = [m for p, m in idle.items() if not self._closed[p] and m is not None]
        return max(marks) if marks else None


def make_router(env: Env, shards: int):
    """Source batches -> one item per shard (its events and the partition's
    watermark) and one side item (dead letters and counts)."""
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
            # the watermark (and idleness) goes to every shard, with or without events for it
            for i in range(shards):
                out.append((names[i], (part, per[i], wm, max_ts, final)))
            out.append((SIDE, (part, dead, lines, matched, len(accepted) - matched)))
        return out

    return route


class LiveShardLogic(StatefulBatchLogic):
    """The keys of one shard: a LiveTimeline releasing events in (ts,
    partition, position) order below the frontier, feeding a Matcher. An
    event below the time this shard has already resolved (its partition was
    idle and came back) is a dead letter, never fed out of order."""

    def __init__(self, env: Env, names: list[str], state: bytes | None = None):
        if state is None:
            self._timeline = LiveTimeline(len(names))
            self._time: int | None = None  # the last frontier given to the matcher
            self._matcher = env.matcher()
        else:
            self._timeline, self._time, matcher = pickle.loads(state)
            self._matcher = env.restore_matcher(matcher)
        self._names = names
        self._groups = max(len(env.groups), 1)
        self._gauge_at = 0  # wall ms of the last cep_live_runs update

    def on_batch(self, values: list) -> tuple[list, bool]:
        timeline = self._timeline
        late: dict = {}
        for part, items, wm, max_ts, final in values:
            for ts, seq, item in items:
                if self._time is not None and ts < self._time:
                    late[(part, id(item[1]))] = (ts, part, seq // self._groups, item[1])  # once per event
                else:
                    timeline.push(ts, part, seq, item)
            timeline.set_watermark(part, wm)
            if type(final) is tuple:  # (IDLE, clock watermark)
                timeline.set_idle(part, final[1])
            else:
                timeline.set_active(part)
                if final:
                    timeline.close(part, max_ts)
        out: list = [("d", [self._late(*got) for got in late.values()])] if late else []
        matches = self._release()
        if matches:
            out.append(("m", matches))
        if timeline.closed:
            # every partition ended (files, stdin): §3 rule 9, as replay
            metrics.set_live_runs(id(self), 0)
            return out + [("stats", self._rule_stats())], StatefulBatchLogic.DISCARD
        now = _wall_ms()
        if now - self._gauge_at >= GAUGE_EVERY_MS:
            # counting walks every live state: at most once a second, not per batch
            self._gauge_at = now
            metrics.set_live_runs(id(self), self._matcher.live_runs)
        return out, StatefulBatchLogic.RETAIN

    def _late(self, ts: int, part: int, offset: int, event: dict) -> DeadLetter:
        return DeadLetter(LATE, f"the event's time {ts} is below the watermark {self._time} already reached "
                          "while its partition was idle (--idle-advance)", self._names[part], offset,
                          json_bytes(event).decode())

    def _release(self) -> list:
        """Feed the events below the frontier in timeline order, then resolve the
        deadlines at or before it (§3.1 Ties: a deadline before an event of its time)."""
        timeline = self._timeline
        matcher = self._matcher
        frontier = timeline.frontier
        out: list = []
        for ts, (group, event) in timeline.ready():
            got = matcher.on_event(ts, event, group)
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
        stats.rules = self._matcher.stats.rules  # events are counted once, at the source
        return stats

    def snapshot(self) -> bytes:
        return pickle.dumps((self._timeline, self._time, self._matcher.snapshot()),
                            protocol=pickle.HIGHEST_PROTOCOL)


# ---------------------------------------------------------------- sink


class _OutPart(StatefulSinkPartition):
    """Matches to the sink writer, dead letters to the dead-letter writer. The
    webhook's failed deliveries arrive from its sender threads, hence the lock."""

    def __init__(self, spec: LiveSpec, resume: dict | None):
        resume = resume or {}
        self._lock = threading.Lock()
        self._dead = open_writer(parse(spec.dead_letter, "dead-letter"), "dead_letter", resume.get("d"), None)
        self._matches = open_writer(parse(spec.sink, "sink"), "match", resume.get("m"), self._failed,
                                    **spec.webhook)

    def _failed(self, letter: DeadLetter) -> None:
        metrics.DELIVERY_FAILED.inc()
        self._write_dead([letter])

    def _write_dead(self, letters: list) -> None:
        with self._lock:
            self._dead.write([d.to_json() for d in letters])
        for d in letters:
            metrics.DEAD_LETTERS.labels(reason=d.reason).inc()

    def write_batch(self, values: list) -> None:
        matches: list = []
        dead: list = []
        for is_side, value in values:
            if is_side:
                dead.extend(value[1])  # (partition, dead, lines, matched, irrelevant)
                continue
            kind, payload = value
            if kind == "m":
                matches.extend(payload)
            elif kind == "d":
                dead.extend(payload)
        if dead:
            self._write_dead(dead)
        if matches:
            self._matches.write([m.to_json() for m in matches])
            for m in matches:
                metrics.MATCHES.labels(rule=m.rule, output=m.output).inc()

    def snapshot(self) -> dict:
        # matches first: a webhook drains its queue, which may add dead letters
        m = self._matches.snapshot()
        with self._lock:
            d = self._dead.snapshot()
        return {"m": m, "d": d}

    def close(self) -> None:
        self._matches.close()
        with self._lock:
            self._dead.close()


class _Out(FixedPartitionedSink):
    def __init__(self, spec: LiveSpec):
        self._spec = spec

    def list_parts(self) -> list[str]:
        return [OUT]

    def part_fn(self, item_key: str) -> int:
        return 0

    def build_part(self, step_id: str, for_part: str, resume_state: object) -> _OutPart:
        return _OutPart(self._spec, resume_state)


# ---------------------------------------------------------------- flow


def build_live_flow(spec: LiveSpec, env: Env, process_id: int = 0) -> Dataflow:
    flow = Dataflow("cep_run")
    source = _LiveSource(spec, env, process_id)
    names = source.names
    batches = op.input("read", flow, source)
    routed = op.flat_map_batch("route", batches, make_router(env, spec.shards))
    split = op.branch("split", routed, lambda item: item[0] != SIDE)
    matched = op.stateful_batch("match", split.trues, lambda state: LiveShardLogic(env, names, state))
    out = op.map("to_sink", op.merge("all", matched, split.falses),
                 lambda item: (OUT, (item[0] == SIDE, item[1])))
    op.output("sink", out, _Out(spec))
    return flow


# ---------------------------------------------------------------- running


def setup_logging() -> None:
    root = logging.getLogger("cep.run")
    if not root.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s cep run[%(process)d] %(levelname)s %(message)s"))
        root.addHandler(handler)
        root.setLevel(logging.INFO)
        root.propagate = False


def _on_signal(signum: int, _frame) -> None:
    if STOP.is_set():
        return
    log.info("stop: %s received; draining, flushing and snapshotting", signal.Signals(signum).name)
    STOP.set()


def install_stop_handlers() -> None:
    """SIGTERM / SIGINT: a graceful stop (flush, snapshot, exit 0), not Python's default exit."""
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)


def recovery_partitions(spec: LiveSpec) -> int:
    return spec.workers * spec.processes


def prepare_recovery(spec: LiveSpec) -> None:
    """Create the recovery partition database on first use (bytewax.recovery.init_db_dir)."""
    if spec.recovery_dir is None:
        return
    from bytewax.recovery import init_db_dir

    path = Path(spec.recovery_dir)
    path.mkdir(parents=True, exist_ok=True)
    if not any(path.glob("part-*.sqlite3")):
        init_db_dir(path, recovery_partitions(spec))
        log.info("recovery: created %d partitions in %s", recovery_partitions(spec), path)
    else:
        log.info("recovery: resuming from %s", path)


def run_in_process(spec: LiveSpec, process_id: int = 0) -> None:
    """This process's share of the run; returns when the sources end or a stop signal drained it."""
    from bytewax.recovery import RecoveryConfig
    from bytewax.run import cli_main

    setup_logging()
    install_stop_handlers()
    if spec.metrics_port is not None:
        port = spec.metrics_port + process_id
        metrics.serve(port, spec.metrics_host)
        log.info("metrics on http://%s:%d/metrics", spec.metrics_host, port)
    env = Env(spec.env)
    flow = build_live_flow(spec, env, process_id)
    recovery = None
    if spec.recovery_dir is not None:
        backup = timedelta(seconds=spec.backup_interval_s)
        recovery = RecoveryConfig(Path(spec.recovery_dir), backup_interval=backup)
    log.info("start: source %s, sink %s, dead letters %s, %d worker(s) in process %d of %d",
             parse(spec.source, "source").label, parse(spec.sink, "sink").label,
             parse(spec.dead_letter, "dead-letter").label, spec.workers, process_id, spec.processes)
    kwargs = {"workers_per_process": spec.workers, "epoch_interval": timedelta(seconds=spec.snapshot_interval_s),
              "recovery_config": recovery}
    if spec.processes > 1:
        kwargs.update(process_id=process_id, addresses=list(spec.addresses))
    cli_main(flow, **kwargs)
    log.info("stop: process %d finished", process_id)


def run(spec: LiveSpec, work_dir: str) -> int:
    """Run until the sources end or SIGTERM/SIGINT; the exit code."""
    setup_logging()
    prepare_recovery(spec)
    if spec.processes == 1:
        run_in_process(spec)
        return 0
    if STOP.is_set():
        return 0  # stopped before any process started
    ports = free_ports(spec.processes)
    spec = LiveSpec(**{**{f: getattr(spec, f) for f in LiveSpec.__dataclass_fields__},
                       "addresses": tuple(f"127.0.0.1:{p}" for p in ports)})
    path = os.path.join(work_dir, "cep-run-job.pickle")
    with open(path, "wb") as fh:
        pickle.dump(spec, fh)
    procs = [subprocess.Popen([sys.executable, "-m", "cep.runtime.live", path, str(i)],
                              stdin=None if i == 0 else subprocess.DEVNULL)
             for i in range(spec.processes)]

    def forward(signum: int, _frame) -> None:
        log.info("stop: %s received; passing it to the %d processes", signal.Signals(signum).name, len(procs))
        for p in procs:
            if p.poll() is None:
                p.send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    codes = [p.wait() for p in procs]
    os.unlink(path)
    if any(codes):
        log.error("a process failed (exit codes %s)", codes)
        return 1
    return 0


def main(argv: list[str]) -> int:
    """`python -m cep.runtime.live JOB PROCESS_ID`: one process of a `--processes N` run."""
    install_stop_handlers()
    path, process_id = argv[0], int(argv[1])
    with open(path, "rb") as fh:
        spec = pickle.load(fh)  # written by our own parent process, never user input
    run_in_process(spec, process_id)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
