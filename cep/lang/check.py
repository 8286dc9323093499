"""Every check of a parsed rule set (SPEC §2, §3.1, §7; issue 3).

One function per check, listed in `CHECKS`; each takes the `Ctx` and returns
its diagnostics, so every problem of every file is reported, never only the
first.  Checks work on the parser's (unresolved) AST, because whether a name
is a later capture, an unknown name or a field is only visible there.  They
must never raise on half-broken input: the parser may have dropped items or
left a rule without a pattern.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Iterator

import re2

from cep.lang import ast
from cep.lang.diagnostics import Diagnostic, did_you_mean, error, warning
from cep.lang.resolve import VARS, is_list_quant

FIELD_TYPES = ("str", "int", "float", "bool", "list", "map", "any")
FUNCTIONS = {"lower": 1, "upper": 1, "len": 1, "abs": 1, "exists": 1}
AGGREGATES = ("count", "sum", "avg", "min", "max", "first", "last", "distinct")
_COMPARE = ("==", "!=", "<", "<=", ">", ">=")
_ARITH = ("+", "-", "*", "/")


def regex_problem(pattern: str) -> str | None:
    """Why RE2 cannot compile `pattern`, or None when it can (§2: `cep check`
    rejects what RE2 cannot compile)."""
    options = re2.Options()
    options.log_errors = False  # RE2 would print to stderr; we report it ourselves
    try:
        re2.compile(pattern, options)
    except re2.error as exc:
        detail = exc.args[0] if exc.args else str(exc)
        return detail.decode("utf-8", "replace") if isinstance(detail, bytes) else str(detail)
    return None


def _hint(name: str, *candidate_groups) -> str | None:
    return did_you_mean(name, [c for group in candidate_groups for c in group])


def _at(span: ast.Span, fallback: ast.Span) -> ast.Span:
    return span if span.line else fallback


# --------------------------------------------------------------------------
# context


@dataclass
class Ctx:
    files: list[ast.File]
    catalog: dict[str, ast.EventDecl]
    lets: dict[str, ast.Expr]
    default_key: tuple[tuple[str, ...], ...] | None
    sources: dict[str, str] = dataclasses.field(default_factory=dict)

    def word_span(self, path: str, within: ast.Span, word: str, after: str = "") -> ast.Span:
        """The span of `word` (optionally after the text `after`) inside
        `within`, for pointing the caret at one name of a longer node; `within`
        when it cannot be found."""
        text = self.sources.get(path)
        if not text or not within.line:
            return within
        lines = text.split("\n")
        start = sum(len(line) + 1 for line in lines[: within.line - 1]) + within.col - 1
        end = sum(len(line) + 1 for line in lines[: within.end_line - 1]) + within.end_col - 1
        if after:
            anchor = re.compile(r"(?<![\w`])" + re.escape(after) + r"(?![\w`])").search(text, start, max(end, start))
            if anchor:
                start = anchor.end()
        m = re.compile(r"(?<![\w`])`?" + re.escape(word) + r"`?(?![\w`])").search(text, start, max(end, start))
        if not m:
            return within
        at = m.start()
        line = text.count("\n", 0, at) + 1
        col = at - (text.rfind("\n", 0, at) + 1) + 1
        return ast.Span(line, col, line, col + (m.end() - at))

    @property
    def rules(self) -> Iterator[tuple[str, ast.Rule]]:
        for f in self.files:
            for it in f.items:
                if isinstance(it, ast.Rule):
                    yield f.path, it

    def items(self, kind) -> Iterator[tuple[str, object]]:
        for f in self.files:
            for it in f.items:
                if isinstance(it, kind):
                    yield f.path, it

    def key_fields(self, rule: ast.Rule | None = None) -> set[str]:
        """Top-level names of key fields: they need not be declared (§2)."""
        keys = set()
        rules = [rule] if rule is not None else [r for _, r in self.rules]
        for r in rules:
            for path in (r.key or self.default_key or ()):
                if path:
                    keys.add(path[0])
        for path in self.default_key or ():
            if path:
                keys.add(path[0])
        return keys

    def outputs(self, rule_names=None) -> dict[str, str]:
        """output name -> a rule emitting it (a rule without `emit` name emits its own name)."""
        out = {}
        for _, r in self.rules:
            if rule_names is None or r.name in rule_names:
                out.setdefault(r.emit.name if r.emit is not None and r.emit.name else r.name, r.name)
        return out


# --------------------------------------------------------------------------
# static types of expressions


@dataclass(frozen=True, slots=True)
class Ty:
    """A static type: `kind` is str num bool list map null any (unknown),
    event (a single capture), events (a list capture), values (a field of a
    list capture: only for aggregates).  `types` are the event types of a
    capture's step (empty: any type / not declared); `elem` the kind of a
    `values`."""

    kind: str
    types: tuple[str, ...] = ()
    elem: str = "any"


ANY = Ty("any")
_DECL_KIND = {"str": "str", "int": "num", "float": "num", "bool": "bool", "list": "list", "map": "map", "any": "any"}
_WORDS = {"str": "a string", "num": "a number", "bool": "a boolean", "list": "a list", "map": "a map",
          "null": "null", "event": "a capture", "events": "a list capture", "values": "a list capture's field"}


def _literal_kind(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "num"
    if isinstance(value, str):
        return "str"
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return "map"
    return "any"


class ExprChecker:
    """Walks one unresolved expression: reports unknown names and fields,
    later or own captures, bad calls, invalid regexes and type errors, and
    returns the expression's static type."""

    def __init__(self, ctx: Ctx, path: str, rule: ast.Rule | None, out: list[Diagnostic], *,
                 visible: dict[str, tuple[bool, tuple[str, ...]]], later: dict[str, str],
                 step_types: tuple[str, ...] | None, in_emit: bool):
        self.ctx = ctx
        self.path = path
        self.rule = rule
        self.out = out
        self.visible = visible  # capture -> (is_list, step types)
        self.later = later  # capture name -> "later" | "own"
        self.step_types = step_types  # None: no current event (emit); (): any type
        self.in_emit = in_emit
        self.keys = ctx.key_fields(rule)

    def err(self, span, message, hint=None):
        self.out.append(error(self.path, _at(span, self.rule.span if self.rule else ast.NOWHERE), message, hint))

    # ------------------------------------------------------------ fields
    def _declared(self, types: tuple[str, ...]) -> list[ast.EventDecl] | None:
        """The declarations of `types`, or None when fields are unchecked
        (any type, or a type the catalog does not declare)."""
        if not types or not self.ctx.catalog:
            return None
        decls = [self.ctx.catalog.get(t) for t in types]
        if any(d is None for d in decls):
            return None
        return decls

    def field_type(self, types: tuple[str, ...], name: str, span, *, extra=()) -> Ty:
        decls = self._declared(types)
        if decls is None:
            return ANY
        found = [f for d in decls for f in d.fields if f.name == name]
        if not found:
            if name in self.keys:
                return ANY
            if len(types) == 1:
                message = f"event type '{types[0]}' has no field '{name}'"
            else:
                message = "none of the event types " + ", ".join(f"'{t}'" for t in types) + f" has a field '{name}'"
            self.err(span, message,
                     _hint(name, [f.name for d in decls for f in d.fields], extra))
            return ANY
        kinds = {_DECL_KIND.get(f.type, "any") for f in found}
        return Ty(kinds.pop()) if len(kinds) == 1 else ANY

    def nested(self, base: Ty, name: str, span) -> Ty:
        """`x.name` where x has static type `base` (not a capture)."""
        if base.kind in ("str", "num", "bool", "list", "null"):
            self.err(span, f"'.{name}' reads a field of {_WORDS[base.kind]}, which has none",
                     "only a map field or a capture has fields")
        return ANY

    # ------------------------------------------------------------ walk
    def check(self, e) -> Ty:
        try:
            method = getattr(self, "t_" + type(e).__name__)
        except AttributeError:
            return ANY
        return method(e)

    def t_Literal(self, e: ast.Literal) -> Ty:
        return Ty(_literal_kind(e.value))

    def t_DurationLit(self, e) -> Ty:
        return Ty("num")  # milliseconds

    def t_Var(self, e: ast.Var) -> Ty:
        return ANY if e.name == "key" else Ty("num")

    def t_ListExpr(self, e: ast.ListExpr) -> Ty:
        for item in e.items:
            self.scalar(item, "a list item")
        return Ty("list")

    def t_Ref(self, e: ast.Ref) -> Ty:
        name = e.name
        if not e.backticked:
            if name in self.visible:
                is_list, types = self.visible[name]
                return Ty("events" if is_list else "event", types)
            if name in self.later:
                if self.later[name] == "own":
                    self.err(e.span, f"a step cannot refer to its own capture '{name}'",
                             "compare with an earlier step's capture, or use an aggregate in `emit`")
                else:
                    self.err(e.span, f"'{name}' is captured by a later step",
                             "a step can only refer to captures of earlier steps")
                return ANY
            if name in self.ctx.lets:
                value = self.ctx.lets[name]
                return self.check(value) if _is_constant(value) else ANY  # check_lets reports the rest
        if self.in_emit:
            # SPEC §2: "In emit, bare field names are missing" -- legal, written
            # as null, but almost always a slip: warn, with the closest capture.
            self.out.append(warning(self.path, e.span, f"'{name}' is not a capture or a constant: a bare field "
                                    "in emit is always null",
                                    _hint(name, self.visible, self.ctx.lets) or
                                    "there is no current event at completion; read a capture: `checkout.cart_value`"))
            return ANY  # its value is null; ANY keeps `.field` on it from a second report
        if self.step_types is None:
            return ANY
        extra = list(self.visible) + list(self.ctx.lets)
        return self.field_type(self.step_types, name, e.span, extra=extra)

    def t_GetAttr(self, e: ast.GetAttr) -> Ty:
        base = self.check(e.obj)
        if base.kind == "event":
            return self.field_type(base.types, e.name, e.span)
        if base.kind == "events":
            t = self.field_type(base.types, e.name, e.span)
            return Ty("values", base.types, t.kind)
        if base.kind == "values":
            self.err(e.span, f"'.{e.name}' on a list capture's field", "index the capture first: `views[0].page.x`")
            return ANY
        return self.nested(base, e.name, e.span)

    def t_GetIndex(self, e: ast.GetIndex) -> Ty:
        base = self.check(e.obj)
        index = self.scalar(e.index, "an index")
        if index.kind not in ("num", "any"):
            self.err(e.index.span, f"an index must be a whole number, not {_WORDS.get(index.kind, index.kind)}")
        elif isinstance(e.index, ast.Literal) and isinstance(e.index.value, float):
            self.err(e.index.span, "an index must be a whole number")
        if base.kind == "events":
            return Ty("event", base.types)
        if base.kind == "event":
            self.err(e.span, "indexing a single-event capture", "only a counted step (`3 page_view as views`) binds a list")
            return ANY
        if base.kind in ("str", "num", "bool", "map", "null", "values"):
            self.err(e.span, f"indexing {_WORDS[base.kind]}", "only lists and list captures can be indexed")
        return ANY

    def scalar(self, e, role: str) -> Ty:
        """A value used by an operator: a list capture's field is only for aggregates."""
        t = self.check(e)
        if t.kind == "values":
            self.err(e.span, f"a list capture's field used as {role}",
                     "use an aggregate (`count(views.page)`, `first(views.page)`) or an index (`views[0].page`)")
            return ANY
        return t

    def t_Unary(self, e: ast.Unary) -> Ty:
        t = self.scalar(e.operand, "an operand")
        if e.op == "not":
            return Ty("bool")
        if t.kind not in ("num", "any"):
            self.err(e.span, f"'-' of {_WORDS.get(t.kind, t.kind)} is always null", "'-' negates numbers")
        return Ty("num") if t.kind == "num" else ANY

    def t_Binary(self, e: ast.Binary) -> Ty:
        op = e.op
        if op in ("and", "or"):
            self.scalar(e.left, "a condition")
            self.scalar(e.right, "a condition")
            return Ty("bool")
        if op == "matches":
            left = self.scalar(e.left, "a string")
            if left.kind not in ("str", "any"):
                self.err(e.left.span, f"'matches' needs a string on the left, not {_WORDS.get(left.kind, left.kind)}",
                         "this comparison is always false")
            pattern = e.right.value if isinstance(e.right, ast.Literal) else None
            if isinstance(pattern, str):
                problem = regex_problem(pattern)
                if problem is not None:
                    self.err(e.right.span, f"invalid regular expression: {problem}",
                             "matches takes RE2 syntax: no back-references or look-around")
            return Ty("bool")
        left = self.scalar(e.left, "an operand")
        right = self.scalar(e.right, "an operand")
        if op in _COMPARE:
            self._compare(e, left, right)
            return Ty("bool")
        if op in ("in", "not in"):
            if right.kind not in ("list", "str", "any"):
                self.err(e.right.span, f"'{op}' needs a list or a string on the right, not {_WORDS.get(right.kind, right.kind)}",
                         "write `page in [\"/a\", \"/b\"]`")
            elif right.kind == "str" and left.kind not in ("str", "any"):
                self.err(e.span, f"'{op}' a string needs a string on the left, not {_WORDS.get(left.kind, left.kind)}")
            self._no_capture(e.left, left, op)
            return Ty("bool")
        if op in ("startswith", "endswith"):
            for side, t in ((e.left, left), (e.right, right)):
                if t.kind not in ("str", "any"):
                    self.err(side.span, f"'{op}' compares strings, not {_WORDS.get(t.kind, t.kind)}",
                             "this comparison is always false")
            return Ty("bool")
        if op == "contains":
            if left.kind not in ("list", "str", "any"):
                self.err(e.left.span, f"'contains' needs a list or a string on the left, not {_WORDS.get(left.kind, left.kind)}")
            elif left.kind == "str" and right.kind not in ("str", "any"):
                self.err(e.right.span, f"a string can only contain a string, not {_WORDS.get(right.kind, right.kind)}")
            return Ty("bool")
        if op in _ARITH:
            return self._arith(e, left, right)
        return ANY

    def _no_capture(self, node, t: Ty, op: str):
        if t.kind in ("event", "events"):
            self.err(node.span, f"'{op}' on {_WORDS[t.kind]}", "compare one of its fields: `checkout.cart_value`")

    def _compare(self, e: ast.Binary, left: Ty, right: Ty):
        op = e.op
        for side, t in ((e.left, left), (e.right, right)):
            other = right if t is left else left
            if t.kind in ("event", "events") and not (op in ("==", "!=") and other.kind == "null"):
                self.err(side.span, f"comparing {_WORDS[t.kind]} with '{op}'",
                         "compare one of its fields: `checkout.cart_value`")
                return
        a, b = left.kind, right.kind
        if "any" in (a, b) or a in ("event", "events") or b in ("event", "events"):
            return
        if op not in ("==", "!="):
            for side, k in ((e.left, a), (e.right, b)):
                if k not in ("num", "str"):
                    self.err(side.span, f"'{op}' on {_WORDS[k]} is always false", "'<', '<=', '>', '>=' compare numbers or strings")
                    return
        if a != b and "null" not in (a, b):
            self.err(e.span, f"comparing {_WORDS[a]} with {_WORDS[b]} is always false",
                     self._decl_hint(e.left, a) or self._decl_hint(e.right, b))

    def _decl_hint(self, node, kind) -> str | None:
        name = None
        if isinstance(node, ast.Ref):
            name = node.name
        elif isinstance(node, ast.GetAttr):
            name = node.name
        if name is None:
            return None
        return f"'{name}' is declared as {_WORDS.get(kind, kind)} in the catalog"

    def _arith(self, e: ast.Binary, left: Ty, right: Ty) -> Ty:
        a, b = left.kind, right.kind
        if e.op == "+" and a == "str" and b == "str":
            return Ty("str")
        for side, k in ((e.left, a), (e.right, b)):
            if k not in ("num", "any") and not (e.op == "+" and k == "str" and "any" in (a, b)):
                self.err(side.span, f"'{e.op}' on {_WORDS.get(k, k)} is always null",
                         "arithmetic takes numbers; '+' also joins two strings")
                return ANY
        return Ty("num") if a == b == "num" else ANY

    def t_Call(self, e: ast.Call) -> Ty:
        name = e.func
        if name in AGGREGATES:
            return self._aggregate(e)
        if name not in FUNCTIONS:
            self.err(e.span, f"unknown function '{name}'",
                     _hint(name, FUNCTIONS, AGGREGATES) or "functions: " + ", ".join([*FUNCTIONS, *AGGREGATES]))
            for arg in e.args:
                self.check(arg)
            return ANY
        if len(e.args) != FUNCTIONS[name]:
            self.err(e.span, f"{name}() takes 1 argument, got {len(e.args)}")
            for arg in e.args:
                self.check(arg)
            return ANY
        if name == "exists":
            self.check(e.args[0])
            return Ty("bool")
        t = self.scalar(e.args[0], "an argument")
        want = {"lower": ("str",), "upper": ("str",), "len": ("str", "list", "map"), "abs": ("num",)}[name]
        if t.kind not in (*want, "any"):
            self.err(e.args[0].span, f"{name}() of {_WORDS.get(t.kind, t.kind)} is always null",
                     f"{name}() takes " + " or ".join(_WORDS[w] for w in want))
        return Ty({"lower": "str", "upper": "str", "len": "num", "abs": "num"}[name])

    def _aggregate(self, e: ast.Call) -> Ty:
        name = e.func
        if len(e.args) != 1:
            self.err(e.span, f"{name}() takes 1 argument, got {len(e.args)}",
                     f"write `{name}(views)`" if name in ("count", "first", "last") else f"write `{name}(views.field)`")
            for arg in e.args:
                self.check(arg)
            return ANY
        arg = e.args[0]
        t = self.check(arg)
        if t.kind == "events":
            if name not in ("count", "first", "last"):
                self.err(arg.span, f"{name}() needs a field of the capture",
                         f"write `{name}({_src(arg)}.field)`")
                return ANY
            return Ty("num") if name == "count" else Ty("event", t.types)
        if t.kind != "values":
            if t.kind == "event":
                hint = "a single-event step binds one event; count the step (`2+ page_view as views`) to bind a list"
            else:
                hint = "aggregates take a list capture (`count(views)`) or a field of one (`sum(carts.price)`)"
            self.err(arg.span, f"{name}() over something that is not a list capture", hint)
            return ANY
        elem = t.elem
        if name in ("sum", "avg") and elem in ("str", "bool", "list", "map"):
            self.err(arg.span, f"{name}() over a {_DECL_NAME.get(elem, elem)} field is always {0 if name == 'sum' else 'null'}",
                     f"{name}() adds numbers")
        if name in ("count", "distinct"):
            return Ty("num")
        if name in ("sum", "avg"):
            return Ty("num")
        return Ty(elem) if elem in ("str", "num") or name in ("first", "last") else ANY


