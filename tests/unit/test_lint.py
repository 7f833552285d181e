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
