"""The compiled Program: steps, guards, windows, key groups and the type index."""

from __future__ import annotations

from rules_text import program

from cep.compile import StepKind
from cep.engine.matcher import Matcher

RULES = """
rule views key customer_id match 3 page_view as v then checkout
rule carts key customer_id match add_to_cart then not purchase then idle 5m
rule strict key account_id, line_id match A next B
rule anything key customer_id match any where x == 1
"""


def test_index_names_rules_by_type_and_all_type_rules():
    # `idle`, `next` and `any` make a rule see every type
    p = program(RULES)
    assert (p.rules_for("page_view"), p.rules_for("purchase"), p.rules_for("zzz")) == ((0, 1, 2, 3), (1, 2, 3), (1, 2, 3))


def test_unrelated_event_type_visits_no_rule():
    p = program("rule a match A then B\nrule b match C")
    m = Matcher(p, chains=False)  # `b` would be a chain rule (cep.engine.chains): spy on the interpreter
    visited = []
    orig = m._on_rule_event
    m._on_rule_event = lambda r, *args: (visited.append(r.name), orig(r, *args))
    m.on_event(0, {"type": "Z", "customer_id": "c"})
    m.on_event(1, {"type": "C", "customer_id": "c"})
    assert (visited, m.stats.irrelevant, m.stats.matched_against) == (["b"], 1, 1)


def test_key_groups_and_key_of():
    p = program(RULES)
    groups = [g.fields for g in p.key_groups]
    ev = {"customer_id": "c", "account_id": "a", "line_id": 2}
    assert (groups, p.key_of(0, ev), p.key_of(1, ev), p.key_of(1, {"account_id": "a", "line_id": None})) == (
        [(("customer_id",),), (("account_id",), ("line_id",))], "c", ["a", 2], None)


def test_dotted_key_path_walks_nested_dicts():
    p = program("rule r key user.id match A")
    assert (p.key_of(0, {"user": {"id": 7}}), p.key_of(0, {"user": 7})) == (7, None)


def test_steps_guards_and_windows():
    p = program("rule r match 2+ A as a then not X then optional B then idle 5m then not Y next C")
    steps = p.rules[0].steps
    shape = [(s.kind, s.min, s.window, s.final, len(s.wait_guards), len(s.pre_guards), s.connector) for s in steps]
    assert shape == [
        (StepKind.EVENT, 2, 2, False, 1, 0, None),
        (StepKind.EVENT, 0, 2, False, 0, 0, "then"),
        (StepKind.IDLE, 1, -1, False, 0, 0, "then"),
        (StepKind.EVENT, 1, -1, True, 0, 1, "next"),
    ]


def test_catalog_passes_through():
    p = program("event A { x: int }\nrule r match A")
    assert list(p.catalog) == ["A"]
