"""``invoke patch-series``: the series against the newest supported kernel, written and checked.

The base is Debian's tree of the newest series of ``wintermute-kernel/series.yaml``
(:mod:`wintermute.kernel_trees`, prepared and cached; its files as extracted,
before preparation wired memlog in).  Each patch is then checked as a
maintainer would:

- ``scripts/checkpatch.pl --strict`` of that tree, in the tree: no error,
  warning or check;
- the tree as of that patch (the patches up to it applied to the base with
  ``git apply``) builds with ``W=1`` without a warning: ``drivers/char/memlog/``
  in the prepared tree (whose wiring must be the series' own), and the
  selftest, once the series has it, against the kselftest harness of the tree
  and the series' UAPI header, with ``-Werror``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from wintermute import kernel_trees, module_build
from wintermute.errors import InfraError, UserError
from wintermute.paths import log_dir, out_dir
from wintermute.run import run, say
from wintermute.upstream import driver, kernel_files, series

NEWEST = list(kernel_trees.MATRIX)[-1]
SELFTEST_SOURCE = f"{series.SELFTEST_DIR}/memlog_test.c"
# What the selftest's Makefile gives the compiler, and warnings as errors.
SELFTEST_CFLAGS = ("-Wall", "-O2", "-Werror")
# --terse --show-types: "FILE:LINE: WARNING:TYPE: ..."
_FINDING = re.compile(r": (ERROR|WARNING|CHECK):")


@dataclass
class PatchCheck:
    """What the checks found in one patch: nothing, when it is ready."""

    patch: Path
    checkpatch: list[str] = field(default_factory=list)  # its findings, one line each
    warnings: list[str] = field(default_factory=list)  # the W=1 build's (and selftest's)
    built: list[str] = field(default_factory=list)  # what was built at this patch

    @property
    def clean(self) -> bool:
        return not self.checkpatch and not self.warnings


def newest_base() -> tuple[Path, dict[str, str]]:
    """The newest series' prepared tree, and its files the series changes, as extracted."""
    tree = kernel_trees.prepared_tree(NEWEST)
    return tree, series.base_files(tree, pristine=tree.parent / kernel_trees.PRISTINE)


def checkpatch(tree: Path, patch: Path) -> list[str]:
    """``checkpatch.pl --strict --terse`` of ``tree`` on ``patch``: its findings."""
    proc = subprocess.run(
        [tree / "scripts" / "checkpatch.pl", "--strict", "--terse", "--no-summary",
         "--show-types", patch],
        cwd=tree, capture_output=True, text=True, check=False,
    )  # fmt: skip
    with (log_dir() / series.LOG).open("a") as log:
        log.write(f"$ checkpatch.pl --strict {patch.name}\n{proc.stdout}{proc.stderr}")
    if proc.returncode not in (0, 1) or proc.stderr.strip():
        raise InfraError(f"checkpatch.pl failed on {patch.name}: {proc.stderr.strip()[:300]}")
    return [line for line in proc.stdout.splitlines() if _FINDING.search(line)]


def _build_driver(tree: Path, label: str) -> list[str]:
    log = log_dir() / f"build-{label}.log"
    log.unlink(missing_ok=True)
    run(
        ["make", "-C", tree, f"-j{os.cpu_count() or 1}", "W=1", "KBUILD_MODPOST_WARN=1",
         "drivers/char/memlog/"],
        log=log, env=module_build.BUILD_ENV, step=f"building {label}",
    )  # fmt: skip
    if not (tree / "drivers" / "char" / "memlog" / "memlog.o").is_file():
        raise InfraError(f"{label}: drivers/char/memlog/memlog.o was not built; see {log}")
    return module_build.parse_warnings(log.read_text(errors="replace"), compile_only=True)


def _build_selftest(tree: Path, files: dict[str, str], label: str) -> list[str]:
    """The selftest compiled as its Makefile would, beside the tree's kselftest headers."""
    with tempfile.TemporaryDirectory(prefix="wintermute-selftest-") as tmp:
        root = Path(tmp)
        selftests = tree / "tools" / "testing" / "selftests"
        for header in ("kselftest_harness.h", "kselftest.h"):
            shutil.copyfile(selftests / header, root / header)
        (root / "memlog").mkdir()
        (root / "memlog" / "memlog_test.c").write_text(files[SELFTEST_SOURCE])
        (root / "include" / "linux").mkdir(parents=True)
        (root / "include" / "linux" / "memlog.h").write_text(files[driver.UAPI_PATH])
        log = log_dir() / f"build-{label}.log"
        cmd = ["gcc", *SELFTEST_CFLAGS, "-I", root / "include", "-o", root / "memlog_test",
               root / "memlog" / "memlog_test.c"]  # fmt: skip
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        log.write_text(f"$ {' '.join(map(str, cmd))}\n{proc.stdout}{proc.stderr}")
        if proc.returncode != 0:
            return [line for line in proc.stderr.splitlines() if "error" in line] or [
                f"the selftest did not compile; see {log}"
            ]
        return []


def build_each(tree: Path, base: dict[str, str], patches: list[Path]) -> list[PatchCheck]:
    """Each patch's tree built (W=1): the patches up to it applied to ``base``."""
    mails = [p for p in patches if not p.name.startswith("0000-")]
    checks = []
    with kernel_trees.series_scratch(NEWEST) as (prepared, scratch):
        if prepared != tree:
            raise InfraError(f"the {NEWEST} tree changed while the series was checked")
        for number, patch in enumerate(mails, 1):
            files = series.applied_files(base, mails[:number])
            check = PatchCheck(patch)
            checks.append(check)
            if f"{driver.DRIVER_PATH}/Makefile" in files:
                for path in (kernel_files.KCONFIG, kernel_files.MAKEFILE):
                    if (tree / path).read_text() != files[path]:
                        raise InfraError(
                            f"the prepared {NEWEST} tree's {path} is not the series' at "
                            f"patch {number}: remove {tree.parent} and run again"
                        )
                kernel_trees.fill_scratch(scratch, files)
                check.warnings += _build_driver(tree, f"series-{number}")
                check.built.append(driver.DRIVER_PATH)
            if SELFTEST_SOURCE in files:
                check.warnings += _build_selftest(tree, files, f"series-{number}-selftest")
                check.built.append(series.SELFTEST_DIR)
    return checks


def check(tree: Path, base: dict[str, str], patches: list[Path]) -> list[PatchCheck]:
    """checkpatch and the W=1 build of every patch (the cover letter has neither)."""
    checks = build_each(tree, base, patches)
    for item in checks:
        item.checkpatch = checkpatch(tree, item.patch)
        state = "clean" if item.clean else "NOT clean"
        built = f"built {', '.join(item.built)}" if item.built else "nothing to build"
        say(f"{item.patch.name}: {state} (checkpatch --strict; W=1, {built})")
    return checks


def patch_series(dest: Path | None = None, *, verify: bool = True) -> list[Path]:
    """Write the series; with ``verify``, UserError unless every patch is clean."""
    tree, base = newest_base()
    patches = series.write_series(base, dest or out_dir() / "patches")
    if verify:
        dirty = [c for c in check(tree, base, patches) if not c.clean]
        if dirty:
            lines = [f"{c.patch.name}: {x}" for c in dirty for x in c.checkpatch + c.warnings]
            raise UserError(
                f"{len(dirty)} patch(es) not clean: {lines[0]}"
                + (f" (and {len(lines) - 1} more; see out/logs/{series.LOG})" if lines[1:] else "")
            )
    return patches
