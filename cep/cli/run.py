"""Run the rules on a live stream until stopped (SPEC §5): the long-running deployment.

Sources: kafka://HOST:PORT/TOPIC (every partition of the topic), redis://HOST:PORT/STREAM
(Redis Streams), file:PATH (read to its end, then the run ends) and - (stdin).
Sinks: kafka://..., redis://..., http(s)://... (a webhook: one POST per match,
retried), file:PATH (JSON lines) and - (stdout). Dead letters go to --dead-letter
(default file:dead-letters.jsonl), and so do matches a webhook finally refused.

Matches are written as soon as the watermark passes them. Without --idle-advance
they are exactly those `cep replay` finds on the same events; with --idle-advance D
the watermark moves on with the wall clock after D without events, so absence
steps (`idle`, `no X for`) fire during silence.

SIGTERM or SIGINT stops gracefully: flush, snapshot, exit 0. With --recovery-dir a
restart resumes from the last snapshot (every --snapshot-interval): Kafka offsets,
Redis stream ids and the matchers' state; a file sink holds no duplicates, other
sinks may repeat the matches since the last snapshot (drop them by match_id).

Every option can also be set in cep.toml under [run] (underscores for dashes);
the command line wins. Exit codes: 0 stopped or the source ended, 1 rule errors
or a failed process, 2 usage errors or a source that cannot be opened.
"""

from __future__ import annotations

import argparse
import sys

from cep.cli.app import positive_int

HELP = "run the rules on a live stream (Kafka, Redis Streams, webhook, files) until stopped"
DEFAULT_DEAD = "file:dead-letters.jsonl"

# [run] keys of cep.toml -> how to read them (the same names as the options)
_RUN_KEYS = {
    "source": str, "sink": str, "dead_letter": str, "workers": int, "processes": int, "recovery_dir": str,
    "idle_advance": str, "snapshot_interval": str, "backup_interval": str, "metrics_port": int,
    "metrics_host": str, "webhook_timeout": str, "webhook_retries": int, "webhook_in_flight": int,
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rules", nargs="+", action="extend", required=True, metavar="PATH",
                        help="rule files or directories (*.cep)")
    parser.add_argument("--source", metavar="URI", help="kafka://HOST:PORT/TOPIC, redis://HOST:PORT/STREAM, "
                        "file:PATH or - (stdin)")
    parser.add_argument("--sink", metavar="URI", help="kafka://..., redis://..., http(s)://... (webhook), "
                        "file:PATH or - (stdout)")
    parser.add_argument("--dead-letter", metavar="URI", help=f"where dead letters go (default {DEFAULT_DEAD})")
    parser.add_argument("--workers", type=positive_int, metavar="N", help="Bytewax workers per process (default 1)")
    parser.add_argument("--processes", type=positive_int, metavar="N",
                        help="Bytewax processes on this machine, talking over localhost (default 1)")
    parser.add_argument("--recovery-dir", metavar="DIR",
                        help="Bytewax recovery database (created on first use); restarts resume from it")
    parser.add_argument("--snapshot-interval", metavar="D", help="how often to snapshot for recovery (default 10s)")
    parser.add_argument("--backup-interval", metavar="D",
                        help="keep superseded snapshots this long, for off-machine backups (default 0s)")
    parser.add_argument("--idle-advance", metavar="D",
                        help="after D without events, move the watermark on with the wall clock")
    parser.add_argument("--lateness", metavar="D", help="allowed lateness, e.g. 30s (overrides cep.toml)")
    parser.add_argument("--metrics-port", type=int, metavar="P",
                        help="serve Prometheus metrics on port P (process i of --processes on P+i)")
    parser.add_argument("--metrics-host", metavar="HOST", help="address the metrics listen on (default 127.0.0.1)")
    parser.add_argument("--webhook-timeout", metavar="D", help="timeout of one webhook POST (default 5s)")
    parser.add_argument("--webhook-retries", type=int, metavar="N",
                        help="retries of a failed webhook POST, with exponential backoff (default 5)")
    parser.add_argument("--webhook-in-flight", type=positive_int, metavar="N",
                        help="matches queued for the webhook at most; then the run waits (default 100)")
    parser.add_argument("--config", metavar="FILE", help="config file (default: ./cep.toml if present)")


