"""The typed syntax tree of a rule file.

Every node is a frozen, slotted dataclass with a `span` (where it was written),
so every later layer can point back at the source.  `span` is excluded from
equality: two trees that say the same thing compare equal wherever they were
written, which is what the formatter round-trip tests rely on.

Expressions come out of the parser *unresolved*: a bare identifier is a
`Ref`, a dotted chain is `GetAttr` over it.  `cep.lang.resolve` then rewrites
them, against the rule's captures and the `let` constants, into the resolved
nodes at the bottom of this file (`Field`, `Capture`, `Var`), which are what
the compiler and the reference interpreter consume.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Union


@dataclass(frozen=True, slots=True)
class Span:
    line: int  # 1-based
    col: int  # 1-based
    end_line: int
    end_col: int

    def __str__(self) -> str:
        return f"{self.line}:{self.col}"


NOWHERE = Span(0, 0, 0, 0)


def _span() -> Span:
    return field(default=NOWHERE, compare=False, repr=False)


# --------------------------------------------------------------------------
# expressions (as parsed)


@dataclass(frozen=True, slots=True)
class Literal:
    """A string, int, float, bool or null (None)."""

    value: object
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class DurationLit:
    """`90s`, `1h30m`: its value is in milliseconds; `text` keeps how it was written."""

    ms: int
    text: str
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class ListExpr:
    items: tuple[Expr, ...]
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Ref:
    """A bare identifier: a field of the current event, a capture, a `let`
    constant, or (not backticked) one of `key`, `start`, `now`."""

    name: str
    backticked: bool = False
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class GetAttr:
    """`obj.name`: a field of an event (or, on a list capture, of each event)."""

    obj: Expr
    name: str
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class GetIndex:
    """`obj[index]`: an element of a list capture or list value."""

    obj: Expr
    index: Expr
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Call:
    """`func(args)`: functions (`lower upper len abs exists`) and aggregates
    (`count sum avg min max first last distinct`)."""

    func: str
    args: tuple[Expr, ...]
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Unary:
    """`-x` or `not x`."""

    op: str  # "-" | "not"
    operand: Expr
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Binary:
    """Every infix operator.

    op is one of: or and == != < <= > >= in "not in" contains startswith
    endswith matches + - * /.  For `matches` the right side is a string
    Literal (checked to be a valid RE2 pattern).
    """

    op: str
    left: Expr
    right: Expr
    span: Span = _span()


# --------------------------------------------------------------------------
# resolved expressions (produced by cep.lang.resolve, never by the parser)


@dataclass(frozen=True, slots=True)
class Field:
    """A field of the current event; `path` has one element per dot."""

    path: tuple[str, ...]
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Capture:
    """A capture of the rule: one event (or missing, for an untaken
    `optional`) when `is_list` is false, else the list of events taken."""

    name: str
    is_list: bool
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Var:
    """`key`, `start` or `now` (SPEC §2, §3.1)."""

    name: str  # "key" | "start" | "now"
    span: Span = _span()


Expr = Union[Literal, DurationLit, ListExpr, Ref, GetAttr, GetIndex, Call, Unary, Binary, Field, Capture, Var]


# --------------------------------------------------------------------------
# steps


@dataclass(frozen=True, slots=True)
class Quantifier:
    """How many events a step takes: `min`..`max` (max None = unbounded).

    `kind` records how it was written so the formatter gives it back:
    "one" (no quantifier), "exact" (`3`), "range" (`2..4`), "plus" (`2+`),
    "optional".  A written quantifier (anything but "one" and "optional")
    makes the step's capture a list.
    """

    kind: str
    min: int
    max: int | None
    span: Span = _span()


ONE = Quantifier("one", 1, 1)


@dataclass(frozen=True, slots=True)
class EventMatcher:
    """Which events a step is about: a list of types, or any type (`types`
    empty and `any_type` true), plus an optional `where`."""

    types: tuple[str, ...]
    any_type: bool
    where: Expr | None
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class EventStep:
    """`[quant] TYPE | (T1 | T2) | any [where E] [as NAME]`."""

    quant: Quantifier
    matcher: EventMatcher
    capture: str | None
    span: Span = _span()
    capture_span: Span = _span()


@dataclass(frozen=True, slots=True)
class IdleStep:
    """`idle D`: no event of the key for D."""

    duration: DurationLit
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class NoStep:
    """`no X [where E] for D`: no event satisfying X for D."""

    matcher: EventMatcher
    duration: DurationLit
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class NotStep:
    """`not X [where E]`: kills the run while it waits at the step before."""

    matcher: EventMatcher
    span: Span = _span()


Step = Union[EventStep, IdleStep, NoStep, NotStep]


@dataclass(frozen=True, slots=True)
class PatternItem:
    """A step with the connector written before it ("then" | "next"; None for
    the first step)."""

    connector: str | None
    step: Step
    span: Span = _span()


# --------------------------------------------------------------------------
# rules, catalog, constants, tests


@dataclass(frozen=True, slots=True)
class PayloadField:
    name: str
    value: Expr
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Emit:
    """`emit [NAME] [{ field: expr, ... }]`; name None means the rule's name."""

    name: str | None
    fields: tuple[PayloadField, ...]
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Rule:
    name: str
    description: str | None
    key: tuple[tuple[str, ...], ...] | None  # each key field as a dotted path; None: the config's default
    pattern: tuple[PatternItem, ...]
    within: DurationLit | None
    emit: Emit | None
    cooldown: DurationLit | None
    span: Span = _span()
    name_span: Span = _span()
    key_span: Span = _span()


@dataclass(frozen=True, slots=True)
class FieldDecl:
    name: str
    type: str  # str int float bool list map any
    optional: bool
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class EventDecl:
    name: str
    fields: tuple[FieldDecl, ...]
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Let:
    name: str
    value: Expr
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class GivenEvent:
    """A `given` line: `OFFSET TYPE { field: value, ... }`; values are plain
    Python data (str, int, float, bool, None, list, dict)."""

    offset: DurationLit
    type: str
    fields: tuple[tuple[str, object], ...]
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Expect:
    """`expect OUTPUT { key: ..., at: OFFSET, field: value }` (fields plain data;
    `at` as milliseconds), or `expect nothing [from RULE]` (output None)."""

    output: str | None
    fields: tuple[tuple[str, object], ...]
    nothing_from: str | None
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Test:
    name: str
    description: str | None
    only: tuple[str, ...]
    given: tuple[GivenEvent, ...]
    until: DurationLit | None
    expects: tuple[Expect, ...]
    span: Span = _span()


Item = Union[EventDecl, Let, Rule, Test]


@dataclass(frozen=True, slots=True)
class Comment:
    """A `# ...` comment, kept so the formatter can put it back."""

    text: str
    line: int


@dataclass(frozen=True, slots=True)
class File:
    path: str
    items: tuple[Item, ...]
    comments: tuple[Comment, ...] = field(default=(), compare=False)
    span: Span = _span()


def replace(node, **changes):
    """dataclasses.replace, re-exported so callers need not import dataclasses."""
    return dataclasses.replace(node, **changes)
