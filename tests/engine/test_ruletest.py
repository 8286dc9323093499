"""SPEC §7 rule tests, run through the Engine (cep.engine.ruletest)."""

from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "compile"))
from rules_text import load_rules  # noqa: E402

from cep.engine.ruletest import BASE_TS, fmt_offset, json_equal, run_test, run_tests  # noqa: E402
from cep.lang import ast  # noqa: E402
from cep.lang.build import parse_text  # noqa: E402

PRICING = """
event page_view      { page: str, referrer: str? }
event checkout_start { cart_value: float, items: int }
event purchase       { order_id: str, amount: float }

rule pricing_hesitation "Three pricing views, then stuck at checkout"
  key customer_id
  match 3 page_view where page == "/pricing" as views
        then checkout_start as checkout
        then idle 90s
  within 30m
  emit chat_offer { cart_value: checkout.cart_value, pricing_views: count(views) }
  cooldown 1h

rule big_purchase
  key customer_id
  match purchase where amount >= 100 as p
  emit big_purchase { amount: p.amount }
"""

FIRES = """
  given
    0s   page_view      { customer_id: "c1", page: "/pricing" }
    10s  page_view      { customer_id: "c1", page: "/pricing" }
    20s  page_view      { customer_id: "c1", page: "/pricing" }
    30s  checkout_start { customer_id: "c1", cart_value: 120.0, items: 2 }
"""


def _ruleset(text: str):
    """The rule set with its tests; `cep.lang.load_text` when it has landed."""
    rs = load_rules(text)
    if getattr(rs, "tests", None) is None:
        file, diagnostics = parse_text(text, "t.cep")
        assert diagnostics == []
        rs = SimpleNamespace(rules=rs.rules, catalog=rs.catalog, has_errors=False, diagnostics=[],
                             tests=tuple(("t.cep", it) for it in file.items if isinstance(it, ast.Test)))
    return rs


def _line(text: str, rules: str = PRICING) -> str:
    """The 'line N: ' prefix of a problem about the last line of a test text."""
    return f"line {len((rules + text).splitlines())}: "


def _run(test_text: str, rules: str = PRICING):
    rs = _ruleset(rules + test_text)
    (path, test), = rs.tests
    return run_test(rs, path, test)


def test_the_spec_example_fires_at_2m_after_the_silence():
    assert _run("test fires" + FIRES + '  expect chat_offer { key: "c1", at: 2m, cart_value: 120.0 }\n').problems == ()


def test_the_spec_quiet_example_passes_with_expect_nothing():
    got = _run("""test quiet
  given
    0s   page_view { customer_id: "c2", page: "/pricing" }
    5s   purchase  { customer_id: "c2", order_id: "o1", amount: 9.5 }
  expect nothing
""")
    assert got.passed


def test_a_wrong_completion_time_fails_and_says_when_it_fired():
    text = "test late" + FIRES + '  expect chat_offer { key: "c1", at: 3m }\n'
    assert _run(text).problems == (
        _line(text) + 'expect chat_offer { key: "c1", at: 3m }: no chat_offer fits (one fired at 2m with at: 2m)',)


def test_a_wrong_payload_value_fails_naming_the_field():
    text = "test payload" + FIRES + "  expect chat_offer { pricing_views: 2 }\n"
    assert _run(text).problems == (_line(text) + "expect chat_offer { pricing_views: 2 }: no chat_offer fits "
                                   "(one fired at 2m with pricing_views: 3)",)


def test_expect_nothing_fails_when_something_fires():
    text = "test nothing" + FIRES + "  expect nothing\n"
    got = _run(text)
    assert (got.problems, [m.output for m in got.fired]) == (
        (_line(text) + "expected nothing to fire, but 1 match fired",), ["chat_offer"])


def test_expect_nothing_from_a_rule_only_looks_at_that_rule():
    got = _run("test from" + FIRES + "  expect nothing from big_purchase\n")
    text = "test from" + FIRES + "  expect nothing from pricing_hesitation\n"
    assert (got.passed, _run(text).problems) == (
        True, (_line(text) + "expected nothing from pricing_hesitation, but it fired 1 time",))


def test_only_limits_the_test_to_the_named_rules():
    text = """test only_big
  only big_purchase
  given
    0s   purchase { customer_id: "c3", order_id: "o1", amount: 500.0 }
    1s   page_view { customer_id: "c3", page: "/pricing" }
    2s   page_view { customer_id: "c3", page: "/pricing" }
    3s   page_view { customer_id: "c3", page: "/pricing" }
    4s   checkout_start { customer_id: "c3", cart_value: 1.0, items: 1 }
  expect nothing from big_purchase
"""
    got = _run(text.replace("expect nothing from big_purchase", "expect nothing"))
    assert [m.rule for m in got.fired] == ["big_purchase"]


def test_until_stops_the_clock_before_the_deadline():
    assert _run("test stop" + FIRES + "  until 1m59s\n  expect nothing\n").passed


