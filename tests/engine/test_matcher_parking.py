"""Parked first runs (`Matcher._make_park`): the first run of a key for a rule
whose first step needs two or more events is kept as (start, capture, key) until
another event satisfies that step.  What that must promise: the same matches,
statistics and live runs as real runs, no visit by the key's other events,
and expiry queues that follow the live runs in memory."""

from __future__ import annotations

import dataclasses
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "compile"))
from rules_text import program  # noqa: E402

from cep.engine.matcher import Matcher  # noqa: E402

PARKING = """
rule two match 2 A where page == "/a" as a then B within 5s emit { n: count(a) }
rule most match 2..3 A where page in ["/a", "/b"] then not C then B within 4s
rule many match 3+ A where page == "/b" as a then (B | C) within 6s emit { p: distinct(a.page) }
rule idle match 2 A where page == "/a" then idle 2s within 10s cooldown 3s
rule only match 2 A where page == "/b"
rule none match 2 A where page == "/c" then B
"""


def _unparked(prog):
    """The same program with every first step evaluated in full (no index):
    no rule can park, so every run is a real one from its first event."""
    rules = tuple(dataclasses.replace(r, start_const=None, start_where=r.steps[0].matcher.where)
                  for r in prog.rules)
    return dataclasses.replace(prog, rules=rules)


def _drive(prog, events, cap, every):
    m = Matcher(prog, max_runs_per_key=cap)
    out, census = [], []
    for i, (ts, ev) in enumerate(events):
        out += [x.to_json() for x in m.on_event(ts, ev)]
        if i % every == 0:
            out += [x.to_json() for x in m.on_time(ts)]
            census.append((m.live_runs, m.census()))
    out += [x.to_json() for x in m.on_time(events[-1][0] + 10**6)]
    census.append((m.live_runs, m.census()))
    return out, m.stats.to_json(), census


def test_parking_is_only_for_first_steps_of_two_or_more_that_the_index_proves():
    m = Matcher(program(PARKING + 'rule one match A where page == "/a" then B\n'
                        'rule where2 match 2 A where n > 1 then B\n'))
    assert [r.name for r, p in zip(m.program.rules, m._park.able) if p] == ["two", "most", "many", "idle", "only",
                                                                           "none"]
    assert not any(Matcher(program(PARKING), max_runs_per_key=0)._park.able)


def test_parked_runs_give_the_matches_statistics_and_live_runs_of_real_runs():
    prog = program(PARKING)
    assert all(Matcher(prog)._park.able) and not any(Matcher(_unparked(prog))._park.able)
    for seed in range(6):
        rng = random.Random(seed)
        events, t = [], 0
        for _ in range(3000):
            t += rng.choice((0, 300, 900, 2000, 4000))
            events.append((t, {"type": rng.choice("AAAABC"), "page": rng.choice(("/a", "/b", "/c", "/z")),
                               "customer_id": f"c{rng.randrange(40)}"}))
        cap, every = rng.choice((1, 2, 1000)), rng.choice((1, 50, 700))
        parked = _drive(prog, events, cap, every)
        real = _drive(_unparked(prog), events, cap, every)
        assert parked == real
        assert len(parked[0]) > 100  # the rules do match on this stream


def test_a_parked_run_is_not_visited_by_its_keys_other_events():
    m = Matcher(program(PARKING))
    m.on_event(0, {"type": "A", "page": "/a", "customer_id": "c"})
    assert m.live_runs == 3 and m._nstates == 0  # two, most, idle: parked
    seen = []
    orig = m._on_rule_event
    m._on_rule_event = lambda r, *args: (seen.append(r.name), orig(r, *args))[1]
    for t, (typ, page) in enumerate((("A", "/z"), ("B", "/a"), ("C", "/a"), ("A", "/y")), start=1):
        m.on_event(t, {"type": typ, "page": page, "customer_id": "c"})
    assert seen == [] and m._nstates == 0
    # the second "/a" makes the three runs real, steps them, and parks nothing new
    got = m.on_event(10, {"type": "A", "page": "/a", "customer_id": "c"})
    assert (seen, got, m._nstates, m.live_runs) == (["two", "most", "idle"], [], 3, 6)
    got = m.on_event(11, {"type": "B", "page": "/a", "customer_id": "c"})
    assert [(x.rule, x.start_ts, x.payload) for x in got] == [("two", 0, {"n": 2}), ("most", 0, {})]


def test_a_parked_run_dies_of_within_at_its_expiry_and_at_its_next_event():
    m = Matcher(program(PARKING))
    m.on_event(0, {"type": "A", "page": "/a", "customer_id": "c"})
    m.on_event(0, {"type": "A", "page": "/a", "customer_id": "d"})
    m.on_time(5000)  # within 5s is inclusive: still alive
    assert m.stats.rules["two"].died["within"] == 0
    m.on_time(5001)
    assert (m.stats.rules["two"].died["within"], m.stats.rules["most"].died["within"]) == (2, 2)
    # an event too late for the parked run kills it and parks its own
    m2 = Matcher(program(PARKING))
    m2.on_event(0, {"type": "A", "page": "/a", "customer_id": "c"})
    m2.on_event(6000, {"type": "A", "page": "/a", "customer_id": "c"})
    st = m2.stats.rules["two"]
    assert (st.runs_started, st.died["within"], m2._nstates) == (2, 1, 1)  # `idle` (10s) made real


def test_expiry_queues_follow_the_parked_runs_in_memory():
    m = Matcher(program('rule r match 2 A where page == "/a" then B within 1h\n'))
    m.COMPACT_SLACK = 16
    worst = 0
    for t in range(20000):
        # each key parks a run and makes it real at once: the queue entry of
        # every parked run is stale long before its hour is up
        k = f"c{t}"
        m.on_event(2 * t, {"type": "A", "page": "/a", "customer_id": k})
        m.on_event(2 * t + 1, {"type": "A", "page": "/a", "customer_id": k})
        if t % 100 == 0:
            m.on_time(2 * t + 1)
            worst = max(worst, sum(map(len, m._park.queues)))
    assert worst <= 2 * 100 + m.COMPACT_SLACK
