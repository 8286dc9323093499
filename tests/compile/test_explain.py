"""`cep explain` rendering: states, transitions with predicates as rule text,
timers, within, captures; DOT and Mermaid carry the same transitions."""

from __future__ import annotations

from rules_text import program

from cep.compile.explain import explain, transitions

RULE = """
rule pricing_hesitation "Three pricing views"
  key customer_id
  match 3 page_view where page == "/pricing" as views
        then not purchase
        then checkout_start as checkout
        then idle 90s
  within 30m
  emit chat_offer { cart_value: checkout.cart_value, pricing_views: count(views) }
  cooldown 1h
"""


def _rule():
    return program(RULE).rules[0]


def test_text_shows_states_predicates_timers_within_and_captures():
    text = explain(_rule())
    for part in ('s0  3 page_view where page == "/pricing" as views  [min 3, max 3]',
                 "views: the list of events it took",
                 "kill     -> dead   not purchase (count >= 3)",
                 "proceed  -> s1     checkout_start (count >= 3; moving on beats staying)",
                 'take     -> s0     page_view where page == "/pricing" (count < 3; takes it)',
                 "timer    -> match  deadline = last event taken + 90s (count >= 1); passes s2",
                 "within    30m", "cooldown  1h",
                 "emit      chat_offer { cart_value: checkout.cart_value, pricing_views: count(views) }"):
        assert part in text, part


def test_transition_kinds_of_an_idle_window():
    got = {(t.src, t.dst, t.action) for t in transitions(_rule())}
    assert {("s1", "dead", "kill"), ("s1", "match", "timer")} <= got and ("s1", "s1", "ignore") not in got


def test_dot_and_mermaid_carry_every_transition():
    n = len(transitions(_rule()))
    dot, mm = explain(_rule(), "dot"), explain(_rule(), "mermaid")
    assert (dot.count(" -> ") - 1, mm.count(" --> ") - 2, dot.startswith("digraph")) == (n, n, True)


def test_optional_capture_and_no_step_text():
    text = explain(program("rule r match A then optional B as b then no C where x > 1 for 5m").rules[0])
    assert "b: the event it took, or missing" in text and "s2  then no C where x > 1 for 5m" in text
