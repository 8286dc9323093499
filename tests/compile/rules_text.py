"""Rule text -> Program, for the compiler and matcher tests.

Uses `cep.lang.load_text` (resolution and checks) when it exists; until then
a minimal resolver of docs/architecture.md "Resolution" over the parser's
output, enough for the well-formed rules of these tests.
"""

from __future__ import annotations

from types import SimpleNamespace

from cep.compile import Program, compile_ruleset
from cep.lang import ast
from cep.lang.build import parse_text


def _resolve(e, lets: dict, caps: dict):
    if isinstance(e, ast.Ref):
        if e.backticked:
            return ast.Field((e.name,))
        if e.name in ("key", "start", "now"):
            return ast.Var(e.name)
        if e.name in caps:
            return ast.Capture(e.name, caps[e.name])
        if e.name in lets:
            return lets[e.name]
        return ast.Field((e.name,))
    if isinstance(e, ast.GetAttr):
        obj = _resolve(e.obj, lets, caps)
        if isinstance(obj, ast.Field):
            return ast.Field(obj.path + (e.name,))
        return ast.GetAttr(obj, e.name)
    if isinstance(e, ast.GetIndex):
        return ast.GetIndex(_resolve(e.obj, lets, caps), _resolve(e.index, lets, caps))
    if isinstance(e, ast.Call):
        return ast.Call(e.func, tuple(_resolve(a, lets, caps) for a in e.args))
    if isinstance(e, ast.Unary):
        return ast.Unary(e.op, _resolve(e.operand, lets, caps))
    if isinstance(e, ast.Binary):
        return ast.Binary(e.op, _resolve(e.left, lets, caps), _resolve(e.right, lets, caps))
    if isinstance(e, ast.ListExpr):
        return ast.ListExpr(tuple(_resolve(i, lets, caps) for i in e.items))
    return e


def _resolve_matcher(m: ast.EventMatcher, lets, caps):
    if m.where is None:
        return m
    return ast.replace(m, where=_resolve(m.where, lets, caps))


def _resolve_rule(rule: ast.Rule, lets: dict, default_key) -> ast.Rule:
    caps: dict[str, bool] = {}
    items = []
    for item in rule.pattern:
        st = item.step
        if isinstance(st, (ast.EventStep, ast.NoStep, ast.NotStep)):
            st = ast.replace(st, matcher=_resolve_matcher(st.matcher, lets, caps))
        if isinstance(st, ast.EventStep) and st.capture:
            caps[st.capture] = st.quant.kind not in ("one", "optional")
        items.append(ast.replace(item, step=st))
    emit = rule.emit
    if emit is not None:
        emit = ast.replace(emit, fields=tuple(ast.replace(f, value=_resolve(f.value, lets, caps))
                                              for f in emit.fields))
    key = rule.key or tuple(tuple(p.strip().split(".")) for p in default_key.split(","))
    return ast.replace(rule, pattern=tuple(items), emit=emit, key=key)


def load_rules(text: str, default_key: str = "customer_id"):
    try:
        from cep.lang import load_text  # noqa: PLC0415 (lands with the front end)
    except ImportError:
        load_text = None
    if load_text is not None:
        rs = load_text(text, default_key=default_key)
        if rs.has_errors:
            raise AssertionError("rules have errors: " + "; ".join(d.message for d in rs.diagnostics))
        return rs
    f, diags = parse_text(text)
    if diags:
        raise AssertionError("rules do not parse: " + "; ".join(d.message for d in diags))
    lets = {it.name: it.value for it in f.items if isinstance(it, ast.Let)}
    rules = tuple(_resolve_rule(it, lets, default_key) for it in f.items if isinstance(it, ast.Rule))
    catalog = {it.name: it for it in f.items if isinstance(it, ast.EventDecl)}
    return SimpleNamespace(rules=rules, catalog=catalog, has_errors=False, diagnostics=[])


def program(text: str, default_key: str = "customer_id") -> Program:
    return compile_ruleset(load_rules(text, default_key))
