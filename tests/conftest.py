"""Shared test settings.

Hypothesis runs under the "ci" profile unless HYPOTHESIS_PROFILE names another: no per-example
deadline, because numba compiles a function on its first call and that call can take seconds.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

from hrm.cli import main

settings.register_profile(
    "ci", deadline=None, suppress_health_check=[HealthCheck.too_slow], print_blob=True
)
settings.register_profile("dev", deadline=None, max_examples=10)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: takes seconds (extreme Sudoku generation)")


@pytest.fixture
def hrm_cli(capsys):
    """``hrm ARGS`` through ``main``, where errors become exit codes: (code, stdout, stderr)."""
    def run(*args) -> tuple[int, str, str]:
        try:
            main(list(map(str, args)))
            code = 0
        except SystemExit as done:
            code = done.code
        captured = capsys.readouterr()
        return code, captured.out, captured.err
    return run
