"""Helpers shared by the test modules: where ../shared is, and how two JSON
values are compared."""

from __future__ import annotations

import math
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# ../shared beside the checkout (SPEC, examples, benchmark workloads)
SHARED = REPO.parent / "shared"
EXAMPLES = SHARED / "examples"


def json_close(a, b) -> bool:
    """JSON equality with numbers within 1e-9 (an int and a float of the same
    value are close; a bool is only ever equal to the same bool)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(json_close(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(json_close(x, y) for x, y in zip(a, b))
    return a == b
