"""A checked, resolved RuleSet -> an immutable Program the matcher runs.

Per rule the pattern becomes a tuple of `Step`s: the event and absence steps
of SPEC §3 rule 2.  `not` steps are not steps of their own: each becomes a
guard on the gap it belongs to (§3.1 "Connectors around not and absence
steps"):
- `wait_guards[i]`: the `not`s written right after event step i; they apply
  while the run waits at step i with c >= min(i) (rule 3);
- `pre_guards[i]`: the `not`s written right after the absence steps just
  before step i; they apply while the run waits at step i before it has
  taken its first event (and, if step i is itself an absence step, inside
  its window) — so a `not` after `no X` applies after its deadline, not
  inside its window.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Callable

from cep.compile.expr import MISSING, capture_fields, compile_expr, compile_where, projector, reads_run
from cep.lang import ast

__all__ = ["StepKind", "Matcher_", "Step", "CompiledRule", "KeyGroup", "Program", "compile_ruleset",
           "compile_rules", "UNBOUNDED"]

UNBOUNDED = 1 << 62  # max of `N+`


class StepKind(enum.IntEnum):
    EVENT = 0
    IDLE = 1  # `idle D`: no event of the key for D
    NO = 2  # `no X for D`: no X event for D


@dataclass(frozen=True, slots=True)
class Matcher_:
    """Which events a step (or guard) is about: `types` None means any type."""

    types: frozenset | None
    where: Callable | None  # compiled `where`, or None
    reads_run: bool  # the where reads a capture or `start`
    source: ast.EventMatcher

    def test(self, etype, ev, caps, start, now, key) -> bool:
        if self.types is not None and etype not in self.types:
            return False
        return self.where is None or self.where(ev, caps, start, now, key)


@dataclass(frozen=True, slots=True)
class Step:
    index: int
    kind: StepKind
    min: int
    max: int
    connector: str | None  # written before the step: "then" | "next" | None (first)
    matcher: Matcher_ | None  # EVENT and NO steps
    duration_ms: int  # IDLE and NO steps
    slot: int  # capture slot, -1 if none
    capture: str | None
    is_list: bool
    wait_guards: tuple[Matcher_, ...]
    pre_guards: tuple[Matcher_, ...]
    # derived, for the matcher's hot loop:
    window: int  # event step: the absence step reached over min-0 steps after it, else -1
    final: bool  # event step: every later step is an event step with min 0
    next_kills: bool  # event step: the step after is an event step written with `next`
    source: ast.Step
    # event step with a capture: event -> what its slot keeps of the event
    # (`expr.projector`), when the rule reads only some fields of the capture;
    # None: the slot keeps the whole event
    project: Callable | None = None


# eq=False: a compiled rule is equal only to itself, so it hashes by identity
# (the matcher keeps sets of rules; a field-wise hash would walk every step)
@dataclass(frozen=True, slots=True, eq=False)
class CompiledRule:
    index: int
    name: str
    output: str
    key: tuple[tuple[str, ...], ...]
    group: int  # index into Program.key_groups
    steps: tuple[Step, ...]
    within_ms: int | None
    cooldown_ms: int | None
    payload: tuple[tuple[str, Callable], ...]
    n_slots: int
    caps_template: tuple  # initial capture slots: MISSING for single, None (= empty list) for lists
    all_types: bool  # affected by every event type (`any`, `idle`, `next`)
    types: frozenset  # otherwise: the types its event, `no` and `not` steps name
    source: ast.Rule
    # the first step's `where` requires `field == "constant"` or `field in
    # ["a", "b", ...]` (a top-level conjunct, list of str literals): (field
    # path, the constants), so the matcher can index the rule by (type, field,
    # value) under each constant and an event only tries to start the rules
    # whose constant it carries; None when there is no such conjunct
    start_const: tuple[tuple[str, ...], tuple[str, ...]] | None = None
    # the test rule 1 still needs once the matcher's index has found the
    # constant: the first step's where, or None when the where is exactly
    # `field == "constant"` or `field in [str literals]` (the index has proved it)
    start_where: Callable | None = None

    def emit(self, caps, start: int, end: int, key) -> dict:
        """The payload: MISSING is written as null (§3.1)."""
        out = {}
        for name, f in self.payload:
            v = f(None, caps, start, end, key)
            out[name] = None if v is MISSING else v
        return out


@dataclass(frozen=True, slots=True)
class KeyGroup:
    index: int
    fields: tuple[tuple[str, ...], ...]
    rules: tuple[int, ...]


def _key_getter(fields: tuple[tuple[str, ...], ...]) -> Callable[[dict], object]:
    """event -> key value, or None when a key field is missing or null (§3.1 Keys)."""
    if len(fields) == 1:
        return field_getter(fields[0])
    getters = tuple(field_getter(path) for path in fields)

    def multi(ev):
        out = []
        for get in getters:
            v = get(ev)
            if v is None:
                return None
            out.append(v)
        return out

    return multi


@dataclass(frozen=True, slots=True)
class Program:
    rules: tuple[CompiledRule, ...]
    key_groups: tuple[KeyGroup, ...]
    catalog: dict
    by_type: dict  # type name -> tuple of rule indexes that name it (not counting all-type rules)
    all_type_rules: tuple[int, ...]
    key_getters: tuple[Callable, ...]

    def key_of(self, group: int, event: dict):
        """The key of `event` for a key group: the value (one field) or a list
        of values; None when a key field is missing or null."""
        return self.key_getters[group](event)

    def rules_for(self, etype) -> tuple[int, ...]:
        """Indexes of the rules an event of this type can affect, in rule order."""
        named = self.by_type.get(etype, ())
        if not self.all_type_rules:
            return named
        if not named:
            return self.all_type_rules
        return tuple(sorted(set(named) | set(self.all_type_rules)))

    def rule(self, name: str) -> CompiledRule | None:
        for r in self.rules:
            if r.name == name:
                return r
        return None


def start_constant(where) -> tuple[tuple[str, ...], tuple[str, ...]] | None:
    """A conjunct `field == "s"` (either side) or `field in ["s", ...]` (a list
    of str literals only) that the where requires: (path, the strs in first-seen
    order).  If the field is not one of those strs the where cannot be exactly
    true (architecture "Expression semantics": `and` is true only when both
    sides are exactly True; `==` of a str literal is true only for that str; `in`
    is true only for an element of a like type, and str is like only str).
    An `==` conjunct anywhere in the chain is preferred: one value, not several."""
    return _const_conjunct(where, "==") or _const_conjunct(where, "in")


def _const_conjunct(where, op: str):
    if not isinstance(where, ast.Binary):
        return None
    if where.op == "and":
        return _const_conjunct(where.left, op) or _const_conjunct(where.right, op)
    if where.op != op:
        return None
    if op == "==":
        for a, b in ((where.left, where.right), (where.right, where.left)):
            if isinstance(a, ast.Field) and isinstance(b, ast.Literal) and type(b.value) is str:
                return (tuple(a.path), (b.value,))
        return None
    # `in`: the element is the left side; a str on the right would be substring
    a, b = where.left, where.right
    if (isinstance(a, ast.Field) and isinstance(b, ast.ListExpr)
            and all(isinstance(x, ast.Literal) and type(x.value) is str for x in b.items)):
        # `x in []` is never true: no value, so no event starts the rule
        return (tuple(a.path), tuple(dict.fromkeys(x.value for x in b.items)))
    return None


def field_getter(path: tuple[str, ...]) -> Callable[[dict], object]:
    """event -> the value at a dotted path, or None when absent (or not a dict on the way)."""
    if len(path) == 1:
        name = path[0]
        return lambda ev: ev.get(name)

    def walk(ev):
        v = ev
        for p in path:
            if type(v) is not dict:
                return None
            v = v.get(p)
        return v

    return walk


def _compile_matcher(m: ast.EventMatcher, slots: dict[str, int], proj: dict) -> Matcher_:
    types = None if m.any_type else frozenset(m.types)
    where = compile_where(m.where, slots, proj) if m.where is not None else None
    return Matcher_(types, where, m.where is not None and reads_run(m.where), m)


def compile_rule(rule: ast.Rule, index: int, group: int, key: tuple) -> CompiledRule:
    if not rule.pattern:
        raise ValueError(f"rule {rule.name}: empty pattern")
    # capture slots, in pattern order
    slots: dict[str, int] = {}
    template: list = []
    for item in rule.pattern:
        st = item.step
        if isinstance(st, ast.EventStep) and st.capture is not None:
            slots[st.capture] = len(template)
            template.append(None if st.quant.kind not in ("one", "optional") else MISSING)
    # captures whose every use reads fields only keep just those fields per
    # event (memory per live run: a rule rarely needs the whole event)
    uses: dict = {name: set() for name in slots}
    for item in rule.pattern:
        st = item.step
        m = getattr(st, "matcher", None)
        if m is not None and m.where is not None:
            capture_fields(m.where, uses)
    for pf in (rule.emit.fields if rule.emit is not None else ()):
        capture_fields(pf.value, uses)
    proj = {name: tuple(sorted(fields)) for name, fields in uses.items() if fields is not None}

    # first pass: the steps proper, with the guards of their gaps
    raw: list[dict] = []
    pending_pre: list[Matcher_] = []  # nots after an absence step, for the steps after it
    all_types = False
    types: set[str] = set()
    for pos, item in enumerate(rule.pattern):
        st = item.step
        if item.connector == "next":
            all_types = True
        if isinstance(st, (ast.EventStep, ast.NoStep, ast.NotStep)):
            if st.matcher.any_type:
                all_types = True
            types.update(st.matcher.types)
        if isinstance(st, ast.IdleStep):
            all_types = True
        if isinstance(st, ast.NotStep):
            g = _compile_matcher(st.matcher, slots, proj)
            if not raw:
                raise ValueError(f"rule {rule.name}: a pattern may not start with `not`")
            if raw[-1]["kind"] == StepKind.EVENT:
                raw[-1]["wait"].append(g)
            else:
                # §3.1: a `not` right after an absence step applies while the run
                # waits for the next event step, until it takes its first event
                pending_pre.append(g)
            continue
        # §3.1: in `A then not X next B` the connector written right before B
        # decides contiguity between A and B
        connector = item.connector
        if isinstance(st, ast.EventStep):
            q = st.quant
            raw.append(dict(kind=StepKind.EVENT, min=q.min, max=UNBOUNDED if q.max is None else q.max,
                            connector=connector, matcher=_compile_matcher(st.matcher, slots, proj), duration=0,
                            slot=slots.get(st.capture, -1) if st.capture else -1, capture=st.capture,
                            is_list=q.kind not in ("one", "optional"), wait=[], pre=tuple(pending_pre), src=st))
            pending_pre = []
        else:
            kind = StepKind.IDLE if isinstance(st, ast.IdleStep) else StepKind.NO
            m = _compile_matcher(st.matcher, slots, proj) if isinstance(st, ast.NoStep) else None
            # guards of earlier absence steps in a row keep applying in this window
            raw.append(dict(kind=kind, min=1, max=1, connector=connector, matcher=m, duration=st.duration.ms,
                            slot=-1, capture=None, is_list=False, wait=[], pre=tuple(pending_pre), src=st))
    # A `not` after an absence step with only absence steps after it has been
    # attached to those windows (`pre` above): §3.1, it applies until an event
    # step takes its first event, and there is none.  Only a pattern written to
    # end with `not` is malformed (the checker rejects it first).
    if pending_pre and isinstance(rule.pattern[-1].step, ast.NotStep):
        raise ValueError(f"rule {rule.name}: a pattern may not end with `not`")
    if raw[0]["kind"] != StepKind.EVENT or raw[0]["min"] < 1:
        raise ValueError(f"rule {rule.name}: a pattern must start with an event step with min >= 1")

    n = len(raw)
    steps = []
    for i, r in enumerate(raw):
        window, final, next_kills = -1, False, False
        if r["kind"] == StepKind.EVENT:
            j = i + 1
            while j < n and raw[j]["kind"] == StepKind.EVENT and raw[j]["min"] == 0:
                j += 1
            if j == n:
                final = True
            elif raw[j]["kind"] != StepKind.EVENT:
                window = j
            next_kills = i + 1 < n and raw[i + 1]["kind"] == StepKind.EVENT and raw[i + 1]["connector"] == "next"
        steps.append(Step(index=i, kind=r["kind"], min=r["min"], max=r["max"], connector=r["connector"],
                          matcher=r["matcher"], duration_ms=r["duration"], slot=r["slot"], capture=r["capture"],
                          is_list=r["is_list"], wait_guards=tuple(r["wait"]), pre_guards=r["pre"],
                          window=window, final=final, next_kills=next_kills, source=r["src"],
                          project=projector(proj[r["capture"]]) if r["capture"] in proj else None))

    where0 = steps[0].source.matcher.where
    start_where = steps[0].matcher.where
    # the where is exactly the indexed conjunct: the index has proved it (an
    # indexed event's field is a str equal to one of the constants, and then
    # both `==` and `in` are True)
    if isinstance(where0, ast.Binary) and where0.op in ("==", "in") and start_constant(where0) is not None:
        start_where = None
    emit = rule.emit
    output = emit.name if emit is not None and emit.name else rule.name
    payload = tuple((pf.name, compile_expr(pf.value, slots, in_emit=True, proj=proj))
                    for pf in (emit.fields if emit else ()))
    return CompiledRule(index=index, name=rule.name, output=output, key=key, group=group, steps=tuple(steps),
                        within_ms=rule.within.ms if rule.within is not None else None,
                        cooldown_ms=rule.cooldown.ms if rule.cooldown is not None else None,
                        payload=payload, n_slots=len(template), caps_template=tuple(template),
                        all_types=all_types, types=frozenset(types), source=rule,
                        start_const=start_constant(where0), start_where=start_where)


def compile_rules(rules, catalog: dict | None = None) -> Program:
    """Compile resolved rules (each with its key filled in)."""
    groups: dict[tuple, list[int]] = {}
    compiled = []
    for i, rule in enumerate(rules):
        if not rule.key:
            raise ValueError(f"rule {rule.name} has no key (and no default key was given)")
        key = tuple(tuple(p) for p in rule.key)
        g = list(groups).index(key) if key in groups else len(groups)
        groups.setdefault(key, []).append(i)
        compiled.append(compile_rule(rule, i, g, key))
    key_groups = tuple(KeyGroup(g, fields, tuple(idx)) for g, (fields, idx) in enumerate(groups.items()))
    by_type: dict[str, list[int]] = {}
    all_type_rules = []
    for r in compiled:
        if r.all_types:
            all_type_rules.append(r.index)
        else:
            for t in sorted(r.types):
                by_type.setdefault(t, []).append(r.index)
    return Program(rules=tuple(compiled), key_groups=key_groups, catalog=dict(catalog or {}),
                   by_type={t: tuple(v) for t, v in by_type.items()}, all_type_rules=tuple(all_type_rules),
                   key_getters=tuple(_key_getter(g.fields) for g in key_groups))


def compile_ruleset(ruleset) -> Program:
    """`cep.lang.RuleSet` -> Program.  A rule set with errors must not be compiled."""
    if getattr(ruleset, "has_errors", False):
        raise ValueError("the rule set has errors; fix them (see `cep check`) before compiling")
    return compile_rules(ruleset.rules, getattr(ruleset, "catalog", {}))
