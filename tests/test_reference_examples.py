"""The reference interpreter reproduces all twenty worked examples of
/work/shared/examples: the oracle of the differential tests is itself
checked against the hand-worked timelines of examples/README.md."""

from __future__ import annotations

import csv
import tomllib
from datetime import datetime, timezone
from pathlib import Path

import orjson
import pytest
from reference import run_reference
from strategies import load_ruleset_files
from support import EXAMPLES, json_close as close

FOLDERS = sorted(p for p in EXAMPLES.iterdir() if p.is_dir())
_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}


def _duration_ms(text: str) -> int:
    import re

    parts = re.findall(r"([0-9]+)(ms|s|m|h|d)", text)
    assert parts, f"not a duration: {text!r}"
    return sum(int(n) * _UNIT_MS[u] for n, u in parts)


def _csv_events(path: Path, ruleset, stream: dict) -> list[dict]:
    """Example 19: rows to events the reference reads — the type from
    `type_field`, the time parsed with the strftime pattern as UTC, declared
    columns typed through the catalog, an empty cell a missing field."""
    type_field, time_field, fmt = stream["type_field"], stream["time_field"], stream["time_format"]
    casts = {"float": float, "int": int, "str": str}
    events = []
    with path.open(newline="") as fh:
        for row in csv.DictReader(fh):
            etype = row[type_field]
            decl = {f.name: f.type for f in ruleset.catalog[etype].fields} if etype in ruleset.catalog else {}
            when = datetime.strptime(row[time_field], fmt).replace(tzinfo=timezone.utc)
            event = {"type": etype, "ts": int(when.timestamp() * 1000)}
            for column, cell in row.items():
                if column in (type_field, time_field) or cell == "":
                    continue
                event[column] = casts[decl[column]](cell) if column in decl else cell
            events.append(event)
    return events


def _jsonl(path: Path) -> list[dict]:
    return [orjson.loads(line) for line in path.read_text().splitlines() if line.strip()]


def run_example(folder: Path):
    stream = {}
    if (folder / "cep.toml").exists():
        stream = tomllib.loads((folder / "cep.toml").read_text()).get("stream", {})
    ruleset = load_ruleset_files([folder / "rules.cep"], default_key=stream.get("default_key"))
    if (folder / "events.csv").exists():
        inputs = [_csv_events(folder / "events.csv", ruleset, stream)]
    elif (folder / "events").is_dir():
        inputs = [_jsonl(p) for p in sorted((folder / "events").glob("*.jsonl"))]
    else:
        inputs = [_jsonl(folder / "events.jsonl")]
    lateness = _duration_ms(stream["lateness"]) if "lateness" in stream else 0
    return run_reference(ruleset, inputs, lateness_ms=lateness)


def _without_id(match) -> dict:
    out = match.to_json()
    del out["match_id"]
    return out


def _order(m: dict) -> tuple:
    return (m["end_ts"], m["rule"], orjson.dumps(m["key"]), m["start_ts"])


@pytest.mark.parametrize("folder", FOLDERS, ids=[f.name for f in FOLDERS])
def test_reference_reproduces_worked_example(folder: Path) -> None:
    result = run_example(folder)
    expected = _jsonl(folder / "expected.jsonl")
    expected_dead = orjson.loads((folder / "expected_dead.json").read_bytes())["dead_letters"] \
        if (folder / "expected_dead.json").exists() else 0
    got = sorted((_without_id(m) for m in result.matches), key=_order)
    expected.sort(key=_order)
    assert (len(got) == len(expected) and all(close(g, e) for g, e in zip(got, expected))
            and len(result.dead_letters) == expected_dead), (got, expected, result.dead_letters)


def test_reference_stats_count_every_event_once() -> None:
    """docs/architecture.md: events == matched_against + irrelevant + dead letters,
    over every example."""
    for folder in FOLDERS:
        stats = run_example(folder).stats
        assert stats.events == stats.matched_against + stats.irrelevant + sum(stats.dead_letters.values()), folder
