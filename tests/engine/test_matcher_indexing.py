"""What the matcher's indexes promise: an event only visits the rules whose
first step can take it (by type and by a `field == "constant"` conjunct) or
that already have runs for its key, so unrelated rules cost nothing; and heap
compaction changes memory only, never a match or a statistic.  These are the
interpreter's indexes: the matchers here interpret every rule (`chains=False`;
one-step and `next`-chain rules otherwise go to `cep.engine.chains`, whose
start index tests/engine/test_chains.py holds)."""

from __future__ import annotations

import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "compile"))
from rules_text import program  # noqa: E402

from cep.engine.matcher import Matcher  # noqa: E402


def _visits(m: Matcher) -> list[str]:
    """Spy on the rules an event visits: `_on_rule_event`, and the specialised
    rule 1 for keys without state (`_fresh`)."""
    seen: list[str] = []
    orig = m._on_rule_event
    m._on_rule_event = lambda r, *args: (seen.append(r.name), orig(r, *args))[1]
    m._fresh = [None if f is None else (lambda *a, f=f, name=r.name: (seen.append(name), f(*a))[1])
                for r, f in zip(m.program.rules, m._fresh)]
    return seen


UNRELATED = "".join(f'rule u{i} match page_view where page == "/p/{i}" then add_to_cart\n' for i in range(1000))


def test_event_visits_only_the_rule_whose_constant_it_carries():
    m = Matcher(program(UNRELATED), chains=False)
    seen = _visits(m)
    m.on_event(0, {"type": "page_view", "page": "/p/7", "customer_id": "c"})
    # other customers (c's run on u7 would see their events)
    m.on_event(1, {"type": "page_view", "page": "/nowhere", "customer_id": "d"})
    m.on_event(2, {"type": "page_view", "page": ["/p/7"], "customer_id": "e"})  # not a str: no start
    assert (seen, m.stats.rules["u7"].runs_started, m.live_runs) == (["u7"], 1, 1)


def test_event_visits_rules_with_runs_on_its_key_and_completes_them():
    m = Matcher(program(UNRELATED), chains=False)
    m.on_event(0, {"type": "page_view", "page": "/p/3", "customer_id": "c"})
    m.on_event(1, {"type": "page_view", "page": "/p/5", "customer_id": "d"})
    seen = _visits(m)
    got = m.on_event(2, {"type": "add_to_cart", "customer_id": "c"})
    assert (seen, [(x.rule, x.key) for x in got], m.live_runs) == (["u3"], [("u3", "c")], 1)


def test_constant_in_a_conjunction_is_indexed_and_a_disjunction_is_not():
    m = Matcher(program('rule a match A where n > 1 and page == "/x"\n'
                        'rule b match A where page == "/x" or n > 1\n'), chains=False)
    seen = _visits(m)
    got = m.on_event(0, {"type": "A", "page": "/y", "n": 2, "customer_id": "c"})
    got += m.on_event(1, {"type": "A", "page": "/x", "n": 2, "customer_id": "c"})
    assert (seen, [(x.rule, x.start_ts) for x in got]) == (["b", "a", "b"], [("b", 0), ("a", 1), ("b", 1)])


def test_constant_on_the_left_and_a_nested_field_are_indexed():
    m = Matcher(program('rule r match A where "/x" == ctx.page'), chains=False)
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
        m = Matcher(program(text), chains=False)
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
    m = Matcher(program(RULES), max_runs_per_key=3, chains=False)
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


# -------------------------------------------- `field in [str literals]` index

IN_RULES = """
let pages = ["/a", "/b"]
rule lit match A where page in ["/a", "/b", "/a"] as a then B emit { p: a.page }
rule conj match A where n > 0 and ctx.page in ["/b", "/c"] then B within 5s
rule viaLet match 2 A where page in pages then idle 3s
rule mixed match A where page in ["/a", 1] then B
rule nothing match A where page in [] then B
"""


def _unindexed(prog):
    """The same program with every rule's first step evaluated in full on
    every event of its type: what the index must be equivalent to."""
    import dataclasses
    rules = tuple(dataclasses.replace(r, start_const=None, start_where=r.steps[0].matcher.where)
                  for r in prog.rules)
    return dataclasses.replace(prog, rules=rules)


def test_in_list_rule_is_visited_only_by_events_whose_value_is_listed():
    m = Matcher(program(IN_RULES + UNRELATED), chains=False)
    seen = _visits(m)
    m.on_event(0, {"type": "A", "page": "/b", "n": 1, "ctx": {"page": "/zz"}, "customer_id": "c"})
    m.on_event(1, {"type": "A", "page": "/zz", "n": 1, "ctx": {"page": "/c"}, "customer_id": "d"})
    for i, page in enumerate(("/zz", None, 7, ["/a"], {"page": "/a"})):  # unlisted, null, not a str
        m.on_event(2 + i, {"type": "A", "page": page, "n": 1, "ctx": {"page": page}, "customer_id": f"e{i}"})
    m.on_event(9, {"type": "A", "n": 1, "customer_id": "f"})  # page missing
    # `mixed` has a non-str element: not indexed, so tried by every A; `x in []`
    # is never true, so `nothing` is indexed under no value and never tried
    assert seen == ["lit", "viaLet", "mixed", "conj", "mixed"] + ["mixed"] * 6
    assert [m.stats.rules[r].runs_started for r in ("lit", "conj", "viaLet", "mixed", "nothing")] == [1, 1, 1, 0, 0]


def test_exact_in_list_skips_the_where_and_a_conjunction_keeps_it():
    prog = program(IN_RULES)
    by = {r.name: r for r in prog.rules}
    assert (by["lit"].start_const, by["lit"].start_where) == ((("page",), ("/a", "/b")), None)
    assert by["viaLet"].start_const == (("page",), ("/a", "/b"))  # the let was substituted
    assert by["conj"].start_const == (("ctx", "page"), ("/b", "/c")) and by["conj"].start_where is not None
    assert (by["mixed"].start_const, by["nothing"].start_const) == (None, (("page",), ()))


def test_equality_conjunct_is_preferred_to_an_in_list():
    r = program('rule r match A where page in ["/a", "/b"] and kind == "k"').rules[0]
    assert r.start_const == (("kind",), ("k",)) and r.start_where is not None


def test_in_list_index_equals_the_unindexed_evaluation():
    rng = random.Random(7)
    values = ("/a", "/b", "/c", "/zz", None, 1, 1.0, True, ["/a"], {"x": "/a"}, "")
    events = []
    t = 0
    for _ in range(4000):
        t += rng.choice((0, 200, 1000, 2500))
        ev = {"type": rng.choice("AAB"), "n": rng.choice((0, 1)), "customer_id": f"c{rng.randrange(25)}"}
        for f in ("page", "ctx"):
            if rng.random() < 0.85:  # else missing
                v = rng.choice(values)
                ev[f] = {"page": v} if f == "ctx" and rng.random() < 0.8 else v
        events.append((t, ev))
    prog = program(IN_RULES)
    outs = []
    for p in (prog, _unindexed(prog)):
        m = Matcher(p, max_runs_per_key=4, chains=False)
        got = [x.to_json() for ts, ev in events for x in m.on_event(ts, ev)] + [x.to_json() for x in m.on_time(t + 10**6)]
        outs.append((got, m.stats.to_json()))
    assert outs[0] == outs[1]
    assert len(outs[0][0]) > 50 and all(outs[0][1]["rules"][r]["runs_started"] for r in ("lit", "conj", "viaLet"))
