"""Differential tests: the engine (and the Bytewax dataflow) against the
reference interpreter of SPEC §3 (tests/reference.py), on generated rule
sets and partitioned streams (tests/strategies.py).

Both sides get the same partitions. The engine is fed them in a random
interleaving that keeps each partition's own order, sometimes closing a
partition as soon as its input ends: §3.1 Partitions and §3 rule 10 say the
result must not depend on that.

Profiles (tests/conftest.py): HYPOTHESIS_PROFILE=dev|ci|heavy.
"""

from __future__ import annotations


import orjson
from hypothesis import assume, given, note, settings
from hypothesis import strategies as st
from reference import run_reference
from strategies import deferred_rules, load_rules_text, rules, timelines
from support import json_close as close

from cep.compile import compile_ruleset
from cep.engine import Engine, StreamSettings

LATENESS_MS = (0, 0, 5_000, 10_000, 20_000)


def _match_order(m: dict) -> tuple:
    # Matches equal in (end_ts, rule, key, start_ts) -- two runs of one key
    # completing in the same millisecond -- have no order the spec fixes: the
    # reference keeps timeline order, replay orders them by their text.
    # Compare as multisets: the payload text settles the tie.
    return (m["end_ts"], m["rule"], orjson.dumps(m["key"], option=orjson.OPT_SORT_KEYS), m["start_ts"],
            m["match_id"], orjson.dumps(m["payload"], option=orjson.OPT_SORT_KEYS))


def matches_json(matches) -> list[dict]:
    return sorted((m.to_json() for m in matches), key=_match_order)


def dead_json(dead, source_of=lambda s: s) -> list[tuple]:
    return sorted((d.reason, source_of(d.source), d.offset) for d in dead)


def stats_json(stats) -> dict:
    """Stats.to_json without the zero counters (a rule nobody touched may be
    listed with zeros or not at all: that is not a difference)."""
    out = stats.to_json()
    out["dead_letters"] = {k: v for k, v in out["dead_letters"].items() if v}
    rules = {}
    for name, rs in out["rules"].items():
        rs["died"] = {k: v for k, v in rs["died"].items() if v}
        if any(rs[k] for k in ("runs_started", "discarded", "matches", "suppressed")) or rs["died"]:
            rules[name] = rs
    out["rules"] = rules
    return out


def run_engine(ruleset, inputs, order, close_early, *, lateness_ms=0, max_runs_per_key=1000):
    """Feed `inputs` to an Engine in `order` (a list of partition numbers; the
    i-th occurrence of p feeds partition p's i-th event)."""
    eng = Engine(compile_ruleset(ruleset), StreamSettings(lateness_ms=lateness_ms), partitions=len(inputs),
                 max_runs_per_key=max_runs_per_key)
    pos = [0] * len(inputs)
    for p in order:
        event = inputs[p][pos[p]]
        pos[p] += 1
        eng.feed(event, partition=p, source=f"p{p}", offset=pos[p], raw=orjson.dumps(event).decode())
        if close_early and pos[p] == len(inputs[p]):
            eng.close(p)
    eng.finish()
    return eng.take_matches(), eng.take_dead_letters(), eng.stats


def _load(case):
    ruleset = load_rules_text(case.text)
    if ruleset.has_errors:
        note("diagnostics: " + "; ".join(d.message for d in ruleset.diagnostics))
    assume(not ruleset.has_errors)
    return ruleset


@st.composite
def scenarios(draw, rule_sets=rules()):
    """A rule set, a stream, a lateness, a run cap and a feed order."""
    case = draw(rule_sets)
    inputs = draw(timelines())
    tags = [p for p, part in enumerate(inputs) for _ in part]
    order = draw(st.permutations(tags))
    # a permutation of the tags is an interleaving that keeps each
    # partition's own order (the i-th p always feeds p's i-th event)
    lateness = draw(st.sampled_from(LATENESS_MS))
    cap = draw(st.sampled_from((1000, 1000, 1000, 1, 2)))
    close_early = draw(st.booleans())
    return case, inputs, list(order), lateness, cap, close_early


def _note_inputs(case, inputs, lateness, cap) -> None:
    note("rules:\n" + case.text)
    for p, part in enumerate(inputs):
        note(f"partition p{p}:\n" + "\n".join(orjson.dumps(e).decode() for e in part))
    note(f"lateness_ms={lateness} max_runs_per_key={cap}")


