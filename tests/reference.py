"""The reference interpreter: SPEC §3 and §3.1 read as plainly as possible.

This is the oracle the engine is checked against (tests/test_differential.py),
so it is written for clarity and nothing else: every rule is tried on every
event, runs are a plain list per (rule, key) advanced one event at a time,
expressions are evaluated by walking the resolved AST.  It shares nothing
with `cep.engine` / `cep.compile` except the front end (`cep.lang`, which
hands it the resolved rules) and the plain result classes of
`cep/engine/model.py`.

Replay is a finite input, so instead of simulating watermarks advancing we
use what they imply (§3 rule 9, §3.1 Partitions):
- an event is late iff its time is strictly below (max time read so far in
  its own partition) - lateness;
- the timeline is every accepted event sorted by (time, partition, position)
  — the order in which watermarks would release them;
- a deadline d sits after every event with time < d and before every event
  with time >= d (§3.1 Ties), and fires only if d <= the largest time of the
  whole input (the final watermark).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import orjson
import re2

from cep.engine.model import (BAD_TIME, CATALOG, LATE, MISSING_TYPE, DeadLetter, Match, RuleStats,
                              Stats)
from cep.lang import ast


class _Missing:
    """The value of an absent field (distinct from a present null)."""

    _instance = None

    def __new__(cls):
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "MISSING"


MISSING = _Missing()


@dataclass(frozen=True, slots=True)
class Result:
    matches: list[Match]
    dead_letters: list[DeadLetter]
    stats: Stats


# =========================================================================
# values (docs/architecture.md "Expression semantics")


def _is_num(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _like(a: object, b: object) -> bool:
    """Two present, non-null values of the same JSON kind."""
    if _is_num(a):
        return _is_num(b)
    for kind in (bool, str, list, dict):
        if isinstance(a, kind):
            return isinstance(b, kind)
    return False


def _json_equal(a: object, b: object) -> bool:
    """Structural equality of JSON values with like types (true is not 1)."""
    if a is None or b is None:
        return a is None and b is None
    if not _like(a, b):
        return False
    if isinstance(a, list):
        return len(a) == len(b) and all(_json_equal(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_json_equal(a[k], b[k]) for k in a)
    return a == b


def _is_null_literal(node: ast.Expr) -> bool:
    return isinstance(node, ast.Literal) and node.value is None


def _compare(op: str, a: object, b: object) -> bool:
    if a is MISSING or b is MISSING:
        return False  # §2: a comparison with a missing field is false, `!=` included
    if a is None or b is None:
        # §3.1 Null and truth: apart from `x == null` / `x != null` (written
        # with the literal, see evaluate), any comparison involving null is
        # false: a null field is neither equal nor unequal to "ads" (example 17).
        return False
    if not _like(a, b):
        return False  # unlike types: false for every operator
    if op == "==":
        return _json_equal(a, b)
    if op == "!=":
        return not _json_equal(a, b)
    if not (_is_num(a) or isinstance(a, str)):
        return False  # ordering on bools, lists, dicts is false
    return {"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[op]


def _member(left: object, right: object) -> bool | None:
    """`left in right` when the types allow asking, else None."""
    if left is MISSING or left is None:
        return None
    if isinstance(right, list):
        return any(_like(left, x) and _json_equal(left, x) for x in right)
    if isinstance(right, str):
        if not isinstance(left, str):
            return None  # unlike types
        return left in right
    return None


def _arith(op: str, a: object, b: object) -> object:
    if op == "+" and isinstance(a, str) and isinstance(b, str):
        return a + b
    if not (_is_num(a) and _is_num(b)):
        return MISSING
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    if op == "*":
        return a * b
    if b == 0:
        return MISSING  # division by zero is missing, never an exception
    return a / b


def _walk(obj: object, path: tuple[str, ...]) -> object:
    for name in path:
        if not isinstance(obj, dict) or name not in obj:
            return MISSING
        obj = obj[name]
    return obj


@dataclass(slots=True)
class Ctx:
    """What an expression can see: the current event (None in emit), the
    run's captures, `start`, `now` and the key."""

    event: dict | None
    captures: dict[str, object]
    start: int
    now: int
    key: object


