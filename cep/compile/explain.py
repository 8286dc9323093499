"""`cep explain`: the compiled NFA of one rule, as text, Graphviz DOT or Mermaid.

Like `dis()` for a regex: states (one per event or absence step), the
transitions out of each (take / proceed / ignore / kill) with their
predicates printed back as rule text, the timers of absence steps, `within`,
and what each capture holds.
"""

from __future__ import annotations

from dataclasses import dataclass

from cep.compile.expr import render_expr
from cep.compile.program import UNBOUNDED, CompiledRule, Step, StepKind
from cep.lang import ast

__all__ = ["explain", "transitions", "Transition"]


@dataclass(frozen=True, slots=True)
class Transition:
    src: str  # state name: s0, s1, ...
    dst: str  # a state, "match" or "dead"
    action: str  # take | proceed | ignore | kill | timer
    label: str


def _step_dur(s: Step) -> str:
    return s.source.duration.text  # as written: `90s` stays `90s`


def _name(n: str) -> str:
    return n if n.isidentifier() else f"`{n}`"


def _matcher_text(m: ast.EventMatcher) -> str:
    if m.any_type:
        what = "any"
    elif len(m.types) == 1:
        what = _name(m.types[0])
    else:
        what = "(" + " | ".join(_name(t) for t in m.types) + ")"
    if m.where is not None:
        what += f" where {render_expr(m.where)}"
    return what


def _count(s: Step) -> str:
    if s.max >= UNBOUNDED:
        return f"{s.min}+"
    if s.min == s.max:
        return str(s.min)
    return f"{s.min}..{s.max}"


def _state_title(s: Step) -> str:
    if s.kind == StepKind.IDLE:
        return f"idle {_step_dur(s)}"
    if s.kind == StepKind.NO:
        return f"no {_matcher_text(s.matcher.source)} for {_step_dur(s)}"
    q = s.source.quant
    prefix = "" if q.kind == "one" else ("optional " if q.kind == "optional" else f"{_count(s)} ")
    text = prefix + _matcher_text(s.matcher.source)
    if s.capture:
        text += f" as {_name(s.capture)}"
    return text


def _after(steps, i) -> str:
    return f"s{i}" if i < len(steps) else "match"


def transitions(rule: CompiledRule) -> list[Transition]:
    """Every transition of the rule's NFA, in step order."""
    steps = rule.steps
    out: list[Transition] = []
    for s in steps:
        me = f"s{s.index}"
        if s.kind != StepKind.EVENT:
            for g in s.pre_guards:
                out.append(Transition(me, "dead", "kill", f"not {_matcher_text(g.source)}"))
            if s.kind == StepKind.IDLE:
                out.append(Transition(me, "dead", "kill", "any event of the key inside the window"))
            else:
                out.append(Transition(me, "dead", "kill", f"{_matcher_text(s.matcher.source)} inside the window"))
                out.append(Transition(me, me, "ignore", "other events"))
            out.append(Transition(me, _after(steps, s.index + 1), "timer",
                                  f"at the deadline (window start + {_step_dur(s)})"))
            continue
        have = f"count >= {s.min}" if s.min else "always"
        for g in s.wait_guards:
            out.append(Transition(me, "dead", "kill", f"not {_matcher_text(g.source)} ({have})"))
        for g in s.pre_guards:
            out.append(Transition(me, "dead", "kill", f"not {_matcher_text(g.source)} (before the first event)"))
        j = s.index + 1
        while j < len(steps) and steps[j].kind == StepKind.EVENT:
            out.append(Transition(me, f"s{j}", "proceed",
                                  f"{_matcher_text(steps[j].matcher.source)} ({have}; moving on beats staying)"))
            if steps[j].min > 0:
                break
            j += 1
        after_absence = s.index > 0 and steps[s.index - 1].kind != StepKind.EVENT
        if s.max > 1 or after_absence:
            # a step entered by `proceed` already has its first event
            limit = "" if s.max >= UNBOUNDED else f"count < {s.max}; "
            out.append(Transition(me, me, "take", f"{_matcher_text(s.matcher.source)} ({limit}takes it)"))
        if s.next_kills:
            out.append(Transition(me, "dead", "kill", f"any other event ({have}; `next` into s{s.index + 1})"))
        if s.connector == "next" and after_absence:
            out.append(Transition(me, "dead", "kill", "any other first event after the deadline (`next`)"))
        if s.window >= 0:
            w = steps[s.window]
            if w.kind == StepKind.IDLE:
                out.append(Transition(me, "dead", "kill", f"any other event inside the idle window of s{w.index}"))
            else:
                out.append(Transition(me, "dead", "kill",
                                      f"{_matcher_text(w.matcher.source)} inside the window of s{w.index}"))
            out.append(Transition(me, _after(steps, s.window + 1), "timer",
                                  f"deadline = last event taken + {_step_dur(w)} ({have}); passes s{w.index}"))
        if s.final:
            out.append(Transition(me, "match", "proceed", f"complete ({have})"))
        idle_window = s.window >= 0 and steps[s.window].kind == StepKind.IDLE
        if not s.next_kills and not idle_window:
            out.append(Transition(me, me, "ignore", "other events"))
    return out


