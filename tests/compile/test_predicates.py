"""Expression semantics (docs/architecture.md), as a table: each row is an
expression, an event, and the value the compiled closure must give."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cep.compile.expr import MISSING, compile_expr, compile_where
from cep.lang import ast

F = lambda *p: ast.Field(tuple(p))  # noqa: E731
L = ast.Literal
B = ast.Binary


def ev_value(expr, ev, *, caps=(), slots=None, start=0, now=0, key="k"):
    return compile_expr(expr, slots or {})(ev, list(caps), start, now, key)


EV = {"s": "abc", "n": 5, "f": 2.5, "t": True, "z": None, "l": [1, "x", None], "d": {"a": {"b": 7}},
      "one": 1, "onef": 1.0}

ROWS = [
    # missing vs null
    (B("==", F("z"), L(None)), True),
    (B("==", F("nope"), L(None)), False),
    (B("!=", F("z"), L(None)), False),
    (B("!=", F("nope"), L(None)), False),
    (B("!=", F("s"), L(None)), True),
    (B("!=", F("z"), L("abc")), False),  # any other comparison with null is false
    (B("!=", F("nope"), L("x")), False),  # missing: false, != included
    (B("==", F("z"), F("z")), False),
    # unlike types: false for every operator
    (B("==", F("n"), L("5")), False),
    (B("!=", F("n"), L("5")), False),
    (B("<", F("n"), L("6")), False),
    (B("==", F("t"), L(1)), False),
    (B("!=", F("t"), L(1)), False),
    (B("==", F("one"), F("onef")), True),  # numbers compare by value
    (B("<", F("t"), L(True)), False),  # no ordering on bools
    (B("<=", F("s"), L("abd")), True),
    (B(">", F("f"), L(2)), True),
    (B(">=", F("n"), L(5)), True),
    (B("==", F("l"), ast.ListExpr((L(1), L("x"), L(None)))), True),
    (B("==", F("l"), ast.ListExpr((L(True), L("x"), L(None)))), False),
    (B("<", F("l"), F("l")), False),
    # dotted paths
    (B("==", F("d", "a", "b"), L(7)), True),
    (B("==", F("s", "a"), L(7)), False),
    # in / not in
    (B("in", F("n"), ast.ListExpr((L(5), L(6)))), True),
    (B("in", F("t"), ast.ListExpr((L(1),))), False),
    (B("in", F("nope"), ast.ListExpr((L(1),))), False),
    (B("not in", F("nope"), ast.ListExpr((L(1),))), False),  # not `not (in)`
    (B("not in", F("z"), ast.ListExpr((L(1),))), False),
    (B("not in", F("n"), ast.ListExpr((L(1),))), True),
    (B("in", L("b"), F("s")), True),
    (B("not in", L("q"), F("s")), True),
    (B("in", F("n"), F("s")), False),
    # contains / startswith / endswith / matches
    (B("contains", F("l"), L("x")), True),
    (B("contains", F("l"), L(None)), False),
    (B("contains", F("s"), L("bc")), True),
    (B("contains", F("n"), L(5)), False),
    (B("startswith", F("s"), L("ab")), True),
    (B("endswith", F("s"), L("bc")), True),
    (B("startswith", F("n"), L("5")), False),
    (B("matches", F("s"), L("^a.c$")), True),
    (B("matches", F("n"), L("5")), False),
    # and / or / not
    (B("and", F("t"), L(True)), True),
    (B("and", F("n"), L(True)), False),  # only exactly true is true
    (B("or", F("nope"), F("t")), True),
    (ast.Unary("not", B("==", F("nope"), L(1))), True),
    (ast.Unary("not", F("n")), True),
    # arithmetic
    (B("+", F("n"), L(2)), 7),
    (B("+", F("s"), L("d")), "abcd"),
    (B("+", F("s"), L(1)), MISSING),
    (B("-", F("f"), L(1)), 1.5),
    (B("*", F("n"), F("n")), 25),
    (B("/", F("n"), L(2)), 2.5),
    (B("/", F("n"), L(0)), MISSING),
    (B("+", F("t"), L(1)), MISSING),
    (ast.Unary("-", F("n")), -5),
    (ast.Unary("-", F("s")), MISSING),
    # functions
    (ast.Call("lower", (L("AbC"),)), "abc"),
    (ast.Call("upper", (F("s"),)), "ABC"),
    (ast.Call("upper", (F("n"),)), MISSING),
    (ast.Call("len", (F("l"),)), 3),
    (ast.Call("len", (F("n"),)), MISSING),
    (ast.Call("abs", (L(-3),)), 3),
    (ast.Call("exists", (F("z"),)), True),
    (ast.Call("exists", (F("nope"),)), False),
    # index
    (ast.GetIndex(F("l"), L(-3)), 1),
    (ast.GetIndex(F("l"), L(3)), MISSING),
    (ast.GetIndex(F("l"), L(True)), MISSING),
    # variables
    (ast.Var("key"), "k"),
]


@pytest.mark.parametrize("expr,want", ROWS, ids=[str(i) for i in range(len(ROWS))])
def test_expression_value(expr, want):
    got = ev_value(expr, EV)
    assert got is want if want is MISSING or isinstance(want, bool) else (type(got), got) == (type(want), want)


CAP = ast.Capture("v", True)
EVENTS = [{"p": 3, "m": "a"}, {"p": 1.0, "m": None}, {"m": "b"}, {"p": True, "m": "a"}, {"p": "x", "m": 1}]

AGG_ROWS = [
    (ast.Call("count", (CAP,)), 5),
    (ast.Call("count", (ast.GetAttr(CAP, "m"),)), 4),  # present and not null
    (ast.Call("sum", (ast.GetAttr(CAP, "p"),)), 4.0),  # bools and strings ignored
    (ast.Call("avg", (ast.GetAttr(CAP, "p"),)), 2.0),
    (ast.Call("min", (ast.GetAttr(CAP, "p"),)), None),  # mixed types
    (ast.Call("max", (ast.GetAttr(CAP, "m"),)), None),
    (ast.Call("first", (CAP,)), {"p": 3, "m": "a"}),
    (ast.Call("last", (ast.GetAttr(CAP, "p"),)), "x"),
    (ast.Call("distinct", (ast.GetAttr(CAP, "m"),)), 3),  # a, b, 1
    (ast.GetAttr(ast.GetIndex(CAP, L(0)), "m"), "a"),
]


@pytest.mark.parametrize("expr,want", AGG_ROWS, ids=[str(i) for i in range(len(AGG_ROWS))])
def test_aggregate_value(expr, want):
    got = ev_value(expr, {}, caps=[EVENTS], slots={"v": 0})
    assert (type(got), got) == (type(want), want)


def test_aggregates_over_no_events():
    vals = [ev_value(ast.Call(f, (ast.GetAttr(CAP, "p"),)), {}, caps=[None], slots={"v": 0})
            for f in ("count", "sum", "avg", "min", "max", "first", "last", "distinct")]
    assert vals == [0, 0, None, None, None, None, None, 0]


def test_min_max_over_numbers_and_strings():
    caps = [[{"p": 3}, {"p": 1.5}, {"p": None}, {"q": 0}]]
    got = [ev_value(ast.Call(f, (ast.GetAttr(CAP, "p"),)), {}, caps=caps, slots={"v": 0}) for f in ("min", "max")]
    assert got == [1.5, 3]


def test_distinct_numbers_by_value_but_not_bools():
    caps = [[{"p": 1}, {"p": 1.0}, {"p": True}]]
    assert ev_value(ast.Call("distinct", (ast.GetAttr(CAP, "p"),)), {}, caps=caps, slots={"v": 0}) == 2


def test_untaken_optional_capture_is_missing_and_field_in_emit_missing():
    f = compile_expr(ast.GetAttr(ast.Capture("o", False), "x"), {"o": 0}, in_emit=True)
    g = compile_expr(F("x"), {}, in_emit=True)
    assert (f(None, [MISSING], 0, 0, None), g(None, [], 0, 0, None)) == (MISSING, MISSING)


def test_where_holds_only_when_exactly_true():
    w = compile_where(F("n"), {})
    assert (w({"n": 1}, [], 0, 0, None), w({"n": True}, [], 0, 0, None)) == (False, True)


JSON = st.recursive(st.none() | st.booleans() | st.integers(-10**20, 10**20) | st.floats() | st.text(max_size=5),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3),
                    max_leaves=8)
OPS = ["==", "!=", "<", "<=", ">", ">=", "in", "not in", "contains", "startswith", "endswith", "+", "-", "*", "/",
       "and", "or"]


@settings(max_examples=150)
@given(a=JSON, b=JSON)
def test_no_operator_or_function_raises_on_any_json(a, b):
    ev = {"a": a, "b": b}
    for op in OPS:
        compile_expr(B(op, F("a"), F("b")), {})(ev, [], 0, 0, None)
        compile_expr(B(op, F("a"), F("nope")), {})(ev, [], 0, 0, None)
    for fn in ("lower", "upper", "len", "abs", "exists", "count", "sum", "avg", "min", "max", "first", "last",
               "distinct"):
        compile_expr(ast.Call(fn, (F("a"),)), {})(ev, [], 0, 0, None)
    compile_expr(B("matches", F("a"), L("x+")), {})(ev, [], 0, 0, None)
    assert compile_where(B("*", F("a"), F("a")), {})(ev, [], 0, 0, None) in (True, False)