_DECL_NAME = {"str": "str", "num": "number", "bool": "bool", "list": "list", "map": "map"}


def _src(e) -> str:
    if isinstance(e, ast.Ref):
        return e.name
    return "capture"


# --------------------------------------------------------------------------
# checks: catalog and constants


def check_catalog(ctx: Ctx) -> list[Diagnostic]:
    out = []
    seen: dict[str, ast.EventDecl] = {}
    for path, decl in ctx.items(ast.EventDecl):
        if decl.name in seen:
            first = seen[decl.name]
            out.append(error(path, decl.span, f"event type '{decl.name}' is declared twice",
                             f"first declared at line {first.span.line}"))
            continue
        seen[decl.name] = decl
        names = set()
        for f in decl.fields:
            if f.name in names:
                out.append(error(path, f.span, f"field '{f.name}' is declared twice in event '{decl.name}'"))
            names.add(f.name)
            if f.type not in FIELD_TYPES:
                out.append(error(path, f.span, f"unknown field type '{f.type}'",
                                 _hint(f.type, FIELD_TYPES) or "field types: " + " ".join(FIELD_TYPES)))
    return out


def _is_constant(e) -> bool:
    if isinstance(e, (ast.Literal, ast.DurationLit)):
        return True
    if isinstance(e, ast.ListExpr):
        return all(_is_constant(i) for i in e.items)
    if isinstance(e, ast.Unary) and e.op == "-":
        return isinstance(e.operand, (ast.Literal, ast.DurationLit)) and not isinstance(getattr(e.operand, "value", 0), (str, bool))
    return False