def _capture(ctx: Ctx, node: ast.Capture) -> object:
    if node.name in ctx.captures:
        return ctx.captures[node.name]
    # §3.1 Captures: an untaken optional is missing, an untaken count is [].
    return [] if node.is_list else MISSING


def _aggregate(func: str, arg: ast.Expr, ctx: Ctx) -> object:
    if isinstance(arg, ast.Capture) and arg.is_list:
        events = _capture(ctx, arg)
        if func == "count":
            return len(events)
        if func == "first":
            return events[0] if events else None
        if func == "last":
            return events[-1] if events else None
        raise TypeError(f"{func}() needs a field of the capture; the checker should have said so")
    if isinstance(arg, ast.GetAttr) and isinstance(arg.obj, ast.Capture) and arg.obj.is_list:
        values = evaluate(arg, ctx)  # present values, in capture order
    else:
        raise TypeError(f"{func}() of {arg!r}: not a list capture; the checker should have said so")
    nums = [v for v in values if _is_num(v)]
    present = [v for v in values if v is not None]
    if func == "count":
        return len(present)
    if func == "sum":
        total = 0
        for v in nums:
            total = total + v
        return total
    if func == "avg":
        if not nums:
            return None
        total = 0
        for v in nums:
            total = total + v
        return total / len(nums)
    if func in ("min", "max"):
        if not present:
            return None
        if all(_is_num(v) for v in present) or all(isinstance(v, str) for v in present):
            return min(present) if func == "min" else max(present)
        return None
    if func == "first":
        return values[0] if values else None
    if func == "last":
        return values[-1] if values else None
    if func == "distinct":
        seen = set()
        for v in present:
            if _is_num(v):
                seen.add(("num", v))  # 1 == 1.0 as set members; bools are tagged apart
            elif isinstance(v, (bool, str)):
                seen.add((type(v).__name__, v))
            else:
                seen.add(("json", orjson.dumps(v, option=orjson.OPT_SORT_KEYS)))
        return len(seen)
    raise TypeError(f"unknown aggregate {func}")


_AGGREGATES = {"count", "sum", "avg", "min", "max", "first", "last", "distinct"}


