"""Chain rules (`cep.engine.chains`): one-event steps joined by `next`, matched
by a ChainSet instead of the NFA interpreter.  What that must promise: which
rules are chains; the same matches, statistics and live runs as the
interpreter (`Matcher(chains=False)`) and as the reference of SPEC §3, with
time moved at any point; snapshots that move between the two paths; and
within queues that follow the live runs in memory."""

from __future__ import annotations

import sys
from pathlib import Path

import orjson
from hypothesis import assume, given, note, settings
from hypothesis import strategies as st
from reference import run_reference
from strategies import chain_rules, load_rules_text, timelines

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "compile"))
from rules_text import program  # noqa: E402

from cep.compile import compile_ruleset  # noqa: E402
from cep.engine.chains import ChainSet  # noqa: E402
from cep.engine.matcher import Matcher  # noqa: E402
from cep.engine.model import Match  # noqa: E402


def _chain_names(m: Matcher) -> list[str]:
    return [r.name for cs in m._chains if cs is not None for r in cs.rules]


def test_which_rules_are_chains():
    text = """
    rule p1 match page_view where page == "/pricing" as v
              next page_view where page == "/pricing"
              next checkout_start
            within 30m emit { page: v.page }
    rule one match A where n > 1 cooldown 1m
    rule alts match (A | B) as f next any where s == f.s next 1 C as c
    rule then match A then B
    rule two match 2 A next B
    rule opt match A next optional B next C
    rule neg match A next not B next C
    rule idle match A next idle 5s
    rule plus match A next 1+ B
    """
    assert _chain_names(Matcher(program(text))) == ["p1", "one", "alts"]
    # below the steps' count, max_runs_per_key could bind: the interpreter counts `cap`
    assert _chain_names(Matcher(program(text), max_runs_per_key=2)) == ["one"]
    assert _chain_names(Matcher(program(text), chains=False)) == []


def test_chain_rules_of_one_key_share_a_chain_set_and_other_rules_stay_interpreted():
    m = Matcher(program("rule a match A next B\nrule b key j match A next C\nrule c match A next B next C\n"
                        "rule d match A then B\n"))
    assert [None if cs is None else [r.name for r in cs.rules] for cs in m._chains] == [["a", "c"], ["b"]]
    chained = [r.index for cs in m._chains if cs for r in cs.rules]
    assert not any(m._deferrable[i] or m._park.able[i] for i in chained)


def _drive(prog, events, chains, moves):
    """Feed `events` (time order) to a Matcher, moving time after the events
    `moves` names; (matches as JSON in replay order, stats, live runs after
    each move)."""
    m = Matcher(prog, chains=chains)
    out, live = [], []
    for i, e in enumerate(events):
        out += m.on_event(e["ts"], e)
        if i in moves:
            # time moves up to the next event at most: the Matcher's input never
            # has an event below the watermark (the intake dead-letters those)
            nxt = events[i + 1]["ts"] if i + 1 < len(events) else e["ts"] + moves[i]
            out += m.on_time(min(e["ts"] + moves[i], nxt))
            live.append((m.live_runs, m.census()["live_runs"]))
    out += m.on_time(events[-1]["ts"])  # the end of input, as the reference has it (§3 rule 9)
    live.append((m.live_runs, m.census()["live_runs"]))
    out.sort(key=Match.sort_key)
    return [x.to_json() for x in out], m.stats.to_json(), live


def _stats(stats: dict) -> dict:
    """A Matcher's statistics beside the reference's (as in
    test_matcher_differential): `events` is the intake's count, and zero
    counts are left out."""
    return {"matched_against": stats["matched_against"], "irrelevant": stats["irrelevant"],
            "rules": {name: {**rs, "died": {k: v for k, v in rs["died"].items() if v}}
                      for name, rs in stats["rules"].items()
                      if any(rs["died"].values()) or any(rs[x] for x in ("runs_started", "discarded", "matches",
                                                                        "suppressed"))}}


def _valid(events):
    got = [e for part in events for e in part if isinstance(e.get("type"), str) and e["type"]
           and type(e.get("ts")) is int]
    got.sort(key=lambda e: e["ts"])
    return got