def check_lets(ctx: Ctx) -> list[Diagnostic]:
    out = []
    seen: dict[str, ast.Let] = {}
    for path, let in ctx.items(ast.Let):
        if let.name in seen:
            out.append(error(path, let.span, f"constant '{let.name}' is defined twice",
                             f"first defined at line {seen[let.name].span.line}"))
        else:
            seen[let.name] = let
        if let.name in VARS:
            out.append(error(path, let.span, f"'{let.name}' is a built-in name and cannot be a constant"))
        if not _is_constant(let.value):
            out.append(error(path, _at(let.value.span, let.span), f"constant '{let.name}' must be a literal",
                             "a `let` value is a string, number, boolean, null, duration or a list of those"))
    return out


# --------------------------------------------------------------------------
# checks: rules


def check_keys(ctx: Ctx) -> list[Diagnostic]:
    out = []
    for path, rule in ctx.rules:
        if not rule.key and ctx.default_key is None:
            out.append(error(path, rule.name_span,
                             f"rule '{rule.name}' has no 'key' clause and no default key is configured",
                             "add `key customer_id` (or set default_key in cep.toml's [stream] section)"))
    return out


def check_rule_names(ctx: Ctx) -> list[Diagnostic]:
    out = []
    seen: dict[str, tuple[str, ast.Rule]] = {}
    for path, rule in ctx.rules:
        if rule.name in seen:
            fpath, first = seen[rule.name]
            out.append(error(path, rule.name_span, f"rule '{rule.name}' is defined twice",
                             f"first defined at {fpath}:{first.span.line}; rule names are unique across the rule set"))
        else:
            seen[rule.name] = (path, rule)
    return out


