"""The canonical layout of rule files (`cep fmt`): the SPEC §2 example's.

    rule NAME "description"
      key customer_id
      match 3 page_view where page == "/pricing" as views
            then checkout_start as checkout
      within 30m
      emit chat_offer { cart_value: checkout.cart_value }
      cooldown 1h

Two-space clause indent, continuation steps aligned under the first step,
payloads on one line, runs of `event` declarations and the `given` lines of
a test aligned in columns, minimal parentheses (from the grammar's
precedence).  Comments are kept: a comment on a line of its own stays
before the line that followed it, a trailing comment stays at the end of
the line that carries its code.  Formatting is idempotent.

One `fmt_<node>` per AST class.  Item formatters return `Line`s (text and the
source line they come from, so comments can be put back); expression
formatters return strings.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from cep.lang import ast
from cep.lang.build import duration_ms

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
# Words the grammar takes as keywords somewhere: a name spelt like one is
# written in backticks, so it always reads back as a name.
KEYWORDS = frozenset({
    "rule", "event", "let", "test", "key", "match", "within", "emit", "cooldown", "then", "next", "optional",
    "any", "idle", "no", "not", "where", "as", "for", "and", "or", "in", "contains", "startswith", "endswith",
    "matches", "true", "false", "null", "start", "now", "given", "expect", "nothing", "from", "only", "until",
})
CLAUSE_INDENT = "  "
MATCH_INDENT = " " * len(CLAUSE_INDENT + "match ")


@dataclass(frozen=True, slots=True)
class Line:
    text: str
    src: int  # the source line this output line stands for (0: unknown)


# --------------------------------------------------------------------------
# names and literals


def fmt_name(name: str) -> str:
    """A name, in backticks unless it is a plain identifier that is no keyword."""
    if _IDENT.match(name) and name not in KEYWORDS:
        return name
    return f"`{name}`"


def fmt_string(value: str) -> str:
    out = ['"']
    for ch in value:
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\r":
            out.append("\\r")
        elif ord(ch) < 0x20 or 0x7F <= ord(ch) <= 0x9F or ch in "\u2028\u2029":
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def fmt_number(value: int | float) -> str:
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{value} cannot be written in a rule file")
        text = repr(value)
        return text if ("." in text or "e" in text) else text + ".0"
    return str(value)


def fmt_value(value) -> str:
    """Plain data (test events and expectations)."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, (int, float)):
        return fmt_number(value)
    if isinstance(value, str):
        return fmt_string(value)
    if isinstance(value, list):
        return "[" + ", ".join(fmt_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return fmt_data_map(tuple(value.items()))
    raise TypeError(f"cannot write {type(value).__name__} in a rule file")


def fmt_data_key(key: str) -> str:
    return key if _IDENT.match(key) else fmt_string(key)


def fmt_data_map(pairs, at_as_duration: bool = False, durations: dict | None = None) -> str:
    """`durations`: key -> how a duration value was written (the AST keeps
    only its milliseconds), so `at: 150s` stays `150s`."""
    if not pairs:
        return "{}"
    parts = []
    for k, v in pairs:
        is_int = isinstance(v, int) and not isinstance(v, bool)
        written = (durations or {}).get(k)
        if is_int and written is not None and duration_ms(written) == v:
            parts.append(f"{fmt_data_key(k)}: {written}")
        elif at_as_duration and k == "at" and is_int and v >= 0:
            parts.append(f"at: {ms_to_duration(v)}")
        else:
            parts.append(f"{fmt_data_key(k)}: {fmt_value(v)}")
    return "{ " + ", ".join(parts) + " }"


_UNITS = (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000), ("ms", 1))


def ms_to_duration(ms: int) -> str:
    """120000 -> "2m", 150000 -> "2m30s" (an `expect`'s `at` is kept in ms)."""
    if ms == 0:
        return "0s"
    out = []
    for unit, size in _UNITS:
        if ms >= size:
            out.append(f"{ms // size}{unit}")
            ms %= size
    return "".join(out)


# --------------------------------------------------------------------------
# expressions: precedence levels of grammar/cep.lark


OR, AND, NOT, CMP, SUM, PRODUCT, NEG, POSTFIX, ATOM = range(1, 10)
_CMP_OPS = frozenset({"==", "!=", "<", "<=", ">", ">=", "in", "not in", "contains", "startswith", "endswith", "matches"})


