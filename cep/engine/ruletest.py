"""Rule tests (SPEC §7), run through the same `Engine` as replay.

How a test runs:
- Offsets count from `BASE_TS`, 2027-01-01T00:00:00Z (1798761600000 ms): the
  event of a `given` line at `10s` has `"ts": BASE_TS + 10000`.
- Each `given` line becomes an event with the line's fields plus `type` and
  `ts` (the default StreamSettings roles; they replace fields of those names).
  Lines are fed in offset order; lines with the same offset keep their order
  (§3.1 Ties). A test stream is one partition with no lateness.
- The stream ends in silence (§7): after the last event the clock moves on
  until no deadline is pending. `until OFFSET` stops the clock at OFFSET
  instead: deadlines up to and including it resolve (§3.1 Boundaries), later
  ones never do; a `given` line after `until` is a test error.
- `only R1, R2` compiles just those rules; otherwise every rule takes part.
- `expect OUTPUT {...}` lines are found in order among the matches in
  completion order: each expect takes the first match after the previous
  expect's that fits it. Other matches may come between and around them;
  `expect nothing` (no match at all) and `expect nothing from RULE` (none of
  that rule) say what must not fire. An expect fits a match when the output
  is the same and every field it names agrees: `key` with the match's key,
  `at` with its completion time (an offset), any other name with the payload
  field of that name. Numbers compare by value (`120` fits `120.0`) with a
  relative tolerance of 1e-9; `true` is not `1`.
- A `given` event that becomes a dead letter (it does not fit the catalog)
  fails the test with the reason.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from cep.compile import compile_rules
from cep.engine.api import Engine
from cep.engine.model import DeadLetter, Match, StreamSettings
from cep.lang import ast

BASE_TS = 1_798_761_600_000  # 2027-01-01T00:00:00Z
# "until no deadline is pending": no absence window of a rule test reaches this
# far (about 146 million years); a deadline that did would never fire anyway.
END_OF_TIME = 1 << 62

TEST_SETTINGS = StreamSettings()  # type, ts, auto: the events built here carry epoch-ms ints


@dataclass(frozen=True, slots=True)
class RunInfo:
    """A live run of a tested rule, as `cep test` shows it for a failing test."""

    rule: str
    key: object
    start: int  # offset from BASE_TS
    step: int  # 1-based index among the rule's event and absence steps
    steps: int
    step_text: str  # the step as written (without its `where`)
    taken: int  # events the step has taken
    deadline: int | None  # offset of the open absence window's deadline


@dataclass(frozen=True, slots=True)
class TestResult:
    path: str
    test: ast.Test
    problems: tuple[str, ...]  # empty when the test passed
    fired: tuple[Match, ...]  # every match, in completion order
    runs: tuple[RunInfo, ...]  # live runs of the tested rules after the last event
    dead_letters: tuple[DeadLetter, ...]

    @property
    def passed(self) -> bool:
        return not self.problems


# ---------------------------------------------------------------- values


def json_equal(expected: object, got: object) -> bool:
    """Equality of JSON values as a test author means it: numbers by value
    (with a 1e-9 relative tolerance), bools only with bools, lists and maps
    element by element."""
    if isinstance(expected, bool) or isinstance(got, bool):
        return type(expected) is bool and type(got) is bool and expected == got
    if isinstance(expected, (int, float)) and isinstance(got, (int, float)):
        if isinstance(expected, int) and isinstance(got, int):
            return expected == got
        return math.isclose(expected, got, rel_tol=1e-9, abs_tol=1e-12)
    if isinstance(expected, str) or isinstance(got, str):
        return isinstance(expected, str) and isinstance(got, str) and expected == got
    if isinstance(expected, list) and isinstance(got, list):
        return len(expected) == len(got) and all(json_equal(a, b) for a, b in zip(expected, got))
    if isinstance(expected, dict) and isinstance(got, dict):
        return expected.keys() == got.keys() and all(json_equal(v, got[k]) for k, v in expected.items())
    return expected is None and got is None


def fmt_offset(ms: int) -> str:
    """Milliseconds as a duration the rule language reads back: 0s, 90s -> 1m30s, 1500ms -> 1s500ms."""
    if ms == 0:
        return "0s"
    sign = "-" if ms < 0 else ""
    ms = abs(ms)
    parts = []
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000), ("ms", 1)):
        n, ms = divmod(ms, size)
        if n:
            parts.append(f"{n}{unit}")
    return sign + "".join(parts)


def fmt_value(value: object) -> str:
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(fmt_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k}: {fmt_value(v)}" for k, v in value.items()) + " }"
    return repr(value)


def fmt_expect(expect: ast.Expect) -> str:
    if expect.output is None:
        return "expect nothing" + (f" from {expect.nothing_from}" if expect.nothing_from else "")
    if not expect.fields:
        return f"expect {expect.output}"
    fields = ", ".join(f"{k}: {fmt_offset(v) if k == 'at' and type(v) is int else fmt_value(v)}"
                       for k, v in expect.fields)
    return f"expect {expect.output} {{ {fields} }}"


def fmt_match(match: Match) -> str:
    payload = ", ".join(f"{k}: {fmt_value(v)}" for k, v in match.payload.items())
    return (f"{match.output} {{ key: {fmt_value(match.key)}, at: {fmt_offset(match.end_ts - BASE_TS)}"
            f"{', ' + payload if payload else ''} }} from rule {match.rule}, "
            f"started at {fmt_offset(match.start_ts - BASE_TS)}")


# ---------------------------------------------------------------- expects


def _mismatch(expect: ast.Expect, match: Match) -> str | None:
    """None when the match fits the expect, else which field differs."""
    if match.output != expect.output:
        return f"output {match.output}"
    for name, want in expect.fields:
        if name == "key":
            if not json_equal(want, match.key):
                return f"key: {fmt_value(match.key)}"
        elif name == "at":
            at = match.end_ts - BASE_TS
            if not (type(want) is int and want == at):
                return f"at: {fmt_offset(at)}"
        elif name not in match.payload:
            return f"no payload field {name}"
        elif not json_equal(want, match.payload[name]):
            return f"{name}: {fmt_value(match.payload[name])}"
    return None


def check_expects(expects: tuple[ast.Expect, ...], fired: list[Match], rules: set[str]) -> list[str]:
    """The problems of a test's expect lines against what fired (empty: pass)."""
    problems = []
    pos = 0
    for expect in expects:
        where = f"line {expect.span.line}: " if expect.span.line else ""
        if expect.output is None:
            if expect.nothing_from is None:
                if fired:
                    problems.append(f"{where}expected nothing to fire, but {len(fired)} "
                                    f"match{'es' if len(fired) != 1 else ''} fired")
            elif expect.nothing_from not in rules:
                problems.append(f"{where}expect nothing from {expect.nothing_from}: no rule of that name "
                                f"takes part in this test")
            else:
                n = sum(1 for m in fired if m.rule == expect.nothing_from)
                if n:
                    problems.append(f"{where}expected nothing from {expect.nothing_from}, but it fired "
                                    f"{n} time{'s' if n != 1 else ''}")
            continue
        for i in range(pos, len(fired)):
            if _mismatch(expect, fired[i]) is None:
                pos = i + 1
                break
        else:
            same = [m for m in fired[pos:] if m.output == expect.output]
            after = " after the previous expected match" if pos else ""
            if same:
                why = "; ".join(f"one fired at {fmt_offset(m.end_ts - BASE_TS)} with {_mismatch(expect, m)}"
                                for m in same)
                problems.append(f"{where}{fmt_expect(expect)}: no {expect.output} fits{after} ({why})")
            else:
                problems.append(f"{where}{fmt_expect(expect)}: {expect.output} did not fire{after}")
    return problems


