"""The Matcher alone against the reference interpreter (tests/reference.py) on
generated rules and timelines: only valid events (a type, an int time, fitting
the catalog), sorted by time (stable), so no intake or lateness is involved;
on_time(max ts) at the end.  Matches and every matcher statistic must agree."""

from __future__ import annotations

import orjson
from hypothesis import assume, given, note, settings
from hypothesis import strategies as st
from reference import catalog_problem, run_reference
from strategies import load_rules_text, rules, timelines

from cep.compile import compile_ruleset
from cep.engine.matcher import Matcher
from cep.engine.model import Match


def _valid(ruleset, inputs) -> list[dict]:
    events = [e for part in inputs for e in part
              if isinstance(e.get("type"), str) and e["type"] and type(e.get("ts")) is int
              and catalog_problem(ruleset.catalog, e["type"], e) is None]
    events.sort(key=lambda e: e["ts"])
    return events


def _stats(stats) -> dict:
    out = stats.to_json()
    for rs in out["rules"].values():
        rs["died"] = {k: v for k, v in rs["died"].items() if v}
    return {"matched_against": out["matched_against"], "irrelevant": out["irrelevant"],
            "rules": {k: v for k, v in out["rules"].items()
                      if v["died"] or any(v[x] for x in ("runs_started", "discarded", "matches", "suppressed"))}}


@settings(max_examples=300)
@given(case=rules(), inputs=timelines(), cap=st.sampled_from((1000, 1000, 1, 2)))
def test_matcher_agrees_with_reference(case, inputs, cap):
    ruleset = load_rules_text(case.text)
    assume(not ruleset.has_errors)
    events = _valid(ruleset, inputs)
    assume(events)
    note("rules:\n" + case.text)
    note("events:\n" + "\n".join(orjson.dumps(e).decode() for e in events))
    want = run_reference(ruleset, [events], max_runs_per_key=cap)
    m = Matcher(compile_ruleset(ruleset), max_runs_per_key=cap)
    got = []
    for e in events:
        got += m.on_event(e["ts"], e)
    got += m.on_time(events[-1]["ts"])
    got.sort(key=Match.sort_key)
    assert ([x.to_json() for x in got], _stats(m.stats)) == ([x.to_json() for x in want.matches], _stats(want.stats))
