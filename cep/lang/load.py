"""`load` / `load_text`: files -> parsed, checked, resolved `RuleSet`."""

from __future__ import annotations

import os
from pathlib import Path

from cep.lang import ast
from cep.lang.build import parse_text
from cep.lang.diagnostics import Diagnostic, sort_key
from cep.lang.resolve import resolve_rule, split_key
from cep.lang.ruleset import RuleSet


class LoadError(Exception):
    """A path that cannot be read at all (missing, unreadable, not UTF-8)."""


def rule_files(paths) -> list[str]:
    """Files and directories -> the rule files, directories searched
    recursively for `*.cep`, in sorted order.  Raises LoadError for a path
    that does not exist."""
    out: list[str] = []
    for p in paths:
        path = Path(p)
        if path.is_dir():
            out.extend(str(f) for f in sorted(path.rglob("*.cep")) if f.is_file())
        elif path.is_file():
            out.append(str(path))
        else:
            raise LoadError(f"{p}: no such file or directory")
    seen = set()
    unique = []
    for f in out:
        if f not in seen:
            seen.add(f)
            unique.append(f)
    return unique


def read_source(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as fh:
            return fh.read()
    except UnicodeDecodeError:
        raise LoadError(f"{path}: not a UTF-8 text file") from None
    except OSError as exc:
        raise LoadError(f"{path}: {exc.strerror or exc}") from None


def load(paths, *, default_key=None) -> RuleSet:
    """Read, parse, check and resolve rule files (docs/architecture.md).
    `paths`: files or directories (recursive `*.cep`).  Raises LoadError
    only for a path that cannot be read; every problem in the rules is a
    diagnostic of the returned RuleSet."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    sources = {}
    for f in rule_files(paths):
        sources[f] = read_source(f)
    return load_sources(sources, default_key=default_key)


def load_text(text: str, path: str = "<string>", default_key=None) -> RuleSet:
    """One rule file given as text (for tests and editors)."""
    return load_sources({path: text}, default_key=default_key)


def load_sources(sources: dict[str, str], *, default_key=None) -> RuleSet:
    from cep.lang.check import run_checks  # noqa: PLC0415 (check imports resolve helpers)

    diagnostics: list[Diagnostic] = []
    files = []
    for path, text in sources.items():
        file, diags = parse_text(text, path)
        files.append(file)
        diagnostics.extend(diags)
    catalog: dict[str, ast.EventDecl] = {}
    lets: dict[str, ast.Expr] = {}
    for file in files:
        for item in file.items:
            if isinstance(item, ast.EventDecl):
                catalog.setdefault(item.name, item)
            elif isinstance(item, ast.Let):
                lets.setdefault(item.name, item.value)
    key = split_key(default_key)
    diagnostics.extend(run_checks(files, catalog, lets, key, sources))
    rules = []
    tests = []
    for file in files:
        for item in file.items:
            if isinstance(item, ast.Rule):
                rules.append(resolve_rule(item, lets, key))
            elif isinstance(item, ast.Test):
                tests.append((file.path, item))
    diagnostics.sort(key=sort_key)
    return RuleSet(sources=dict(sources), catalog=catalog, rules=tuple(rules), tests=tuple(tests),
                   diagnostics=diagnostics, files=tuple(files))