@given(scenario=scenarios())
def test_engine_agrees_with_reference(scenario) -> None:
    case, inputs, order, lateness, cap, close_early = scenario
    _note_inputs(case, inputs, lateness, cap)
    note(f"feed order={order} close_early={close_early}")
    ruleset = _load(case)
    want = run_reference(ruleset, inputs, lateness_ms=lateness, max_runs_per_key=cap)
    got_matches, got_dead, got_stats = run_engine(ruleset, inputs, order, close_early, lateness_ms=lateness,
                                                  max_runs_per_key=cap)
    want_m, got_m = matches_json(want.matches), matches_json(got_matches)
    note(f"reference matches: {want_m}")
    note(f"engine matches:    {got_m}")
    note(f"reference stats: {stats_json(want.stats)}")
    note(f"engine stats:    {stats_json(got_stats)}")
    assert (close(got_m, want_m), dead_json(got_dead), stats_json(got_stats)) == \
        (True, dead_json(want.dead_letters), stats_json(want.stats))


@given(scenario=scenarios(deferred_rules()))
def test_deferred_starts_agree_with_reference(scenario) -> None:
    """Rules whose runs the matcher starts deferred (one pending entry per key
    instead of a run per rule): the same matches, dead letters and statistics
    (runs started, died of `next` and `within`) as the reference."""
    test_engine_agrees_with_reference.hypothesis.inner_test(scenario)


# --------------------------------------------------------------------------
# the Bytewax dataflow (cep.runtime.replay_matches) against the reference


def run_dataflow(ruleset, inputs, workers, *, lateness_ms=0):
    """The same partitions through the real dataflow on `workers` workers;
    dead letters renamed from `partition-<i>.jsonl` to the reference's `p<i>`."""
    from cep.runtime import replay_matches  # noqa: PLC0415 (bytewax is heavy; only this test needs it)

    return replay_matches(ruleset, inputs, workers=workers, lateness_ms=lateness_ms)


def _dataflow_source(name: str) -> str:
    assert name.startswith("partition-") and name.endswith(".jsonl"), name
    return "p" + name[len("partition-"):-len(".jsonl")]


@settings(max_examples=max(5, settings.default.max_examples // 6))
@given(case=rules(), inputs=timelines(), lateness=st.sampled_from(LATENESS_MS),
       workers=st.sampled_from((1, 2, 4)))
def test_dataflow_agrees_with_reference(case, inputs, lateness, workers) -> None:
    _note_inputs(case, inputs, lateness, 1000)
    note(f"workers={workers}")
    ruleset = _load(case)
    want = run_reference(ruleset, inputs, lateness_ms=lateness)
    got_matches, got_dead, got_stats = run_dataflow(ruleset, inputs, workers, lateness_ms=lateness)
    want_m, got_m = matches_json(want.matches), matches_json(got_matches)
    note(f"reference matches: {want_m}")
    note(f"dataflow matches:  {got_m}")
    assert (close(got_m, want_m), dead_json(got_dead, _dataflow_source), stats_json(got_stats)) == \
        (True, dead_json(want.dead_letters), stats_json(want.stats))


@settings(max_examples=max(3, settings.default.max_examples // 100))
@given(case=rules(), inputs=timelines(), lateness=st.sampled_from(LATENESS_MS))
def test_dataflow_on_two_processes_of_two_workers_agrees_with_reference(case, inputs, lateness, tmp_path_factory):
    # Real processes (Bytewax's cluster runner over localhost) load the rules
    # from files, so the generated rule text goes to one.
    from cep.runtime import replay_matches  # noqa: PLC0415

    _note_inputs(case, inputs, lateness, 1000)
    ruleset = _load(case)
    rules_file = tmp_path_factory.mktemp("rules") / "rules.cep"
    rules_file.write_text(case.text, encoding="utf-8")
    want = run_reference(ruleset, inputs, lateness_ms=lateness)
    got_matches, got_dead, got_stats = replay_matches([rules_file], inputs, workers=2, processes=2,
                                                      lateness_ms=lateness)
    assert (close(matches_json(got_matches), matches_json(want.matches)), dead_json(got_dead, _dataflow_source),
            stats_json(got_stats)) == (True, dead_json(want.dead_letters), stats_json(want.stats))