def level(e) -> int:
    if isinstance(e, ast.Binary):
        if e.op == "or":
            return OR
        if e.op == "and":
            return AND
        if e.op in _CMP_OPS:
            return CMP
        if e.op in ("+", "-"):
            return SUM
        return PRODUCT
    if isinstance(e, ast.Unary):
        return NOT if e.op == "not" else NEG
    if isinstance(e, ast.Literal) and isinstance(e.value, (int, float)) and not isinstance(e.value, bool) \
            and (e.value < 0 or (isinstance(e.value, float) and math.copysign(1, e.value) < 0)):
        return NEG  # written `-3`
    if isinstance(e, (ast.GetAttr, ast.GetIndex)):
        return POSTFIX
    if isinstance(e, ast.Field) and len(e.path) > 1:
        return POSTFIX
    return ATOM


def fmt_expr(e, min_level: int = OR) -> str:
    text = globals()["fmt_" + type(e).__name__](e)
    return f"({text})" if level(e) < min_level else text


def fmt_Literal(e: ast.Literal) -> str:
    return fmt_value(e.value)


def fmt_DurationLit(e: ast.DurationLit) -> str:
    return e.text


def fmt_ListExpr(e: ast.ListExpr) -> str:
    return "[" + ", ".join(fmt_expr(i) for i in e.items) + "]"


def fmt_Ref(e: ast.Ref) -> str:
    return f"`{e.name}`" if e.backticked else fmt_name(e.name)


def fmt_GetAttr(e: ast.GetAttr) -> str:
    return f"{fmt_expr(e.obj, POSTFIX)}.{fmt_name(e.name)}"


def fmt_GetIndex(e: ast.GetIndex) -> str:
    return f"{fmt_expr(e.obj, POSTFIX)}[{fmt_expr(e.index)}]"


def fmt_Call(e: ast.Call) -> str:
    return f"{e.func}(" + ", ".join(fmt_expr(a) for a in e.args) + ")"


def fmt_Unary(e: ast.Unary) -> str:
    if e.op == "not":
        return "not " + fmt_expr(e.operand, NOT)
    return "-" + fmt_expr(e.operand, NEG)


def fmt_Binary(e: ast.Binary) -> str:
    op = e.op
    if op == "or":
        return f"{fmt_expr(e.left, OR)} or {fmt_expr(e.right, AND)}"
    if op == "and":
        return f"{fmt_expr(e.left, AND)} and {fmt_expr(e.right, NOT)}"
    if op in _CMP_OPS:
        return f"{fmt_expr(e.left, SUM)} {op} {fmt_expr(e.right, SUM)}"
    if op in ("+", "-"):
        return f"{fmt_expr(e.left, SUM)} {op} {fmt_expr(e.right, PRODUCT)}"
    return f"{fmt_expr(e.left, PRODUCT)} {op} {fmt_expr(e.right, NEG)}"


def fmt_Field(e: ast.Field) -> str:
    # resolved form (a field of the current event): backticks keep it a field
    return ".".join(f"`{p}`" if i == 0 else fmt_name(p) for i, p in enumerate(e.path))


def fmt_Capture(e: ast.Capture) -> str:
    return fmt_name(e.name)


def fmt_Var(e: ast.Var) -> str:
    return e.name


# --------------------------------------------------------------------------
# steps


def fmt_Quantifier(q: ast.Quantifier) -> str:
    if q.kind == "one":
        return ""
    if q.kind == "optional":
        return "optional "
    if q.kind == "exact":
        return f"{q.min} "
    if q.kind == "range":
        return f"{q.min}..{q.max} "
    return f"{q.min}+ "


def fmt_EventMatcher(m: ast.EventMatcher) -> str:
    if m.any_type:
        text = "any"
    elif len(m.types) == 1:
        text = fmt_name(m.types[0])
    else:
        text = "(" + " | ".join(fmt_name(t) for t in m.types) + ")"
    if m.where is not None:
        text += " where " + fmt_expr(m.where)
    return text


def fmt_EventStep(s: ast.EventStep) -> str:
    text = fmt_Quantifier(s.quant) + fmt_EventMatcher(s.matcher)
    if s.capture is not None:
        text += " as " + fmt_name(s.capture)
    return text