def _header(rule: CompiledRule) -> list[str]:
    key = ", ".join(".".join(_name(p) for p in f) for f in rule.key)
    lines = [f"rule {_name(rule.name)}" + (f"  \"{rule.source.description}\"" if rule.source.description else "")]
    lines.append(f"  key       {key}")
    lines.append(f"  within    {rule.source.within.text if rule.within_ms is not None else '-'}"
                 " (from the first event to completion, inclusive)")
    lines.append(f"  cooldown  {rule.source.cooldown.text if rule.cooldown_ms is not None else '-'}")
    fields = ", ".join(f"{_name(pf.name)}: {render_expr(pf.value)}"
                       for pf in (rule.source.emit.fields if rule.source.emit else ()))
    lines.append(f"  emit      {_name(rule.output)} {{ {fields} }}" if fields else f"  emit      {_name(rule.output)}")
    sees = "every event type" if rule.all_types else ", ".join(sorted(rule.types))
    lines.append(f"  sees      {sees}")
    return lines


def _capture_text(s: Step) -> str:
    if not s.capture:
        return ""
    if s.is_list:
        return f"{_name(s.capture)}: the list of events it took ([] if none)"
    if s.min == 0:
        return f"{_name(s.capture)}: the event it took, or missing"
    return f"{_name(s.capture)}: the event it took"


def _text(rule: CompiledRule) -> str:
    lines = _header(rule)
    lines.append("")
    lines.append("states (a run starts in s0 with each event that satisfies it)")
    trans = transitions(rule)
    for s in rule.steps:
        conn = f"{s.connector} " if s.connector else ""
        bounds = f"  [min {s.min}, max {'∞' if s.max >= UNBOUNDED else s.max}]" if s.kind == StepKind.EVENT else ""
        lines.append(f"  s{s.index}  {conn}{_state_title(s)}{bounds}")
        cap = _capture_text(s)
        if cap:
            lines.append(f"        capture  {cap}")
        for t in trans:
            if t.src == f"s{s.index}":
                lines.append(f"        {t.action:<8} -> {t.dst:<6} {t.label}")
    return "\n".join(lines) + "\n"


def _esc(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def _dot(rule: CompiledRule) -> str:
    lines = [f'digraph "{_esc(rule.name)}" {{', "  rankdir=LR;", '  node [shape=box, fontname="monospace"];',
             '  start [shape=point];', '  match [shape=doublecircle, label="match"];',
             '  dead [shape=octagon, label="dead"];']
    for s in rule.steps:
        label = _state_title(s) + (f"\\n{_capture_text(s)}" if s.capture else "")
        lines.append(f'  s{s.index} [label="s{s.index}: {_esc(label)}"];')
    lines.append(f'  start -> s0 [label="{_esc(_matcher_text(rule.steps[0].matcher.source))}"];')
    for t in transitions(rule):
        style = {"kill": ", color=red", "timer": ", style=dashed", "ignore": ", color=gray"}.get(t.action, "")
        lines.append(f'  {t.src} -> {t.dst} [label="{t.action}: {_esc(t.label)}"{style}];')
    if rule.within_ms is not None:
        lines.append(f'  label="within {rule.source.within.text}";')
    lines.append("}")
    return "\n".join(lines) + "\n"


def _mm(text: str) -> str:
    return text.replace('"', "#quot;").replace("|", "#124;")


def _mermaid(rule: CompiledRule) -> str:
    lines = ["stateDiagram-v2"]
    for s in rule.steps:
        lines.append(f'  state "s{s.index}: {_mm(_state_title(s))}" as s{s.index}')
    lines.append('  state "match" as match')
    lines.append('  state "dead" as dead')
    lines.append(f"  [*] --> s0 : {_mm(_matcher_text(rule.steps[0].matcher.source))}")
    for t in transitions(rule):
        lines.append(f"  {t.src} --> {t.dst} : {t.action}: {_mm(t.label)}")
    lines.append("  match --> [*]")
    if rule.within_ms is not None:
        lines.append(f"  note right of s0 : within {rule.source.within.text}")
    return "\n".join(lines) + "\n"


def explain(rule: CompiledRule, fmt: str = "text") -> str:
    if fmt == "text":
        return _text(rule)
    if fmt == "dot":
        return _dot(rule)
    if fmt == "mermaid":
        return _mermaid(rule)
    raise ValueError(f"unknown format {fmt!r} (text, dot or mermaid)")