def _matchers(rule: ast.Rule):
    for item in rule.pattern:
        step = item.step
        if isinstance(step, (ast.EventStep, ast.NoStep, ast.NotStep)):
            yield step.matcher


def check_event_types(ctx: Ctx) -> list[Diagnostic]:
    """§2: with a catalog, every event type a rule names is declared."""
    if not ctx.catalog:
        return []
    out = []
    for path, rule in ctx.rules:
        for m in _matchers(rule):
            for t in m.types:
                if t not in ctx.catalog:
                    span = m.span if len(m.types) == 1 else ctx.word_span(path, m.span, t)
                    out.append(error(path, span, f"unknown event type '{t}'",
                                     _hint(t, ctx.catalog) or "declare it with `event " + t + " { ... }`"))
    return out


def check_pattern_shape(ctx: Ctx) -> list[Diagnostic]:
    """§2: a pattern may not start with idle, no, not, optional or a 0..M
    count (0+ too, §3.1 Names), and may not end with not."""
    out = []
    for path, rule in ctx.rules:
        if not rule.pattern:
            continue
        first = rule.pattern[0].step
        word = None
        if isinstance(first, ast.IdleStep):
            word = "idle"
        elif isinstance(first, ast.NoStep):
            word = "no"
        elif isinstance(first, ast.NotStep):
            word = "not"
        elif isinstance(first, ast.EventStep) and first.quant.min == 0:
            word = "optional" if first.quant.kind == "optional" else f"a count from 0 ('{_quant_text(first.quant)}')"
        if word:
            out.append(error(path, first.span, f"a pattern cannot start with {word if ' ' in word else repr(word)}",
                             "the first step must take an event: it is what starts a run"))
        last = rule.pattern[-1].step
        if isinstance(last, ast.NotStep) and len(rule.pattern) > 1:
            out.append(error(path, last.span, "a pattern cannot end with 'not'",
                             "a `not` needs a following step; for absence at the end write `no X for 10m`"))
    return out


