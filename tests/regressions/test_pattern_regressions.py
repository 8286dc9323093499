"""Engine regressions found by tests/test_differential.py: pattern shapes.

Each test holds the rule text and the events inline, and the expected result
worked out by hand from SPEC.md, with the timeline in a comment.
"""

from __future__ import annotations

import orjson

from cep.compile import compile_ruleset
from cep.engine import Engine, StreamSettings
from cep.lang import load_text

T = 1_800_000_000_000


def _replay(text: str, events: list[dict]) -> list[dict]:
    ruleset = load_text(text)
    assert not ruleset.has_errors, [d.message for d in ruleset.diagnostics]
    eng = Engine(compile_ruleset(ruleset), StreamSettings())
    for pos, event in enumerate(events, start=1):
        eng.feed(event, partition=0, source="p0", offset=pos, raw=orjson.dumps(event).decode())
    eng.finish()
    return [{k: v for k, v in m.to_json().items() if k != "match_id"} for m in eng.take_matches()]


def test_not_between_two_trailing_absence_steps_guards_the_last_window() -> None:
    # The pattern ends with an absence step, not with `not` (SPEC §2 allows it);
    # the `not` right after the first absence step applies while the run waits
    # for the next event step, through the following absence window (§3.1,
    # docs/architecture.md).
    #   u1: a@0  -> idle window [0, 5s), then `no c` window [5s, 10s) with `not b`
    #              nothing else from u1: completes at the deadline 10s: 0 -> 10s
    #   u2: a@0, b@7s -> b arrives in the `no c` window while the `not b` applies:
    #              the run dies; b is not c, so only the `not` can kill it
    #   u3: z@20s -> moves the watermark to 20s, so both deadlines resolve
    got = _replay(
        "rule r0\n  key k\n  match a\n    then idle 5s\n    then not b\n    then no c for 5s\n",
        [{"type": "a", "ts": T, "k": "u1"}, {"type": "a", "ts": T, "k": "u2"},
         {"type": "b", "ts": T + 7_000, "k": "u2"}, {"type": "z", "ts": T + 20_000, "k": "u3"}],
    )
    assert got == [{"rule": "r0", "output": "r0", "key": "u1", "start_ts": T, "end_ts": T + 10_000,
                    "payload": {}}]