def _print_diagnostics(ruleset) -> None:
    from cep.lang.diagnostics import render, sort_key

    for diag in sorted(ruleset.diagnostics, key=sort_key):
        print(render(diag, ruleset.sources.get(diag.path)), file=sys.stderr)


def _options(args: argparse.Namespace, run_table: dict) -> dict:
    """Command line over [run] of cep.toml; raises ValueError naming a bad key."""
    for key, value in run_table.items():
        kind = _RUN_KEYS.get(key)
        if kind is None:
            raise ValueError(f"[run]: unknown key {key!r}")
        if not isinstance(value, kind) or isinstance(value, bool):
            raise ValueError(f"[run]: {key} must be a {'whole number' if kind is int else 'string'}")
    merged = dict(run_table)
    for key in _RUN_KEYS:
        value = getattr(args, key, None)
        if value is not None:
            merged[key] = value
    return merged


def _seconds(text: str | None, default: float, what: str) -> float:
    from cep.config import parse_duration

    if text is None:
        return default
    try:
        return parse_duration(text) / 1000
    except ValueError as exc:
        raise ValueError(f"{what}: {exc}") from None


def run(args: argparse.Namespace) -> int:
    from cep.config import ConfigError, load_config, parse_duration
    from cep.engine.model import StreamSettings
    from cep.runtime import live
    from cep.runtime.connectors.uri import UriError, parse
    from cep.runtime.glue import EnvSpec, RuleErrors, load_program
    from cep.runtime.inputs import InputError

    # a stop while the rules load still ends the run gracefully (exit 0)
    live.install_stop_handlers()
    try:
        config = load_config(args.config, {"stream.lateness": args.lateness})
        opts = _options(args, config.run)
        if "source" not in opts or "sink" not in opts:
            raise ValueError("--source and --sink are required (or source/sink under [run] in cep.toml)")
        source, sink = opts["source"], opts["sink"]
        dead = opts.get("dead_letter", DEFAULT_DEAD)
        parse(source, "source")
        parse(sink, "sink")
        parse(dead, "dead-letter")
        idle = opts.get("idle_advance")
        idle_ms = parse_duration(idle) if idle is not None else None
        if idle_ms is not None and idle_ms <= 0:
            raise ValueError("--idle-advance must be longer than 0s")
        snapshot = _seconds(opts.get("snapshot_interval"), 10.0, "--snapshot-interval")
        if snapshot <= 0:
            raise ValueError("--snapshot-interval must be longer than 0s")
        webhook = {"timeout": _seconds(opts.get("webhook_timeout"), 5.0, "--webhook-timeout")}
        if "webhook_retries" in opts:
            if opts["webhook_retries"] < 0:
                raise ValueError("--webhook-retries must be 0 or more")
            webhook["retries"] = opts["webhook_retries"]
        if "webhook_in_flight" in opts:
            webhook["in_flight"] = opts["webhook_in_flight"]
    except (ConfigError, UriError, ValueError) as exc:
        print(f"cep run: {exc}", file=sys.stderr)
        return 2
    stream = config.stream
    settings = StreamSettings(stream.type_field, stream.time_field, stream.time_format, stream.lateness_ms)
    try:
        load_program(args.rules, stream.default_key)
    except RuleErrors as exc:
        _print_diagnostics(exc.ruleset)
        return 1
    spec = live.LiveSpec(
        env=EnvSpec(tuple(args.rules), stream.default_key, settings),
        source=source, sink=sink, dead_letter=dead,
        workers=opts.get("workers", 1), processes=opts.get("processes", 1),
        recovery_dir=opts.get("recovery_dir"), snapshot_interval_s=snapshot,
        backup_interval_s=_seconds(opts.get("backup_interval"), 0.0, "--backup-interval"),
        idle_advance_ms=idle_ms, metrics_port=opts.get("metrics_port"),
        metrics_host=opts.get("metrics_host", "127.0.0.1"),
        webhook=webhook if parse(sink, "sink").kind == "http" else {},
    )
    import tempfile

    try:
        with tempfile.TemporaryDirectory(prefix="cep-run-") as work:
            return live.run(spec, work)
    except (InputError, OSError) as exc:
        print(f"cep run: {exc}", file=sys.stderr)
        return 2
    except RuntimeError as exc:
        # Bytewax reports a source that cannot be listed (e.g. a missing Kafka topic) this way
        print(f"cep run: {exc}", file=sys.stderr)
        return 2