# ---------------------------------------------------------------- runs


def _step_text(step: ast.Step) -> str:
    if isinstance(step, ast.IdleStep):
        return f"idle {step.duration.text}"
    if isinstance(step, ast.NoStep):
        return f"no {_matcher_text(step.matcher)} for {step.duration.text}"
    if isinstance(step, ast.EventStep):
        q = step.quant
        count = {"one": "", "exact": f"{q.min} ", "range": f"{q.min}..{q.max} ", "plus": f"{q.min}+ ",
                 "optional": "optional "}.get(q.kind, "")
        return count + _matcher_text(step.matcher) + (f" as {step.capture}" if step.capture else "")
    return type(step).__name__


def _matcher_text(m: ast.EventMatcher) -> str:
    if m.any_type:
        text = "any"
    elif len(m.types) == 1:
        text = m.types[0]
    else:
        text = "(" + " | ".join(m.types) + ")"
    return text + (" where ..." if m.where is not None else "")


def live_runs(engine: Engine, rule_names: set[str]) -> list[RunInfo]:
    """The live runs of the named rules, in rule and start order.

    Uses `Matcher.describe_runs()` when the matcher offers it (yielding
    `(rule_index, key, start, step_index, taken, deadline)`); otherwise reads
    the matcher's per-key states (`_states[rule] -> {key: KeyState}` with
    `runs` of `Run(pos, c, start, deadline)`)."""
    matcher = engine.matcher
    program = engine.program
    describe = getattr(matcher, "describe_runs", None)
    rows: list[tuple] = []
    if describe is not None:
        rows = list(describe())
    else:
        for index, states in enumerate(getattr(matcher, "_states", ())):
            for ks in states.values():
                for run in ks.runs:
                    rows.append((index, ks.key, run.start, run.pos, run.c, run.deadline))
    out = []
    for index, key, start, pos, taken, deadline in rows:
        rule = program.rules[index]
        if rule.name not in rule_names:
            continue
        step = rule.steps[pos] if 0 <= pos < len(rule.steps) else None
        out.append(RunInfo(rule.name, key, start - BASE_TS, pos + 1, len(rule.steps),
                           _step_text(step.source) if step is not None else "?", taken,
                           None if deadline is None else deadline - BASE_TS))
    out.sort(key=lambda r: ([n.name for n in program.rules].index(r.rule), r.start))
    return out


