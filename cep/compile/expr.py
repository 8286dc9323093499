"""Resolved expressions -> Python closures (docs/architecture.md "Expression semantics").

Every expression is compiled once into a closure

    f(ev, caps, start, now, key) -> value | MISSING

`ev` is the current event (None in `emit`), `caps` the run's capture slots,
`start`/`now`/`key` the variables of SPEC §2.  Closures are built only from
AST node values, never from rule text, and never raise on any JSON input:
unlike types, missing fields and overflows give false or MISSING.
"""

from __future__ import annotations

import math
from typing import Callable

import orjson
import re2

from cep.lang import ast

__all__ = ["MISSING", "Missing", "compile_expr", "compile_where", "reads_run", "capture_fields", "projector",
           "to_json_value", "render_expr"]


class Missing:
    """The one MISSING value: a field that is absent, an untaken optional capture."""

    __slots__ = ()
    _instance = None

    def __new__(cls):
        if cls._instance is None:
            cls._instance = object.__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "MISSING"

    def __reduce__(self):
        return (Missing, ())


MISSING = Missing()

Fn = Callable[[object, list, int, int, object], object]

_NUM = (int, float)


def _is_num(v) -> bool:
    t = type(v)
    return t is int or t is float


def _like(a, b) -> bool:
    """Values of like types: number with number, else the same JSON type."""
    ta, tb = type(a), type(b)
    if ta is tb:
        return True
    return (ta is int or ta is float) and (tb is int or tb is float)


def json_equal(a, b) -> bool:
    """Structural equality with like types only (so `true` is not `1`)."""
    ta, tb = type(a), type(b)
    if ta is int or ta is float:
        return (tb is int or tb is float) and a == b
    if ta is not tb:
        return False
    if ta is list:
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b))
    if ta is dict:
        return a.keys() == b.keys() and all(json_equal(v, b[k]) for k, v in a.items())
    return a == b


def _order_ok(a, b) -> bool:
    """`<`-style comparisons apply to number/number and str/str only."""
    ta, tb = type(a), type(b)
    if ta is str:
        return tb is str
    return (ta is int or ta is float) and (tb is int or tb is float)


def _contains_elem(lst: list, x) -> bool:
    for el in lst:
        if _like(el, x) and json_equal(el, x):
            return True
    return False


def to_json_value(v):
    """Payload: MISSING is written as null (§3.1 "Missing values in output")."""
    return None if v is MISSING else v


# ---------------------------------------------------------------------------
# analysis


def _children(e) -> tuple:
    if isinstance(e, ast.Binary):
        return (e.left, e.right)
    if isinstance(e, ast.Unary):
        return (e.operand,)
    if isinstance(e, ast.Call):
        return e.args
    if isinstance(e, ast.GetAttr):
        return (e.obj,)
    if isinstance(e, ast.GetIndex):
        return (e.obj, e.index)
    if isinstance(e, ast.ListExpr):
        return e.items
    return ()


def reads_run(e) -> bool:
    """Whether the value depends on the run (a capture or `start`), so it
    cannot be shared between the runs of one key for one event."""
    if isinstance(e, ast.Capture):
        return True
    if isinstance(e, ast.Var) and e.name == "start":
        return True
    return any(reads_run(c) for c in _children(e))


def capture_fields(e, uses: dict) -> None:
    """Record in `uses` how `e` reads each capture: capture name -> the set of
    field names read from its events, or None when some use needs the whole
    event (`first(c)`, `c` emitted or compared whole, `len(c)`...).

    The uses that need only fields: `c.f` (a single or a list capture),
    `c[i].f` (a list capture) and `count(c)` (a list capture: only the number
    of events).  A capture read only that way can keep, per event, just those
    fields (`projector`), with the same value for every expression."""
    if isinstance(e, ast.GetAttr):
        o = e.obj
        if isinstance(o, ast.Capture):
            _use(uses, o.name, e.name)
            return
        if isinstance(o, ast.GetIndex) and isinstance(o.obj, ast.Capture) and o.obj.is_list:
            _use(uses, o.obj.name, e.name)
            capture_fields(o.index, uses)
            return
    elif isinstance(e, ast.Call) and e.func == "count" and len(e.args) == 1 \
            and isinstance(e.args[0], ast.Capture) and e.args[0].is_list:
        _use(uses, e.args[0].name, None)
        return
    elif isinstance(e, ast.Capture):
        uses[e.name] = None
        return
    for c in _children(e):
        capture_fields(c, uses)