def fmt_IdleStep(s: ast.IdleStep) -> str:
    return "idle " + s.duration.text


def fmt_NoStep(s: ast.NoStep) -> str:
    return f"no {fmt_EventMatcher(s.matcher)} for {s.duration.text}"


def fmt_NotStep(s: ast.NotStep) -> str:
    return "not " + fmt_EventMatcher(s.matcher)


def fmt_step(s) -> str:
    return globals()["fmt_" + type(s).__name__](s)


def fmt_PatternItem(item: ast.PatternItem, first: bool) -> str:
    body = fmt_step(item.step)
    if first:
        return "match " + body
    return f"{item.connector or 'then'} {body}"


# --------------------------------------------------------------------------
# items


def fmt_PayloadField(f: ast.PayloadField) -> str:
    return f"{fmt_name(f.name)}: {fmt_expr(f.value)}"


def fmt_Emit(e: ast.Emit) -> str:
    text = "emit"
    if e.name is not None:
        text += " " + fmt_name(e.name)
    if e.fields:
        text += " { " + ", ".join(fmt_PayloadField(f) for f in e.fields) + " }"
    elif e.name is None:
        text += " {}"
    return text


MAX_WIDTH = 100  # a payload longer than this on one line is written one field a line


def fmt_emit_lines(e: ast.Emit, at: int) -> list[Line]:
    """`emit` on one line when it fits; else one payload field a line, as
    SPEC example 18 writes a long payload."""
    one_line = CLAUSE_INDENT + fmt_Emit(e)
    if len(one_line) <= MAX_WIDTH or not e.fields:
        return [Line(one_line, at)]
    head = CLAUSE_INDENT + "emit" + (" " + fmt_name(e.name) if e.name is not None else "") + " {"
    lines = [Line(head, at)]
    for i, f in enumerate(e.fields):
        comma = "," if i < len(e.fields) - 1 else ""
        lines.append(Line(CLAUSE_INDENT * 2 + fmt_PayloadField(f) + comma, _line_of(f, at)))
    lines.append(Line(CLAUSE_INDENT + "}", e.span.end_line or at))
    return lines


def _line_of(node, fallback: int) -> int:
    span = getattr(node, "span", ast.NOWHERE)
    return span.line or fallback


def fmt_Rule(r: ast.Rule) -> list[Line]:
    head = "rule " + fmt_name(r.name)
    if r.description is not None:
        head += " " + fmt_string(r.description)
    at = r.span.line
    lines = [Line(head, at)]
    if r.key:
        lines.append(Line(CLAUSE_INDENT + "key " + ", ".join(".".join(fmt_name(p) for p in path) for path in r.key),
                          r.key_span.line or at))
    for i, item in enumerate(r.pattern):
        indent = CLAUSE_INDENT if i == 0 else MATCH_INDENT
        lines.append(Line(indent + fmt_PatternItem(item, i == 0), _line_of(item, at)))
    if r.within is not None:
        lines.append(Line(CLAUSE_INDENT + "within " + r.within.text, _line_of(r.within, at)))
    if r.emit is not None:
        lines.extend(fmt_emit_lines(r.emit, _line_of(r.emit, at)))
    if r.cooldown is not None:
        lines.append(Line(CLAUSE_INDENT + "cooldown " + r.cooldown.text, _line_of(r.cooldown, at)))
    return lines


def fmt_FieldDecl(f: ast.FieldDecl) -> str:
    return f"{fmt_name(f.name)}: {f.type}{'?' if f.optional else ''}"


def fmt_EventDecl(d: ast.EventDecl, width: int = 0) -> list[Line]:
    name = fmt_name(d.name)
    if not d.fields:
        return [Line(f"event {name}", d.span.line)]
    body = "{ " + ", ".join(fmt_FieldDecl(f) for f in d.fields) + " }"
    return [Line(f"event {name.ljust(width)} {body}", d.span.line)]


def fmt_Let(let: ast.Let) -> list[Line]:
    return [Line(f"let {fmt_name(let.name)} = {fmt_expr(let.value)}", let.span.line)]


