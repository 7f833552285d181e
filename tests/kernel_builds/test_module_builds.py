"""The driver compiles without a warning (W=1) on every supported kernel, in and out of tree."""

from __future__ import annotations

import subprocess

import pytest

from wintermute import kernel_trees, lint, module_build

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


# What checkpatch may still say, and why it stays:
# - memlog_compat.h: LINUX_VERSION_CODE is the compat header's very job;
# - "Prefer kmalloc_obj/kzalloc_obj" (7.x's checkpatch): those helpers do not
#   exist on 6.1 and 6.12;
# - "struct ctl_table should normally be const": it is const wherever the
#   kernel accepts that (6.13+, through the compat header);
# - CHECKs in memlog_trace.h: TRACE_EVENT's own layout, as in-tree trace headers.
@pytest.mark.parametrize("series", [OLDEST, NEWEST])
def test_driver_and_uapi_header_have_no_checkpatch_errors(series: str) -> None:
    """scripts/checkpatch.pl --strict of the oldest and newest tree reports 0 errors."""
    report = _checkpatch(series)
    assert not lint.checkpatch_errors(report), report
