"""The worked examples of /work/shared/examples (01-18, not 15: lateness is the
intake's) through the Matcher alone: events sorted by time (stable), then
on_time(max ts) at the end, as the Engine does for a finite input."""

from __future__ import annotations

import sys
from pathlib import Path

import orjson
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "compile"))
from rules_text import program  # noqa: E402

from support import EXAMPLES, json_close as _close
from cep.engine.matcher import Matcher  # noqa: E402
from cep.engine.model import Match  # noqa: E402

CASES = [f"{n:02d}" for n in range(1, 19) if n != 15]


def _example(prefix: str) -> Path:
    return next(p for p in EXAMPLES.iterdir() if p.name.startswith(prefix + "-"))


def run_example(folder: Path) -> list[dict]:
    prog = program((folder / "rules.cep").read_text())
    events = [orjson.loads(line) for line in (folder / "events.jsonl").read_text().splitlines() if line.strip()]
    events.sort(key=lambda e: e["ts"])  # stable: ties keep input order
    m = Matcher(prog)
    out: list[Match] = []
    for ev in events:
        out += m.on_event(ev["ts"], ev)
    out += m.on_time(max(e["ts"] for e in events))
    out.sort(key=Match.sort_key)
    got = []
    for match in out:
        d = match.to_json()
        del d["match_id"]
        got.append(d)
    return got


@pytest.mark.parametrize("prefix", CASES)
def test_example_matches_expected(prefix):
    folder = _example(prefix)
    expected = [orjson.loads(line) for line in (folder / "expected.jsonl").read_text().splitlines() if line.strip()]
    got = run_example(folder)
    assert _close(sorted(got, key=orjson.dumps), sorted(expected, key=orjson.dumps)), (got, expected)