def fmt_run(run: RunInfo) -> str:
    text = (f"{run.rule} key {fmt_value(run.key)}: the run started at {fmt_offset(run.start)} is at step "
            f"{run.step} of {run.steps} ({run.step_text}), which has taken {run.taken}")
    if run.deadline is not None:
        text += f"; the absence window after it ends at {fmt_offset(run.deadline)}"
    return text


# ---------------------------------------------------------------- running


def _tested_rules(test: ast.Test, rules: tuple[ast.Rule, ...]) -> set[str]:
    """The rules whose runs a failure report shows: those the expects name (by
    output or `nothing from`), else every rule taking part."""
    outputs = {e.output for e in test.expects if e.output is not None}
    named = {e.nothing_from for e in test.expects if e.nothing_from is not None}
    chosen = {r.name for r in rules
              if r.name in named or ((r.emit.name if r.emit and r.emit.name else r.name) in outputs)}
    return chosen or {r.name for r in rules}


def run_test(ruleset, path: str, test: ast.Test, max_runs_per_key: int = 1000) -> TestResult:
    """Run one test of a checked rule set (`cep.lang.RuleSet` without errors)."""
    problems: list[str] = []
    rules = tuple(ruleset.rules)
    if test.only:
        known = {r.name for r in rules}
        problems += [f"only {name}: no rule of that name" for name in test.only if name not in known]
        rules = tuple(r for r in rules if r.name in set(test.only))
    program = compile_rules(rules, getattr(ruleset, "catalog", {}))
    engine = Engine(program, TEST_SETTINGS, max_runs_per_key=max_runs_per_key, sources=[path])
    stop = None if test.until is None else test.until.ms
    given = sorted(test.given, key=lambda g: g.offset.ms)  # stable: equal offsets keep their order
    for line in given:
        if stop is not None and line.offset.ms > stop:
            problems.append(f"line {line.span.line}: the event at {fmt_offset(line.offset.ms)} is after "
                            f"`until {fmt_offset(stop)}`")
            continue
        event = dict(line.fields)
        event[TEST_SETTINGS.type_field] = line.type
        event[TEST_SETTINGS.time_field] = BASE_TS + line.offset.ms
        engine.feed(event, offset=line.span.line)
    # every event is matched before the silence: the runs at that point are what a failure shows
    last = given[-1].offset.ms if given else None
    if last is not None and (stop is None or last < stop):
        engine.advance(BASE_TS + last + 1)
    runs = live_runs(engine, _tested_rules(test, rules))
    engine.advance(BASE_TS + stop if stop is not None else END_OF_TIME)
    engine.finish()
    fired = engine.take_matches()
    dead = engine.take_dead_letters()
    for letter in dead:
        problems.append(f"line {letter.offset}: the event is a dead letter ({letter.reason}): {letter.detail}")
    problems += check_expects(test.expects, fired, {r.name for r in rules})
    return TestResult(path, test, tuple(problems), tuple(fired), tuple(runs), tuple(dead))


def run_tests(ruleset, max_runs_per_key: int = 1000) -> list[TestResult]:
    """Every test of the rule set, in file and line order."""
    return [run_test(ruleset, path, test, max_runs_per_key) for path, test in ruleset.tests]
