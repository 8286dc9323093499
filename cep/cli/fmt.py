"""Rewrite rule files in the one canonical layout (the SPEC §2 example's).

Two-space clause indent, continuation steps under the first step, payloads
on one line, comments kept; formatting twice changes nothing.  A file with
syntax errors is left alone and its errors are printed.  With --check
nothing is written: a unified diff is printed for every file that would
change.

Example:
  cep fmt rules/
  cep fmt --check rules/    # in CI: exit 1 if a file is not formatted

Exit codes: 0 all files formatted (or, with --check, already formatted),
1 a file would change (--check) or has syntax errors, 2 usage errors or a
path that cannot be read.
"""

from __future__ import annotations

import argparse
import difflib
import sys

HELP = "rewrite rule files in canonical layout (--check only reports)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="*", metavar="PATH",
                        help="rule files or directories, searched recursively for *.cep (default: rules/)")
    parser.add_argument("--check", action="store_true",
                        help="write nothing; print a diff and exit 1 when a file would change")


def run(args: argparse.Namespace) -> int:
    from cep.lang import LoadError, rule_files  # noqa: PLC0415
    from cep.lang.diagnostics import render  # noqa: PLC0415
    from cep.lang.fmt import format_text  # noqa: PLC0415
    from cep.lang.load import read_source  # noqa: PLC0415

    try:
        files = rule_files(args.paths or ["rules"])
        sources = {f: read_source(f) for f in files}
    except LoadError as exc:
        print(f"cep fmt: {exc}", file=sys.stderr)
        return 2
    changed, broken = [], []
    for path, text in sources.items():
        new, diags = format_text(text, path)
        if new is None:
            broken.append(path)
            for d in diags:
                print(render(d, text), file=sys.stderr)
            continue
        if new == text:
            continue
        changed.append(path)
        if args.check:
            sys.stdout.writelines(difflib.unified_diff(text.splitlines(True), new.splitlines(True),
                                                       fromfile=path, tofile=f"{path} (formatted)"))
        else:
            try:
                with open(path, "w", encoding="utf-8") as fh:
                    fh.write(new)
            except OSError as exc:
                print(f"cep fmt: {path}: {exc.strerror or exc}", file=sys.stderr)
                return 2
            print(f"reformatted {path}")
    verb = "would be reformatted" if args.check else "reformatted"
    parts = [f"{len(changed)} {'file' if len(changed) == 1 else 'files'} {verb}",
             f"{len(sources) - len(changed) - len(broken)} unchanged"]
    if broken:
        parts.append(f"{len(broken)} with syntax errors")
    print(", ".join(parts), file=sys.stderr)
    if broken or (args.check and changed):
        return 1
    return 0
