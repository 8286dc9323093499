"""Hypothesis strategies for the differential tests: rule sets as rule-language
TEXT (rendered here, then loaded by the real front end) and partitioned
event streams built to hit the corners of SPEC §3: equal timestamps,
deadlines landing exactly on event times, disorder within the lateness and
beyond it, missing fields and nulls, events without a key, a type or a time.

Times come from a coarse grid (multiples of 5 s) and durations are multiples
of 5 s too, so deadlines and event times collide often.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from hypothesis import strategies as st

BASE_MS = 1_800_000_000_000
GRID_S = 5

# The vocabulary.  Rules name TYPES; streams also carry OTHER_TYPE, which no
# rule names (it matters to `any`, `idle` and `next`).
TYPES = ("a", "b", "c", "d")
QUOTED_TYPE = "e f"  # a type written in backticks: `e f`
OTHER_TYPE = "z"
DURATIONS_S = (5, 10, 15, 20, 30)


@dataclass(frozen=True, slots=True)
class RuleSetCase:
    text: str  # the rule file
    keys: tuple[tuple[str, ...], ...]  # each rule's key fields
    has_catalog: bool


def _type_text(name: str) -> str:
    return f"`{name}`" if name == QUOTED_TYPE else name


def _dur(seconds: int) -> str:
    return f"{seconds}s" if seconds % 60 else f"{seconds // 60}m"


# --------------------------------------------------------------------------
# expressions


@dataclass(frozen=True, slots=True)
class Cap:
    name: str
    is_list: bool


_NUM_LITERALS = ("0", "1", "2", "3", "1.5", "-1")
_STR_LITERALS = ('"x"', '"y"', '"xy"', '"X"')
_LITERALS = _NUM_LITERALS + _STR_LITERALS + ("null", "true", "false")


@st.composite
def typed_values(draw, captures: tuple[Cap, ...], in_emit: bool = False) -> tuple[str, str]:
    """A value-producing expression and its static kind: "num", "str" or
    "any" (a field whose type only the event knows).  The checker rejects
    what it can prove always false (a string literal against `now`), so
    operands are paired by kind; fields still bring every JSON type at run
    time through the streams."""
    # In emit there is no current event; the checker rejects bare field
    # names there, so only the where-clauses use them.
    options = ["literal", "var"] + ([] if in_emit else ["field", "field", "arith", "func"])
    if captures:
        options += ["capture", "capture"]
    kind = draw(st.sampled_from(options))
    if kind == "literal":
        return draw(st.sampled_from([(t, "num") for t in _NUM_LITERALS] + [(t, "str") for t in _STR_LITERALS]))
    if kind == "field":
        return draw(st.sampled_from(("n", "s", "m", "ctx.p", "`start`"))), "any"
    if kind == "var":
        return draw(st.sampled_from(("now - start", "start", "now"))), "num"
    if kind == "capture":
        cap = draw(st.sampled_from(captures))
        if cap.is_list:
            return draw(st.sampled_from((
                (f"count({cap.name})", "num"), (f"count({cap.name}.n)", "num"), (f"sum({cap.name}.n)", "num"),
                (f"avg({cap.name}.n)", "num"), (f"min({cap.name}.n)", "any"), (f"max({cap.name}.s)", "any"),
                (f"min({cap.name}.s)", "any"), (f"first({cap.name}.s)", "any"), (f"last({cap.name}.n)", "any"),
                (f"distinct({cap.name}.s)", "num"), (f"distinct({cap.name}.n)", "num"),
                (f"{cap.name}[0].n", "any"), (f"{cap.name}[-1].s", "any"), (f"{cap.name}[1].n", "any"),
            )))
        return draw(st.sampled_from((f"{cap.name}.n", f"{cap.name}.s", f"{cap.name}.ctx.p"))), "any"
    if kind == "arith":
        op = draw(st.sampled_from(("+", "-", "*", "/")))
        left = draw(st.sampled_from(("n", "m")))
        right = draw(st.sampled_from(("1", "2", "0", "n", "0.5")))
        return f"({left} {op} {right})", "any"
    return draw(st.sampled_from((("lower(s)", "any"), ("upper(s)", "any"), ("len(s)", "any"),
                                 ("len(tags)", "any"), ("abs(n)", "any"), ("-n", "any"))))


@st.composite
def values(draw, captures: tuple[Cap, ...], in_emit: bool = False) -> str:
    return draw(typed_values(captures, in_emit))[0]


@st.composite
def conditions(draw, captures: tuple[Cap, ...], depth: int = 0) -> str:
    """A `where` expression (anything, but mostly booleans)."""
    kind = draw(st.sampled_from(("cmp", "cmp", "cmp", "null", "member", "infix", "exists", "bool", "within")))
    if depth < 2 and draw(st.integers(0, 3)) == 0:
        kind = draw(st.sampled_from(("and", "or", "not")))
    if kind == "cmp":
        op = draw(st.sampled_from(("==", "!=", "<", "<=", ">", ">=")))
        left, lkind = draw(typed_values(captures))
        right, rkind = draw(typed_values(captures))
        if "any" not in (lkind, rkind) and lkind != rkind:
            right = draw(st.sampled_from(_NUM_LITERALS if lkind == "num" else _STR_LITERALS))
        return f"{left} {op} {right}"
    if kind == "null":
        field = draw(st.sampled_from(("n", "s", "m", "ctx.p")))
        return f"{field} {draw(st.sampled_from(('==', '!=')))} null"
    if kind == "member":
        left = draw(st.sampled_from(("s", "n", "m")))
        right = draw(st.sampled_from(('["x", "y"]', "[1, 2]", '"xyz"', "tags", "[]")))
        return f"{left} {draw(st.sampled_from(('in', 'not in')))} {right}"
    if kind == "infix":
        return draw(st.sampled_from((
            'tags contains "x"', 's contains "x"', 's startswith "x"', 's endswith "y"', 's matches "^x"',
            's matches "y$"', "tags contains n",
        )))
    if kind == "exists":
        return f"exists({draw(st.sampled_from(('n', 's', 'm', 'ctx.p')))})"
    if kind == "bool":
        return draw(st.sampled_from(("true", "false", "n", "null")))
    if kind == "within":
        return draw(st.sampled_from(("now - start <= 10s", "now - start < 15s", "now > start")))
    if kind == "not":
        return f"not ({draw(conditions(captures, depth + 1))})"
    return f"({draw(conditions(captures, depth + 1))}) {kind} ({draw(conditions(captures, depth + 1))})"


# --------------------------------------------------------------------------
# steps and rules


@st.composite
def matchers(draw, types: tuple[str, ...], allow_any: bool = True) -> str:
    kinds = ["one", "one", "one", "alts"] + (["any"] if allow_any else [])
    kind = draw(st.sampled_from(kinds))
    if kind == "any":
        return "any"
    if kind == "alts":
        picked = draw(st.lists(st.sampled_from(types), min_size=2, max_size=3, unique=True))
        return "(" + " | ".join(_type_text(t) for t in picked) + ")"
    return _type_text(draw(st.sampled_from(types)))


@st.composite
def _where(draw, captures: tuple[Cap, ...]) -> str:
    if draw(st.integers(0, 2)) == 0:
        return f" where {draw(conditions(captures))}"
    return ""


@st.composite
def _event_step(draw, types, captures, index: int, first: bool) -> tuple[str, Cap | None]:
    quants = ["", "", "", "exact", "range", "plus"]
    if not first:
        quants += ["optional", "zero_range", "zero_plus"]
    q = draw(st.sampled_from(quants))
    if q == "exact":
        n = draw(st.integers(1, 3))
        qtext = f"{n} "
    elif q == "range":
        lo = draw(st.integers(1, 2))
        qtext = f"{lo}..{lo + draw(st.integers(0, 2))} "
    elif q == "plus":
        qtext = f"{draw(st.integers(1, 2))}+ "
    elif q == "optional":
        qtext = "optional "
    elif q == "zero_range":
        qtext = f"0..{draw(st.integers(1, 2))} "
    elif q == "zero_plus":
        qtext = "0+ "
    else:
        qtext = ""
    text = qtext + draw(matchers(types)) + draw(_where(captures))
    cap = None
    if draw(st.booleans()):
        cap = Cap(f"c{index}", q not in ("", "optional"))
        text += f" as {cap.name}"
    return text, cap


@st.composite
def patterns(draw, types: tuple[str, ...]) -> tuple[str, tuple[Cap, ...], bool]:
    """`match ...`: the text, the captures, and whether it uses `next`."""
    n_steps = draw(st.integers(1, 5))
    captures: list[Cap] = []
    parts: list[str] = []
    uses_next = False
    for i in range(n_steps):
        cap = None
        if i == 0:
            text, cap = draw(_event_step(types, tuple(captures), i, True))
        else:
            kind = draw(st.sampled_from(("event", "event", "event", "idle", "no", "not")))
            if kind == "not" and i == n_steps - 1:
                kind = "event"  # SPEC §2: a pattern may not end with `not`
            if kind == "event":
                text, cap = draw(_event_step(types, tuple(captures), i, False))
            elif kind == "idle":
                text = f"idle {_dur(draw(st.sampled_from(DURATIONS_S)))}"
            elif kind == "no":
                text = (f"no {draw(matchers(types))}{draw(_where(tuple(captures)))} "
                        f"for {_dur(draw(st.sampled_from(DURATIONS_S)))}")
            else:
                text = f"not {draw(matchers(types))}{draw(_where(tuple(captures)))}"
            connector = draw(st.sampled_from(("then", "then", "next")))
            uses_next = uses_next or connector == "next"
            text = f"{connector} {text}"
        parts.append(text)
        if cap is not None:
            captures.append(cap)
    return "match " + "\n    ".join(parts), tuple(captures), uses_next


@st.composite
def _payload(draw, captures: tuple[Cap, ...]) -> str:
    form = draw(st.sampled_from(("none", "bare", "named", "empty", "fields", "fields", "fields")))
    if form == "none":
        return ""
    if form == "bare":
        return "\n  emit"
    if form == "empty":
        return "\n  emit {}"
    name = draw(st.sampled_from(("out", "alert")))
    if form == "named":
        return f"\n  emit {name}"
    n_fields = draw(st.integers(1, 4))
    fields = []
    for k in range(n_fields):
        if captures and draw(st.integers(0, 3)) > 0:
            cap = draw(st.sampled_from(captures))
            if cap.is_list and draw(st.integers(0, 4)) == 0:
                expr = draw(st.sampled_from((f"first({cap.name})", f"last({cap.name})", f"{cap.name}[0]")))
            elif not cap.is_list and draw(st.integers(0, 4)) == 0:
                expr = cap.name
            else:
                expr = draw(values((cap,), True))
        else:
            expr = draw(st.one_of(values(captures, True), st.sampled_from(("now - start", "key"))))
        fields.append(f"f{k}: {expr}")
    prefix = draw(st.sampled_from((f"{name} ", "")))
    return "\n  emit " + prefix + "{ " + ", ".join(fields) + " }"


_KEYS = (("k",), ("k",), ("j",), ("k", "j"))


def _catalog_text(types: tuple[str, ...], draw) -> str:
    lines = []
    for t in types:
        n_type = draw(st.sampled_from(("float", "int", "any")))
        fields = [
            f"n: {n_type}{draw(st.sampled_from(('?', '?', '')))}",
            f"s: {draw(st.sampled_from(('str', 'any')))}{draw(st.sampled_from(('?', '?', '')))}",
            "m: any?", "tags: list?", "ctx: map?", "`start`: any?",
        ]
        lines.append(f"event {_type_text(t)} {{ " + ", ".join(fields) + " }")
    return "\n".join(lines) + "\n\n"


@st.composite
def rules(draw, max_rules: int = 3) -> RuleSetCase:
    """A rule set as rule-language text: 1..max_rules rules over every step
    kind, both connectors, where-clauses, within, cooldown and payloads,
    with single and multi-field keys, sometimes under an event catalog."""
    types = TYPES + ((QUOTED_TYPE,) if draw(st.integers(0, 4)) == 0 else ())
    has_catalog = draw(st.integers(0, 4)) == 0
    text = _catalog_text(types, draw) if has_catalog else ""
    keys = []
    for r in range(draw(st.integers(1, max_rules))):
        key = draw(st.sampled_from(_KEYS))
        keys.append(key)
        pattern, captures, _ = draw(patterns(types))
        lines = [f"rule r{r}", "  key " + ", ".join(key), "  " + pattern]
        if draw(st.integers(0, 2)) == 0:
            lines.append(f"  within {_dur(draw(st.sampled_from(DURATIONS_S + (40, 60))))}")
        text_rule = "\n".join(lines) + draw(_payload(captures))
        if draw(st.integers(0, 3)) == 0:
            text_rule += f"\n  cooldown {_dur(draw(st.sampled_from(DURATIONS_S)))}"
        text += text_rule + "\n\n"
    return RuleSetCase(text, tuple(keys), has_catalog)


@st.composite
def deferred_rules(draw, max_rules: int = 6) -> RuleSetCase:
    """Rule sets the matcher starts *deferred* (cep/engine/matcher.py
    `_DeferSet`): most rules begin `[1] T [where s == "x"] next <event step>`,
    several share a first type and constant, and their withins differ, so
    the deferred sets, the second steps' index, rule 6 on pending runs and
    the hand-over to ordinary runs (a rule with a live state, a cooldown
    stamp) are all exercised.  Some rules are near misses (a `then`, a
    quantified first step, `optional` second step) that must not defer."""
    types = ("a", "b", "c")
    text = ""
    keys = []
    firsts = ("", ' where s == "x"', ' where s == "y"', ' where s in ["x", "y"]', ' where s in ["y", "xy"]')
    seconds = ("", ' where s == "x"', ' where s == "y"', ' where s in ["x", "y"]', ' where n > 1',
               ' where s == c0.s')
    for r in range(draw(st.integers(2, max_rules))):
        key = draw(st.sampled_from((("k",), ("k",), ("k",), ("k", "j"))))
        keys.append(key)
        q0 = draw(st.sampled_from(("", "", "", "1 ", "2 ", "1+ ")))
        t0 = draw(st.sampled_from(("a", "a", "b", "(a | b)", "any")))
        cap0 = draw(st.booleans())
        captures = [Cap("c0", q0 != "")] if cap0 else []
        parts = [f"{q0}{t0}{draw(st.sampled_from(firsts))}" + (" as c0" if cap0 else "")]
        conn = draw(st.sampled_from(("next", "next", "next", "then")))
        q1 = draw(st.sampled_from(("", "", "2 ", "1..2 ", "optional ")))
        w1 = draw(st.sampled_from(seconds))
        if "c0" in w1 and (not cap0 or q0 != ""):
            w1 = ""
        parts.append(f"{conn} {q1}{draw(st.sampled_from(types + ('any',)))}{w1} as c1")
        captures.append(Cap("c1", q1 not in ("", "optional ")))
        for i in range(draw(st.integers(0, 2))):
            kind = draw(st.sampled_from(("event", "event", "idle", "not")))
            c = draw(st.sampled_from(("then", "next")))
            if kind == "idle":
                parts.append(f"{c} idle {_dur(draw(st.sampled_from(DURATIONS_S)))}")
            elif kind == "not" and i == 0 and len(parts) == 2:
                parts.append(f"{c} not {draw(st.sampled_from(types))}")
            else:
                step, cap = draw(_event_step(types, tuple(captures), i + 2, False))
                parts.append(f"{c} {step}")
                if cap is not None:
                    captures.append(cap)
        if parts[-1].split()[1] == "not":
            parts.append("then c")
        lines = [f"rule r{r}", "  key " + ", ".join(key), "  match " + "\n    ".join(parts)]
        if draw(st.integers(0, 3)) > 0:
            lines.append(f"  within {_dur(draw(st.sampled_from(DURATIONS_S + (40, 60))))}")
        text_rule = "\n".join(lines) + draw(_payload(tuple(captures)))
        if draw(st.integers(0, 3)) == 0:
            text_rule += f"\n  cooldown {_dur(draw(st.sampled_from(DURATIONS_S)))}"
        text += text_rule + "\n\n"
    return RuleSetCase(text, tuple(keys), False)


@st.composite
def chain_rules(draw, max_rules: int = 5) -> RuleSetCase:
    """Rule sets of mostly *chain* rules (cep/engine/chains.py): one-event
    steps (a type, alternatives or `any`, count 1 sometimes written) joined by
    `next`, with wheres on constants (the start index and the shortcut for
    events that carry none of a type's constants), on captures, `start` and
    `now`; within, cooldown, one-step rules, rules sharing a key group, and
    near misses the interpreter keeps (a `then`, a `2 T`, a `not`, an
    `optional`) in the same group."""
    types = ("a", "b", "c")
    text = ""
    keys = []
    consts = (' where s == "x"', ' where s == "y"', ' where s in ["x", "y"]', ' where s in ["y", "xy"]')
    for r in range(draw(st.integers(1, max_rules))):
        key = draw(st.sampled_from((("k",), ("k",), ("k",), ("k", "j"))))
        keys.append(key)
        captures: list[Cap] = []
        parts = []
        n_steps = draw(st.integers(1, 4))
        miss = draw(st.integers(0, 5)) == 0 and n_steps > 1
        for i in range(n_steps):
            q = draw(st.sampled_from(("", "", "", "1 ")))
            m = draw(st.sampled_from(("a", "a", "b", "c", "(a | b)", "any")))
            kind = draw(st.sampled_from(("none", "const", "const", "cond")))
            where = "" if kind == "none" else draw(st.sampled_from(consts)) if kind == "const" \
                else f" where {draw(conditions(tuple(captures)))}"
            step = f"{q}{m}{where}"
            if draw(st.booleans()):
                cap = Cap(f"c{i}", q != "")
                step += f" as {cap.name}"
                captures.append(cap)
            if i:
                step = "next " + step
            parts.append(step)
        if miss:
            i = draw(st.integers(1, n_steps - 1))
            how = draw(st.sampled_from(("then", "count", "not", "optional")))
            head, rest = parts[i].split(" ", 1)
            if how == "then":
                parts[i] = "then " + rest
            elif how == "count":
                parts[i] = "next 2 " + rest.removeprefix("1 ") + ("" if " as " in rest else "")
                parts[i] = parts[i].replace(" as c", " as d")  # a list now: a new name, unreferenced
            elif how == "not":
                parts.insert(i, f"then not {draw(st.sampled_from(types))}")
            else:
                parts[i] = "next optional " + rest.removeprefix("1 ").replace(" as c", " as d")
        lines = [f"rule r{r}", "  key " + ", ".join(key), "  match " + "\n    ".join(parts)]
        if draw(st.integers(0, 2)) > 0:
            lines.append(f"  within {_dur(draw(st.sampled_from(DURATIONS_S + (40, 60))))}")
        usable = tuple(c for c in captures if f" as {c.name}" in " ".join(parts))
        text_rule = "\n".join(lines) + draw(_payload(usable))
        if draw(st.integers(0, 3)) == 0:
            text_rule += f"\n  cooldown {_dur(draw(st.sampled_from(DURATIONS_S)))}"
        text += text_rule + "\n\n"
    return RuleSetCase(text, tuple(keys), False)


# --------------------------------------------------------------------------
# streams

_MISSING = object()  # "leave the field out"


@st.composite
def _event(draw, grid_s: int, types: tuple[str, ...]) -> dict:
    # The common case first in every choice (it is what shrinking aims at);
    # rare cases by weight, as hypothesis favours the ends of integer ranges.
    event: dict = {}
    kind = draw(st.sampled_from(("typed",) * 28 + ("untyped", "badtype")))
    if kind == "typed":
        event["type"] = draw(st.sampled_from(("a", "b") + types + (OTHER_TYPE,)))
    elif kind == "badtype":
        event["type"] = draw(st.sampled_from((None, "", 5)))
    tkind = draw(st.sampled_from(("grid",) * 28 + ("none", "bad")))
    if tkind == "grid":
        event["ts"] = BASE_MS + grid_s * 1000
    elif tkind == "bad":
        event["ts"] = draw(st.sampled_from((None, True, "soon", [1])))
    for name, choices in (
        ("k", ("u1", "u1", "u1", "u2", "u2", "u3", 1, True, None, _MISSING)),
        ("j", ("x", "x", "x", "y", None, _MISSING)),
        ("n", (0, 1, 2, 3, 1.5, -1, "1", None, True, _MISSING, _MISSING)),
        ("s", ("x", "y", "xy", "X", "yx", None, 1, _MISSING)),
        ("m", (1, "x", None, _MISSING, _MISSING, _MISSING)),
        ("tags", (["x"], ["x", "y"], [], [1], "x", _MISSING, _MISSING)),
        ("ctx", ({"p": "x"}, {"p": 1}, {}, "x", _MISSING, _MISSING)),
        ("start", (0, "x", _MISSING, _MISSING, _MISSING)),
    ):
        value = draw(st.sampled_from(choices))
        if value is not _MISSING:
            event[name] = value
    return event


@st.composite
def timelines(draw, types: tuple[str, ...] = TYPES + (QUOTED_TYPE,)) -> list[list[dict]]:
    """1..3 partitions of events, each mostly in time order with local
    disorder (within or beyond the lateness), on a 5 s grid."""
    n_parts = draw(st.integers(1, 3))
    parts = []
    for _ in range(n_parts):
        n = draw(st.integers(0, 18))
        steps = draw(st.lists(st.sampled_from((0, 0, 1, 1, 1, 2, 3)), min_size=n, max_size=n))
        grid = []
        t = draw(st.integers(0, 3))
        for s in steps:
            t += s
            grid.append(t)
        # disorder: move a few events back in time
        for _ in range(draw(st.integers(0, 3))):
            if grid:
                i = draw(st.integers(0, len(grid) - 1))
                grid[i] = max(0, grid[i] - draw(st.integers(1, 4)))
        parts.append([draw(_event(g * GRID_S, types)) for g in grid])
    return parts


# --------------------------------------------------------------------------
# loading rule text through the real front end


def load_rules_text(text: str, default_key: str | None = None):
    """Rule text -> resolved RuleSet, through `cep.lang.load_text`."""
    from cep.lang import load_text  # noqa: PLC0415

    return load_text(text, default_key=default_key)


def load_ruleset_files(paths: list[Path], default_key: str | None = None):
    from cep.lang import load  # noqa: PLC0415

    ruleset = load([str(p) for p in paths], default_key=default_key)
    if ruleset.has_errors:
        raise AssertionError("; ".join(d.message for d in ruleset.diagnostics))
    return ruleset