def _use(uses: dict, cap: str, name: str | None) -> None:
    if cap in uses:
        got = uses[cap]
        if got is not None and name is not None:
            got.add(name)
    else:
        uses[cap] = set() if name is None else {name}


def projector(names: tuple[str, ...]) -> Callable[[dict], object]:
    """event -> what a projected capture keeps of it: with one field, its
    value (MISSING when absent: absent stays absent, a null stays None); with
    several, a tuple of them in `names` order; with none (`count(c)` only), ()."""
    if len(names) == 1:
        name = names[0]
        return lambda ev: ev.get(name, MISSING)
    if not names:
        return lambda ev: ()
    return lambda ev: tuple([ev.get(n, MISSING) for n in names])


# ---------------------------------------------------------------------------
# compilation


def compile_where(e, slots: dict[str, int], proj: dict | None = None) -> Fn:
    """A `where` holds iff its value is exactly True; the closure returns a bool."""
    f = compile_expr(e, slots, in_emit=False, proj=proj)
    if isinstance(e, ast.Binary) and e.op in _BOOL_OPS:
        return f  # already returns exactly True/False
    return lambda ev, caps, start, now, key: f(ev, caps, start, now, key) is True


_BOOL_OPS = frozenset(["or", "and", "==", "!=", "<", "<=", ">", ">=", "in", "not in",
                       "contains", "startswith", "endswith", "matches"])


def compile_expr(e, slots: dict[str, int], in_emit: bool = False, proj: dict | None = None) -> Fn:
    """Compile a resolved expression.  `slots` maps capture names to slot
    indexes in a run's capture list.  `proj` maps the names of projected
    captures to the fields their slots keep per event (`projector`): every
    use of such a capture in `e` must be one `capture_fields` accepts."""
    c = _Compiler(slots, in_emit, proj or {})
    return c.expr(e)


def _const(v) -> Fn:
    return lambda ev, caps, start, now, key: v