def evaluate(node: ast.Expr, ctx: Ctx) -> object:
    """The value of a resolved expression: a JSON value or MISSING."""
    if isinstance(node, ast.Literal):
        return node.value
    if isinstance(node, ast.DurationLit):
        return node.ms
    if isinstance(node, ast.ListExpr):
        return [evaluate(item, ctx) for item in node.items]
    if isinstance(node, ast.Field):
        if ctx.event is None:
            return MISSING  # in emit there is no current event
        return _walk(ctx.event, node.path)
    if isinstance(node, ast.Capture):
        return _capture(ctx, node)
    if isinstance(node, ast.Var):
        return {"start": ctx.start, "now": ctx.now, "key": ctx.key}[node.name]
    if isinstance(node, ast.GetAttr):
        obj = evaluate(node.obj, ctx)
        if isinstance(obj, dict):
            return obj.get(node.name, MISSING)
        if isinstance(obj, list):
            # a list capture: the field over its events, skipping the absent
            return [ev[node.name] for ev in obj if isinstance(ev, dict) and node.name in ev]
        return MISSING
    if isinstance(node, ast.GetIndex):
        obj = evaluate(node.obj, ctx)
        idx = evaluate(node.index, ctx)
        if isinstance(obj, list) and isinstance(idx, int) and not isinstance(idx, bool):
            if -len(obj) <= idx < len(obj):
                return obj[idx]
        return MISSING
    if isinstance(node, ast.Call):
        if node.func in _AGGREGATES:
            return _aggregate(node.func, node.args[0], ctx)
        value = evaluate(node.args[0], ctx)
        if node.func == "exists":
            return value is not MISSING
        if node.func == "lower":
            return value.lower() if isinstance(value, str) else MISSING
        if node.func == "upper":
            return value.upper() if isinstance(value, str) else MISSING
        if node.func == "len":
            return len(value) if isinstance(value, (str, list, dict)) else MISSING
        if node.func == "abs":
            return abs(value) if _is_num(value) else MISSING
        raise TypeError(f"unknown function {node.func}")
    if isinstance(node, ast.Unary):
        value = evaluate(node.operand, ctx)
        if node.op == "not":
            return value is not True
        return -value if _is_num(value) else MISSING
    if isinstance(node, ast.Binary):
        op = node.op
        if op == "and":
            return evaluate(node.left, ctx) is True and evaluate(node.right, ctx) is True
        if op == "or":
            return evaluate(node.left, ctx) is True or evaluate(node.right, ctx) is True
        if op in ("==", "!=") and (_is_null_literal(node.left) or _is_null_literal(node.right)):
            # §3.1 Null and truth: `x == null` / `x != null` test whether x is
            # present with the value null; both are false when x is missing.
            other = evaluate(node.right if _is_null_literal(node.left) else node.left, ctx)
            if other is MISSING:
                return False
            return (other is None) == (op == "==")
        left = evaluate(node.left, ctx)
        right = evaluate(node.right, ctx)
        if op in ("==", "!=", "<", "<=", ">", ">="):
            return _compare(op, left, right)
        if op == "in":
            return _member(left, right) is True
        if op == "not in":
            return _member(left, right) is False
        if op == "contains":
            if isinstance(left, list):
                return right is not MISSING and any(_like(x, right) and _json_equal(x, right) for x in left)
            return isinstance(left, str) and isinstance(right, str) and right in left
        if op == "startswith":
            return isinstance(left, str) and isinstance(right, str) and left.startswith(right)
        if op == "endswith":
            return isinstance(left, str) and isinstance(right, str) and left.endswith(right)
        if op == "matches":
            return isinstance(left, str) and isinstance(right, str) and re2.search(right, left) is not None
        if op in ("+", "-", "*", "/"):
            if left is MISSING or right is MISSING:
                return MISSING
            return _arith(op, left, right)
        raise TypeError(f"unknown operator {op}")
    raise TypeError(f"unresolved expression {node!r} reached the reference interpreter")


def holds(where: ast.Expr | None, ctx: Ctx) -> bool:
    """A `where` holds iff its value is exactly true."""
    return where is None or evaluate(where, ctx) is True


# =========================================================================
# the pattern, flattened


@dataclass(frozen=True, slots=True)
class Step:
    """An event step or an absence step (`not` steps live in `nots_after`)."""

    kind: str  # "event" | "idle" | "no"
    min: int
    max: int | None  # None: unbounded
    matcher: ast.EventMatcher | None  # None for idle
    capture: str | None
    is_list: bool
    duration: int  # absence steps: the window, ms
    connector: str | None  # the connector written right before this step


@dataclass(frozen=True, slots=True)
class Pattern:
    steps: tuple[Step, ...]
    nots_after: tuple[tuple[ast.EventMatcher, ...], ...]  # per step: the `not`s in the gap after it


def flatten(rule: ast.Rule) -> Pattern:
    steps: list[Step] = []
    nots: list[list[ast.EventMatcher]] = []
    for item in rule.pattern:
        st = item.step
        if isinstance(st, ast.NotStep):
            # §3.1: a `not` belongs to the gap after the step written before it
            nots[-1].append(st.matcher)
            continue
        if isinstance(st, ast.EventStep):
            quant = st.quant
            is_list = quant.kind not in ("one", "optional")  # §3.1 Captures
            steps.append(Step("event", quant.min, quant.max, st.matcher, st.capture, is_list, 0, item.connector))
        elif isinstance(st, ast.IdleStep):
            steps.append(Step("idle", 1, 1, None, None, False, st.duration.ms, item.connector))
        else:
            steps.append(Step("no", 1, 1, st.matcher, None, False, st.duration.ms, item.connector))
        nots.append([])
    return Pattern(tuple(steps), tuple(tuple(n) for n in nots))


