"""Shared test settings.

Hypothesis runs under the "ci" profile unless HYPOTHESIS_PROFILE names another: no per-example
deadline, because numba compiles a function on its first call and that call can take seconds.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci", deadline=None, suppress_health_check=[HealthCheck.too_slow], print_blob=True
)
settings.register_profile("dev", deadline=None, max_examples=10)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: takes seconds (extreme Sudoku generation)")
