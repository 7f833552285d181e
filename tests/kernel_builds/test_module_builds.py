"""The driver compiles without a warning (W=1) on every supported kernel, in and out of tree."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from wintermute import config, kernel_trees, lint, module_build
from wintermute.paths import REPO

pytestmark = pytest.mark.build

# The matrix (wintermute-kernel/series.yaml), oldest first.
MATRIX = list(kernel_trees.SERIES)
OLDEST, NEWEST = MATRIX[0], MATRIX[-1]


def test_driver_builds_without_warnings_against_installed_headers() -> None:
    """Out of tree against the host's linux-headers: a memlog.ko and no warning."""
    result = module_build.build_for_host_headers()
    assert result.ko.is_file()
    assert result.warnings == []


@pytest.mark.parametrize("series", MATRIX)
def test_driver_builds_out_of_tree_without_warnings(series: str) -> None:
    """Out of tree (make M=) against Debian's prepared tree: memlog.ko, no warning."""
    tree = kernel_trees.prepared_tree(series)
    result = module_build.build_out_of_tree(tree, label=f"{series}-out-of-tree")
    assert result.ko.is_file()
    assert result.warnings == []


@pytest.mark.parametrize("series", MATRIX)
def test_driver_builds_in_tree_without_warnings(series: str) -> None:
    """In tree through drivers/char's Kconfig and Makefile with CONFIG_MEMLOG=m: no warning."""
    result = module_build.build_in_tree(series)
    assert result.ko.is_file()
    assert result.warnings == []
    config = (kernel_trees.prepared_tree(series) / ".config").read_text()
    assert "CONFIG_MEMLOG=m" in config


def _checkpatch(series: str) -> str:
    """The report of `invoke lint`'s checkpatch command, with this series' checkpatch.pl."""
    script = kernel_trees.prepared_tree(series) / "scripts" / "checkpatch.pl"
    proc = subprocess.run(lint.checkpatch_command(script), capture_output=True, text=True,
                          check=False)  # fmt: skip
    assert proc.returncode in (0, 1) and not proc.stderr, proc.stderr  # it ran
    return proc.stdout


# What checkpatch may still say of the repository's driver, and why it stays
# (the patch series' copy, without the compat header, says nothing:
# test_patch_series.py):
# - memlog_compat.h: LINUX_VERSION_CODE is the compat header's very job;
# - "struct ctl_table should normally be const": it is const wherever the
#   kernel accepts that (6.11+ and 6.13+, through the compat header's macros);
# - "Missing a blank line after declarations" before the
#   MEMLOG_CTL_HANDLER_CONST temporaries: checkpatch does not read a macro
#   before "struct" as part of a declaration.
@pytest.mark.parametrize("series", [OLDEST, NEWEST])
def test_driver_and_uapi_header_have_no_checkpatch_errors(series: str) -> None:
    """scripts/checkpatch.pl --strict of the oldest and newest tree reports 0 errors."""
    report = _checkpatch(series)
    assert not lint.checkpatch_errors(report), report


def _clone_layout(dest: Path) -> Path:
    """The driver, the UAPI header and kernel.yaml where a clone has them (and nothing
    the toolkit stages: no memlog_version.h, no include/ beside the driver)."""
    files = ["include/uapi/linux/memlog.h", "wintermute-kernel/kernel.yaml"]
    files += [f"drivers/char/memlog/{p.name}" for p in (REPO / "drivers/char/memlog").iterdir()
              if p.is_file() and p.suffix in ("", ".c", ".h")]  # fmt: skip
    for rel in files:
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(REPO / rel, dest / rel)
    return dest / "drivers" / "char" / "memlog"


@pytest.mark.parametrize("kdir", ["host headers", "newest series"])
def test_make_in_a_clone_s_driver_directory_builds_the_module(tmp_path: Path, kdir: str) -> None:
    """`make KDIR=...` in drivers/char/memlog of a clone, as its Makefile says: memlog.ko,
    with kernel.yaml's memlog.version and the repository's <linux/memlog.h>."""
    if kdir == "host headers":
        build = Path("/lib/modules") / module_build.newest_headers() / "build"
    else:
        build = kernel_trees.prepared_tree(NEWEST)
    driver = _clone_layout(tmp_path)
    assert not (driver / "memlog_version.h").exists()
    extra = [] if (build / "Module.symvers").exists() else ["KBUILD_MODPOST_WARN=1"]
    done = subprocess.run(["make", "-C", driver, f"KDIR={build}", *extra],
                          capture_output=True, text=True, check=False)  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    version = subprocess.run(["modinfo", "-F", "version", driver / "memlog.ko"],
                             capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    assert version == config.load(REPO / "wintermute-kernel" / "kernel.yaml").memlog.version