def affecting_types(rule: ast.Rule) -> frozenset[str] | None:
    """The event types that can affect the rule; None means every type
    (docs/architecture.md: an `any` step, an `idle` step or a `next`)."""
    types: set[str] = set()
    for item in rule.pattern:
        if item.connector == "next" or isinstance(item.step, ast.IdleStep):
            return None
        matcher = item.step.matcher
        if matcher.any_type:
            return None
        types.update(matcher.types)
    return frozenset(types)


def _matches(matcher: ast.EventMatcher, etype: str, ctx: Ctx) -> bool:
    if not matcher.any_type and etype not in matcher.types:
        return False
    return holds(matcher.where, ctx)


# =========================================================================
# runs


@dataclass(slots=True)
class Run:
    seq: int  # start order (timeline order; ties keep input order)
    start: int
    cur: int  # index into Pattern.steps; len(steps) = past the end
    c: int  # events the current step has taken
    since: int  # when the current window (if any) started: last event taken, or the last deadline passed
    via_absence: bool  # the run reached `cur` by passing an absence step and cur has taken nothing yet
    captures: dict[str, object] = field(default_factory=dict)
    end: int | None = None  # completion time once complete


def _pending_absence(pat: Pattern, run: Run) -> int | None:
    """The absence step whose window is open for this run, if any (§3 rule 4,
    §3.1 After an absence step: a window opens once the step before it has
    its minimum, looking past min-0 steps)."""
    steps = pat.steps
    if run.cur >= len(steps):
        return None
    if steps[run.cur].kind != "event":
        return run.cur  # two absence steps in a row: the run sits at the second
    if run.c < steps[run.cur].min:
        return None
    j = run.cur + 1
    while j < len(steps):
        if steps[j].kind != "event":
            return j
        if steps[j].min > 0:
            return None
        j += 1
    return None


def deadline_of(pat: Pattern, run: Run) -> int | None:
    j = _pending_absence(pat, run)
    return None if j is None else run.since + pat.steps[j].duration


def _is_complete(pat: Pattern, run: Run) -> bool:
    """§3.1 Trailing min-0 steps: complete once the current step has its
    minimum and every later step is an event step with min 0."""
    steps = pat.steps
    if run.cur >= len(steps):
        return True
    if steps[run.cur].kind != "event" or run.c < steps[run.cur].min:
        return False
    return all(s.kind == "event" and s.min == 0 for s in steps[run.cur + 1:])


def _take(step: Step, run: Run, event: dict) -> None:
    if step.capture is None:
        return
    if step.is_list:
        run.captures[step.capture] = [*run.captures.get(step.capture, []), event]
    else:
        run.captures[step.capture] = event


def _active_nots(pat: Pattern, run: Run) -> list[ast.EventMatcher]:
    """§3 rule 3 and §3.1: the `not`s written right after the step the run
    waits at apply once it has its minimum; those right after an absence step
    apply while the run waits for the next event step, until it takes its
    first event."""
    steps = pat.steps
    active: list[ast.EventMatcher] = []
    if run.cur < len(steps) and steps[run.cur].kind == "event" and run.c >= steps[run.cur].min:
        active.extend(pat.nots_after[run.cur])
    if run.via_absence:
        # back over the absence steps just passed: a `not` after any of them
        # keeps applying through a following absence window (docs/architecture.md)
        j = run.cur - 1
        while j >= 0 and steps[j].kind != "event":
            active.extend(pat.nots_after[j])
            j -= 1
    return active