class _Compiler:
    def __init__(self, slots: dict[str, int], in_emit: bool, proj: dict):
        self.slots = slots
        self.in_emit = in_emit
        self.proj = proj

    def _elem_reader(self, cap: str, name: str) -> Callable[[object], object]:
        """A projected capture's stored element -> its field `name` (see `projector`)."""
        names = self.proj[cap]
        if name not in names:
            raise TypeError(f"internal error: capture {cap!r} does not keep field {name!r}")
        if len(names) == 1:
            return None  # the element is the value itself
        return names.index(name)

    def _projected_attr(self, e: ast.GetAttr) -> Fn:
        """`c.f` and `c[i].f` over a projected capture: the same values as over
        whole events (architecture "Expression semantics")."""
        o = e.obj
        if isinstance(o, ast.Capture):
            slot = self.slots[o.name]
            pos = self._elem_reader(o.name, e.name)
            if not o.is_list:
                if pos is None:
                    # the value, or MISSING (field absent or optional step untaken)
                    return lambda ev, caps, start, now, key: caps[slot]

                def single_pos(ev, caps, start, now, key):
                    v = caps[slot]
                    return MISSING if v is MISSING else v[pos]
                return single_pos
            if pos is None:
                def list_vals(ev, caps, start, now, key):
                    v = caps[slot]
                    return [] if v is None else [x for x in v if x is not MISSING]
                return list_vals

            def list_pos(ev, caps, start, now, key):
                v = caps[slot]
                return [] if v is None else [x[pos] for x in v if x[pos] is not MISSING]
            return list_pos
        # `c[i].f`
        cap = o.obj
        slot = self.slots[cap.name]
        pos = self._elem_reader(cap.name, e.name)
        idx = self.expr(o.index)

        def index_attr(ev, caps, start, now, key):
            lst = caps[slot]
            i = idx(ev, caps, start, now, key)
            if lst is None or type(i) is not int or not -len(lst) <= i < len(lst):
                return MISSING
            x = lst[i]
            return x if pos is None else x[pos]
        return index_attr

    def expr(self, e) -> Fn:
        method = getattr(self, "c_" + type(e).__name__, None)
        if method is None:
            raise TypeError(f"internal error: cannot compile expression node {type(e).__name__}")
        return method(e)

    # -- leaves

    def c_Literal(self, e: ast.Literal) -> Fn:
        return _const(e.value)

    def c_DurationLit(self, e: ast.DurationLit) -> Fn:
        return _const(e.ms)

    def c_ListExpr(self, e: ast.ListExpr) -> Fn:
        if all(isinstance(i, (ast.Literal, ast.DurationLit)) for i in e.items):
            items = [i.value if isinstance(i, ast.Literal) else i.ms for i in e.items]

            # a fresh list each time: a payload may hand it to the outside world
            return lambda ev, caps, start, now, key: list(items)
        fs = [self.expr(i) for i in e.items]
        return lambda ev, caps, start, now, key: [to_json_value(f(ev, caps, start, now, key)) for f in fs]

    def c_Ref(self, e: ast.Ref) -> Fn:
        raise TypeError(f"internal error: unresolved name {e.name!r} reached the compiler")

    def c_Field(self, e: ast.Field) -> Fn:
        if self.in_emit:
            # docs/architecture.md: in emit there is no current event
            return _const(MISSING)
        path = e.path
        if len(path) == 1:
            name = path[0]
            return lambda ev, caps, start, now, key: ev.get(name, MISSING)
        if len(path) == 2:
            a, b = path

            def field2(ev, caps, start, now, key):
                v = ev.get(a, MISSING)
                if type(v) is not dict:
                    return MISSING
                return v.get(b, MISSING)

            return field2

        def field_n(ev, caps, start, now, key):
            v = ev
            for name in path:
                if type(v) is not dict:
                    return MISSING
                v = v.get(name, MISSING)
            return v

        return field_n

    def c_Capture(self, e: ast.Capture) -> Fn:
        slot = self.slots[e.name]
        if e.name in self.proj and not e.is_list:
            raise TypeError(f"internal error: projected capture {e.name!r} read whole")
        if e.is_list:
            def cap_list(ev, caps, start, now, key):
                v = caps[slot]
                return [] if v is None else v
            return cap_list
        return lambda ev, caps, start, now, key: caps[slot]

    def c_Var(self, e: ast.Var) -> Fn:
        if e.name == "start":
            return lambda ev, caps, start, now, key: start
        if e.name == "now":
            return lambda ev, caps, start, now, key: now
        if e.name == "key":
            return lambda ev, caps, start, now, key: key
        raise TypeError(f"internal error: unknown variable {e.name!r}")

    # -- access

    def c_GetAttr(self, e: ast.GetAttr) -> Fn:
        name = e.name
        o = e.obj
        if (isinstance(o, ast.Capture) and o.name in self.proj) or (
                isinstance(o, ast.GetIndex) and isinstance(o.obj, ast.Capture) and o.obj.name in self.proj):
            return self._projected_attr(e)
        if isinstance(e.obj, ast.Capture) and not e.obj.is_list:
            slot = self.slots[e.obj.name]

            def cap_field(ev, caps, start, now, key):  # `checkout.cart_value`: the hot case
                v = caps[slot]
                return v.get(name, MISSING) if type(v) is dict else MISSING

            return cap_field
        obj = self.expr(e.obj)

        def getattr_(ev, caps, start, now, key):
            o = obj(ev, caps, start, now, key)
            t = type(o)
            if t is dict:
                return o.get(name, MISSING)
            if t is list:
                # over a list capture: that field of each event, in capture
                # order, skipping events where it is absent
                return [x[name] for x in o if type(x) is dict and name in x]
            return MISSING

        return getattr_

    def c_GetIndex(self, e: ast.GetIndex) -> Fn:
        obj = self.expr(e.obj)
        idx = self.expr(e.index)

        def getindex(ev, caps, start, now, key):
            o = obj(ev, caps, start, now, key)
            i = idx(ev, caps, start, now, key)
            if type(o) is list and type(i) is int and -len(o) <= i < len(o):
                return o[i]
            return MISSING

        return getindex

    # -- operators

    def c_Unary(self, e: ast.Unary) -> Fn:
        f = self.expr(e.operand)
        if e.op == "not":
            return lambda ev, caps, start, now, key: f(ev, caps, start, now, key) is not True
        if e.op == "-":
            def neg(ev, caps, start, now, key):
                v = f(ev, caps, start, now, key)
                t = type(v)
                return -v if (t is int or t is float) else MISSING
            return neg
        raise TypeError(f"internal error: unknown unary operator {e.op!r}")

    def c_Binary(self, e: ast.Binary) -> Fn:
        op = e.op
        if op == "and":
            lf, rf = self.expr(e.left), self.expr(e.right)
            return lambda ev, caps, start, now, key: (lf(ev, caps, start, now, key) is True
                                                      and rf(ev, caps, start, now, key) is True)
        if op == "or":
            lf, rf = self.expr(e.left), self.expr(e.right)
            return lambda ev, caps, start, now, key: (lf(ev, caps, start, now, key) is True
                                                      or rf(ev, caps, start, now, key) is True)
        if op in ("==", "!="):
            return self._equality(e)
        if op == "matches":
            if not (isinstance(e.right, ast.Literal) and isinstance(e.right.value, str)):
                raise TypeError("internal error: `matches` needs a string literal pattern")
            rx = re2.compile(e.right.value)
            search = rx.search
            lf = self.expr(e.left)

            def matches(ev, caps, start, now, key):
                v = lf(ev, caps, start, now, key)
                return type(v) is str and search(v) is not None

            return matches
        if op in ("startswith", "endswith") and self._plain_field(e.left) and isinstance(e.right, ast.Literal) \
                and type(e.right.value) is str:
            # fast path (hot in rules like `page startswith "/product/"`): one call, no MISSING sentinel
            name, lit = e.left.path[0], e.right.value
            if op == "startswith":
                def field_startswith(ev, caps, start, now, key):
                    v = ev.get(name)
                    return v.__class__ is str and v.startswith(lit)
                return field_startswith

            def field_endswith(ev, caps, start, now, key):
                v = ev.get(name)
                return v.__class__ is str and v.endswith(lit)
            return field_endswith
        if op == "in" and isinstance(e.right, ast.ListExpr) and e.right.items \
                and all(isinstance(i, ast.Literal) and type(i.value) is str for i in e.right.items):
            # fast path (hot in rules like `page in ["/a", "/b"]`): `_in` is true
            # exactly for a str equal to an element (like types only), else false
            strs = frozenset(i.value for i in e.right.items)
            if self._plain_field(e.left):
                name = e.left.path[0]

                def field_in_strs(ev, caps, start, now, key):
                    v = ev.get(name)
                    return v.__class__ is str and v in strs
                return field_in_strs
            lf = self.expr(e.left)

            def in_strs(ev, caps, start, now, key):
                v = lf(ev, caps, start, now, key)
                return v.__class__ is str and v in strs
            return in_strs
        lf, rf = self.expr(e.left), self.expr(e.right)
        fn = _BINARY.get(op)
        if fn is None:
            raise TypeError(f"internal error: unknown operator {op!r}")
        return lambda ev, caps, start, now, key: fn(lf(ev, caps, start, now, key), rf(ev, caps, start, now, key))

    def _equality(self, e: ast.Binary) -> Fn:
        eq = e.op == "=="
        lnull = isinstance(e.left, ast.Literal) and e.left.value is None
        rnull = isinstance(e.right, ast.Literal) and e.right.value is None
        if lnull or rnull:
            # `x == null`: x present with the value null; `x != null`: x present
            # and not null; both false when x is missing (§3.1 Null and truth)
            other = self.expr(e.right if lnull else e.left)
            if eq:
                return lambda ev, caps, start, now, key: other(ev, caps, start, now, key) is None

            def not_null(ev, caps, start, now, key):
                v = other(ev, caps, start, now, key)
                return v is not None and v is not MISSING

            return not_null
        for a, b in ((e.left, e.right), (e.right, e.left)):
            if self._plain_field(a) and isinstance(b, ast.Literal) and type(b.value) is str:
                # fast path: a plain field against a str literal.  A JSON value
                # equals a str only if it is that str (absent -> None, which
                # does not), so `==` alone is the architecture's equality here.
                name, lit = a.path[0], b.value
                if eq:
                    return lambda ev, caps, start, now, key: ev.get(name) == lit

                def field_ne_str(ev, caps, start, now, key):
                    v = ev.get(name)
                    return v.__class__ is str and v != lit
                return field_ne_str
        lf, rf = self.expr(e.left), self.expr(e.right)
        # fast path: a field against a str/number literal
        if isinstance(e.right, ast.Literal) and type(e.right.value) is str:
            lit = e.right.value
            if eq:
                def eq_str(ev, caps, start, now, key):
                    v = lf(ev, caps, start, now, key)
                    return type(v) is str and v == lit
                return eq_str

            def ne_str(ev, caps, start, now, key):
                v = lf(ev, caps, start, now, key)
                return type(v) is str and v != lit
            return ne_str
        fn = _eq if eq else _ne
        return lambda ev, caps, start, now, key: fn(lf(ev, caps, start, now, key), rf(ev, caps, start, now, key))

    def _plain_field(self, e) -> bool:
        """A one-name field of the current event (not in emit, where it is missing)."""
        return isinstance(e, ast.Field) and len(e.path) == 1 and not self.in_emit

    # -- calls

    def c_Call(self, e: ast.Call) -> Fn:
        name = e.func
        if name == "exists":
            f = self.expr(e.args[0])
            return lambda ev, caps, start, now, key: f(ev, caps, start, now, key) is not MISSING
        if name in _FUNCS:
            fn = _FUNCS[name]
            f = self.expr(e.args[0])
            return lambda ev, caps, start, now, key: fn(f(ev, caps, start, now, key))
        if name in _AGGS:
            arg = e.args[0]
            f = self.expr(arg)
            # an aggregate over a list capture itself works on its events;
            # over `c.f` (or any other list value) on the values
            of_events = isinstance(arg, ast.Capture)
            agg = _AGGS[name]
            return lambda ev, caps, start, now, key: agg(f(ev, caps, start, now, key), of_events)
        raise TypeError(f"internal error: unknown function {name!r}")