def test_until_exactly_at_the_deadline_lets_it_fire():
    got = _run("test stop" + FIRES + "  until 2m\n  expect chat_offer { at: 2m }\n")
    assert got.passed


def test_several_expects_are_found_in_completion_order():
    two = """test two
  given
    0s  purchase { customer_id: "a", order_id: "o1", amount: 100.0 }
    5s  purchase { customer_id: "b", order_id: "o2", amount: 200.0 }
"""
    in_order = _run(two + '  expect big_purchase { key: "a" }\n  expect big_purchase { key: "b" }\n')
    text = two + '  expect big_purchase { key: "b" }\n  expect big_purchase { key: "a" }\n'
    assert (in_order.passed, _run(text).problems) == (True, (
        _line(text) + 'expect big_purchase { key: "a" }: big_purchase did not fire after the previous expected match',))


def test_an_expect_that_did_not_fire_says_so():
    text = 'test missing\n  given\n    0s purchase { customer_id: "a", order_id: "o", amount: 1.0 }\n' \
        "  expect big_purchase\n"
    assert _run(text).problems == (_line(text) + "expect big_purchase: big_purchase did not fire",)


def test_a_given_event_that_breaks_the_catalog_is_a_check_error_with_its_position():
    # `cep check` (and so `cep test`, which checks first) rejects it before any run
    from cep.lang import load_text

    text = 'test bad\n  given\n    0s purchase { customer_id: "a", amount: 100.0 }\n  expect nothing\n'
    rs = load_text(PRICING + text, default_key="customer_id")
    (diag,) = [d for d in rs.diagnostics if d.is_error]
    assert (diag.span.line, diag.message) == (PRICING.count("\n") + 3, "event 'purchase' lacks its required field 'order_id'")


def test_given_lines_are_taken_in_offset_order():
    got = _run("""test shuffled
  given
    30s  checkout_start { customer_id: "c1", cart_value: 120.0, items: 2 }
    20s  page_view      { customer_id: "c1", page: "/pricing" }
    0s   page_view      { customer_id: "c1", page: "/pricing" }
    10s  page_view      { customer_id: "c1", page: "/pricing" }
  expect chat_offer { at: 2m }
""")
    assert got.passed


def test_a_failing_test_shows_the_step_each_run_of_the_tested_rule_reached():
    got = _run("""test stuck
  given
    0s   page_view      { customer_id: "c1", page: "/pricing" }
    10s  page_view      { customer_id: "c1", page: "/pricing" }
  expect chat_offer
""")
    assert [(r.rule, r.key, r.start, r.step, r.step_text, r.taken) for r in got.runs] == [
        ("pricing_hesitation", "c1", 0, 1, "3 page_view where ... as views", 2),
        ("pricing_hesitation", "c1", 10_000, 1, "3 page_view where ... as views", 1)]


def test_a_run_waiting_in_an_absence_window_shows_its_deadline():
    got = _run("test window" + FIRES + "  until 1m\n  expect chat_offer\n")
    # r@0 has taken its checkout; the idle window after it runs to 2m. r@10 and r@20 still count views.
    assert [(r.start, r.step, r.step_text, r.taken, r.deadline) for r in got.runs] == [
        (0, 2, "checkout_start as checkout", 1, 120_000),
        (10_000, 1, "3 page_view where ... as views", 2, None),
        (20_000, 1, "3 page_view where ... as views", 1, None)]


def test_run_tests_runs_every_test_in_order():
    rs = _ruleset(PRICING + "test a" + FIRES + "  expect chat_offer\ntest b" + FIRES + "  expect nothing\n")
    assert [(r.test.name, r.passed) for r in run_tests(rs)] == [("a", True), ("b", False)]


def test_offsets_count_from_2027_01_01_utc():
    got = _run('test base\n  given\n    1s purchase { customer_id: "a", order_id: "o", amount: 100.0 }\n'
               "  expect big_purchase { at: 1s }\n")
    assert (BASE_TS, got.fired[0].end_ts) == (1_798_761_600_000, 1_798_761_601_000)


@pytest.mark.parametrize(("want", "got", "equal"), [
    (120.0, 120, True), (120, 120.0, True), (0.3, 0.1 + 0.2, True), (1, True, False), (True, True, True),
    (None, None, True), ("1", 1, False), ([1, "a"], [1.0, "a"], True), ({"a": 1}, {"a": 1, "b": 2}, False),
    (None, 0, False)])
def test_expected_values_compare_as_json(want, got, equal):
    assert json_equal(want, got) is equal


@pytest.mark.parametrize(("ms", "text"), [(0, "0s"), (90_000, "1m30s"), (1500, "1s500ms"), (5_400_000, "1h30m"),
                                          (86_400_000, "1d")])
def test_offsets_print_as_durations(ms, text):
    assert fmt_offset(ms) == text