def advance(pat: Pattern, run: Run, etype: str, event: dict, ts: int, key: object) -> str | None:
    """Offer one event of the run's key to the run.  Returns a death reason
    (`not`, `next`, `idle`, `no`) or None when the run lives on (it may have
    taken the event, moved, or skipped it)."""
    steps = pat.steps

    def ctx() -> Ctx:
        return Ctx(event, run.captures, run.start, ts, key)

    # §3.1: `not X` is absolute, it beats every other reading of the event.
    for matcher in _active_nots(pat, run):
        if _matches(matcher, etype, ctx()):
            return "not"

    window = _pending_absence(pat, run)
    cur = steps[run.cur]
    if cur.kind == "event":
        # §3 rule 2, first bullet: with its minimum, look ahead past min-0
        # steps; the look stops at an absence step (moving on beats staying).
        if run.c >= cur.min:
            j = run.cur + 1
            while j < len(steps) and steps[j].kind == "event":
                if _matches(steps[j].matcher, etype, ctx()):
                    run.cur, run.c, run.since, run.via_absence = j, 1, ts, False
                    _take(steps[j], run, event)
                    return None
                if steps[j].min > 0:
                    break
                j += 1
        # second bullet: the step takes it (and restarts its window, §3.1).
        if (cur.max is None or run.c < cur.max) and _matches(cur.matcher, etype, ctx()):
            run.c += 1
            run.since = ts
            run.via_absence = False
            _take(cur, run, event)
            return None
        # third bullet: `next` — into the following event step — kills; a
        # `next` into an absence step adds nothing (§3.1).
        nxt = steps[run.cur + 1] if run.cur + 1 < len(steps) else None
        if run.c >= cur.min and nxt is not None and nxt.connector == "next" and nxt.kind == "event":
            return "next"
        # §3.1 After an absence step: with `next`, the first event of the key
        # after the deadline must fit the step (or one the look reaches).
        if run.via_absence and run.c == 0 and cur.connector == "next":
            return "next"
    # the event is skipped; §3 rule 4 decides inside an open window.
    if window is not None:
        absence = steps[window]
        if absence.kind == "idle":
            return "idle"
        if _matches(absence.matcher, etype, ctx()):
            return "no"
    return None


def pass_deadline(pat: Pattern, run: Run, deadline: int) -> None:
    """The run's open window reached its deadline: the absence step is
    satisfied and the run waits at the step after it with nothing taken."""
    j = _pending_absence(pat, run)
    run.cur, run.c, run.since, run.via_absence = j + 1, 0, deadline, True


# =========================================================================
# the catalog (SPEC §2 Event catalog), its own small copy


def _fits(kind: str, value: object) -> bool:
    if kind == "str":
        return isinstance(value, str)
    if kind == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "float":
        return _is_num(value)  # an int fits a float field
    if kind == "bool":
        return isinstance(value, bool)
    if kind == "list":
        return isinstance(value, list)
    if kind == "map":
        return isinstance(value, dict)
    if kind == "any":
        return True
    raise ValueError(f"unknown catalog type {kind}")


def catalog_problem(catalog: dict[str, ast.EventDecl], etype: str, event: dict) -> str | None:
    decl = catalog.get(etype)
    if decl is None:
        return None  # undeclared types pass unchecked
    for fd in decl.fields:
        if fd.name not in event:
            if not fd.optional:
                return f"required field '{fd.name}' is missing"
            continue
        value = event[fd.name]
        if value is None:
            if not fd.optional:
                return f"required field '{fd.name}' is null"
            continue
        if not _fits(fd.type, value):
            return f"field '{fd.name}' does not fit {fd.type}"
    return None


# =========================================================================
# the interpreter


def _key_of(rule: ast.Rule, event: dict) -> tuple[bool, object]:
    values = []
    for path in rule.key:
        v = _walk(event, path)
        if v is MISSING or v is None:
            return False, None  # §3.1 Keys: a null key field counts as lacking
        values.append(v)
    return True, (values[0] if len(values) == 1 else values)


def _key_id(key: object) -> bytes:
    # keys keep their JSON type (§3.1 Keys): "1", 1 and true are three customers
    return orjson.dumps(key, option=orjson.OPT_SORT_KEYS)


@dataclass(slots=True)
class Group:
    """The state of one (rule, key)."""

    key: object
    runs: list[Run] = field(default_factory=list)
    last_emitted: int | None = None