@settings(max_examples=400, deadline=None)
@given(case=chain_rules(), parts=timelines(types=("a", "b", "c")), data=st.data())
def test_chains_agree_with_the_interpreter_and_the_reference(case, parts, data):
    ruleset = load_rules_text(case.text)
    assume(not ruleset.has_errors)
    events = _valid(parts)
    assume(events)
    note("rules:\n" + case.text)
    note("events:\n" + "\n".join(orjson.dumps(e).decode() for e in events))
    prog = compile_ruleset(ruleset)
    assume(any(cs is not None for cs in Matcher(prog)._chains))
    moves = data.draw(st.dictionaries(st.integers(0, len(events) - 1), st.sampled_from((0, 0, 5_000, 20_000)),
                                      max_size=4))
    fast = _drive(prog, events, True, moves)
    assert fast == _drive(prog, events, False, moves)
    if not moves:  # the reference moves time only at the end
        want = run_reference(ruleset, [events])
        assert (fast[0], _stats(fast[1])) == ([x.to_json() for x in want.matches], _stats(want.stats.to_json()))


@settings(max_examples=150, deadline=None)
@given(case=chain_rules(), parts=timelines(types=("a", "b", "c")), data=st.data())
def test_snapshots_move_between_the_chain_path_and_the_interpreter(case, parts, data):
    ruleset = load_rules_text(case.text)
    assume(not ruleset.has_errors)
    events = _valid(parts)
    assume(len(events) > 1)
    prog = compile_ruleset(ruleset)
    cut = data.draw(st.integers(1, len(events) - 1))
    first, second = data.draw(st.sampled_from(((True, False), (False, True), (True, True))))
    whole = _drive(prog, events, True, {})
    m = Matcher(prog, chains=first)
    out = []
    for e in events[:cut]:
        out += m.on_event(e["ts"], e)
    out += m.on_time(events[cut - 1]["ts"])
    m = Matcher.restore(prog, m.snapshot(), chains=second)
    for e in events[cut:]:
        out += m.on_event(e["ts"], e)
    out += m.on_time(events[-1]["ts"])
    out.sort(key=Match.sort_key)
    assert ([x.to_json() for x in out], m.stats.to_json(), m.live_runs) == (whole[0], whole[1], whole[2][-1][0])


def test_within_queue_follows_the_live_runs_in_memory():
    """Runs that die at their key's next event leave stale queue entries; the
    queue is compacted so that it stays within a constant factor of the live
    runs, whatever the stream's length."""
    prog = program('rule r match A where s == "x" next B within 1h')
    m = Matcher(prog)
    cs = m._chains[0]
    worst = 0
    for i in range(200_000):
        k = f"c{i % 50}"
        m.on_event(i, {"type": "A" if i % 100 < 50 else "C", "s": "x", "customer_id": k})
        worst = max(worst, sum(map(len, cs.wq.values())))
    assert m.live_runs == 0  # every run died of `next` at its key's next event
    assert worst <= 4 * 50 + ChainSet.QUEUE_SLACK + 1
    assert m.stats.rules["r"].runs_started == 100_000


def test_a_type_that_carries_none_of_the_constants_only_ends_runs():
    m = Matcher(program('rule r match A where s == "x" as a next A where s in ["x", "y"] next B within 1m '
                        'emit { s: a.s }'))
    got = []
    for t, (typ, s) in enumerate((("A", "x"), ("A", "z"), ("A", "x"), ("A", "y"), ("B", None), ("A", "x"),
                                  ("A", "y"), ("B", None))):
        got += m.on_event(t * 1000, {"type": typ, "s": s, "customer_id": "c"})
    assert [(x.start_ts, x.end_ts, x.payload) for x in got] == [(2000, 4000, {"s": "x"}), (5000, 7000, {"s": "x"})]
    rs = m.stats.rules["r"]
    assert (rs.runs_started, rs.died["next"], rs.matches) == (3, 1, 2)


def test_rules_that_one_event_would_start_by_the_dozen_stay_with_the_interpreter():
    """A ChainSet makes one run per rule an event starts; the interpreter defers
    `T next ...` starts as one record.  So a ChainSet takes at most
    MAX_FAN_OUT rules any one event could start, counting the rules that
    start on any event of the type and on any type."""
    from cep.engine.chains import MAX_FAN_OUT

    n = MAX_FAN_OUT
    free = "".join(f'rule f{i} match search next page_view where page == "/p/{i}"\n' for i in range(n + 1))
    held = "".join(f'rule h{i} match page_view where page == "/p/{i}" next add_to_cart\n' for i in range(3 * n))
    same = "".join(f'rule s{i} match purchase where page == "/x" next add_to_cart\n' for i in range(n))
    names = _chain_names(Matcher(program(free + held + same)))
    assert names == [f"h{i}" for i in range(3 * n)] + [f"s{i}" for i in range(n)]
    # one more rule that starts on every purchase: the "/x" bucket holds n + 1
    names = _chain_names(Matcher(program(held + same + "rule any1 match any next search\n")))
    assert names == [f"h{i}" for i in range(3 * n)]
