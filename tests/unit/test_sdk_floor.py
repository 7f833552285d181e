# SPDX-License-Identifier: MIT OR Apache-2.0
"""The Anthropic SDK helper works on the oldest SDK its extra allows, as on the newest (.venv).

scripts/setup-host installs the oldest (the floor of ``anthropic>=`` in
pyproject.toml) in .venv/sdk-floor/anthropic-<floor>; this runs the helper's
tests again with it first on the path, so that an SDK change between the two
fails here rather than in a user's audit.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _floor() -> str:
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    match = re.fullmatch(r"anthropic>=([0-9.]+)", extras["anthropic"][0])
    assert match, extras["anthropic"]
    return match.group(1)


def _with_floor(*args: str) -> subprocess.CompletedProcess[str]:
    floor = Path(sys.prefix) / "sdk-floor" / f"anthropic-{_floor()}"
    assert (floor / ".installed").exists(), f"{floor} is missing: run scripts/setup-host"
    path = os.pathsep.join([str(floor), str(REPO / "src"), os.environ.get("PYTHONPATH", "")])
    return subprocess.run(
        [sys.executable, *args],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": path},
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )


def test_the_oldest_sdk_the_extra_allows_is_the_one_imported() -> None:
    result = _with_floor("-c", "import anthropic; print(anthropic.__version__)")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().startswith(_floor())
    newest = subprocess.run(
        [sys.executable, "-c", "import anthropic; print(anthropic.__version__)"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert newest.stdout.strip() != result.stdout.strip(), "both runs would test one version"


TESTS = "tests/unit/test_memlog_agents_anthropic.py"


def test_the_anthropic_helpers_tests_pass_on_the_oldest_sdk_the_extra_allows() -> None:
    collected = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--collect-only", TESTS],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    count = sum("::" in line for line in collected.stdout.splitlines())
    result = _with_floor("-m", "pytest", "-q", "-p", "no:cacheprovider", TESTS)
    assert result.returncode == 0, result.stdout[-3000:]
    assert re.search(rf"\b{count} passed in\b", result.stdout), result.stdout[-500:]
