"""Replay historical events through the rules and write every match.

Inputs are JSON-lines files (.jsonl, .jsonl.gz), CSV files with a header row
(.csv, .csv.gz), directories of those (each file is a partition, in sorted
name order) and - for stdin (JSON lines). Blank lines are not events.

Matches are written as JSON lines to --out (default: stdout), sorted by end
time, rule, key and start time, so any number of workers writes the same
bytes. Events that cannot be used (bad JSON, no type, unreadable time, not
fitting the catalog, late, a CSV row of the wrong width) go to --dead-letter;
without that option they go to dead-letters.jsonl beside --out (or in the
working directory when the matches go to stdout), created only when there
are some. A summary goes to stderr at the end (--quiet turns it off).

Exit codes: 0 success (dead letters included), 1 rule errors, 2 usage
errors or an input that cannot be opened.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time

import orjson

from cep.cli.app import positive_int

HELP = "replay historical files through the rules (the Bytewax dataflow)"
DEFAULT_DEAD = "dead-letters.jsonl"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inputs", nargs="+", metavar="INPUT",
                        help="event files (.jsonl .jsonl.gz .csv .csv.gz), directories of them, or - for stdin")
    parser.add_argument("--rules", nargs="+", action="extend", required=True, metavar="PATH",
                        help="rule files or directories (*.cep)")
    parser.add_argument("--out", metavar="FILE", help="write matches here (default: stdout)")
    parser.add_argument("--dead-letter", metavar="FILE",
                        help=f"write dead letters here (default: {DEFAULT_DEAD} beside --out, only if any)")
    parser.add_argument("--workers", type=positive_int, default=1, metavar="N",
                        help="Bytewax workers per process (default 1)")
    parser.add_argument("--processes", type=positive_int, default=1, metavar="N",
                        help="Bytewax processes on this machine, talking over localhost (default 1)")
    parser.add_argument("--lateness", metavar="D", help="allowed lateness, e.g. 30s (overrides cep.toml)")
    parser.add_argument("--config", metavar="FILE", help="config file (default: ./cep.toml if present)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar and no summary")
    parser.add_argument("--summary-json", metavar="FILE", help="also write the summary as JSON to FILE")
    parser.add_argument("--matcher", choices=("nfa", "noop"), default="nfa", help=argparse.SUPPRESS)


def _print_diagnostics(ruleset) -> None:
    from cep.lang.diagnostics import render, sort_key

    for diag in sorted(ruleset.diagnostics, key=sort_key):
        print(render(diag, ruleset.sources.get(diag.path)), file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    from cep.config import ConfigError, load_config
    from cep.engine.model import StreamSettings
    from cep.lang.load import LoadError
    from cep.runtime import replay as rp
    from cep.runtime.glue import Env, EnvSpec, RuleErrors, load_program
    from cep.runtime.inputs import InputError, discover

    try:
        config = load_config(args.config, {"stream.lateness": args.lateness})
    except ConfigError as exc:
        print(f"cep replay: {exc}", file=sys.stderr)
        return 2
    stream = config.stream
    settings = StreamSettings(stream.type_field, stream.time_field, stream.time_format, stream.lateness_ms)
    try:
        partitions = discover(args.inputs)
    except InputError as exc:
        print(f"cep replay: {exc}", file=sys.stderr)
        return 2
    try:
        ruleset, program = load_program(args.rules, stream.default_key)
    except LoadError as exc:
        print(f"cep replay: {exc}", file=sys.stderr)
        return 2
    except RuleErrors as exc:
        _print_diagnostics(exc.ruleset)
        return 1
    env_spec = EnvSpec(tuple(args.rules), stream.default_key, settings)
    env = Env(env_spec, ruleset, program)

    try:
        out = open(args.out, "wb") if args.out else None  # noqa: SIM115 - closed below
    except OSError as exc:
        print(f"cep replay: {args.out}: {exc.strerror}", file=sys.stderr)
        return 2
    dead_path = args.dead_letter
    if dead_path is None:
        dead_path = os.path.join(os.path.dirname(os.path.abspath(args.out)) if args.out else os.getcwd(),
                                 DEFAULT_DEAD)
        explicit_dead = False
    else:
        explicit_dead = True

    started = time.monotonic()
    with rp.work_dir() as work:
        job = rp.make_job(env_spec, partitions, work, workers=args.workers, processes=args.processes,
                          matcher=args.matcher)
        show = not args.quiet and sys.stderr.isatty()
        progress = _ProgressBar(partitions, work, args.processes > 1) if show else None
        try:
            if progress:
                progress.start()
            rp.run_job(job, env)
        except rp.ReplayFailed as exc:
            print(f"cep replay: {exc}", file=sys.stderr)
            return 2
        finally:
            if progress:
                progress.stop()
        stats = rp.read_stats(work)
        n_matches = _write_lines(rp.match_lines(work), out or sys.stdout.buffer)
        if out:
            out.close()
        n_dead = sum(stats.dead_letters.values())
        if explicit_dead or n_dead:
            try:
                with open(dead_path, "wb") as fh:
                    _write_lines(rp.dead_letter_lines(work), fh)
            except OSError as exc:
                print(f"cep replay: {dead_path}: {exc.strerror}", file=sys.stderr)
                return 2
    wall = time.monotonic() - started
    summary = _summary(stats, n_matches, wall, args.out, dead_path if (explicit_dead or n_dead) else None)
    if args.summary_json:
        try:
            with open(args.summary_json, "wb") as fh:
                fh.write(orjson.dumps(summary, option=orjson.OPT_INDENT_2) + b"\n")
        except OSError as exc:
            print(f"cep replay: {args.summary_json}: {exc.strerror}", file=sys.stderr)
            return 2
    if not args.quiet:
        _print_summary(summary)
    return 0


def _write_lines(lines, fh) -> int:
    n = 0
    for line in lines:
        fh.write(line)
        fh.write(b"\n")
        n += 1
    fh.flush()
    return n


def _summary(stats, n_matches: int, wall: float, out: str | None, dead: str | None) -> dict:
    data = stats.to_json()
    return {
        "events_read": stats.events,
        "matched_against": stats.matched_against,
        "irrelevant": stats.irrelevant,
        "dead_letters": sum(stats.dead_letters.values()),
        "dead_letters_by_reason": data["dead_letters"],
        "matches": n_matches,
        "rules": data["rules"],
        "wall_seconds": round(wall, 3),
        "events_per_second": round(stats.events / wall, 1) if wall > 0 else None,
        "out": out or "-",
        "dead_letter_file": dead,
    }


def _table(rows: list[tuple[str, ...]], align: str) -> list[str]:
    """Rows as aligned columns (`align`: one `<` or `>` per column)."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(align))]
    return ["  ".join(f"{cell:{a}{w}}" for cell, a, w in zip(row, align, widths)).rstrip() for row in rows]


