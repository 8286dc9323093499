"""Engine regressions found by tests/test_differential.py: the watermark.

Each test holds the rule text and the events inline, and the expected result
worked out by hand from SPEC.md, with the timeline in a comment.
"""

from __future__ import annotations

import orjson

from cep.compile import compile_ruleset
from cep.engine import Engine, StreamSettings
from cep.lang import load_text

T = 1_800_000_000_000


def _replay(text: str, partitions: list[list[dict]], lateness_ms: int = 0):
    ruleset = load_text(text)
    assert not ruleset.has_errors, [d.message for d in ruleset.diagnostics]
    eng = Engine(compile_ruleset(ruleset), StreamSettings(lateness_ms=lateness_ms), partitions=len(partitions))
    for p, events in enumerate(partitions):
        for pos, event in enumerate(events, start=1):
            eng.feed(event, partition=p, source=f"p{p}", offset=pos, raw=orjson.dumps(event).decode())
    eng.finish()
    return eng.take_matches(), eng.take_dead_letters()


def test_an_event_without_a_type_still_moves_the_watermark() -> None:
    # SPEC §3.1 "The watermark spans keys and types: every event with a
    # readable time moves it" (and §3 rule 9: the watermark is the largest
    # event time seen in the input).  An event with no type is a dead letter,
    # but its time is readable:
    #   line 1  t=5s  (no type)  -> dead letter missing_type; watermark 5s
    #   line 2  t=0s  a, k=u1    -> 0 < 5s: late, a dead letter, not matched
    # So rule r0 never fires.
    matches, dead = _replay(
        "rule r0\n  key k\n  match a\n",
        [[{"ts": T + 5_000, "k": "u1"}, {"type": "a", "ts": T, "k": "u1"}]],
    )
    assert ([m.to_json() for m in matches], [(d.reason, d.source, d.offset) for d in dead]) == \
        ([], [("missing_type", "p0", 1), ("late", "p0", 2)])
