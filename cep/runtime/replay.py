"""Run the replay dataflow to the end and collect its output.

One process: `bytewax.testing.run_main` (1 worker) or `bytewax.run.cli_main`
(N worker threads). Several processes: this process starts N copies of
`python -m cep.runtime.worker JOB ID`, which run `cli_main` as one Bytewax
cluster talking over localhost. Either way every worker writes sorted spill
runs and statistics into one temporary directory, and `collect` merges them
into the output in `Match.sort_key()` order, so 1 and N workers write the
same bytes (SPEC §3 rule 10).
"""

from __future__ import annotations

import gc
import os
import pickle
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta

import orjson

from cep.engine.model import RuleStats, Stats
from cep.runtime import spill
from cep.runtime.dataflow import FlowSpec, build_flow
from cep.runtime.glue import Env, EnvSpec

SHARDS_PER_WORKER = 4


def shard_count(total_workers: int) -> int:
    """One shard for one worker (no hashing, one item per source batch);
    otherwise a few per worker, so Bytewax's placement of shard names on
    workers evens out. The output does not depend on it: each key's events
    reach its shard in (ts, partition, position) order whatever the count."""
    return 1 if total_workers == 1 else SHARDS_PER_WORKER * total_workers
# Replay keeps no recovery state: a snapshot (the whole matcher pickled) at each epoch
# end is pure cost, so the epoch is longer than any replay.
EPOCH = timedelta(days=365)


class ReplayFailed(Exception):
    """A worker process failed (its own error went to stderr)."""


@dataclass(frozen=True, slots=True)
class Job:
    env: EnvSpec
    flow: FlowSpec
    workers: int  # per process
    processes: int
    addresses: tuple[str, ...] = ()


def free_ports(n: int) -> list[int]:
    """n free loopback ports, for the processes of a Bytewax cluster."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


# gen-0 collections every 50,000 allocations instead of 700: a replay allocates
# an event dict and a tuple per line and keeps many of them (the runs), so the
# default thresholds run a full collection over the growing heap again and
# again — a quarter of P1's CPU time on 1M events (7.5 s -> 5.8 s).
GC_THRESHOLD = (50_000, 20, 100)


# Everything alive when the replay starts (the compiled rules, Bytewax, the
# modules) lives as long as the replay: frozen, the collector does not walk it
# again in every full collection (1,000 generated rules: 60k -> 70k events/s).
# Re-entrant: `work_dir` holds it for the whole replay (the dataflow, then the
# statistics and the output), `run_in_process` for a worker process; only the
# outermost unfreezes.  Unfrozen between the dataflow and the output, the
# first full collection walked the whole heap (1,000 rules: 45 ms).
_gc_depth = 0


@contextmanager
def _replay_gc() -> Iterator[None]:
    global _gc_depth
    if _gc_depth:
        _gc_depth += 1
        try:
            yield
        finally:
            _gc_depth -= 1
        return
    before = gc.get_threshold()
    gc.set_threshold(*GC_THRESHOLD)
    gc.freeze()
    _gc_depth = 1
    try:
        yield
    finally:
        _gc_depth = 0
        gc.unfreeze()
        gc.set_threshold(*before)


def run_in_process(job: Job, env: Env, process_id: int | None = None) -> None:
    """Run this process's share of the job (blocks until the dataflow ends)."""
    from bytewax.run import cli_main
    from bytewax.testing import run_main

    from cep.runtime.dataflow import PROGRESS

    PROGRESS.reset()
    flow = build_flow(job.flow, env, has_stdin=not process_id)
    with _replay_gc():
        if job.processes == 1 and job.workers == 1:
            run_main(flow, epoch_interval=EPOCH)
        elif job.processes == 1:
            cli_main(flow, workers_per_process=job.workers, epoch_interval=EPOCH)
        else:
            cli_main(flow, workers_per_process=job.workers, process_id=process_id,
                     addresses=list(job.addresses), epoch_interval=EPOCH)


def run_job(job: Job, env: Env) -> None:
    if job.processes == 1:
        run_in_process(job, env)
        return
    ports = free_ports(job.processes)
    job = Job(job.env, job.flow, job.workers, job.processes, tuple(f"localhost:{p}" for p in ports))
    path = os.path.join(job.flow.out_dir, "job.pickle")
    with open(path, "wb") as fh:
        pickle.dump(job, fh)
    procs = [subprocess.Popen([sys.executable, "-m", "cep.runtime.worker", path, str(i)],
                              stdin=subprocess.DEVNULL if i else None)
             for i in range(job.processes)]
    try:
        codes = [p.wait() for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    if any(codes):
        raise ReplayFailed(f"a worker process failed (exit codes {codes})")


def read_stats(out_dir: str) -> Stats:
    total = Stats()
    for name in sorted(os.listdir(out_dir)):
        if not name.endswith(".stats"):
            continue
        with open(os.path.join(out_dir, name), "rb") as fh:
            data = orjson.loads(fh.read())
        part = Stats(events=data["events"], matched_against=data["matched_against"],
                     irrelevant=data["irrelevant"])
        part.dead_letters.update(data["dead_letters"])
        for rule, r in data["rules"].items():
            got = part.rule(rule)
            got.runs_started, got.discarded = r["runs_started"], r["discarded"]
            got.matches, got.suppressed = r["matches"], r["suppressed"]
            got.died.update(r["died"])
        total.merge(part)
    return total


def match_lines(out_dir: str) -> Iterator[bytes]:
    """The matches, one JSON text each, in replay output order."""
    return spill.merged(spill.run_files(out_dir, "m"))


def dead_letter_lines(out_dir: str) -> Iterator[bytes]:
    """The dead letters in partition order, then line order."""
    return spill.merged(spill.run_files(out_dir, "d"))


@contextmanager
def work_dir() -> Iterator[str]:
    """The scope of one replay: its scratch directory, and the collector
    settings of `_replay_gc`."""
    path = tempfile.mkdtemp(prefix="cep-replay-")
    try:
        with _replay_gc():
            yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def make_job(env_spec: EnvSpec, partitions, out_dir: str, *, workers: int = 1, processes: int = 1,
             matcher: str = "nfa") -> Job:
    flow = FlowSpec(partitions=tuple(partitions), out_dir=out_dir,
                    shards=shard_count(workers * processes), matcher=matcher)
    return Job(env_spec, flow, workers, processes)


__all__ = ["Job", "ReplayFailed", "RuleStats", "dead_letter_lines", "make_job", "match_lines",
           "read_stats", "run_job", "work_dir"]