# ---------------------------------------------------------------------------
# operator and function tables


def _eq(a, b):
    if a is MISSING or b is MISSING or a is None or b is None:
        return False  # any comparison with null but `== null` is false
    return json_equal(a, b)


def _ne(a, b):
    if a is MISSING or b is MISSING or a is None or b is None:
        return False  # `!=` is false with a missing field too (§2)
    if not _like(a, b):
        return False  # unlike types: false for every operator, `!=` included
    return not json_equal(a, b)


def _lt(a, b):
    return _order_ok(a, b) and a < b


def _le(a, b):
    return _order_ok(a, b) and a <= b


def _gt(a, b):
    return _order_ok(a, b) and a > b


def _ge(a, b):
    return _order_ok(a, b) and a >= b


def _in(a, b):
    if a is MISSING or a is None:
        return False
    tb = type(b)
    if tb is list:
        return _contains_elem(b, a)
    if tb is str:
        return type(a) is str and a in b
    return False


def _not_in(a, b):
    # not `not (a in b)`: the same type requirements as `in` (docs/architecture.md)
    if a is MISSING or a is None:
        return False
    tb = type(b)
    if tb is list:
        return not _contains_elem(b, a)
    if tb is str:
        return type(a) is str and a not in b
    return False


def _contains(a, b):
    if b is MISSING or b is None:
        return False
    ta = type(a)
    if ta is list:
        return _contains_elem(a, b)
    if ta is str:
        return type(b) is str and b in a
    return False