def _quant_text(q: ast.Quantifier) -> str:
    if q.kind == "range":
        return f"{q.min}..{q.max}"
    if q.kind == "plus":
        return f"{q.min}+"
    return str(q.min)


def check_counts(ctx: Ctx) -> list[Diagnostic]:
    out = []
    for path, rule in ctx.rules:
        for item in rule.pattern:
            step = item.step
            if not isinstance(step, ast.EventStep):
                continue
            q = step.quant
            span = _at(q.span, step.span)
            if q.kind == "range" and q.max is not None and q.min > q.max:
                out.append(error(path, span, f"count {q.min}..{q.max} has its minimum above its maximum",
                                 f"write {q.max}..{q.min}"))
            elif q.kind in ("exact", "range") and q.max == 0:
                out.append(error(path, span, f"a count of zero ('{_quant_text(q)}') takes no event",
                                 "to require that no such event occurs, write `no TYPE for D` or `not TYPE`"))
    return out


def check_durations(ctx: Ctx) -> list[Diagnostic]:
    out = []
    for path, rule in ctx.rules:
        found: list[tuple[str, ast.DurationLit]] = []
        if rule.within is not None:
            found.append(("within", rule.within))
        if rule.cooldown is not None:
            found.append(("cooldown", rule.cooldown))
        for item in rule.pattern:
            if isinstance(item.step, ast.IdleStep):
                found.append(("idle", item.step.duration))
            elif isinstance(item.step, ast.NoStep):
                found.append(("no ... for", item.step.duration))
        for what, d in found:
            if d.ms == 0:
                out.append(error(path, d.span, f"a zero duration for '{what}'", "durations are 500ms, 90s, 30m, 1h30m, 2d"))
    return out


