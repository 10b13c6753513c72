"""Hypothesis profiles for the parser fuzz tests: ``ci`` (default: a bounded number of examples per parser, the
whole fuzz suite well under a minute on 2 cores; derandomized, so every CI run draws the same examples) and
``fuzz`` (``make fuzz``: many more, at random). Select one with ``HYPOTHESIS_PROFILE``. No example database is
written into the checkout."""

from __future__ import annotations

import os
from datetime import timedelta

from hypothesis import HealthCheck, settings

COMMON = {
    "deadline": timedelta(seconds=10),  # one example (write files + parse) on a loaded 2-core machine
    "database": None,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
    "print_blob": True,
}
# ci is derandomized: the same examples every run, so a green CI stays green; `make fuzz` explores at random
settings.register_profile(
    "ci", max_examples=int(os.environ.get("HYPOTHESIS_CI_EXAMPLES", "25")), derandomize=True, **COMMON
)
settings.register_profile("fuzz", max_examples=int(os.environ.get("HYPOTHESIS_FUZZ_EXAMPLES", "1000")), **COMMON)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