def fmt_GivenEvent(g: ast.GivenEvent, offset_width: int = 0, type_width: int = 0, source: str = "") -> str:
    data = fmt_data_map(g.fields, durations=_duration_texts(source, g.span))
    return f"{g.offset.text.ljust(offset_width)} {fmt_name(g.type).ljust(type_width)} {data}"


_DURATION_PAIR = re.compile(r'([A-Za-z_][A-Za-z0-9_]*|"(?:\\.|[^"\\\n])*")\s*:\s*([0-9]+(?:ms|s|m|h|d)(?:[0-9]+(?:ms|s|m|h|d))*)(?![A-Za-z0-9_])')


def _duration_texts(source: str, span: ast.Span) -> dict[str, str]:
    """key -> duration text for the `key: 90s` pairs written inside `span`."""
    if not source or not span.line:
        return {}
    lines = source.split("\n")[span.line - 1: span.end_line]
    if not lines:
        return {}
    text = "\n".join(lines)
    found = {}
    for m in _DURATION_PAIR.finditer(_blank_comments(text)):
        key = m.group(1)
        if key.startswith('"'):
            from cep.lang.build import unquote  # noqa: PLC0415

            key = unquote(key)
        found.setdefault(key, m.group(2))
    return found


def _blank_comments(text: str) -> str:
    return re.sub(r"#[^\n]*", lambda m: " " * len(m.group(0)), text)


def fmt_Expect(e: ast.Expect, source: str = "") -> str:
    if e.output is None:
        return "expect nothing" + (f" from {fmt_name(e.nothing_from)}" if e.nothing_from else "")
    text = "expect " + fmt_name(e.output)
    if e.fields:
        text += " " + fmt_data_map(e.fields, at_as_duration=True, durations=_duration_texts(source, e.span))
    return text


def fmt_Test(t: ast.Test, source: str = "") -> list[Line]:
    head = "test " + fmt_name(t.name)
    if t.description is not None:
        head += " " + fmt_string(t.description)
    at = t.span.line
    lines = [Line(head, at)]
    first_body = t.given[0].span.line if t.given else (t.expects[0].span.line if t.expects else at)
    if t.only:
        lines.append(Line(CLAUSE_INDENT + "only " + ", ".join(fmt_name(n) for n in t.only), at + 1))
    lines.append(Line(CLAUSE_INDENT + "given", max(first_body - 1, at)))
    # §7 example: offsets in a column at least 4 wide, types in a column
    ow = max([4] + [len(g.offset.text) + 1 for g in t.given])
    tw = max([0] + [len(fmt_name(g.type)) for g in t.given])
    for g in t.given:
        lines.append(Line(CLAUSE_INDENT * 2 + fmt_GivenEvent(g, ow, tw, source), g.span.line))
    if t.until is not None:
        lines.append(Line(CLAUSE_INDENT + "until " + t.until.text, _line_of(t.until, at)))
    for e in t.expects:
        lines.append(Line(CLAUSE_INDENT + fmt_Expect(e, source), e.span.line))
    # keep source lines non-decreasing, so comments find their place
    out, last = [], 0
    for line in lines:
        last = max(last, line.src)
        out.append(Line(line.text, last))
    return out


def fmt_item(item, width: int = 0, source: str = "") -> list[Line]:
    if isinstance(item, ast.EventDecl):
        return fmt_EventDecl(item, width)
    if isinstance(item, ast.Test):
        return fmt_Test(item, source)
    return globals()["fmt_" + type(item).__name__](item)


# --------------------------------------------------------------------------
# a whole file, with its comments


def _blank_strings(text: str) -> str:
    return re.sub(r'"(\\.|[^"\\\n])*"|`[^`\n]*`', lambda m: " " * len(m.group(0)), text)


def _is_trailing(source_lines: list[str], comment: ast.Comment) -> bool:
    if not 1 <= comment.line <= len(source_lines):
        return False
    blanked = _blank_strings(source_lines[comment.line - 1])
    return bool(blanked[: blanked.find("#")].strip()) if "#" in blanked else False


