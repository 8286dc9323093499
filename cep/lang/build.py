"""Parse tree to AST: one method per grammar rule, each building one node
with its source span.  Also `parse_text`, which turns lark's exceptions into
positioned diagnostics phrased for a rule author and resynchronises at the
next top-level item so that every syntax error of a file is reported."""

from __future__ import annotations

import functools
import re

import lark
from lark import Token, Transformer, Tree, v_args

from cep.lang import ast
from cep.lang.diagnostics import Diagnostic, error
from cep.lang.grammar import parser

_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
_DURATION_PART = re.compile(r"([0-9]+)(ms|s|m|h|d)")
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\", "/": "/", "0": "\0"}


def duration_ms(text: str) -> int:
    """`1h30m` -> 5400000."""
    return sum(int(n) * _UNIT_MS[u] for n, u in _DURATION_PART.findall(text))


def unquote(text: str) -> str:
    """The value of a double-quoted string token (JSON-like escapes, plus \\uXXXX)."""
    body = text[1:-1]
    if "\\" not in body:
        return body
    out = []
    i = 0
    while i < len(body):
        ch = body[i]
        if ch == "\\" and i + 1 < len(body):
            nxt = body[i + 1]
            if nxt == "u" and re.fullmatch(r"[0-9a-fA-F]{4}", body[i + 2 : i + 6] or ""):
                out.append(chr(int(body[i + 2 : i + 6], 16)))
                i += 6
                continue
            out.append(_ESCAPES.get(nxt, nxt))
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def _tok_span(tok: Token) -> ast.Span:
    return ast.Span(tok.line, tok.column, tok.end_line, tok.end_column)


def _meta_span(meta) -> ast.Span:
    if getattr(meta, "empty", True):
        return ast.NOWHERE
    return ast.Span(meta.line, meta.column, meta.end_line, meta.end_column)


class _Name(str):
    """A name with its span and whether it was backticked (a str, so it can be
    used as one)."""

    span: ast.Span
    backticked: bool

    def __new__(cls, value: str, span: ast.Span, backticked: bool):
        obj = super().__new__(cls, value)
        obj.span = span
        obj.backticked = backticked
        return obj


