"""Static checks: ruff-clean Python, imports one way, every shell script shellcheck-clean."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from wintermute import kernel_trees, lint
from wintermute.paths import REPO


def _check(cmd: list[str]) -> None:
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, f"$ {' '.join(cmd)}\n{proc.stdout}{proc.stderr}"


def test_python_code_is_ruff_clean() -> None:
    """ruff finds nothing in the Python code."""
    _check([sys.executable, "-m", "ruff", "check", *lint.PYTHON_PATHS])


def test_toolkit_modules_import_one_way() -> None:
    """import-linter: pipelines above formats above kernel steps above shared helpers."""
    _check(lint.lint_imports_command())


def test_shell_scripts_pass_shellcheck() -> None:
    """shellcheck finds nothing in scripts/ and .ci/run."""
    _check(["shellcheck", *map(str, lint.shell_scripts())])


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


def test_lint_without_cached_trees_skips_checkpatch_and_downloads_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With an empty cache, lint finds no checkpatch.pl and never fetches a tree."""
    monkeypatch.setenv("WINTERMUTE_CACHE", str(tmp_path))

    def no_download(*args: object, **kwargs: object) -> None:
        raise AssertionError("lint tried to fetch a kernel tree")

    for name in ("prepared_tree", "refresh_index", "_fetch_source", "_ensure_entry"):
        monkeypatch.setattr(kernel_trees, name, no_download)
    assert lint.checkpatch_script() is None
    assert not [p for p in tmp_path.rglob("*") if p.is_file()]


def test_lint_uses_the_newest_cached_tree_for_checkpatch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """checkpatch.pl comes from the newest series whose prepared tree is cached."""
    trees = {"6.12": tmp_path / "linux-6.12"}
    monkeypatch.setattr(kernel_trees, "cached_tree", lambda series, recipe: trees.get(series))
    assert lint.checkpatch_script() == tmp_path / "linux-6.12" / "scripts" / "checkpatch.pl"


@pytest.mark.parametrize(
    ("report", "has_errors"),
    [
        ("a.c:1: WARNING: x\ntotal: 0 errors, 1 warnings, 0 checks, 10 lines checked\n", False),
        ("a.c:1: ERROR: x\ntotal: 1 errors, 0 warnings, 0 checks, 10 lines checked\n", True),
        ("total: 0 errors, 0 warnings\ntotal: 2 errors, 0 warnings\n", True),
    ],
)
def test_checkpatch_report_fails_lint_only_on_errors(report: str, has_errors: bool) -> None:
    """Warnings and checks are shown; an ERROR line or a non-zero error total fails."""
    assert lint.checkpatch_errors(report) is has_errors
