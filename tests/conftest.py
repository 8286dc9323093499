"""Hypothesis profiles for the property tests (tests/test_differential.py).

Select one with the environment variable HYPOTHESIS_PROFILE:
- "ci" (the default): enough examples that a CI run exercises thousands of
  rule/timeline pairs, yet tests/test_differential.py finishes in a few
  minutes on one core;
- "dev": a quick smoke run while developing;
- "heavy": a long hunt, run by hand (`HYPOTHESIS_PROFILE=heavy pytest tests/test_differential.py`).

This directory is on sys.path (pytest's rootdir conftest), so the test
modules, tests/regressions/ included, import `reference` and `strategies`
directly.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

_SLOW_OK = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much]

# Under CI (CI=true) the examples are derandomized: the same thousands every
# run, so a landing never hangs on a new random draw; developers' runs and the
# heavy profile keep exploring, and what they find is kept in tests/regressions/.
settings.register_profile("ci", max_examples=1000, deadline=None, suppress_health_check=_SLOW_OK,
                          print_blob=True, derandomize=os.environ.get("CI") == "true")
settings.register_profile("dev", max_examples=60, deadline=None, suppress_health_check=_SLOW_OK)
settings.register_profile("heavy", max_examples=20_000, deadline=None, suppress_health_check=_SLOW_OK,
                          print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
