"""The Matcher's attribute count stays below CPython 3.11's shared-key limit
(30 names): past it, every attribute load of the per-event path loses its
specialised fast form (measured: -6% on the P3 workload).  See
`Matcher.MAX_ATTRIBUTES`."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "compile"))
from rules_text import program  # noqa: E402

from cep.engine.matcher import Matcher  # noqa: E402

RULES = """
rule p match 2 A where page == "/a" then B within 5s
rule d match A next B within 5s
rule i match A then idle 3s cooldown 4s
"""


def test_matcher_attributes_stay_under_the_shared_key_limit():
    m = Matcher(program(RULES))
    for t, typ in enumerate("AABABBA"):
        m.on_event(t * 1000, {"type": typ, "page": "/a", "customer_id": f"c{t % 2}"})
        m.on_time(t * 1000)
    restored = Matcher.restore(m.program, m.snapshot())
    restored.on_event(9000, {"type": "A", "page": "/a", "customer_id": "c0"})
    # every attribute is made in __init__: none appears later
    assert len(vars(m)) == len(vars(Matcher(program(RULES)))) == len(vars(restored))
    assert len(vars(m)) <= Matcher.MAX_ATTRIBUTES < 30