def fmt_File(file: ast.File, source: str = "") -> str:
    """The whole file in canonical layout (only for files that parsed
    without errors: a broken item would be lost)."""
    src_lines = source.split("\n")  # not splitlines: \x85 or \u2028 in a string is no line break
    items = sorted(file.items, key=lambda it: it.span.line)
    rendered = []  # (item, lines)
    for i, item in enumerate(items):
        width = 0
        if isinstance(item, ast.EventDecl):
            width = max([0] + [len(fmt_name(d.name)) for d in _event_run(items, i, src_lines, file.comments)])
        rendered.append((item, fmt_item(item, width, source)))

    full = [c for c in file.comments if not _is_trailing(src_lines, c)]
    trailing = [c for c in file.comments if _is_trailing(src_lines, c)]

    # entries: ("item", start, end, lines) | ("comment", line, line, [text])
    entries = []
    inner: dict[int, list[tuple[int, ast.Comment]]] = {}  # item index -> comments placed inside it
    for c in full:
        owner = None
        for k, (item, lines) in enumerate(rendered):
            if item.span.line < c.line <= item.span.end_line and any(ln.src >= c.line for ln in lines[1:]):
                owner = k
                break
        if owner is None:
            # a comment after an item's last written line (say, inside a
            # multi-line payload that now fits on one line) follows the item
            at = next((max(it.span.end_line, c.line) for it, _ in rendered
                       if it.span.line < c.line <= it.span.end_line), c.line)
            entries.append(("comment", at, at, [c.text]))
        else:
            inner.setdefault(owner, []).append((c.line, c))
    tails: dict[int, dict[int, list[str]]] = {}
    for c in trailing:
        for k, (item, lines) in enumerate(rendered):
            if item.span.line <= c.line <= max(item.span.end_line, item.span.line):
                at = max((j for j, ln in enumerate(lines) if ln.src <= c.line), default=0)
                tails.setdefault(k, {}).setdefault(at, []).append(c.text)
                break
        else:
            entries.append(("comment", c.line, c.line, [c.text]))
    for k, (item, lines) in enumerate(rendered):
        texts = []
        pending = sorted(inner.get(k, []), key=lambda p: p[0])
        for j, ln in enumerate(lines):
            while pending and j > 0 and pending[0][0] <= ln.src:
                indent = re.match(r"\s*", ln.text).group(0)
                texts.append(indent + pending.pop(0)[1].text)
            text = ln.text
            if j in tails.get(k, {}):
                text += "  " + " ".join(tails[k][j])
            texts.append(text)
        for _, c in pending:  # cannot happen (owner has a later line), but never lose a comment
            texts.append(CLAUSE_INDENT + c.text)
        entries.append(("item", item.span.line, max(item.span.end_line, item.span.line), texts, item))
    entries.sort(key=lambda e: (e[1], 0 if e[0] == "comment" else 1))

    out: list[str] = []
    prev = None
    for entry in entries:
        if prev is not None and _blank_between(prev, entry):
            out.append("")
        out.extend(entry[3])
        prev = entry
    return "\n".join(out) + "\n" if out else ""


def _is_block(entry) -> bool:
    return entry[0] == "item" and isinstance(entry[4], (ast.Rule, ast.Test))


def _blank_between(prev, entry) -> bool:
    if entry[1] - prev[2] > 1:
        return True  # the source had a blank line (several collapse into one)
    if _is_block(prev):
        return True  # a rule or test is followed by a blank line
    if _is_block(entry) and prev[0] == "item":
        return True
    return False


def _event_run(items, i, src_lines, comments) -> list[ast.EventDecl]:
    """The run of event declarations on consecutive lines around items[i]
    (aligned together, as in the SPEC example)."""
    comment_lines = {c.line for c in comments}

    def adjacent(a, b):
        return (isinstance(a, ast.EventDecl) and isinstance(b, ast.EventDecl)
                and b.span.line == a.span.end_line + 1 and b.span.line not in comment_lines)

    lo = i
    while lo > 0 and adjacent(items[lo - 1], items[lo]):
        lo -= 1
    hi = i
    while hi + 1 < len(items) and adjacent(items[hi], items[hi + 1]):
        hi += 1
    return [it for it in items[lo: hi + 1] if it.fields]


def format_text(text: str, path: str = "<string>") -> tuple[str | None, list]:
    """(formatted text, syntax diagnostics); the text is None when the file
    does not parse, since formatting it would drop the broken items."""
    from cep.lang.build import parse_text  # noqa: PLC0415

    file, diags = parse_text(text, path)
    if diags:
        return None, diags
    return fmt_File(file, text), []