def check_captures(ctx: Ctx) -> list[Diagnostic]:
    out = []
    for path, rule in ctx.rules:
        seen: dict[str, ast.EventStep] = {}
        for item in rule.pattern:
            step = item.step
            if isinstance(step, ast.EventStep) and step.capture is not None:
                span = _at(step.capture_span, step.span)
                if step.capture in seen:
                    out.append(error(path, span, f"capture '{step.capture}' is bound twice in rule '{rule.name}'",
                                     f"first bound at line {seen[step.capture].span.line}; pick another name"))
                else:
                    seen[step.capture] = step
                if step.capture in VARS:
                    out.append(error(path, span, f"'{step.capture}' is a built-in name and cannot be a capture"))
    return out


def _step_types(m: ast.EventMatcher) -> tuple[str, ...]:
    return () if m.any_type else m.types


def check_expressions(ctx: Ctx) -> list[Diagnostic]:
    """Names, fields, functions, regexes and types of every `where` and payload."""
    out: list[Diagnostic] = []
    for path, rule in ctx.rules:
        visible: dict[str, tuple[bool, tuple[str, ...]]] = {}
        all_caps = {}
        for i, item in enumerate(rule.pattern):
            step = item.step
            if isinstance(step, ast.EventStep) and step.capture is not None:
                all_caps.setdefault(step.capture, i)
        for i, item in enumerate(rule.pattern):
            step = item.step
            if not isinstance(step, (ast.EventStep, ast.NoStep, ast.NotStep)):
                continue
            m = step.matcher
            if m.where is not None:
                later = {name: ("own" if at == i else "later") for name, at in all_caps.items()
                         if at >= i and name not in visible}
                ExprChecker(ctx, path, rule, out, visible=dict(visible), later=later,
                            step_types=_step_types(m), in_emit=False).check(m.where)
            if isinstance(step, ast.EventStep) and step.capture is not None and step.capture not in visible:
                visible[step.capture] = (is_list_quant(step.quant), _step_types(m))
        if rule.emit is not None:
            names = set()
            for f in rule.emit.fields:
                if f.name in names:
                    out.append(error(path, f.span, f"payload field '{f.name}' is given twice"))
                names.add(f.name)
                ExprChecker(ctx, path, rule, out, visible=visible, later={}, step_types=None,
                            in_emit=True).check(f.value)
    return out


