#!/usr/bin/env python3
"""One measurement in this (fresh) process; `run.py` starts it and reads the
JSON object it prints as its last stdout line.

    python bench/measure.py engine --rules R.cep --events E.jsonl
    python bench/measure.py memory --rules R.cep --events E.jsonl
    python bench/measure.py load   --rules R.cep

engine: the events are read and parsed first (orjson, time taken from `ts`,
then `gc.freeze()` so the parsed input is not traversed by the collector);
then timed: `Matcher.on_batch` over them in batches of BATCH, time moved
after each (the matcher alone, fed as the replay shard feeds it), then
`Matcher.on_event` once per event (as `Engine` and `cep run` call it), and
`Engine.feed` + `finish` (intake, catalog check, timeline and matcher).
memory: streams the events through one Matcher and reports the process's
resident memory before and after, with the live keys, (rule, key) states and
runs left at the end of the input (before `finish`, which would flush them).
load: `cep.lang.load` (parse, check, resolve) and `compile_ruleset`, timed.
"""

from __future__ import annotations

import argparse
import gc
import sys
import time

import orjson

BATCH = 1_500  # events per Matcher.on_batch call: about what a 128 KiB replay read holds


def rss_bytes() -> int:
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def load_program(rules: str):
    from cep.compile import compile_ruleset
    from cep.lang import load

    ruleset = load([rules])
    if ruleset.has_errors:
        raise SystemExit(f"{rules}: the rules have errors")
    return compile_ruleset(ruleset)


def read_events(path: str) -> list[tuple[int, dict]]:
    with open(path, "rb") as fh:
        events = [orjson.loads(line) for line in fh if line.strip()]
    return [(ev["ts"], ev) for ev in events]


def cmd_engine(args) -> dict:
    from cep.engine import Engine, StreamSettings
    from cep.engine.matcher import Matcher

    program = load_program(args.rules)
    events = read_events(args.events)
    gc.collect()
    gc.freeze()  # the parsed input is not the engine's garbage

    # as the replay shard feeds it: batches of timeline tuples, time moved
    # to each batch's last event after it (the shard moves it to the frontier)
    entries = [(ts, 0, i, None, ev) for i, (ts, ev) in enumerate(events)]
    gc.freeze()
    matcher = Matcher(program)
    out: list = []
    t0 = time.perf_counter()
    for i in range(0, len(entries), BATCH):
        part = entries[i:i + BATCH]
        matcher.on_batch(part, out)
        out += matcher.on_time(part[-1][0])
    matcher_s = time.perf_counter() - t0
    matches = len(out)
    live_runs = matcher.live_runs
    del matcher, out, entries

    # one call per event, as `Engine` and `cep run` call it
    matcher = Matcher(program)
    on_event = matcher.on_event
    event_matches = 0
    t0 = time.perf_counter()
    for ts, ev in events:
        event_matches += len(on_event(ts, ev))
    if events:
        event_matches += len(matcher.on_time(events[-1][0]))
    on_event_s = time.perf_counter() - t0
    del matcher
    if event_matches != matches:
        raise SystemExit(f"Matcher.on_event found {event_matches} matches, Matcher.on_batch {matches}")

    engine = Engine(program, StreamSettings())
    feed = engine.feed
    t0 = time.perf_counter()
    for _, ev in events:
        feed(ev)
    engine.finish()
    engine_s = time.perf_counter() - t0
    engine_matches = len(engine.take_matches())
    if engine_matches != matches:
        raise SystemExit(f"Engine found {engine_matches} matches, the Matcher {matches}")
    n = len(events)
    return {"events": n, "matches": matches, "live_runs_at_end": live_runs,
            "matcher_seconds": matcher_s, "matcher_eps": n / matcher_s if matcher_s else None,
            "on_event_seconds": on_event_s, "on_event_eps": n / on_event_s if on_event_s else None,
            "engine_seconds": engine_s, "engine_eps": n / engine_s if engine_s else None}


def cmd_memory(args) -> dict:
    from cep.engine.matcher import Matcher

    program = load_program(args.rules)
    matcher = Matcher(program)
    on_event = matcher.on_event
    gc.collect()
    before = rss_bytes()
    n = matches = 0
    t0 = time.perf_counter()
    with open(args.events, "rb") as fh:
        for line in fh:
            ev = orjson.loads(line)
            n += 1
            matches += len(on_event(ev["ts"], ev))
    seconds = time.perf_counter() - t0
    gc.collect()
    after = rss_bytes()
    census = matcher.census()  # live keys, (rule, key) states and runs, deferred starts included
    live_keys, live_states, live_runs = census["live_keys"], census["live_states"], census["live_runs"]
    grown = after - before
    return {"events": n, "matches": matches, "seconds": seconds, "eps": n / seconds if seconds else None,
            "rss_before": before, "rss_after": after, "rss_grown": grown,
            "live_keys": live_keys, "live_states": live_states, "live_runs": live_runs,
            "bytes_per_live_key": grown / live_keys if live_keys else None,
            "bytes_per_live_state": grown / live_states if live_states else None,
            "bytes_per_live_run": grown / live_runs if live_runs else None}


def cmd_load(args) -> dict:
    from cep.compile import compile_ruleset
    from cep.lang import load

    t0 = time.perf_counter()
    ruleset = load([args.rules])
    t1 = time.perf_counter()
    if ruleset.has_errors:
        raise SystemExit(f"{args.rules}: the rules have errors")
    program = compile_ruleset(ruleset)
    t2 = time.perf_counter()
    return {"rules": len(ruleset.rules), "compiled_rules": len(program.rules),
            "load_seconds": t1 - t0, "compile_seconds": t2 - t1, "total_seconds": t2 - t0}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    for name in ("engine", "memory"):
        p = sub.add_parser(name)
        p.add_argument("--rules", required=True)
        p.add_argument("--events", required=True)
    p = sub.add_parser("load")
    p.add_argument("--rules", required=True)
    args = ap.parse_args()
    result = {"engine": cmd_engine, "memory": cmd_memory, "load": cmd_load}[args.cmd](args)
    sys.stdout.write(orjson.dumps(result).decode() + "\n")


if __name__ == "__main__":
    main()