@v_args(meta=True)
class AstBuilder(Transformer):
    def __init__(self, path: str):
        super().__init__(visit_tokens=False)
        self.file_path = path
        self.diagnostics: list[Diagnostic] = []

    def transform(self, tree):
        """lark's Transformer.transform, without its per-node costs (a bound
        v_args wrapper made per call, a getattr per token, a generator per
        node): 1,000 rules load about a third faster.  The same callbacks,
        called the same way (self, meta, children), bottom-up."""
        fns = _callbacks()
        default = self.__default__
        tree_class = Tree

        def walk(t):
            children = [walk(c) if isinstance(c, tree_class) else c for c in t.children]
            f = fns.get(t.data)
            if f is None:
                return default(t.data, children, t.meta)
            return f(self, t.meta, children)

        return walk(tree)

    # ------------------------------------------------------------ names
    def plain_name(self, meta, children):
        tok = children[0]
        return _Name(str(tok), _tok_span(tok), False)

    def backticked_name(self, meta, children):
        tok = children[0]
        return _Name(str(tok)[1:-1], _tok_span(tok), True)

    def path(self, meta, children):
        return tuple(str(c) for c in children)

    def duration(self, meta, children):
        tok = children[0]
        return ast.DurationLit(duration_ms(str(tok)), str(tok), _tok_span(tok))

    def zero_offset(self, meta, children):
        tok = children[0]
        # a bare number as a test offset: only 0 makes sense without a unit
        return ast.DurationLit(int(tok), str(tok), _tok_span(tok))

    # ------------------------------------------------------------ file
    def start(self, meta, children):
        return ast.File(self.file_path, tuple(children), span=_meta_span(meta))

    def event_decl(self, meta, children):
        name, *fields = children
        return ast.EventDecl(str(name), tuple(fields), _meta_span(meta))

    def event_decl_bare(self, meta, children):
        return ast.EventDecl(str(children[0]), (), _meta_span(meta))

    def field_decl(self, meta, children):
        name, typ, *opt = children
        return ast.FieldDecl(str(name), str(typ), bool(opt), _meta_span(meta))

    def let_decl(self, meta, children):
        name, value = children
        return ast.Let(str(name), value, _meta_span(meta))

    # ------------------------------------------------------------ rules
    def rule(self, meta, children):
        name, *rest = children
        description = None
        if rest and isinstance(rest[0], Token) and rest[0].type == "STRING":
            description = unquote(str(rest.pop(0)))
        clauses: dict[str, list] = {}
        for kind, value, span in rest:
            clauses.setdefault(kind, []).append((value, span))

        def one(kind):
            got = clauses.get(kind)
            return got[0] if got else (None, ast.NOWHERE)

        key, key_span = one("key")
        pattern, _ = one("match")
        within, _ = one("within")
        emit, _ = one("emit")
        cooldown, _ = one("cooldown")
        rule = ast.Rule(
            name=str(name),
            description=description,
            key=key,
            pattern=pattern or (),
            within=within,
            emit=emit,
            cooldown=cooldown,
            span=_meta_span(meta),
            name_span=name.span,
            key_span=key_span,
        )
        for kind, got in clauses.items():
            for _, span in got[1:]:
                self.diagnostics.append(error(self.file_path, span, f"rule '{name}' has a second '{kind}' clause",
                                              hint=f"a rule takes one '{kind}' clause"))
        if "match" not in clauses:
            self.diagnostics.append(error(self.file_path, name.span, f"rule '{name}' has no 'match' clause",
                                          hint="add a pattern, e.g. `match page_view where page == \"/pricing\"`"))
        return rule

    def key_clause(self, meta, children):
        return ("key", tuple(children), _meta_span(meta))

    def match_clause(self, meta, children):
        items = []
        connector = None
        for child in children:
            if isinstance(child, str) and child in ("then", "next") and not isinstance(child, _Name):
                connector = child
                continue
            items.append(ast.PatternItem(connector, child, getattr(child, "span", ast.NOWHERE)))
            connector = None
        return ("match", tuple(items), _meta_span(meta))

    def connector(self, meta, children):
        return str(children[0])

    def within_clause(self, meta, children):
        return ("within", children[0], _meta_span(meta))

    def cooldown_clause(self, meta, children):
        return ("cooldown", children[0], _meta_span(meta))

    def emit_clause(self, meta, children):
        name = None
        fields: tuple = ()
        for child in children:
            if isinstance(child, _Name):
                name = str(child)
            else:
                fields = child
        return ("emit", ast.Emit(name, fields, _meta_span(meta)), _meta_span(meta))

    def payload(self, meta, children):
        return tuple(children)

    def payload_field(self, meta, children):
        name, value = children
        return ast.PayloadField(str(name), value, _meta_span(meta))

    # ------------------------------------------------------------ steps
    def event_step(self, meta, children):
        quant = ast.ONE
        where = None
        capture = None
        capture_span = ast.NOWHERE
        matcher = None
        for child in children:
            if isinstance(child, ast.Quantifier):
                quant = child
            elif isinstance(child, tuple) and child and child[0] == "where":
                where = child[1]
            elif isinstance(child, tuple) and child and child[0] == "as":
                capture, capture_span = str(child[1]), child[1].span
            else:
                matcher = child
        matcher = ast.EventMatcher(matcher.types, matcher.any_type, where, matcher.span)
        return ast.EventStep(quant, matcher, capture, _meta_span(meta), capture_span)

    def q_exact(self, meta, children):
        n = int(children[0])
        return ast.Quantifier("exact", n, n, _meta_span(meta))

    def q_range(self, meta, children):
        return ast.Quantifier("range", int(children[0]), int(children[1]), _meta_span(meta))

    def q_plus(self, meta, children):
        return ast.Quantifier("plus", int(children[0]), None, _meta_span(meta))

    def q_optional(self, meta, children):
        return ast.Quantifier("optional", 0, 1, _meta_span(meta))

    def m_type(self, meta, children):
        return ast.EventMatcher((str(children[0]),), False, None, _meta_span(meta))

    def m_alts(self, meta, children):
        return ast.EventMatcher(tuple(str(c) for c in children), False, None, _meta_span(meta))

    def m_any(self, meta, children):
        return ast.EventMatcher((), True, None, _meta_span(meta))

    def where(self, meta, children):
        return ("where", children[0])

    def capture(self, meta, children):
        return ("as", children[0])

    def idle_step(self, meta, children):
        return ast.IdleStep(children[0], _meta_span(meta))

    def no_step(self, meta, children):
        matcher, *rest = children
        where = None
        for child in rest[:-1]:
            where = child[1]
        return ast.NoStep(ast.EventMatcher(matcher.types, matcher.any_type, where, matcher.span), rest[-1], _meta_span(meta))

    def not_step(self, meta, children):
        matcher, *rest = children
        where = rest[0][1] if rest else None
        return ast.NotStep(ast.EventMatcher(matcher.types, matcher.any_type, where, matcher.span), _meta_span(meta))

    # ------------------------------------------------------------ expressions
    def _chain(self, op, meta, children):
        node = children[0]
        for right in children[1:]:
            node = ast.Binary(op, node, right, ast.Span(node.span.line, node.span.col, right.span.end_line, right.span.end_col))
        return node

    def or_chain(self, meta, children):
        return self._chain("or", meta, children)

    def and_chain(self, meta, children):
        return self._chain("and", meta, children)

    def not_op(self, meta, children):
        return ast.Unary("not", children[0], _meta_span(meta))

    def compare(self, meta, children):
        left, op, right = children
        return ast.Binary(str(op), left, right, _meta_span(meta))

    def in_op(self, meta, children):
        return ast.Binary("in", children[0], children[1], _meta_span(meta))

    def not_in_op(self, meta, children):
        return ast.Binary("not in", children[0], children[1], _meta_span(meta))

    def infix_op(self, meta, children):
        left, op, right = children
        return ast.Binary(str(op), left, right, _meta_span(meta))

    def matches_op(self, meta, children):
        left, pattern = children
        return ast.Binary("matches", left, ast.Literal(unquote(str(pattern)), _tok_span(pattern)), _meta_span(meta))

    def arith(self, meta, children):
        left, op, right = children
        return ast.Binary(str(op), left, right, _meta_span(meta))

    def neg(self, meta, children):
        operand = children[0]
        # fold `-3` into a literal, so that the formatter and the AST agree
        if isinstance(operand, ast.Literal) and type(operand.value) in (int, float):
            return ast.Literal(-operand.value, _meta_span(meta))
        return ast.Unary("-", operand, _meta_span(meta))

    def getattr(self, meta, children):
        obj, name = children
        return ast.GetAttr(obj, str(name), _meta_span(meta))

    def getindex(self, meta, children):
        obj, index = children
        return ast.GetIndex(obj, index, _meta_span(meta))

    def list_expr(self, meta, children):
        return ast.ListExpr(tuple(c for c in children if c is not None), _meta_span(meta))

    def call(self, meta, children):
        func, *args = children
        return ast.Call(str(func), tuple(a for a in args if a is not None), _meta_span(meta))

    def var_key(self, meta, children):
        return ast.Var("key", _meta_span(meta))

    def var_start(self, meta, children):
        return ast.Var("start", _meta_span(meta))

    def var_now(self, meta, children):
        return ast.Var("now", _meta_span(meta))

    def ref(self, meta, children):
        name = children[0]
        return ast.Ref(str(name), name.backticked, name.span)

    def string(self, meta, children):
        return ast.Literal(unquote(str(children[0])), _tok_span(children[0]))

    def int(self, meta, children):
        return ast.Literal(int(children[0]), _tok_span(children[0]))

    def float(self, meta, children):
        return ast.Literal(float(children[0]), _tok_span(children[0]))

    def neg_int(self, meta, children):
        return ast.Literal(-int(children[0]), _meta_span(meta))

    def neg_float(self, meta, children):
        return ast.Literal(-float(children[0]), _meta_span(meta))

    def true(self, meta, children):
        return ast.Literal(True, _meta_span(meta))

    def false(self, meta, children):
        return ast.Literal(False, _meta_span(meta))

    def null(self, meta, children):
        return ast.Literal(None, _meta_span(meta))

    # ------------------------------------------------------------ tests
    def test(self, meta, children):
        name, *rest = children
        description = None
        if rest and isinstance(rest[0], Token) and rest[0].type == "STRING":
            description = unquote(str(rest.pop(0)))
        only: tuple = ()
        given = []
        until = None
        expects = []
        for child in rest:
            if isinstance(child, tuple) and child and child[0] == "only":
                only = child[1]
            elif isinstance(child, ast.GivenEvent):
                given.append(child)
            elif isinstance(child, tuple) and child and child[0] == "until":
                until = child[1]
            elif isinstance(child, ast.Expect):
                expects.append(child)
        return ast.Test(str(name), description, only, tuple(given), until, tuple(expects), _meta_span(meta))

    def only(self, meta, children):
        return ("only", tuple(str(c) for c in children))

    def given_line(self, meta, children):
        offset, typ, fields = children
        return ast.GivenEvent(offset, str(typ), fields, _meta_span(meta))

    def until(self, meta, children):
        return ("until", children[0])

    def expect_output(self, meta, children):
        name, *rest = children
        fields = rest[0] if rest else ()
        return ast.Expect(str(name), fields, None, _meta_span(meta))

    def expect_nothing(self, meta, children):
        rule = str(children[0]) if children else None
        return ast.Expect(None, (), rule, _meta_span(meta))

    def data_map(self, meta, children):
        return tuple(c for c in children if c is not None)

    def data_pair(self, meta, children):
        key, value = children
        if isinstance(value, ast.DurationLit):
            value = value.ms
        elif isinstance(value, ast.Literal):
            value = value.value
        elif isinstance(value, tuple):
            value = dict(value)
        return (str(key), value)

    def string_key(self, meta, children):
        return unquote(str(children[0]))

    def data_list(self, meta, children):
        out = []
        for c in children:
            if c is None:
                continue
            if isinstance(c, ast.Literal):
                c = c.value
            elif isinstance(c, ast.DurationLit):
                c = c.ms
            elif isinstance(c, tuple):
                c = dict(c)
            out.append(c)
        return ast.Literal(out, _meta_span(meta))