def _print_summary(summary: dict) -> None:
    # plain text, not rich: importing rich costs a tenth of a second of the start-up
    totals = [("events read", f"{summary['events_read']:,}"),
              ("  matched against", f"{summary['matched_against']:,}"),
              ("  irrelevant", f"{summary['irrelevant']:,}"),
              ("  dead letters", f"{summary['dead_letters']:,}")]
    totals += [(f"    {reason}", f"{n:,}") for reason, n in summary["dead_letters_by_reason"].items()]
    rate = summary["events_per_second"]
    totals += [("matches written", f"{summary['matches']:,}"),
               ("wall time", f"{summary['wall_seconds']:.2f} s"),
               ("throughput", f"{rate:,.0f} events/s" if rate is not None else "-")]
    lines = ["cep replay", *_table(totals, "<>")]
    if summary["rules"]:
        rules = [("rule", "matches", "suppressed", "runs started")]
        rules += [(name, f"{r['matches']:,}", f"{r['suppressed']:,}", f"{r['runs_started']:,}")
                  for name, r in summary["rules"].items()]
        lines += ["", "per rule", *_table(rules, "<>>>")]
    print("\n".join(lines), file=sys.stderr)
    if summary["dead_letters"]:
        # a plain line, never wrapped: the path is what the reader needs
        print(f"cep replay: {summary['dead_letters']:,} dead letters written to {summary['dead_letter_file']}",
              file=sys.stderr)


class _ProgressBar:
    """A rich progress bar on stderr: bytes read of the total, events/s and
    matches so far. Only shown when stderr is a terminal."""

    def __init__(self, partitions, work: str, other_processes: bool):
        sizes = [p.size for p in partitions]
        self._total = None if any(s is None for s in sizes) else sum(sizes)
        self._work = work
        self._files = other_processes
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _counts(self) -> tuple[int, int, int]:
        if not self._files:
            from cep.runtime.dataflow import PROGRESS

            with PROGRESS.lock:
                return sum(PROGRESS.bytes_read.values()), PROGRESS.lines, PROGRESS.matches
        from cep.runtime.worker import read_progress

        return read_progress(self._work)

    def _loop(self) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeElapsedColumn

        started = time.monotonic()
        columns = [TextColumn("replay"), BarColumn(), DownloadColumn(),
                   TextColumn("{task.fields[rate]} events/s"), TextColumn("{task.fields[matches]} matches"),
                   TimeElapsedColumn()]
        with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
            task = bar.add_task("replay", total=self._total, rate="0", matches="0")
            while not self._stop.wait(0.25):
                done, lines, matches = self._counts()
                elapsed = max(time.monotonic() - started, 1e-6)
                bar.update(task, completed=done, rate=f"{lines / elapsed:,.0f}", matches=f"{matches:,}")
