"""`RuleSet`: what `cep.lang.load` hands to the compiler, `cep test` and the CLI
(docs/architecture.md "cep.lang")."""

from __future__ import annotations

from dataclasses import dataclass, field

from cep.lang import ast
from cep.lang.diagnostics import Diagnostic


@dataclass(slots=True)
class RuleSet:
    """A loaded rule set.

    `rules` are resolved (cep.lang.resolve) and always have `key` filled;
    `catalog` is empty when no file declares an event.  A RuleSet with
    errors must not be compiled: check `has_errors` first.
    """

    sources: dict[str, str] = field(default_factory=dict)
    catalog: dict[str, ast.EventDecl] = field(default_factory=dict)
    rules: tuple[ast.Rule, ...] = ()
    tests: tuple[tuple[str, ast.Test], ...] = ()
    diagnostics: list[Diagnostic] = field(default_factory=list)
    files: tuple[ast.File, ...] = ()

    @property
    def has_errors(self) -> bool:
        return any(d.is_error for d in self.diagnostics)

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.is_error]

    @property
    def warnings(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if not d.is_error]