# --------------------------------------------------------------------------
# parsing a whole file, with every syntax error reported

_ITEM_START = re.compile(r"^[ \t]*(rule|event|let|test)\b", re.M)
_TERMINAL_WORDS = {
    "NAME": "a name",
    "BACKTICKED": "a `backticked name`",
    "STRING": 'a "string"',
    "INT": "a whole number",
    "FLOAT": "a number",
    "DURATION": "a duration (500ms, 90s, 30m, 1h30m, 2d)",
    "COMP_OP": "a comparison (==, !=, <, <=, >, >=)",
    "ADD_OP": "'+' or '-'",
    "MUL_OP": "'*' or '/'",
    "INFIX_WORD": "contains, startswith or endswith",
    "OPTIONAL": "'?'",
    "$END": "the end of the file",
}
_STEP_HINT = ("a step is an event type (`page_view`), alternatives (`(a | b)`), `any`, "
              "optionally counted (`3 page_view`, `2..4 any`, `2+ search`, `optional coupon`), "
              "or `idle 90s`, `no purchase for 10m`, `not refund`")
_DURATION_HINT = "durations look like 500ms, 90s, 30m, 1h30m or 2d"
_AFTER = {
    "then": ("expected a step after 'then'", _STEP_HINT),
    "next": ("expected a step after 'next'", _STEP_HINT),
    "match": ("expected a step after 'match'", _STEP_HINT),
    "optional": ("expected an event type after 'optional'", _STEP_HINT),
    "not": ("expected an event type after 'not'", None),
    "no": ("expected an event type after 'no'", "write `no purchase for 10m`"),
    "where": ("expected a condition after 'where'", 'for example `where page == "/pricing"`'),
    "as": ("expected a capture name after 'as'", None),
    "within": ("expected a duration after 'within'", _DURATION_HINT),
    "cooldown": ("expected a duration after 'cooldown'", _DURATION_HINT),
    "idle": ("expected a duration after 'idle'", _DURATION_HINT),
    "for": ("expected a duration after 'for'", _DURATION_HINT),
    "key": ("expected a field name after 'key'", "for example `key customer_id`"),
    "rule": ("expected a rule name after 'rule'", None),
    "event": ("expected an event type name after 'event'", None),
    "let": ("expected a constant name after 'let'", None),
    "test": ("expected a test name after 'test'", None),
    "given": ("expected a test event after 'given'", 'write `0s page_view { customer_id: "c1" }`'),
    "expect": ("expected an output name or 'nothing' after 'expect'", None),
    "until": ("expected an offset after 'until'", _DURATION_HINT),
    "emit": ("expected an output name or '{' after 'emit'", None),
}
_CLAUSE_WORDS = {"rule", "event", "let", "test", "key", "match", "within", "emit", "cooldown", "then", "next",
                 "where", "as", "given", "expect"}
