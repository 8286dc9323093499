"""Checks of a parsed rule set (filled in below)."""

from __future__ import annotations

from cep.lang import ast
from cep.lang.diagnostics import Diagnostic


def check_keys(ctx) -> list[Diagnostic]:
    from cep.lang.load import missing_key_error  # noqa: PLC0415

    out = []
    for path, rule in ctx.rules:
        if not rule.key and ctx.default_key is None:
            out.append(missing_key_error(path, rule))
    return out


class _Ctx:
    def __init__(self, files, catalog, lets, default_key):
        self.files = files
        self.catalog = catalog
        self.lets = lets
        self.default_key = default_key
        self.rules = [(f.path, it) for f in files for it in f.items if isinstance(it, ast.Rule)]


CHECKS = (check_keys,)


def run_checks(files, catalog, lets, default_key) -> list[Diagnostic]:
    ctx = _Ctx(files, catalog, lets, default_key)
    out: list[Diagnostic] = []
    for check in CHECKS:
        out.extend(check(ctx))
    return out
