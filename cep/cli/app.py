"""The `cep` command: argument parsing shared by every subcommand.

Each subcommand lives in its own module `cep/cli/<name>.py`, which defines

    HELP = "one line for `cep --help`"
    def add_arguments(parser: argparse.ArgumentParser) -> None
    def run(args: argparse.Namespace) -> int     # exit code: 0 ok, 1 rule/test errors, 2 usage/input

No logic lives here: the modules call the layers and map errors to exit codes.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys

# The order of `cep --help`.
COMMANDS = ("check", "fmt", "explain", "test", "replay", "run")


def positive_int(text: str) -> int:
    """argparse type of --workers, --processes and the like: a whole number >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


class UsageError(Exception):
    """A bad command line: printed as one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse's default prints the whole usage block
        raise UsageError(f"{self.prog}: {message} (see `{self.prog} --help`)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="cep",
        description="cep: complex-event-processing rules for customer journeys.",
        epilog="Example: cep check rules/ && cep replay events.jsonl --rules rules/",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in COMMANDS:
        if importlib.util.find_spec(f"cep.cli.{name}") is None:
            continue  # not built yet
        module = importlib.import_module(f"cep.cli.{name}")
        cmd = sub.add_parser(
            name,
            help=module.HELP,
            description=module.__doc__,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        module.add_arguments(cmd)
        cmd.set_defaults(_module=module)
    return parser


def run(argv: list[str]) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if not getattr(args, "command", None):
            parser.print_help()
            return 2
        return args._module.run(args)
    except UsageError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("cep: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # `cep replay ... | head`: the reader went away; not an error of ours
        return 0