_KEYWORDS = {"rule", "event", "let", "test", "key", "match", "within", "emit", "cooldown", "then", "next",
             "optional", "any", "idle", "no", "not", "where", "as", "for", "and", "or", "in", "contains",
             "startswith", "endswith", "matches", "true", "false", "null", "start", "now", "given", "expect",
             "nothing", "from", "only", "until"}


def _terminal_word(name: str) -> str:
    if name in _TERMINAL_WORDS:
        return _TERMINAL_WORDS[name]
    try:
        pattern = parser().get_terminal(name).pattern
    except KeyError:
        return name.lower()
    return f"'{pattern.value}'" if pattern.type == "str" else name.lower()


def _previous_word(text: str, pos: int) -> str:
    before = re.sub(r"#[^\n]*", "", text[:pos]).rstrip()
    m = re.search(r"([A-Za-z_][A-Za-z0-9_]*|\S)$", before)
    return m.group(1) if m else ""


def _syntax_diagnostic(path: str, text: str, exc: lark.exceptions.UnexpectedInput) -> Diagnostic:
    line = getattr(exc, "line", 1) or 1
    col = getattr(exc, "column", 1) or 1
    pos = getattr(exc, "pos_in_stream", None)
    if isinstance(exc, lark.exceptions.UnexpectedCharacters):
        ch = text[exc.pos_in_stream] if exc.pos_in_stream < len(text) else "?"
        hint = None
        if ch == "'":
            hint = 'strings are written in double quotes: "like this"'
        elif ch == "`":
            hint = "a backticked name ends with a backtick on the same line"
        elif ch == '"':
            hint = "a string ends with a double quote on the same line"
        span = ast.Span(line, col, line, col + 1)
        prev = _previous_word(text, exc.pos_in_stream)
        if prev in _AFTER:
            msg, default_hint = _AFTER[prev]
            return error(path, span, f"{msg}, found '{ch}'", hint or default_hint)
        return error(path, span, f"unexpected character '{ch}'", hint)
    if isinstance(exc, lark.exceptions.UnexpectedToken):
        tok = exc.token
        found = "the end of the file" if tok.type == "$END" else f"'{tok}'"
        if tok.type == "$END":
            lines = (text[:-1] if text.endswith("\n") else text).split("\n")
            line, col = len(lines), len(lines[-1]) + 1
            pos = len(text)
        else:
            pos = tok.start_pos
        span = ast.Span(line, col, line, col + max(1, len(str(tok)) if tok.type != "$END" else 1))
        expected = {e for e in exc.expected if not e.startswith("__")} or set(exc.expected)
        prev = _previous_word(text, pos)
        # The contextual lexer reads a keyword as a name where only a name
        # fits (`then within 10m` reads `within` as an event type): report
        # the keyword, after the word that wanted something else.
        before_prev = _previous_word(text, text.rfind(prev, 0, pos)) if prev else ""
        if prev in _CLAUSE_WORDS and before_prev in _AFTER:
            at = text.rfind(prev, 0, pos)
            pline = text.count("\n", 0, at) + 1
            pcol = at - (text.rfind("\n", 0, at) + 1) + 1
            msg, hint = _AFTER[before_prev]
            return error(path, ast.Span(pline, pcol, pline, pcol + len(prev)), f"{msg}, found '{prev}'",
                         hint=f"{hint}; to use '{prev}' as a name, write it in backticks" if hint else
                         f"to use '{prev}' as a name, write it in backticks: `{prev}`")
        if str(tok) in _KEYWORDS and ("NAME" in expected or "BACKTICKED" in expected):
            return error(path, span, f"'{tok}' is a keyword here",
                         hint=f"to use it as a name, write it in backticks: `{tok}`")
        if prev in _AFTER and tok.type != "$END" or (prev in _AFTER and tok.type == "$END"):
            msg, hint = _AFTER[prev]
            return error(path, span, f"{msg}, found {found}", hint)
        words = sorted({_terminal_word(e) for e in expected})
        if len(words) > 8:
            words = words[:8] + ["..."]
        return error(path, span, f"unexpected {found}", hint="expected " + ", ".join(words))
    return error(path, ast.Span(line, col, line, col + 1), f"syntax error: {exc}")


