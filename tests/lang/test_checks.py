"""One test per diagnostic of `cep.lang` checks: message, line, column, hint."""

from __future__ import annotations

import pytest

from cep.lang import load_text
from cep.lang.diagnostics import render

CATALOG = """\
event page_view      { page: str, referrer: str?, n: int }
event add_to_cart    { sku: str, price: float, qty: int }
event checkout_start { cart_value: float, items: int }
event purchase       { order_id: str, amount: float }
let checkout_pages = ["/checkout", "/cart"]
"""
BASE = CATALOG.count("\n")  # rule text below starts on line BASE + 1


def diags(text: str, catalog: bool = True, default_key: str | None = "customer_id"):
    rs = load_text((CATALOG if catalog else "") + text, default_key=default_key)
    return rs.diagnostics


def one(text: str, **kw):
    found = diags(text, **kw)
    assert len(found) == 1, [render(d, None) for d in found]
    return found[0]


def at(d, line: int, col: int, catalog: bool = True):
    return (d.span.line - (BASE if catalog else 0), d.span.col) == (line, col)


CASES = [
    # (rule text, severity, message, (line, col) relative to the rule text, hint or None)
    ("rule r match checkout_strat", "error", "unknown event type 'checkout_strat'", (1, 14),
     "did you mean 'checkout_start'?"),
    ("rule r match page_view where pgae == \"/a\"", "error", "event type 'page_view' has no field 'pgae'",
     (1, 30), "did you mean 'page'?"),
    ("rule r match page_view where page in checkout_pagez", "error",
     "event type 'page_view' has no field 'checkout_pagez'", (1, 38), "did you mean 'checkout_pages'?"),
    ("rule r match page_view where page == 3", "error", "comparing a string with a number is always false",
     (1, 30), "'page' is declared as a string in the catalog"),
    ("rule r match page_view as v then purchase emit { n: count(v) }", "error",
     "count() over something that is not a list capture", (1, 59), None),
    ("rule r match 2 page_view as v then purchase emit { s: sum(v.page) }", "error",
     "sum() over a str field is always 0", (1, 59), "sum() adds numbers"),
    ("rule r match 2 page_view as v then purchase emit { s: avg(v) }", "error",
     "avg() needs a field of the capture", (1, 59), "write `avg(v.field)`"),
    ("rule r match page_view where page == o.order_id then purchase as o", "error",
     "'o' is captured by a later step", (1, 38), "a step can only refer to captures of earlier steps"),
    ("rule r match 2 page_view where page != v[0].page as v", "error",
     "a step cannot refer to its own capture 'v'", (1, 40), None),
    ("rule r match page_view as a then purchase as a", "error", "capture 'a' is bound twice in rule 'r'",
     (1, 46), None),
    # SPEC §2: a bare field in emit is legal and missing (null): a warning, not an error
    ("rule r match page_view as a emit { x: b.amount }", "warning",
     "'b' is not a capture or a constant: a bare field in emit is always null", (1, 39),
     "there is no current event at completion; read a capture: `checkout.cart_value`"),
    ("rule r match idle 5m then page_view", "error", "a pattern cannot start with 'idle'", (1, 14), None),
    ("rule r match no purchase for 5m then page_view", "error", "a pattern cannot start with 'no'", (1, 14), None),
    ("rule r match not purchase then page_view", "error", "a pattern cannot start with 'not'", (1, 14), None),
    ("rule r match optional purchase then page_view", "error", "a pattern cannot start with 'optional'", (1, 14),
     None),
    ("rule r match 0..2 purchase then page_view", "error", "a pattern cannot start with a count from 0 ('0..2')",
     (1, 14), None),
    ("rule r match 0+ purchase then page_view", "error", "a pattern cannot start with a count from 0 ('0+')",
     (1, 14), None),
    ("rule r match page_view then not purchase", "error", "a pattern cannot end with 'not'", (1, 29), None),
    ("rule r match 3..2 page_view", "error", "count 3..2 has its minimum above its maximum", (1, 14),
     "write 2..3"),
    ("rule r match page_view then 0 purchase", "error", "a count of zero ('0') takes no event", (1, 29), None),
    ("rule r match page_view then 0..0 purchase", "error", "a count of zero ('0..0') takes no event", (1, 29), None),
    ("rule r match page_view within 0s", "error", "a zero duration for 'within'", (1, 31), None),
    ("rule r match page_view then idle 0ms", "error", "a zero duration for 'idle'", (1, 34), None),
    ('rule r match page_view where page matches "(a)\\\\1"', "error",
     "invalid regular expression: invalid escape sequence: \\1", (1, 43), None),
    ("rule r match page_view where fooo(page)", "error", "unknown function 'fooo'", (1, 30), None),
    ("rule r match page_view where lower(page, 1) == \"a\"", "error", "lower() takes 1 argument, got 2", (1, 30),
     None),
    ("rule r match page_view where uper(page) == \"a\"", "error", "unknown function 'uper'", (1, 30),
     "did you mean 'upper'?"),
    ("rule r match page_view\nrule r match purchase", "error", "rule 'r' is defined twice", (2, 6), None),
    ("let checkout_pages = 1\nrule r match page_view", "error", "constant 'checkout_pages' is defined twice",
     (1, 1), None),
    ("let x = page\nrule r match page_view", "error", "constant 'x' must be a literal", (1, 9), None),
    ("event e { a: strr }", "error", "unknown field type 'strr'", (1, 11), "did you mean 'str'?"),
    # warnings
    ("rule r match page_view then idle 10m within 5m", "warning",
     "'within 5m' is shorter than the trailing absence step(s), so this rule can never match", (1, 45), None),
    ('rule r match page_view where page == "a" and page == "b"', "warning", "this condition can never hold",
     (1, 30), "'page' cannot equal both \"a\" and \"b\"; did you mean `or`?"),
    ("rule r match page_view cooldown 1h", "warning", "rule 'r' has a cooldown but no 'emit'", (1, 33), None),
]


