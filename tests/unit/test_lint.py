"""Static checks: the Python code is ruff-clean and every shell script passes shellcheck."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SHELL_SCRIPTS = sorted([*REPO.joinpath("scripts").iterdir(), REPO / ".ci" / "run"])


def _check(cmd: list[str]) -> None:
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, f"$ {' '.join(cmd)}\n{proc.stdout}{proc.stderr}"


def test_python_code_is_ruff_clean() -> None:
    """ruff finds nothing in the Python code."""
    _check([sys.executable, "-m", "ruff", "check", "src", "ci", "tests", "tasks.py"])


def test_shell_scripts_pass_shellcheck() -> None:
    """shellcheck finds nothing in scripts/ and .ci/run."""
    _check(["shellcheck", *map(str, SHELL_SCRIPTS)])


def test_every_test_directory_is_collected() -> None:
    """pytest collects tests from each tier under tests/ (none is silently skipped)."""
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "tests"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    lines = proc.stdout.splitlines()
    collected = {line.split("/")[1] for line in lines if line.startswith("tests/")}
    tiers = {p.name for p in (REPO / "tests").iterdir() if p.is_dir() and p.name != "__pycache__"}
    assert tiers <= collected, proc.stdout[-2000:]