# --------------------------------------------------------------------------
# warnings: legal but suspicious


def _trailing_absence_ms(rule: ast.Rule) -> int:
    total = 0
    for item in reversed(rule.pattern):
        step = item.step
        if isinstance(step, ast.IdleStep):
            total += step.duration.ms
        elif isinstance(step, ast.NoStep):
            total += step.duration.ms
        elif isinstance(step, ast.NotStep):
            continue
        else:
            break
    return total


def warn_within_shorter_than_absence(ctx: Ctx) -> list[Diagnostic]:
    out = []
    for path, rule in ctx.rules:
        if rule.within is None or rule.within.ms == 0:
            continue
        need = _trailing_absence_ms(rule)
        if need > rule.within.ms:
            out.append(warning(path, rule.within.span,
                               f"'within {rule.within.text}' is shorter than the trailing absence step(s), "
                               f"so this rule can never match",
                               "make `within` at least as long as the silence the pattern waits for"))
    return out


def _conjuncts(e) -> list:
    if isinstance(e, ast.Binary) and e.op == "and":
        return _conjuncts(e.left) + _conjuncts(e.right)
    return [e]


def _equality(e):
    """(subject, literal value) for `subject == literal` / `literal == subject`."""
    if not (isinstance(e, ast.Binary) and e.op == "=="):
        return None
    if isinstance(e.right, ast.Literal) and not isinstance(e.left, ast.Literal):
        return e.left, e.right.value
    if isinstance(e.left, ast.Literal) and not isinstance(e.right, ast.Literal):
        return e.right, e.left.value
    return None


def _same_value(a, b) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    return a == b


def warn_where_never_holds(ctx: Ctx) -> list[Diagnostic]:
    """`page == "a" and page == "b"`: two equalities of one subject with
    different constants in the same `and` chain."""
    out = []
    for path, rule in ctx.rules:
        for m in _matchers(rule):
            if m.where is None:
                continue
            for e in _walk(m.where):
                if not (isinstance(e, ast.Binary) and e.op == "and"):
                    continue
                seen: dict = {}
                for c in _conjuncts(e):
                    eq = _equality(c)
                    if eq is None:
                        continue
                    subject, value = eq
                    for prev_subject, prev_value in seen.items():
                        if prev_subject == subject and not _same_value(prev_value, value):
                            out.append(warning(path, e.span, "this condition can never hold",
                                               f"{_show(subject)} cannot equal both {_show_value(prev_value)} and "
                                               f"{_show_value(value)}; did you mean `or`?"))
                            break
                    else:
                        if subject not in seen:
                            seen[subject] = value
                        continue
                    break
                else:
                    continue
                break  # one warning per where
    return out


def _show(e) -> str:
    if isinstance(e, ast.Ref):
        return f"'{e.name}'"
    if isinstance(e, ast.GetAttr):
        return f"'{e.name}'"
    return "the value"


def _show_value(v) -> str:
    if isinstance(v, str):
        return '"' + v + '"'
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    return repr(v)


def _walk(e):
    yield e
    for child in _children(e):
        yield from _walk(child)


def _children(e):
    if isinstance(e, ast.Binary):
        return (e.left, e.right)
    if isinstance(e, ast.Unary):
        return (e.operand,)
    if isinstance(e, ast.GetAttr):
        return (e.obj,)
    if isinstance(e, ast.GetIndex):
        return (e.obj, e.index)
    if isinstance(e, ast.Call):
        return e.args
    if isinstance(e, ast.ListExpr):
        return e.items
    return ()