def _startswith(a, b):
    return type(a) is str and type(b) is str and a.startswith(b)


def _endswith(a, b):
    return type(a) is str and type(b) is str and a.endswith(b)


def _add(a, b):
    ta, tb = type(a), type(b)
    if (ta is int or ta is float) and (tb is int or tb is float):
        try:
            return a + b
        except OverflowError:
            return MISSING
    if ta is str and tb is str:
        return a + b
    return MISSING


def _sub(a, b):
    if _is_num(a) and _is_num(b):
        try:
            return a - b
        except OverflowError:
            return MISSING
    return MISSING


def _mul(a, b):
    if _is_num(a) and _is_num(b):
        try:
            return a * b
        except OverflowError:
            return MISSING
    return MISSING


def _div(a, b):
    if _is_num(a) and _is_num(b):
        if b == 0:
            return MISSING
        try:
            return a / b
        except OverflowError:
            return MISSING
    return MISSING


_BINARY = {
    "<": _lt, "<=": _le, ">": _gt, ">=": _ge,
    "in": _in, "not in": _not_in, "contains": _contains,
    "startswith": _startswith, "endswith": _endswith,
    "+": _add, "-": _sub, "*": _mul, "/": _div,
}


def _lower(v):
    return v.lower() if type(v) is str else MISSING


def _upper(v):
    return v.upper() if type(v) is str else MISSING


def _len(v):
    t = type(v)
    return len(v) if (t is str or t is list or t is dict) else MISSING


def _abs(v):
    return abs(v) if _is_num(v) else MISSING


_FUNCS = {"lower": _lower, "upper": _upper, "len": _len, "abs": _abs}


def _numbers(values: list) -> list:
    return [v for v in values if type(v) is int or type(v) is float]