@pytest.mark.parametrize("text,severity,message,pos,hint", CASES, ids=[c[2][:50] for c in CASES])
def test_each_diagnostic(text, severity, message, pos, hint):
    d = one(text)
    assert (d.severity, d.message) == (severity, message)
    assert at(d, *pos), (d.span, render(d, None))
    if hint is not None:
        assert d.hint == hint


def test_missing_key_without_default_is_an_error():
    d = one("rule r match page_view", default_key=None)
    assert d.message == "rule 'r' has no 'key' clause and no default key is configured"
    assert at(d, 1, 6) and "key customer_id" in d.hint


def test_key_is_filled_from_the_clause_or_the_default():
    rs = load_text("rule a key user.id, s match x\nrule b match y", default_key="customer_id, ctx.org")
    assert not rs.has_errors
    assert [r.key for r in rs.rules] == [(("user", "id"), ("s",)), (("customer_id",), ("ctx", "org"))]


def test_all_errors_of_a_file_are_reported_not_only_the_first():
    found = diags("rule a match idle 1m then page_view\nrule b match 3..1 purchase\nrule c match chekout_start")
    assert [d.span.line - BASE for d in found] == [1, 2, 3]


def test_syntax_errors_are_phrased_for_an_author_and_every_item_is_reported():
    found = diags("rule a match page_view then\nrule b match purchase then within 5m", catalog=False)
    messages = [d.message for d in found]
    assert messages == ["expected a step after 'then', found the end of the file",
                        "expected a step after 'then', found 'within'"]
    assert [(d.span.line, d.span.col) for d in found] == [(1, 28), (2, 28)]


def test_test_blocks_are_checked_against_the_catalog_and_the_rules():
    text = """rule r match page_view emit offer {}
test t
  only r, q
  given
    0s page_viw { customer_id: "c" }
    1s page_view { customer_id: "c", page: 3, n: 1, zz: 1 }
  expect ofer
  expect nothing from s
"""
    found = {(d.span.line - BASE, d.span.col): (d.message, d.hint) for d in diags(text)}
    assert found == {
        (3, 11): ("test 't': 'only' names an unknown rule 'q'", None),
        (5, 8): ("unknown event type 'page_viw' in test 't'", "did you mean 'page_view'?"),
        (6, 38): ("field 'page' of 'page_view' is declared str, but the test gives 3", None),
        (6, 53): ("event type 'page_view' has no field 'zz'", None),
        (7, 3): ("no rule emits 'ofer'", "did you mean 'offer'?"),
        (8, 23): ("'expect nothing from' names an unknown rule 's'", None),
    }


def test_a_rule_without_emit_emits_under_its_own_name():
    rs = load_text("rule r key k match a\ntest t given 0s a { k: 1 } expect r")
    assert not rs.has_errors, rs.diagnostics


def test_rendered_diagnostic_has_position_source_line_caret_and_hint():
    rs = load_text(CATALOG + "rule r match checkout_strat", path="shop.cep", default_key="k")
    text = render(rs.diagnostics[0], rs.sources["shop.cep"])
    assert text.splitlines() == [
        f"shop.cep:{BASE + 1}:14: error: unknown event type 'checkout_strat'",
        f"{BASE + 1:>5} | rule r match checkout_strat",
        "      |              ^^^^^^^^^^^^^^",
        "  hint: did you mean 'checkout_start'?",
    ]


def test_lenient_field_checks_for_alternatives_and_any():
    assert diags("rule r match (page_view | purchase) where amount > 1 then any where whatever == 1") == []
    d = one("rule r match (page_view | purchase) where nope == 1")
    assert d.message == "none of the event types 'page_view', 'purchase' has a field 'nope'"


def test_key_fields_need_not_be_declared():
    assert diags("rule r match page_view where customer_id == \"c\"") == []
