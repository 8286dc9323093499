"""A matcher restored from a snapshot taken at any point of a timeline
continues exactly as the one that never stopped (SPEC §3 rule 10: restarts
from recovery change nothing).  Deferred starts (`_DeferSet`) are made real
runs in a snapshot, so the rule sets that defer are generated too."""

from __future__ import annotations

from hypothesis import assume, given, note
from hypothesis import strategies as st
from strategies import deferred_rules, load_rules_text, rules, timelines

from cep.compile import compile_ruleset
from cep.engine.matcher import Matcher


def _timeline(parts):
    """The partitions' events with a readable time and a str type, in time order."""
    evs = [e for part in parts for e in part if type(e.get("ts")) is int and type(e.get("type")) is str]
    return sorted(evs, key=lambda e: e["ts"])


def _drive(prog, events, cut, lateness):
    """Feed `events` (watermark = time - lateness before each); at index `cut`
    replace the matcher by one restored from its snapshot."""
    m = Matcher(prog)
    out = []
    for i, ev in enumerate(events):
        if i == cut:
            m = Matcher.restore(prog, m.snapshot())
        out += m.on_time(ev["ts"] - lateness)
        out += m.on_event(ev["ts"], ev)
    if events:
        out += m.on_time(events[-1]["ts"])
    return [x.to_json() for x in out], m.stats.to_json(), m.live_runs


@given(case=st.one_of(deferred_rules(), rules()), parts=timelines(), data=st.data())
def test_restore_at_any_point_changes_nothing(case, parts, data):
    ruleset = load_rules_text(case.text)
    assume(not ruleset.has_errors)
    note(case.text)
    prog = compile_ruleset(ruleset)
    events = _timeline(parts)
    cut = data.draw(st.integers(0, len(events)), label="cut")
    lateness = data.draw(st.sampled_from((0, 10_000)), label="lateness")
    assert _drive(prog, events, cut, lateness) == _drive(prog, events, -1, lateness)
