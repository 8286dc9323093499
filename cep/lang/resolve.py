"""Name resolution (docs/architecture.md "cep.lang", Resolution).

Rewrites every `where` and payload expression of a rule from the parser's
`Ref`/`GetAttr` form into `Field`, `Capture` and `Var` nodes, and fills the
rule's key.  Pure: never raises on half-broken input (the checks report
what is wrong; resolution just does its best)."""

from __future__ import annotations

from cep.lang import ast

VARS = ("key", "start", "now")


def is_list_quant(quant: ast.Quantifier) -> bool:
    """§3.1 Captures: every written count binds a list; `optional` and no
    quantifier bind one event."""
    return quant.kind not in ("one", "optional")


def split_key(default_key: str | tuple[str, ...] | None) -> tuple[tuple[str, ...], ...] | None:
    """`"customer_id"` / `"a, b.c"` / `("a", "b.c")` -> `(("customer_id",),)` / `(("a",), ("b", "c"))`."""
    if default_key is None:
        return None
    if isinstance(default_key, tuple) and all(isinstance(p, tuple) for p in default_key):
        return default_key or None  # already split
    parts = default_key.split(",") if isinstance(default_key, str) else list(default_key)
    out = tuple(tuple(seg.strip() for seg in p.strip().split(".")) for p in parts if p.strip())
    return out or None


def resolve_expr(expr: ast.Expr, captures: dict[str, bool], lets: dict[str, ast.Expr]) -> ast.Expr:
    """Resolve one expression; `captures` maps each visible capture to is_list."""
    if isinstance(expr, ast.Ref):
        if expr.backticked:
            return ast.Field((expr.name,), expr.span)
        if expr.name in captures:  # captures shadow fields
            return ast.Capture(expr.name, captures[expr.name], expr.span)
        if expr.name in lets:
            return lets[expr.name]
        return ast.Field((expr.name,), expr.span)
    if isinstance(expr, ast.GetAttr):
        obj = resolve_expr(expr.obj, captures, lets)
        if isinstance(obj, ast.Field):
            return ast.Field((*obj.path, expr.name), expr.span)
        return ast.GetAttr(obj, expr.name, expr.span)
    if isinstance(expr, ast.GetIndex):
        return ast.GetIndex(resolve_expr(expr.obj, captures, lets), resolve_expr(expr.index, captures, lets), expr.span)
    if isinstance(expr, ast.Call):
        return ast.Call(expr.func, tuple(resolve_expr(a, captures, lets) for a in expr.args), expr.span)
    if isinstance(expr, ast.Unary):
        return ast.Unary(expr.op, resolve_expr(expr.operand, captures, lets), expr.span)
    if isinstance(expr, ast.Binary):
        return ast.Binary(expr.op, resolve_expr(expr.left, captures, lets), resolve_expr(expr.right, captures, lets),
                          expr.span)
    if isinstance(expr, ast.ListExpr):
        return ast.ListExpr(tuple(resolve_expr(i, captures, lets) for i in expr.items), expr.span)
    return expr  # Literal, DurationLit, Var and already-resolved nodes


def _resolve_matcher(m: ast.EventMatcher, captures, lets) -> ast.EventMatcher:
    if m.where is None:
        return m
    return ast.replace(m, where=resolve_expr(m.where, captures, lets))


def resolve_rule(rule: ast.Rule, lets: dict[str, ast.Expr], default_key) -> ast.Rule:
    """The rule with resolved expressions and its key filled (clause, else
    `default_key`; left None only when neither exists — an error the checks report)."""
    captures: dict[str, bool] = {}
    items = []
    for item in rule.pattern:
        step = item.step
        # a step sees only the captures of earlier steps (§3.1 Names)
        if isinstance(step, ast.EventStep):
            step = ast.replace(step, matcher=_resolve_matcher(step.matcher, captures, lets))
            items.append(ast.replace(item, step=step))
            if step.capture is not None and step.capture not in captures:
                captures[step.capture] = is_list_quant(step.quant)
        elif isinstance(step, (ast.NoStep, ast.NotStep)):
            items.append(ast.replace(item, step=ast.replace(step, matcher=_resolve_matcher(step.matcher, captures, lets))))
        else:
            items.append(item)
    emit = rule.emit
    if emit is not None:
        emit = ast.replace(emit, fields=tuple(ast.replace(f, value=resolve_expr(f.value, captures, lets))
                                              for f in emit.fields))
    key = rule.key if rule.key else split_key(default_key)
    return ast.replace(rule, pattern=tuple(items), emit=emit, key=key)
