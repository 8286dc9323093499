"""What the matcher's indexes promise: an event only visits the rules whose
first step can take it (by type and by a `field == "constant"` conjunct) or
that already have runs for its key, so unrelated rules cost nothing; and heap
compaction changes memory only, never a match or a statistic."""

from __future__ import annotations

import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "compile"))
from rules_text import program  # noqa: E402

from cep.engine.matcher import Matcher  # noqa: E402


def _visits(m: Matcher) -> list[str]:
    seen: list[str] = []
    orig = m._on_rule_event
    m._on_rule_event = lambda r, *args: (seen.append(r.name), orig(r, *args))
    return seen


UNRELATED = "".join(f'rule u{i} match page_view where page == "/p/{i}" then add_to_cart\n' for i in range(1000))


def test_event_visits_only_the_rule_whose_constant_it_carries():
    m = Matcher(program(UNRELATED))
    seen = _visits(m)
    m.on_event(0, {"type": "page_view", "page": "/p/7", "customer_id": "c"})
    # other customers (c's run on u7 would see their events)
    m.on_event(1, {"type": "page_view", "page": "/nowhere", "customer_id": "d"})
    m.on_event(2, {"type": "page_view", "page": ["/p/7"], "customer_id": "e"})  # not a str: no start
    assert (seen, m.stats.rules["u7"].runs_started, m.live_runs) == (["u7"], 1, 1)


def test_event_visits_rules_with_runs_on_its_key_and_completes_them():
    m = Matcher(program(UNRELATED))
    m.on_event(0, {"type": "page_view", "page": "/p/3", "customer_id": "c"})
    m.on_event(1, {"type": "page_view", "page": "/p/5", "customer_id": "d"})
    seen = _visits(m)
    got = m.on_event(2, {"type": "add_to_cart", "customer_id": "c"})
    assert (seen, [(x.rule, x.key) for x in got], m.live_runs) == (["u3"], [("u3", "c")], 1)


def test_constant_in_a_conjunction_is_indexed_and_a_disjunction_is_not():
    m = Matcher(program('rule a match A where n > 1 and page == "/x"\n'
                        'rule b match A where page == "/x" or n > 1\n'))
    seen = _visits(m)
    got = m.on_event(0, {"type": "A", "page": "/y", "n": 2, "customer_id": "c"})
    got += m.on_event(1, {"type": "A", "page": "/x", "n": 2, "customer_id": "c"})
    assert (seen, [(x.rule, x.start_ts) for x in got]) == (["b", "a", "b"], [("b", 0), ("a", 1), ("b", 1)])


def test_constant_on_the_left_and_a_nested_field_are_indexed():
    m = Matcher(program('rule r match A where "/x" == ctx.page'))
    seen = _visits(m)
    got = m.on_event(0, {"type": "A", "ctx": {"page": "/y"}, "customer_id": "c"})
    got += m.on_event(1, {"type": "A", "ctx": {"page": "/x"}, "customer_id": "c"})
    assert (seen, [x.start_ts for x in got]) == (["r"], [1])


def test_unrelated_rules_do_not_change_what_an_event_visits():
    related = 'rule r match page_view where page == "/pricing" next page_view then checkout\n'
    events = [(t, {"type": ("page_view", "checkout", "search")[t % 3], "page": ("/pricing", "/home")[t % 2],
                   "customer_id": f"c{t % 7}"}) for t in range(300)]
    counts = []
    for text in (related, related + UNRELATED):
        m = Matcher(program(text))
        seen = _visits(m)
        matches = [x.to_json() for ts, ev in events for x in m.on_event(ts, ev)]
        counts.append((len(seen), matches, m.stats.rules["r"].to_json()))
    assert counts[0] == counts[1]


RULES = """
rule w match A where n > 0 as a then B within 5s emit { n: a.n }
rule i match 1+ A as a then idle 3s emit { k: count(a) }
rule n match A next B then no C for 4s cooldown 6s
rule x match B then not C then idle 2s then A within 9s
rule q match A next B within 10m
"""


def _drive(slack: int, seed: int):
    m = Matcher(program(RULES), max_runs_per_key=3)
    m.COMPACT_SLACK = slack
    rng = random.Random(seed)
    out, heap, states = [], 0, 0
    t = 0
    for step in range(3000):
        t += rng.choice((0, 100, 700, 1500))
        ev = {"type": rng.choice("ABCD"), "n": rng.choice((0, 1, 2)), "customer_id": f"c{rng.randrange(60)}"}
        out += m.on_event(t, ev)
        if step % 997 == 0:
            out += m.on_time(t)
        # the within expiries waiting to enter their heap are bounded the same way
        heap = max(heap, len(m._dl), len(m._wx), len(m._wpend), len(m._cx))
        states = max(states, m._nstates)
    out += m.on_time(t)
    return [x.to_json() for x in out], m.stats.to_json(), heap / states


def test_heap_compaction_changes_memory_only():
    for seed in range(3):
        eager = _drive(0, seed)
        never = _drive(1 << 30, seed)
        assert eager[:2] == never[:2]
        # stale entries never pile up beyond 1.25 x the live states (without
        # compaction they do: so the test exercises it)
        assert eager[2] <= 1.25 < never[2]