def warn_cooldown_without_emit(ctx: Ctx) -> list[Diagnostic]:
    out = []
    for path, rule in ctx.rules:
        if rule.cooldown is not None and rule.emit is None:
            out.append(warning(path, rule.cooldown.span, f"rule '{rule.name}' has a cooldown but no 'emit'",
                               "add an `emit` clause naming the output the cooldown throttles"))
    return out


# --------------------------------------------------------------------------
# checks: tests (§7)


def _fits(decl_type: str, value) -> bool:
    if decl_type == "any":
        return True
    if decl_type == "str":
        return isinstance(value, str)
    if decl_type == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if decl_type == "float":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if decl_type == "bool":
        return isinstance(value, bool)
    if decl_type == "list":
        return isinstance(value, list)
    if decl_type == "map":
        return isinstance(value, dict)
    return True


def check_tests(ctx: Ctx) -> list[Diagnostic]:
    out = []
    rule_names = {r.name for _, r in ctx.rules}
    keys = ctx.key_fields()
    seen: dict[str, ast.Test] = {}
    for path, test in ctx.items(ast.Test):
        if test.name in seen:
            out.append(error(path, test.span, f"test '{test.name}' is defined twice",
                             f"first defined at line {seen[test.name].span.line}"))
        else:
            seen[test.name] = test
        for name in test.only:
            if name not in rule_names:
                out.append(error(path, ctx.word_span(path, test.span, name, after="only"),
                                 f"test '{test.name}': 'only' names an unknown rule '{name}'",
                                 _hint(name, rule_names)))
        for g in test.given:
            if not ctx.catalog:
                break
            decl = ctx.catalog.get(g.type)
            if decl is None:
                out.append(error(path, ctx.word_span(path, g.span, g.type), f"unknown event type '{g.type}' in test '{test.name}'",
                                 _hint(g.type, ctx.catalog) or f"declare it with `event {g.type} {{ ... }}`"))
                continue
            declared = {f.name: f for f in decl.fields}
            given = dict(g.fields)
            for name, value in g.fields:
                f = declared.get(name)
                at = ctx.word_span(path, g.span, name)
                if f is None:
                    if name not in keys and name not in ("type", "ts"):
                        out.append(error(path, at, f"event type '{g.type}' has no field '{name}'",
                                         _hint(name, declared)))
                elif value is None and not f.optional:
                    out.append(error(path, at, f"field '{name}' of '{g.type}' is required and cannot be null"))
                elif value is not None and not _fits(f.type, value):
                    out.append(error(path, at, f"field '{name}' of '{g.type}' is declared {f.type}, "
                                                   f"but the test gives {_show_value(value) if not isinstance(value, (list, dict)) else type(value).__name__}"))
            for f in decl.fields:
                if not f.optional and f.name not in given:
                    out.append(error(path, g.span, f"event '{g.type}' lacks its required field '{f.name}'",
                                     "the catalog declares it without '?'"))
        scope = set(test.only) & rule_names if test.only else None
        outputs = ctx.outputs(scope)
        for ex in test.expects:
            if ex.output is not None and ex.output not in outputs:
                if scope is not None and ex.output in ctx.outputs():
                    msg = f"no rule in 'only {', '.join(test.only)}' emits '{ex.output}'"
                else:
                    msg = f"no rule emits '{ex.output}'"
                out.append(error(path, ex.span, msg, _hint(ex.output, outputs)))
            if ex.nothing_from is not None and ex.nothing_from not in rule_names:
                out.append(error(path, ctx.word_span(path, ex.span, ex.nothing_from, after="from"),
                                 f"'expect nothing from' names an unknown rule '{ex.nothing_from}'",
                                 _hint(ex.nothing_from, rule_names)))
            for name, value in ex.fields:
                if name == "at" and (not isinstance(value, (int, float)) or isinstance(value, bool)):
                    out.append(error(path, ex.span, "'at' is the completion time as an offset, such as 2m"))
    return out


CHECKS = (
    check_catalog,
    check_lets,
    check_keys,
    check_rule_names,
    check_event_types,
    check_pattern_shape,
    check_counts,
    check_durations,
    check_captures,
    check_expressions,
    warn_within_shorter_than_absence,
    warn_where_never_holds,
    warn_cooldown_without_emit,
    check_tests,
)


def run_checks(files, catalog, lets, default_key, sources=None) -> list[Diagnostic]:
    ctx = Ctx(list(files), catalog, lets, default_key, dict(sources or {}))
    out: list[Diagnostic] = []
    for check in CHECKS:
        out.extend(check(ctx))
    return out
