"""Diagnostics: every problem found in a rule file, with where it is.

Problems are built in one place (`error`, `warning`) and collected, never
raised one at a time; only this module renders them, as

    rules/shop.cep:12:9: error: unknown event type 'checkout_strat'
       12 |   match checkout_strat as c
          |         ^^^^^^^^^^^^^^
      hint: did you mean 'checkout_start'?
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Iterable

from cep.lang.ast import Span


@dataclass(frozen=True, slots=True)
class Diagnostic:
    severity: str  # "error" | "warning"
    path: str
    span: Span
    message: str
    hint: str | None = None

    @property
    def is_error(self) -> bool:
        return self.severity == "error"

    def to_json(self) -> dict:
        return {
            "severity": self.severity,
            "path": self.path,
            "line": self.span.line,
            "col": self.span.col,
            "end_line": self.span.end_line,
            "end_col": self.span.end_col,
            "message": self.message,
            "hint": self.hint,
        }


def error(path: str, span: Span, message: str, hint: str | None = None) -> Diagnostic:
    return Diagnostic("error", path, span, message, hint)


def warning(path: str, span: Span, message: str, hint: str | None = None) -> Diagnostic:
    return Diagnostic("warning", path, span, message, hint)


def did_you_mean(name: str, candidates: Iterable[str]) -> str | None:
    """A hint naming the closest candidate, or None when nothing is close."""
    close = difflib.get_close_matches(name, sorted(set(candidates)), n=1, cutoff=0.6)
    return f"did you mean '{close[0]}'?" if close else None


def render(diag: Diagnostic, source: str | None) -> str:
    """`file:line:col: severity: message`, the source line with a caret under
    the span, and the hint."""
    out = [f"{diag.path}:{diag.span.line}:{diag.span.col}: {diag.severity}: {diag.message}"]
    lines = source.split("\n") if source is not None else []  # the parser's notion of a line
    if 1 <= diag.span.line <= len(lines):
        text = lines[diag.span.line - 1].expandtabs(1)
        gutter = f"{diag.span.line:>5} | "
        out.append(gutter + text)
        start = max(diag.span.col - 1, 0)
        if diag.span.end_line == diag.span.line and diag.span.end_col > diag.span.col:
            width = diag.span.end_col - diag.span.col
        else:
            width = 1
        width = max(1, min(width, max(1, len(text) - start)))
        out.append(" " * (len(gutter) - 2) + "| " + " " * start + "^" * width)
    if diag.hint:
        out.append(f"  hint: {diag.hint}")
    return "\n".join(out)


def sort_key(diag: Diagnostic) -> tuple:
    return (diag.path, diag.span.line, diag.span.col, diag.severity, diag.message)
