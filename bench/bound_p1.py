#!/usr/bin/env python3
"""How fast could any CPython matcher run P1 in this pipeline?  An experiment
for bench/PROFILE.md section 9, not a product feature.

    .venv/bin/python bench/bound_p1.py [--events FILE] [--repeats N]

Runs `cep replay` of P1 three ways, each in a fresh process: with the no-op
matcher (the floor), with cep's Matcher, and with `HandP1` below in its place:
P1 written by hand for this one rule, one dict operation per event and
nothing general (no NFA, no statistics, no within expiry without events).
The hand matcher's matches must be byte-identical to the Matcher's, or the
script fails. What it shows: the share of the floor that a matcher
specialised to the rule costs, i.e. what a compiler from rules to such code
would reach.
"""

from __future__ import annotations

import argparse
import filecmp
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from cep.engine.model import Match, Stats  # noqa: E402
from run import events_file, workload_files  # noqa: E402

WITHIN_MS = 30 * 60 * 1000
RULE = "p1_pricing_then_checkout"


class HandP1:
    """P1 by hand: per customer, the times of the last (at most 3) `/pricing`
    views in a row; a `checkout_start` right after three completes the run
    started at the first of them if it is within 30 minutes; any other event
    breaks the chain (`next`)."""

    def __init__(self):
        self.chains: dict = {}
        self.stats = Stats()
        self.stats.rule(RULE)

    def on_batch(self, entries, out):
        chains = self.chains
        for ts, _, _, _, ev in entries:
            k = ev.get("customer_id")
            t = ev.get("type")
            if t == "page_view":
                if ev.get("page") == "/pricing":
                    chain = chains.get(k)
                    if chain is None:
                        chains[k] = [ts]
                    else:
                        chain.append(ts)
                        if len(chain) > 3:
                            del chain[0]
                    continue
            elif t == "checkout_start":
                chain = chains.pop(k, None)
                if chain is not None and len(chain) == 3 and ts - chain[0] <= WITHIN_MS:
                    out.append(Match(RULE, "p1", k, chain[0], ts, {"page": "/pricing"}))
                continue
            chains.pop(k, None)

    def on_time(self, wm):
        return []


def hand_main(argv: list[str]) -> int:
    """`cep replay` with HandP1 in place of the Matcher (in this process)."""
    from cep.cli.main import main
    from cep.runtime import glue

    glue.Env.matcher = lambda self: HandP1()
    return main(argv)


def replay(how: str, events: str, rules: str, work: str) -> dict:
    out = os.path.join(work, f"{how}.jsonl")
    summary = os.path.join(work, f"{how}.json")
    argv = ["replay", events, "--rules", rules, "--out", out, "--quiet", "--summary-json", summary]
    if how == "floor":
        cmd = [sys.executable, "-m", "cep", *argv, "--matcher", "noop"]
    elif how == "matcher":
        cmd = [sys.executable, "-m", "cep", *argv]
    else:
        cmd = [sys.executable, os.path.abspath(__file__), "--hand", *argv]
    subprocess.run(cmd, check=True, cwd=os.path.dirname(HERE))
    with open(summary, encoding="utf-8") as fh:
        s = json.load(fh)
    return {"eps": s["events_per_second"], "matches": s["matches"], "out": out}


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--hand":
        return hand_main(sys.argv[2:])
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", help="events file (default: the full-mode stream, 1 M events, 50 k customers)")
    ap.add_argument("--repeats", type=int, default=3, help="runs of each; the best is shown")
    args = ap.parse_args()
    events = args.events or events_file(1_000_000, 50_000)
    rules = workload_files()["p1"]
    best: dict = {}
    with tempfile.TemporaryDirectory() as work:
        for _ in range(args.repeats):
            for how in ("floor", "matcher", "hand"):
                got = replay(how, events, rules, work)
                if how not in best or got["eps"] > best[how]["eps"]:
                    best[how] = got
        if not filecmp.cmp(best["matcher"]["out"], best["hand"]["out"], shallow=False):
            raise SystemExit("the hand-written P1 does not write the Matcher's matches")
    floor = best["floor"]["eps"]
    print(f"events: {events}")
    print(f"{'P1 matcher':<28}{'events/s':>12}{'x floor':>9}{'matches':>9}  {'µs/event over the floor':>24}")
    for how, label in (("floor", "none (floor)"), ("matcher", "cep Matcher"), ("hand", "hand-written (HandP1)")):
        eps = best[how]["eps"]
        extra = 1e6 / eps - 1e6 / floor
        print(f"{label:<28}{eps:>12,.0f}{eps / floor:>9.2f}{best[how]['matches']:>9,}  {extra:>24.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
