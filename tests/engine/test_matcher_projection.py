"""Projected captures: when a rule reads only fields of a capture (`c.f`,
`c[i].f`, `count(c)`), its runs keep just those fields per event instead of
the event.  That must change memory only: the payloads (missing fields written
as null, present nulls kept as null, untaken optionals, list captures) are
exactly those of the reference interpreter, which always keeps whole events."""

from __future__ import annotations

from reference import run_reference
from strategies import load_rules_text

from cep.compile import compile_ruleset
from cep.engine.matcher import Matcher
from cep.engine.model import Match

FIELDS_ONLY = """
rule r
  key k
  match a where exists(s) as one
        then optional b as opt
        then 2..3 c as many
        next d where n == one.n or one.n == null as last
  emit {
    one_n: one.n, one_s: one.s, one_deep: one.ctx.p, one_has_s: exists(one.s),
    opt_n: opt.n, opt_has_n: exists(opt.n),
    many_n: many.n, many_first_n: many[0].n, many_last_s: many[-1].s, many_oob: many[5].n,
    many_count: count(many), many_count_n: count(many.n), many_sum: sum(many.n),
    many_first_s: first(many.s), last_n: last.n
  }
"""

WHOLE = """
rule r
  key k
  match a as one
        then 1+ c as many
        then d as last
  emit { one: one, first_many: first(many), many: many, last_n: last.n, last_s: last.s }
"""


def _run(text: str, events: list[dict]):
    ruleset = load_rules_text(text)
    assert not ruleset.has_errors, ruleset.diagnostics
    prog = compile_ruleset(ruleset)
    m = Matcher(prog)
    got = []
    for e in events:
        got += m.on_event(e["ts"], e)
    live = [run.caps for ks in m._states[0].values() for run in ks.runs]
    got += m.on_time(events[-1]["ts"])
    got.sort(key=Match.sort_key)
    want = run_reference(ruleset, [events])
    assert [x.to_json() for x in got] == [x.to_json() for x in want.matches]
    return prog, [x.payload for x in got], live


def _events(key: str, t0: int, one: dict, many: list[dict], last: dict, opt: dict | None = None) -> list[dict]:
    evs = [dict(one, type="a", k=key, ts=t0)]
    if opt is not None:
        evs.append(dict(opt, type="b", k=key, ts=t0 + 1))
    evs += [dict(e, type="c", k=key, ts=t0 + 2 + i) for i, e in enumerate(many)]
    evs.append(dict(last, type="d", k=key, ts=t0 + 10))
    return evs


def test_field_only_captures_give_the_reference_payloads_with_missing_fields_and_nulls():
    events = (
        # every field present, optional taken
        _events("x", 0, {"n": 1, "s": "a", "ctx": {"p": "/p"}}, [{"n": 2, "s": "b"}, {"n": 3.5, "s": "c"}],
                {"n": 1}, opt={"n": 9})
        # present nulls, missing fields, optional taken without its field, a later event without the field
        + _events("y", 100, {"n": None, "s": None, "ctx": {}}, [{"n": None}, {"s": "z"}, {"n": 4}], {"s": 0},
                  opt={})
        # optional untaken
        + _events("w", 300, {"n": 5, "s": "w"}, [{"n": 1}, {"n": 1}], {"n": 5})
        # one.n missing: `n == one.n` and `one.n == null` are both false, so no match
        + _events("z", 200, {"s": "q"}, [{"n": 1}, {"n": 2}], {"n": 1})
    )
    prog, payloads, _ = _run(FIELDS_ONLY, events)
    assert all(s.project is not None for s in prog.rules[0].steps if s.capture)
    assert payloads == [
        {"one_n": 1, "one_s": "a", "one_deep": "/p", "one_has_s": True, "opt_n": 9, "opt_has_n": True,
         "many_n": [2, 3.5], "many_first_n": 2, "many_last_s": "c", "many_oob": None,
         "many_count": 2, "many_count_n": 2, "many_sum": 5.5, "many_first_s": "b", "last_n": 1},
        {"one_n": None, "one_s": None, "one_deep": None, "one_has_s": True, "opt_n": None, "opt_has_n": False,
         "many_n": [None, 4], "many_first_n": None, "many_last_s": None, "many_oob": None,
         "many_count": 3, "many_count_n": 1, "many_sum": 4, "many_first_s": "z", "last_n": None},
        {"one_n": 5, "one_s": "w", "one_deep": None, "one_has_s": True, "opt_n": None, "opt_has_n": False,
         "many_n": [1, 1], "many_first_n": 1, "many_last_s": None, "many_oob": None,
         "many_count": 2, "many_count_n": 2, "many_sum": 2, "many_first_s": None, "last_n": 5},
    ]


def test_live_runs_keep_only_the_fields_read_not_the_events():
    events = _events("x", 0, {"n": 1, "s": "a", "big": "x" * 1000}, [{"n": 2, "big": "y" * 1000}], {"n": 7})[:-1]
    _, _, live = _run(FIELDS_ONLY, events)
    assert live
    for caps in live:
        for v in caps:
            for x in v if type(v) is list else [v]:
                assert type(x) is not dict  # no event kept whole
                assert "x" * 1000 not in (x if type(x) is tuple else (x,))


def test_a_capture_read_whole_anywhere_keeps_its_events():
    events = _events("x", 0, {"n": 1}, [{"n": 2, "s": None}, {"s": "b"}], {"s": "e"}) \
        + _events("y", 100, {"s": "a"}, [{"n": None}], {"n": None})
    prog, payloads, _ = _run(WHOLE, events)
    steps = {s.capture: s for s in prog.rules[0].steps if s.capture}
    assert steps["one"].project is None and steps["many"].project is None
    assert steps["last"].project is not None  # only last.n and last.s are read
    assert payloads[0] == {
        "one": {"n": 1, "type": "a", "k": "x", "ts": 0},
        "first_many": {"n": 2, "s": None, "type": "c", "k": "x", "ts": 2},
        "many": [{"n": 2, "s": None, "type": "c", "k": "x", "ts": 2}, {"s": "b", "type": "c", "k": "x", "ts": 3}],
        "last_n": None, "last_s": "e"}
    assert payloads[1]["last_n"] is None and payloads[1]["many"] == [{"n": None, "type": "c", "k": "y", "ts": 102}]
