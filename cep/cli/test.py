"""Run the rule tests written next to the rules (SPEC §7) and report PASS or
FAIL per test. A failing test shows why, what fired instead, and the step
each live run of the tested rule reached after the last event.

Test times are offsets from 2027-01-01T00:00:00Z; each `given` line becomes
an event with `type` and `ts` filled in. After the last event the clock
moves on until no deadline is pending, or to `until OFFSET`.

Exit code: 0 every test passed, 1 a test failed or the rules have errors,
2 a path or the config cannot be read.

Example: cep test rules/
"""

from __future__ import annotations

import argparse
import sys

HELP = "run the rule tests (given/expect) in the rule files"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="*", default=["rules"], metavar="PATHS",
                        help="rule files or directories (default: rules/)")
    parser.add_argument("-k", "--name", metavar="TEXT",
                        help="run only the tests whose name contains TEXT")
    parser.add_argument("--config", metavar="FILE", help="config file (default: ./cep.toml if present)")


def _report(result) -> list[str]:
    """The lines under a failing test's FAIL line."""
    from cep.engine.ruletest import fmt_match, fmt_run

    lines = [f"    {problem}" for problem in result.problems]
    if result.fired:
        lines.append("    fired:")
        lines += [f"      {fmt_match(m)}" for m in result.fired]
    else:
        lines.append("    fired: nothing")
    if result.runs:
        lines.append("    live runs after the last event:")
        lines += [f"      {fmt_run(r)}" for r in result.runs]
    else:
        lines.append("    live runs after the last event: none")
    return lines


def run(args: argparse.Namespace) -> int:
    from cep.config import ConfigError, load_config
    from cep.engine.ruletest import run_test
    from cep.lang import LoadError, load
    from cep.lang.diagnostics import render, sort_key

    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"cep test: {exc}", file=sys.stderr)
        return 2
    try:
        ruleset = load(list(args.paths), default_key=config.stream.default_key)
    except LoadError as exc:
        print(f"cep test: {exc}", file=sys.stderr)
        return 2
    if ruleset.has_errors:
        for diag in sorted(ruleset.diagnostics, key=sort_key):
            print(render(diag, ruleset.sources.get(diag.path)), file=sys.stderr)
        return 1
    tests = [(path, test) for path, test in ruleset.tests if not args.name or args.name in test.name]
    passed = failed = 0
    for path, test in tests:
        result = run_test(ruleset, path, test)
        where = f"{path}:{test.span.line}"
        if result.passed:
            passed += 1
            print(f"PASS {where} {test.name}")
        else:
            failed += 1
            print(f"FAIL {where} {test.name}")
            print("\n".join(_report(result)))
    if not tests:
        what = f"no test name contains '{args.name}'" if args.name else "no tests found"
        print(f"cep test: {what} in {', '.join(args.paths)}", file=sys.stderr)
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0
