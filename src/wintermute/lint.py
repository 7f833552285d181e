"""Static checks, offline: ruff, import-linter, shellcheck, and checkpatch.pl --strict.

import-linter's ``lint-imports`` holds the toolkit's modules to the layers
``pyproject.toml`` lists (pipelines, formats, kernel steps, shared helpers):
nothing imports upwards, so there is no import cycle.

checkpatch.pl comes from a kernel tree already in the cache (the newest
series first); ``invoke lint`` never downloads one.  Without a cached tree it
says so and skips that check (``invoke build-matrix`` fills the cache).
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from wintermute import config, kernel_trees
from wintermute.errors import UserError
from wintermute.paths import DRIVER_DIR, REPO, UAPI_HEADER
from wintermute.run import say

PYTHON_PATHS = ("src", "ci", "tests", "tasks.py")


@dataclass(frozen=True)
class Finding:
    check: str
    output: str


def shell_scripts() -> list[Path]:
    return sorted([*(REPO / "scripts").iterdir(), REPO / ".ci" / "run",
                   REPO / "libmemlog" / "abi" / "check-abi",
                   REPO / "templates" / "arch" / "arch-meson"])  # fmt: skip


def c_sources() -> list[Path]:
    return [*sorted(p for p in DRIVER_DIR.iterdir() if p.suffix in (".c", ".h")), UAPI_HEADER]


def checkpatch_script() -> Path | None:
    """scripts/checkpatch.pl of the newest series with a prepared tree in the cache."""
    recipe = kernel_trees.current_recipe()
    for row in reversed(config.kernel_matrix()):
        tree = kernel_trees.cached_tree(row.series, recipe)
        if tree is not None:
            return tree / "scripts" / "checkpatch.pl"
    return None


def checkpatch_command(script: Path) -> list[str]:
    """checkpatch.pl --strict on the driver's sources and the UAPI header, one line a finding."""
    return [str(script), "--strict", "--no-tree", "--terse", "-f", *map(str, c_sources())]


def _run(check: str, cmd: list[str]) -> tuple[int, str]:
    say(f"{check}: {' '.join(cmd[:3])} ...")
    try:
        proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, check=False)
    except FileNotFoundError:
        raise UserError(f"{cmd[0]} is not installed; run scripts/setup-host") from None
    return proc.returncode, proc.stdout + proc.stderr


def checkpatch_errors(report: str) -> bool:
    """Whether a ``checkpatch.pl --terse`` report has an error (warnings and checks are shown)."""
    totals = [line for line in report.splitlines() if line.startswith("total:")]
    return ": ERROR:" in report or any(not t.startswith("total: 0 errors") for t in totals)


def lint_imports_command() -> list[str]:
    """import-linter's command, from the virtual environment running this."""
    return [str(Path(sys.executable).with_name("lint-imports")), "--no-cache"]


def run_all() -> list[Finding]:
    """Run every check; return what failed (an empty list: all clean)."""
    failed: list[Finding] = []
    code, out = _run("ruff", [sys.executable, "-m", "ruff", "check", *PYTHON_PATHS])
    if code:
        failed.append(Finding("ruff check", out))
    code, out = _run("import-linter", lint_imports_command())
    if code:
        failed.append(Finding("lint-imports (pyproject.toml's layers)", out))
    code, out = _run("shellcheck", ["shellcheck", *map(str, shell_scripts())])
    if code:
        failed.append(Finding("shellcheck", out))
    script = checkpatch_script()
    if script is None:
        say("checkpatch: skipped, no kernel tree in the cache (invoke build-matrix fetches them)")
    else:
        code, out = _run("checkpatch", checkpatch_command(script))
        if code not in (0, 1) or checkpatch_errors(out):
            failed.append(Finding(f"checkpatch --strict ({script})", out))
        else:
            print(out, end="")
    return failed