def _agg_count(v, of_events):
    if type(v) is not list:
        return MISSING
    if of_events:
        return len(v)
    # count(c.f): the events where f is present and not null
    return sum(1 for x in v if x is not None)


def _agg_sum(v, of_events):
    if type(v) is not list:
        return MISSING
    nums = _numbers(v)
    try:
        return sum(nums) if nums else 0
    except OverflowError:
        return MISSING


def _agg_avg(v, of_events):
    if type(v) is not list:
        return MISSING
    nums = _numbers(v)
    if not nums:
        return None
    try:
        return math.fsum(nums) / len(nums) if any(type(n) is float for n in nums) else sum(nums) / len(nums)
    except OverflowError:
        return MISSING


def _min_max(v, pick):
    if type(v) is not list:
        return MISSING
    vals = [x for x in v if x is not None]
    if not vals:
        return None
    if all(type(x) is int or type(x) is float for x in vals) or all(type(x) is str for x in vals):
        return pick(vals)
    return None


def _agg_min(v, of_events):
    return _min_max(v, min)


def _agg_max(v, of_events):
    return _min_max(v, max)


def _agg_first(v, of_events):
    if type(v) is not list:
        return MISSING
    return v[0] if v else None


def _agg_last(v, of_events):
    if type(v) is not list:
        return MISSING
    return v[-1] if v else None


def _distinct_key(x):
    """A hashable form of a JSON value in which numbers compare by value
    (1 and 1.0 are one value) and no other types meet (true is not 1)."""
    t = type(x)
    if t is int or t is float:
        return ("n", x)
    if t is str:
        return ("s", x)
    if t is bool:
        return ("b", x)
    if t is list:
        return ("l", tuple(_distinct_key(v) for v in x))
    if t is dict:
        return ("d", tuple(sorted((k, _distinct_key(v)) for k, v in x.items())))
    return ("z", repr(x))


def _agg_distinct(v, of_events):
    if type(v) is not list:
        return MISSING
    return len({_distinct_key(x) for x in v if x is not None and x is not MISSING})


_AGGS = {"count": _agg_count, "sum": _agg_sum, "avg": _agg_avg, "min": _agg_min, "max": _agg_max,
         "first": _agg_first, "last": _agg_last, "distinct": _agg_distinct}


# ---------------------------------------------------------------------------
# printing back (for `cep explain`)

_PREC = {"or": 1, "and": 2, "==": 4, "!=": 4, "<": 4, "<=": 4, ">": 4, ">=": 4, "in": 4, "not in": 4,
         "contains": 4, "startswith": 4, "endswith": 4, "matches": 4, "+": 5, "-": 5, "*": 6, "/": 6}


def _name(n: str) -> str:
    import re
    return n if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", n) else f"`{n}`"


def _lit(v) -> str:
    if v is None:
        return "null"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, str):
        return orjson.dumps(v).decode()
    return repr(v)


def render_expr(e, prec: int = 0) -> str:
    """Print a (resolved or parsed) expression back as rule text."""
    if isinstance(e, ast.Literal):
        return _lit(e.value)
    if isinstance(e, ast.DurationLit):
        return e.text
    if isinstance(e, ast.ListExpr):
        return "[" + ", ".join(render_expr(i) for i in e.items) + "]"
    if isinstance(e, ast.Ref):
        return f"`{e.name}`" if e.backticked else e.name
    if isinstance(e, ast.Field):
        return ".".join(_name(p) for p in e.path)
    if isinstance(e, ast.Capture):
        return _name(e.name)
    if isinstance(e, ast.Var):
        return e.name
    if isinstance(e, ast.GetAttr):
        return f"{render_expr(e.obj, 9)}.{_name(e.name)}"
    if isinstance(e, ast.GetIndex):
        return f"{render_expr(e.obj, 9)}[{render_expr(e.index)}]"
    if isinstance(e, ast.Call):
        return f"{e.func}(" + ", ".join(render_expr(a) for a in e.args) + ")"
    if isinstance(e, ast.Unary):
        text = f"not {render_expr(e.operand, 3)}" if e.op == "not" else f"-{render_expr(e.operand, 8)}"
        mine = 3 if e.op == "not" else 8
        return f"({text})" if mine < prec else text
    if isinstance(e, ast.Binary):
        mine = _PREC.get(e.op, 4)
        text = f"{render_expr(e.left, mine)} {e.op} {render_expr(e.right, mine + 1)}"
        return f"({text})" if mine < prec else text
    return repr(e)