@dataclass(slots=True)
class _Interp:
    rules: tuple[ast.Rule, ...]
    patterns: dict[str, Pattern]
    affecting: dict[str, frozenset[str] | None]
    max_runs: int
    stats: Stats
    groups: dict[tuple[str, bytes], Group] = field(default_factory=dict)
    matches: list[Match] = field(default_factory=list)
    seq: int = 0

    # ---------------------------------------------------------------- helpers
    def _within_deaths(self, rule: ast.Rule, group: Group, t: int) -> None:
        """Rule 6: at every point at time t of this (rule, key), before
        anything else, a run whose start is more than `within` before t dies."""
        if rule.within is None:
            return
        keep = []
        for run in group.runs:
            if t - run.start > rule.within.ms:
                self.stats.rules[rule.name].died["within"] += 1
            else:
                keep.append(run)
        group.runs = keep

    def _complete(self, rule: ast.Rule, group: Group, done: list[Run]) -> None:
        """Rules 5, 7, 8: the earliest-started completed run is the match;
        every other run of the rule for the key is discarded."""
        if not done:
            return
        rs = self.stats.rules[rule.name]
        winner = min(done, key=lambda r: r.seq)
        rs.discarded += sum(1 for r in group.runs if r is not winner)
        group.runs = []
        end = winner.end
        if rule.cooldown is not None and group.last_emitted is not None \
                and end - group.last_emitted < rule.cooldown.ms:
            rs.suppressed += 1
            return
        group.last_emitted = end
        rs.matches += 1
        ctx = Ctx(None, winner.captures, winner.start, end, group.key)
        payload = {}
        output = rule.name
        if rule.emit is not None:
            output = rule.emit.name or rule.name
            for pf in rule.emit.fields:
                value = evaluate(pf.value, ctx)
                payload[pf.name] = None if value is MISSING else value
        self.matches.append(Match(rule.name, output, group.key, winner.start, end, payload))

    # ---------------------------------------------------------------- points of the timeline
    def next_deadline(self) -> int | None:
        best = None
        for (name, _), group in self.groups.items():
            pat = self.patterns[name]
            for run in group.runs:
                d = deadline_of(pat, run)
                if d is not None and (best is None or d < best):
                    best = d
        return best

    def deadline_point(self, d: int) -> None:
        """Every (rule, key) with a deadline at d: one point of its timeline."""
        for rule in self.rules:
            pat = self.patterns[rule.name]
            for (name, _), group in list(self.groups.items()):
                if name != rule.name:
                    continue
                if not any(deadline_of(pat, r) == d for r in group.runs):
                    continue
                self._within_deaths(rule, group, d)
                done = []
                for run in group.runs:
                    if deadline_of(pat, run) == d:
                        pass_deadline(pat, run, d)
                        if _is_complete(pat, run):
                            run.end = d
                            done.append(run)
                self._complete(rule, group, done)

    def event_point(self, etype: str, event: dict, ts: int) -> bool:
        """One accepted event; returns whether some rule was matched against it."""
        relevant = False
        for rule in self.rules:
            present, key = _key_of(rule, event)
            if not present:
                continue  # §2: events lacking the key are not seen by the rule
            types = self.affecting[rule.name]
            if types is not None and etype not in types:
                continue
            relevant = True
            pat = self.patterns[rule.name]
            rs = self.stats.rules[rule.name]
            group = self.groups.setdefault((rule.name, _key_id(key)), Group(key))
            self._within_deaths(rule, group, ts)
            done = []
            alive = []
            for run in group.runs:
                reason = advance(pat, run, etype, event, ts, key)
                if reason is not None:
                    rs.died[reason] += 1
                    continue
                alive.append(run)
                if _is_complete(pat, run):
                    run.end = ts
                    done.append(run)
            group.runs = alive
            # §3 rule 1: an event satisfying the first step starts a run;
            # `start` is its own time while the first step tests it (§3.1).
            first = pat.steps[0]
            if _matches(first.matcher, etype, Ctx(event, {}, ts, ts, key)):
                rs.runs_started += 1
                if len(group.runs) >= self.max_runs:
                    rs.died["cap"] += 1
                else:
                    run = Run(self.seq, ts, 0, 1, ts, False)
                    self.seq += 1
                    _take(first, run, event)
                    group.runs.append(run)
                    if _is_complete(pat, run):
                        run.end = ts
                        done.append(run)
            self._complete(rule, group, done)
        return relevant

    def resolve_deadlines(self, upto: int, *, inclusive: bool) -> None:
        while True:
            d = self.next_deadline()
            if d is None or d > upto or (d == upto and not inclusive):
                return
            self.deadline_point(d)

    def finish(self, final_wm: int | None) -> None:
        if final_wm is None:
            return
        # §3 rule 9: at the end the watermark is the largest time of the input.
        self.resolve_deadlines(final_wm, inclusive=True)
        # and at that point every run already past `within` dies (rule 6).
        for rule in self.rules:
            for (name, _), group in self.groups.items():
                if name == rule.name:
                    self._within_deaths(rule, group, final_wm)


