"""The code stays clean: `ruff check` and `mypy --strict` over bot/, jobs/ and tests/.

Both run as part of the test command (so CI keeps them clean), configured in pyproject.toml.
`tests/conftest.py` schedules these first: mypy on a fresh clone takes ~20 s of CPU, which
xdist then overlaps with the other tests.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

CHECKS = {
    "ruff": [sys.executable, "-m", "ruff", "check", "--quiet", "bot", "jobs", "tests"],
    "mypy": [sys.executable, "-m", "mypy"],  # packages and strictness from [tool.mypy]
}


@pytest.mark.timeout(600)  # a cold mypy on a busy machine
@pytest.mark.parametrize("tool", sorted(CHECKS))
def test_ruff_and_mypy_strict_report_nothing(tool: str) -> None:
    """`ruff check` and `mypy --strict` pass; a failure shows their own output."""
    out = subprocess.run(CHECKS[tool], cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
    assert out.returncode == 0, f"{tool} found problems (exit {out.returncode}):\n{out.stdout}{out.stderr}"
