"""Check rule files: parse, check and compile them without running anything.

Every problem is printed as `file:line:col: error: message`, the source line
with a caret under the problem, and a hint where one helps; every problem of
every file is reported, then a closing line such as
`3 files, 12 rules, 9 tests: 0 errors, 1 warning`.  The default key comes
from cep.toml's [stream] default_key (or --config FILE).

Example:
  cep check rules/
  cep check rules/web_shop.cep --format json

Exit codes: 0 no errors (warnings allowed), 1 errors in the rules,
2 usage errors, a path that cannot be read or a bad config file.
"""

from __future__ import annotations

import argparse
import sys

import orjson

HELP = "check rule files and report every problem with its position"
DEFAULT_PATHS = ("rules",)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="*", metavar="PATH",
                        help="rule files or directories, searched recursively for *.cep (default: rules/)")
    parser.add_argument("--format", choices=("text", "json"), default="text",
                        help="text for people (default), json for editors and CI")
    parser.add_argument("--config", metavar="FILE", help="config file (default: ./cep.toml if present)")


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def summary_line(files: int, rules: int, tests: int, errors: int, warnings: int) -> str:
    return (f"{_plural(files, 'file')}, {_plural(rules, 'rule')}, {_plural(tests, 'test')}: "
            f"{_plural(errors, 'error')}, {_plural(warnings, 'warning')}")


def _compile_problem(ruleset) -> str | None:
    """Compile a clean rule set, as `cep replay` would; None when it compiles."""
    from cep.compile import compile_ruleset  # noqa: PLC0415

    try:
        compile_ruleset(ruleset)
    except Exception as exc:  # noqa: BLE001 - reported as one line, never a traceback
        return f"the rules passed the checks but do not compile: {exc}"
    return None


def run(args: argparse.Namespace) -> int:
    from cep.config import ConfigError, load_config  # noqa: PLC0415
    from cep.lang import LoadError, load  # noqa: PLC0415
    from cep.lang.diagnostics import render, sort_key  # noqa: PLC0415

    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"cep check: {exc}", file=sys.stderr)
        return 2
    paths = args.paths or list(DEFAULT_PATHS)
    try:
        ruleset = load(paths, default_key=config.stream.default_key)
    except LoadError as exc:
        print(f"cep check: {exc}", file=sys.stderr)
        return 2
    diagnostics = sorted(ruleset.diagnostics, key=sort_key)
    internal = None if ruleset.has_errors else _compile_problem(ruleset)
    errors = sum(1 for d in diagnostics if d.is_error) + (internal is not None)
    warnings = sum(1 for d in diagnostics if not d.is_error)
    counts = (len(ruleset.sources), len(ruleset.rules), len(ruleset.tests), errors, warnings)
    if args.format == "json":
        doc = {
            "files": counts[0], "rules": counts[1], "tests": counts[2], "errors": errors, "warnings": warnings,
            "diagnostics": [d.to_json() for d in diagnostics],
        }
        if internal:
            doc["diagnostics"].append({"severity": "error", "path": None, "line": 0, "col": 0, "end_line": 0,
                                       "end_col": 0, "message": internal, "hint": None})
        sys.stdout.write(orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        for diag in diagnostics:
            print(render(diag, ruleset.sources.get(diag.path)))
        if internal:
            print(f"error: {internal}")
        print(summary_line(*counts))
    return 1 if errors else 0