@functools.cache
def _callbacks() -> dict:
    """AstBuilder's rule callbacks as plain functions (self, meta, children)."""
    out = {}
    for name, attr in vars(AstBuilder).items():
        base = getattr(attr, "base_func", None)  # v_args(meta=True) wraps each method
        if base is not None and not name.startswith("_"):
            out[name] = base
    return out


def _parse_chunk(text: str, path: str) -> tuple[list[ast.Item], list[Diagnostic]]:
    builder = AstBuilder(path)
    try:
        tree = parser().parse(text)
    except lark.exceptions.UnexpectedInput as exc:
        return [], [_syntax_diagnostic(path, text, exc)]
    file = builder.transform(tree)
    return list(file.items), builder.diagnostics


def parse_text(text: str, path: str = "<string>") -> tuple[ast.File, list[Diagnostic]]:
    """Parse a rule file.  Never raises for bad input: returns the items that
    parsed and a diagnostic for every syntax error (one per broken item)."""
    items, diags = _parse_chunk(text, path)
    if diags and any(d.message.startswith(("unexpected", "expected", "'")) or "found" in d.message for d in diags):
        # Re-parse item by item, so that every broken item is reported and the
        # good ones still reach the checker.  Each chunk is padded with the
        # newlines before it, so positions stay those of the file.
        items, diags = [], []
        starts = [m.start() for m in _ITEM_START.finditer(text)]
        if not starts or starts[0] != 0:
            starts.insert(0, 0)
        starts.append(len(text))
        for begin, end in zip(starts, starts[1:]):
            chunk = text[begin:end]
            if not chunk.strip() or not re.sub(r"#[^\n]*", "", chunk).strip():
                continue
            padded = "\n" * text.count("\n", 0, begin) + " " * (begin - (text.rfind("\n", 0, begin) + 1)) + chunk
            got, problems = _parse_chunk(padded, path)
            items.extend(got)
            diags.extend(problems)
    comments = []
    for number, (line, blanked) in enumerate(zip(text.split("\n"), _blank_strings(text).split("\n")), 1):
        at = blanked.find("#")
        if at >= 0:
            comments.append(ast.Comment(line[at:].rstrip(), number))
    return ast.File(path, tuple(items), tuple(comments)), diags


def _blank_strings(text: str) -> str:
    """The text with the insides of strings and backticks blanked, so that a
    '#' inside them is not taken for a comment."""
    return re.sub(r'"(\\.|[^"\\\n])*"|`[^`\n]*`', lambda m: " " * len(m.group(0)), text)


def parse_file(path: str) -> tuple[ast.File, list[Diagnostic], str]:
    """Read and parse a file: (AST, diagnostics, source text)."""
    with open(path, encoding="utf-8") as fh:
        text = fh.read()
    file, diags = parse_text(text, path)
    return file, diags, text