def run_reference(ruleset, inputs: list[list[dict]], *, lateness_ms: int = 0,
                  max_runs_per_key: int = 1000) -> Result:
    """Replay `inputs` (partitions, each a list of event dicts with the type in
    `type` and the epoch-ms time in `ts`) against a loaded RuleSet."""
    if ruleset.has_errors:
        raise ValueError("the rule set has errors; it cannot be run")
    rules = tuple(ruleset.rules)
    stats = Stats()
    for rule in rules:
        stats.rules[rule.name] = RuleStats()
    dead: list[DeadLetter] = []

    # ---- intake, per partition (§3 rule 9, §3.1 Partitions)
    accepted: list[tuple[int, int, int, str, dict]] = []
    final_wm: int | None = None
    for p, events in enumerate(inputs):
        seen_max: int | None = None
        for pos, event in enumerate(events, start=1):
            stats.events += 1
            raw = orjson.dumps(event).decode()

            def reject(reason: str, detail: str) -> None:
                stats.dead_letters[reason] += 1
                dead.append(DeadLetter(reason, detail, f"p{p}", pos, raw))  # noqa: B023

            etype = event.get("type", MISSING)
            ts = event.get("ts", MISSING)
            readable = isinstance(ts, int) and not isinstance(ts, bool)
            if readable:
                # §3.1: every event with a readable time moves the watermark,
                # dead letters for their type or the catalog included; late
                # events cannot move it (they are below it).
                seen_max = ts if seen_max is None else max(seen_max, ts)
            if not isinstance(etype, str) or not etype:
                reject(MISSING_TYPE, "the event has no type")
                continue
            if not readable:
                reject(BAD_TIME, "the event time cannot be read")
                continue
            # §3.1 Boundaries: late iff strictly below the partition's
            # watermark (an event that raised the maximum never is).  Late
            # beats catalog: such an event could not be matched either way.
            if ts < seen_max - lateness_ms:
                reject(LATE, f"the event time is below the watermark {seen_max - lateness_ms}")
                continue
            problem = catalog_problem(ruleset.catalog, etype, event)
            if problem is not None:
                reject(CATALOG, problem)
                continue
            accepted.append((ts, p, pos, etype, event))
        if seen_max is not None:
            final_wm = seen_max if final_wm is None else max(final_wm, seen_max)

    # ---- the timeline: accepted events by (time, partition, position)
    accepted.sort(key=lambda item: item[:3])
    interp = _Interp(rules, {r.name: flatten(r) for r in rules},
                     {r.name: affecting_types(r) for r in rules}, max_runs_per_key, stats)
    for ts, _p, _pos, etype, event in accepted:
        # §3.1 Ties: a deadline at the event's time comes before it.
        interp.resolve_deadlines(ts, inclusive=True)
        if interp.event_point(etype, event, ts):
            stats.matched_against += 1
        else:
            stats.irrelevant += 1
    interp.finish(final_wm)
    return Result(sorted(interp.matches, key=Match.sort_key), dead, stats)


__all__ = ["MISSING", "Result", "evaluate", "run_reference"]
