"""Hypothesis strategies for parsed (unresolved) rule-file ASTs."""

from __future__ import annotations

from hypothesis import strategies as st

from cep.lang import ast
from cep.lang.build import duration_ms

PLAIN = ["page", "a", "b_2", "x", "cart_value", "customer_id", "views"]
ODD = ["Take in charge", "case:AMOUNT_REQ", "start", "rule", "any", "é"]
names = st.sampled_from(PLAIN + ODD)
plain_names = st.sampled_from(PLAIN)


@st.composite
def durations(draw):
    parts = draw(st.lists(st.tuples(st.integers(0, 120), st.sampled_from(["ms", "s", "m", "h", "d"])),
                          min_size=1, max_size=2))
    text = "".join(f"{n}{u}" for n, u in parts)
    return ast.DurationLit(duration_ms(text), text)


texts = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=8)
numbers = st.one_of(st.integers(-10**6, 10**6), st.floats(allow_nan=False, allow_infinity=False, width=32))
scalars = st.one_of(texts, numbers, st.booleans(), st.none())
literals = st.builds(ast.Literal, scalars)

FUNCS = ["lower", "upper", "len", "abs", "exists", "count", "sum", "avg", "min", "max", "first", "last", "distinct"]
OPS = ["or", "and", "==", "!=", "<", "<=", ">", ">=", "in", "not in", "contains", "startswith", "endswith",
       "+", "-", "*", "/"]


def _postfixable(e) -> bool:
    return not isinstance(e, (ast.Literal, ast.DurationLit))


def _negatable(e) -> bool:
    # `-3` is folded into a literal by the parser, so Unary("-", 3) has no text of its own
    return not (isinstance(e, ast.Literal) and isinstance(e.value, (int, float)) and not isinstance(e.value, bool))


def _extend(children):
    return st.one_of(
        st.builds(ast.ListExpr, st.lists(children, max_size=3).map(tuple)),
        st.builds(ast.GetAttr, children.filter(_postfixable), names),
        st.builds(ast.GetIndex, children.filter(_postfixable), children),
        st.builds(ast.Call, st.sampled_from(FUNCS), st.lists(children, max_size=2).map(tuple)),
        st.builds(ast.Unary, st.just("not"), children),
        st.builds(ast.Unary, st.just("-"), children.filter(_negatable)),
        st.builds(ast.Binary, st.sampled_from(OPS), children, children),
        st.builds(ast.Binary, st.just("matches"), children, st.builds(ast.Literal, texts)),
    )


leaves = st.one_of(
    literals,
    durations(),
    st.builds(ast.Ref, plain_names, st.just(False)),
    st.builds(ast.Ref, names, st.just(True)),
    st.builds(ast.Var, st.sampled_from(["key", "start", "now"])),
)
exprs = st.recursive(leaves, _extend, max_leaves=8)
constants = st.one_of(literals, durations(), st.builds(ast.ListExpr, st.lists(literals, max_size=3).map(tuple)))


@st.composite
def quantifiers(draw):
    kind = draw(st.sampled_from(["one", "exact", "range", "plus", "optional"]))
    if kind == "one":
        return ast.ONE
    if kind == "optional":
        return ast.Quantifier("optional", 0, 1)
    n = draw(st.integers(0, 5))
    if kind == "exact":
        return ast.Quantifier("exact", n, n)
    if kind == "range":
        return ast.Quantifier("range", n, draw(st.integers(0, 6)))
    return ast.Quantifier("plus", n, None)


@st.composite
def matchers(draw):
    where = draw(st.none() | exprs)
    shape = draw(st.sampled_from(["one", "alts", "any"]))
    if shape == "any":
        return ast.EventMatcher((), True, where)
    n = 1 if shape == "one" else draw(st.integers(2, 3))
    return ast.EventMatcher(tuple(draw(st.lists(names, min_size=n, max_size=n))), False, where)


steps = st.one_of(
    st.builds(ast.EventStep, quantifiers(), matchers(), st.none() | names),
    st.builds(ast.IdleStep, durations()),
    st.builds(ast.NoStep, matchers(), durations()),
    st.builds(ast.NotStep, matchers()),
)


@st.composite
def patterns(draw):
    first = draw(steps)
    rest = draw(st.lists(st.tuples(st.sampled_from(["then", "next"]), steps), max_size=3))
    return (ast.PatternItem(None, first),) + tuple(ast.PatternItem(c, s) for c, s in rest)


paths = st.lists(names, min_size=1, max_size=2).map(tuple)
emits = st.builds(ast.Emit, st.none() | names,
                  st.lists(st.builds(ast.PayloadField, names, exprs), max_size=3).map(tuple))
rules = st.builds(ast.Rule, names, st.none() | texts, st.none() | st.lists(paths, min_size=1, max_size=2).map(tuple),
                  patterns(), st.none() | durations(), st.none() | emits, st.none() | durations())
event_decls = st.builds(ast.EventDecl, names, st.lists(
    st.builds(ast.FieldDecl, names, st.sampled_from(["str", "int", "float", "bool", "list", "map", "any"]),
              st.booleans()), max_size=3).map(tuple))
lets = st.builds(ast.Let, names, constants)

data = st.recursive(scalars, lambda c: st.lists(c, max_size=2) | st.dictionaries(texts, c, max_size=2),
                    max_leaves=4)
pairs = st.lists(st.tuples(st.one_of(names, texts), data), max_size=3).map(tuple)
given = st.builds(ast.GivenEvent, durations(), names, pairs)
expects = st.one_of(
    st.builds(ast.Expect, names, pairs, st.none()),
    st.builds(ast.Expect, st.none(), st.just(()), st.none() | names),
)
tests = st.builds(ast.Test, names, st.none() | texts, st.lists(names, max_size=2).map(tuple),
                  st.lists(given, max_size=3).map(tuple), st.none() | durations(),
                  st.lists(expects, min_size=1, max_size=2).map(tuple))
items = st.one_of(rules, event_decls, lets, tests)
files = st.lists(items, max_size=4).map(lambda its: ast.File("<string>", tuple(its)))
