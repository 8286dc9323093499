"""Show the compiled NFA of one rule: its states, the transitions out of each
(take / proceed / ignore / kill) with their predicates, the timers of absence
steps, `within`, and what each capture holds.

Example: cep explain rules/ --rule pricing_hesitation --format dot | dot -Tsvg > rule.svg
"""

from __future__ import annotations

import argparse
import sys

HELP = "show the compiled NFA of a rule (text, dot or mermaid)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="*", default=["rules"], metavar="PATHS",
                        help="rule files or directories (default: rules/)")
    parser.add_argument("--rule", required=True, metavar="NAME", help="the rule to show")
    parser.add_argument("--format", choices=("text", "dot", "mermaid"), default="text",
                        help="text (default), Graphviz dot, or a Mermaid state diagram")
    parser.add_argument("--config", metavar="FILE", help="config file (default: ./cep.toml if present)")


def run(args: argparse.Namespace) -> int:
    from cep.compile import compile_ruleset
    from cep.compile.explain import explain
    from cep.config import ConfigError, load_config
    from cep.lang import load
    from cep.lang.diagnostics import did_you_mean, render

    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"cep explain: {exc}", file=sys.stderr)
        return 2
    ruleset = load(list(args.paths), default_key=config.stream.default_key)
    if ruleset.has_errors:
        for diag in ruleset.diagnostics:
            print(render(diag, ruleset.sources.get(diag.path)), file=sys.stderr)
        return 1
    program = compile_ruleset(ruleset)
    rule = program.rule(args.rule)
    if rule is None:
        names = [r.name for r in program.rules]
        hint = did_you_mean(args.rule, names)
        msg = f"cep explain: no rule named '{args.rule}'"
        msg += f"; {hint}" if hint else (f" (rules: {', '.join(names)})" if names else " (no rules found)")
        print(msg, file=sys.stderr)
        return 2
    sys.stdout.write(explain(rule, args.format))
    return 0
