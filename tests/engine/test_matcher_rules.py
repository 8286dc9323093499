"""SPEC §3 rules 1-8 and every reading of §3.1, one test each, driving the
Matcher directly with (ts, event) in timeline order.  Times are seconds in
the comments and in the timelines; the helper turns them into ms."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "compile"))
from rules_text import program  # noqa: E402

from cep.engine.matcher import Matcher  # noqa: E402


def run(rules: str, timeline, *, until=None, cap=1000):
    """timeline: (t seconds, type, fields) for customer "c" unless fields name
    another; returns ([(rule, start s, end s, payload)], matcher)."""
    m = Matcher(program(rules), max_runs_per_key=cap)
    out = []
    last = 0
    for t, etype, fields in timeline:
        ev = {"type": etype, "ts": int(t * 1000), "customer_id": "c", **fields}
        out += m.on_event(ev["ts"], ev)
        last = ev["ts"]
    out += m.on_time(int(until * 1000) if until is not None else last)
    return [(x.rule, x.start_ts / 1000, x.end_ts / 1000, x.payload) for x in out], m


def died(m, rule="r"):
    return dict(m.stats.rules[rule].died)


# --- rule 1: every event satisfying the first step starts a run -------------

def test_rule1_every_first_step_event_starts_a_run():
    # A@0 starts r@0, A@1 starts r@1; r@0 is alive too (no B yet): 2 runs live
    _, m = run("rule r match A then B", [(0, "A", {}), (1, "A", {})])
    assert (m.stats.rules["r"].runs_started, m.live_runs) == (2, 2)


# --- rule 2 ------------------------------------------------------------------

def test_rule2_moving_on_beats_staying():
    # 1+ A then A where x==1: r@0 has its min; A(x=1)@1 moves it on -> 0..1
    got, _ = run("rule r match 1+ A as a then A where x == 1 as b emit { n: count(a) }",
                 [(0, "A", {"x": 0}), (1, "A", {"x": 1})])
    assert got == [("r", 0, 1, {"n": 1})]


def test_rule2_below_min_no_look_ahead():
    # 2 A then B: r@0 has 1 A when B@1 comes: skipped; A@2 2nd; B@3 completes
    got, _ = run("rule r match 2 A then B", [(0, "A", {}), (1, "B", {}), (2, "A", {}), (3, "B", {})])
    assert got == [("r", 0, 3, {})]


def test_rule2_look_passes_over_min0_steps():
    # A then optional B then C: C@1 reached over the optional step; b missing -> null
    got, _ = run("rule r match A then optional B as b then C emit { b: b.v }", [(0, "A", {}), (1, "C", {})])
    assert got == [("r", 0, 1, {"b": None})]


def test_rule2_next_kills_when_at_min():
    # A next B: X@1 is not B and the run has its A: dies (next)
    got, m = run("rule r match A next B", [(0, "A", {}), (1, "X", {}), (2, "B", {})])
    assert (got, died(m)) == ([], {"next": 1})


def test_rule2_then_skips_unrelated():
    got, _ = run("rule r match A then B", [(0, "A", {}), (1, "X", {}), (2, "B", {})])
    assert got == [("r", 0, 2, {})]


def test_greedy_plus_takes_all_then_completes():
    # 2+ A then B: r@0 takes A@0..A@3 (4); B@4 completes r@0 (earliest)
    got, _ = run("rule r match 2+ A as a then B emit { n: count(a) }",
                 [(0, "A", {}), (1, "A", {}), (2, "A", {}), (3, "A", {}), (4, "B", {})])
    assert got == [("r", 0, 4, {"n": 4})]


def test_range_max_stops_taking():
    # 1..2 A then B: r@0 takes A@0, A@1, skips A@2 (full); B@3 -> a has 2
    got, _ = run("rule r match 1..2 A as a then B emit { n: count(a) }",
                 [(0, "A", {}), (1, "A", {}), (2, "A", {}), (3, "B", {})])
    assert got == [("r", 0, 3, {"n": 2})]


# --- rule 3 / not --------------------------------------------------------------

def test_rule3_not_kills_while_waiting():
    # A then not X then B: X@1 kills r@0
    got, m = run("rule r match A then not X then B", [(0, "A", {}), (1, "X", {}), (2, "B", {})])
    assert (got, died(m)) == ([], {"not": 1})


def test_not_is_absolute_even_if_event_fits_next_step():
    # the B@1 with big=true satisfies both the not and step B: the run dies
    got, m = run("rule r match A then not B where big == true then B",
                 [(0, "A", {}), (1, "B", {"big": True})])
    assert (got, died(m)) == ([], {"not": 1})


def test_not_applies_only_at_the_step_written_before_it():
    # A then B then not X then C: X@1 arrives while waiting at A: no effect
    got, _ = run("rule r match A then B then not X then C",
                 [(0, "A", {}), (1, "X", {}), (2, "B", {}), (3, "C", {})])
    assert got == [("r", 0, 3, {})]


def test_not_needs_min_of_the_step_before():
    # 2 A then not X then B: X@1 while r@0 has 1 A (below min): no kill
    got, _ = run("rule r match 2 A then not X then B",
                 [(0, "A", {}), (1, "X", {}), (2, "A", {}), (3, "B", {})])
    assert got == [("r", 0, 3, {})]


def test_not_connector_before_next_step_decides_contiguity():
    # A then not X next B: the `next` is between A and B: Y@1 kills (next)
    got, m = run("rule r match A then not X next B", [(0, "A", {}), (1, "Y", {}), (2, "B", {})])
    assert (got, died(m)) == ([], {"next": 1})


# --- rule 4 / absence ----------------------------------------------------------

def test_idle_completes_at_deadline():
    # A then idle 10s: deadline 10; nothing from c; on_time(20) fires it at 10
    got, _ = run("rule r match A then idle 10s", [(0, "A", {})], until=20)
    assert got == [("r", 0, 10, {})]


def test_idle_killed_by_any_event_of_the_key():
    got, m = run("rule r match A then idle 10s", [(0, "A", {}), (5, "Z", {})], until=20)
    assert (got, died(m)) == ([], {"idle": 1})


def test_idle_ignores_other_keys():
    got, _ = run("rule r match A then idle 10s", [(0, "A", {}), (5, "Z", {"customer_id": "d"})], until=20)
    assert got == [("r", 0, 10, {})]


def test_absence_window_restarts_before_it_kills():
    # 1+ A then idle 10s: A@5 is taken by r@0 (restart: deadline 15); r@5 too.
    # at 15 both complete: r@0 wins with 2 A
    got, _ = run("rule r match 1+ A as a then idle 10s emit { n: count(a) }",
                 [(0, "A", {}), (5, "A", {})], until=30)
    assert got == [("r", 0, 15, {"n": 2})]


def test_no_x_lets_other_events_pass_and_x_kills():
    # A then no X for 10s: Y@3 skipped; deadline 10 -> match; a second run
    # A@20 is killed by X@25
    got, m = run("rule r match A then no X for 10s",
                 [(0, "A", {}), (3, "Y", {}), (20, "A", {}), (25, "X", {})], until=40)
    assert (got, died(m)) == ([("r", 0, 10, {})], {"no": 1})


def test_deadline_before_event_at_same_time():
    # deadline 10 and X@10: the deadline first -> match at 10
    got, _ = run("rule r match A then no X for 10s", [(0, "A", {}), (10, "X", {})])
    assert got == [("r", 0, 10, {})]


def test_after_absence_next_requires_first_event_to_fit():
    # A then idle 5s next B: deadline 5; Y@6 is the first event: dies (next)
    got, m = run("rule r match A then idle 5s next B", [(0, "A", {}), (6, "Y", {}), (7, "B", {})])
    assert (got, died(m)) == ([], {"next": 1})


def test_after_absence_then_waits_for_the_step():
    got, _ = run("rule r match A then idle 5s then B", [(0, "A", {}), (6, "Y", {}), (7, "B", {})])
    assert got == [("r", 0, 7, {})]


def test_two_absence_steps_in_a_row():
    # A then idle 5s then no X for 5s: first deadline 5, second window 5..10;
    # Y@7 (not X) passes -> match at 10
    got, _ = run("rule r match A then no Y for 5s then no X for 5s", [(0, "A", {}), (7, "Y", {})], until=20)
    assert got == [("r", 0, 10, {})]


def test_second_absence_window_kills():
    got, m = run("rule r match A then idle 5s then no X for 5s", [(0, "A", {}), (7, "X", {})], until=20)
    assert (got, died(m)) == ([], {"no": 1})


def test_absence_after_min0_step_opens_at_last_min_step_and_restarts():
    # A then optional B then idle 10s: window opens at A@0 (deadline 10);
    # B@4 is moved into by the look: window restarts (deadline 14)
    got, _ = run("rule r match A then optional B as b then idle 10s emit { b: b.v }",
                 [(0, "A", {}), (4, "B", {"v": 1})], until=30)
    assert got == [("r", 0, 14, {"b": 1})]


def test_absence_after_min0_step_idle_kills_on_other_event():
    got, m = run("rule r match A then optional B then idle 10s", [(0, "A", {}), (4, "C", {})], until=30)
    assert (got, died(m)) == ([], {"idle": 1})


def test_not_after_absence_applies_until_next_step_takes_first_event():
    # A then idle 5s then not X then B: X@7 after the deadline kills
    got, m = run("rule r match A then idle 5s then not X then B", [(0, "A", {}), (7, "X", {}), (8, "B", {})])
    assert (got, died(m)) == ([], {"not": 1})


def test_not_after_no_x_does_not_apply_inside_window():
    # A then no Y for 5s then not X then B: X@2 inside the window is skipped
    got, _ = run("rule r match A then no Y for 5s then not X then B", [(0, "A", {}), (2, "X", {}), (8, "B", {})])
    assert got == [("r", 0, 8, {})]


def test_next_into_absence_adds_nothing():
    # A next no X for 5s: Y@2 inside the window is skipped (rule 4 alone)
    got, _ = run("rule r match A next no X for 5s", [(0, "A", {}), (2, "Y", {})], until=10)
    assert got == [("r", 0, 5, {})]


def test_next_into_min0_after_absence_look_reaches_later_step():
    # A then idle 5s next optional B then C: C@6 is reached by the look
    got, _ = run("rule r match A then idle 5s next optional B then C", [(0, "A", {}), (6, "C", {})])
    assert got == [("r", 0, 6, {})]


def test_trailing_absence_never_fires_beyond_final_time():
    got, m = run("rule r match A then idle 10s", [(0, "A", {}), (5, "Z", {"customer_id": "d"})])
    assert (got, m.live_runs) == ([], 1)


# --- rule 5 / trailing min-0 --------------------------------------------------

def test_trailing_min0_steps_complete_at_once():
    # A then optional B: completes at A@0; a trailing optional never takes
    got, _ = run("rule r match A as a then optional B as b emit { b: b }", [(0, "A", {}), (1, "B", {})])
    assert got == [("r", 0, 0, {"b": None})]


# --- rule 6 / within ----------------------------------------------------------

def test_within_inclusive_and_exceeded():
    # within 10s: A@0 B@10 -> kept; A@20 B@31 -> r@20 dies (within)
    got, m = run("rule r match A then B within 10s",
                 [(0, "A", {}), (10, "B", {}), (20, "A", {}), (31, "B", {})])
    assert (got, died(m)) == ([("r", 0, 10, {})], {"within": 1})


def test_within_kills_deadline_completion():
    # A then idle 10s within 5s: the deadline 10 is 10 > 5 after start: within death
    got, m = run("rule r match A then idle 10s within 5s", [(0, "A", {})], until=30)
    assert (got, died(m)) == ([], {"within": 1})


def test_on_time_kills_expired_runs_of_every_key():
    _, m = run("rule r match A then B within 5s", [(0, "A", {}), (1, "A", {"customer_id": "d"})], until=7)
    assert (died(m), m.live_runs) == ({"within": 2}, 0)


# --- rule 7 -------------------------------------------------------------------

def test_earliest_start_wins_and_others_discarded():
    # A@0 A@1 B@2: r@0 and r@1 complete; r@0 wins; r@1 discarded
    got, m = run("rule r match A as a then B emit { v: a.v }", [(0, "A", {"v": 0}), (1, "A", {"v": 1}), (2, "B", {})])
    assert (got, m.stats.rules["r"].discarded) == ([("r", 0, 2, {"v": 0})], 1)


def test_match_discards_run_the_same_event_would_start():
    # 2 A: A@0 A@1 -> 0..1; A@1's own run is discarded; A@2 A@3 -> 2..3
    got, m = run("rule r match 2 A", [(0, "A", {}), (1, "A", {}), (2, "A", {}), (3, "A", {})])
    assert got == [("r", 0, 1, {}), ("r", 2, 3, {})]


def test_deadlines_at_same_time_pick_earliest_start():
    # 1+ A then idle 10s: r@0 and r@2 both restart to deadline 12
    got, m = run("rule r match 1+ A as a then idle 10s emit { n: count(a) }", [(0, "A", {}), (2, "A", {})], until=20)
    assert (got, m.stats.rules["r"].discarded) == ([("r", 0, 12, {"n": 2})], 1)


# --- rule 8 -------------------------------------------------------------------

def test_cooldown_suppresses_and_keeps_reference():
    # every A matches; cooldown 10s: 0 emitted, 5 suppressed, 10 emitted, 15 suppressed, 21 emitted
    got, m = run("rule r match A cooldown 10s", [(t, "A", {}) for t in (0, 5, 10, 15, 21)])
    assert ([g[1] for g in got], m.stats.rules["r"].suppressed) == ([0, 10, 21], 2)


def test_cooldown_is_per_key():
    got, _ = run("rule r match A cooldown 10s", [(0, "A", {}), (1, "A", {"customer_id": "d"})])
    assert [g[1] for g in got] == [0, 1]


def test_cooldown_stamp_dropped_when_it_cannot_suppress():
    _, m = run("rule r match A cooldown 10s", [(0, "A", {})], until=11)
    assert m._states[0] == {}


# --- §3.1 start/now, captures, keys --------------------------------------------

def test_start_in_where_of_quantified_first_step():
    # 3 A where now - start <= 10s: A@0, A@5, A@12 -> r@0 cannot take A@12
    # (12 - 0 > 10); r@5 takes A@12 (7 s) but needs a third
    got, _ = run("rule r match 3 A where now - start <= 10000",
                 [(0, "A", {}), (5, "A", {}), (12, "A", {}), (13, "A", {})])
    assert got == [("r", 5, 13, {})]


def test_count_one_binds_a_list_and_untaken_range_binds_empty_list():
    got, _ = run("rule r match 1 A as a then 0..2 B as b then C emit { a: count(a), b: b }",
                 [(0, "A", {}), (1, "C", {})])
    assert got == [("r", 0, 1, {"a": 1, "b": []})]


def test_key_null_counts_as_lacking():
    got, m = run("rule r match A", [(0, "A", {"customer_id": None})])
    assert (got, m.stats.irrelevant, m.stats.matched_against) == ([], 1, 0)


def test_integer_key_keeps_its_type_and_differs_from_string():
    m = Matcher(program("rule r key uid match 2 A"))
    out = []
    for i, uid in enumerate([1, "1", 1, "1"]):
        out += m.on_event(i, {"type": "A", "uid": uid})
    assert [(x.key, x.start_ts, x.end_ts) for x in out] == [(1, 0, 2), ("1", 1, 3)]


def test_emit_now_is_completion_time_and_key_var():
    got, _ = run("rule r match A then idle 10s emit { took: now - start, k: key }", [(0, "A", {})], until=30)
    assert got == [("r", 0, 10, {"took": 10000, "k": "c"})]


# --- caps and statistics -------------------------------------------------------

def test_run_cap_counts_started_and_cap_deaths():
    _, m = run("rule r match A then B", [(t, "A", {}) for t in range(5)], cap=3)
    rs = m.stats.rules["r"]
    assert (rs.runs_started, rs.died["cap"], m.live_runs) == (5, 2, 3)


def test_irrelevant_event_counted_once():
    _, m = run("rule r match A then B", [(0, "A", {}), (1, "Z", {})])
    assert (m.stats.matched_against, m.stats.irrelevant) == (1, 1)


def test_snapshot_restore_continues_identically():
    rules = "rule r match 1+ A as a then idle 10s emit { n: count(a) } cooldown 1m"
    prog = program(rules)
    m = Matcher(prog)
    m.on_event(0, {"type": "A", "customer_id": "c"})
    m2 = Matcher.restore(prog, m.snapshot())
    out = m2.on_event(3000, {"type": "A", "customer_id": "c"}) + m2.on_time(20000)
    assert [(x.start_ts, x.end_ts, x.payload) for x in out] == [(0, 13000, {"n": 2})]
