"""`invoke dkms-install` on this machine: DKMS builds memlog for every kernel with headers.

These build machines run a sandbox kernel that cannot load modules, so this
checks what the task can do here: the source registered with DKMS, the module
built and installed for each installed linux-headers, the system files and
group in place, a second run changing nothing, and the one-line notice that
the running kernel cannot load it.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from wintermute import config
from wintermute.dkms_install import kernels_with_headers
from wintermute.packaging.system_files import INSTALLED_PATHS
from wintermute.paths import REPO

pytestmark = pytest.mark.build


def _invoke() -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "invoke", "dkms-install"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
        timeout=900,
    )


@pytest.fixture(scope="module")
def runs() -> tuple[subprocess.CompletedProcess[str], subprocess.CompletedProcess[str]]:
    first = _invoke()
    assert first.returncode == 0, first.stderr
    second = _invoke()
    return first, second


def test_dkms_lists_memlog_installed_for_every_kernel_with_headers(runs: object) -> None:
    """dkms status says memlog is installed for each kernel whose headers are installed."""
    version = config.load().memlog.version
    releases = kernels_with_headers()
    assert releases
    for release in releases:
        status = subprocess.run(
            ["dkms", "status", "-m", "memlog", "-v", version, "-k", release],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        assert status.endswith("installed"), status


def test_dkms_install_puts_the_system_files_in_place(runs: object) -> None:
    """The udev rule, sysctl.d, sysusers.d and modules-load.d files are installed."""
    from pathlib import Path

    for path in INSTALLED_PATHS.values():
        assert Path(path).is_file(), path


def test_dkms_install_creates_the_memlog_group(runs: object) -> None:
    """The configured group exists afterwards."""
    group = config.load().memlog.system.group
    assert subprocess.run(["getent", "group", group], capture_output=True).returncode == 0


def test_dkms_install_a_second_time_changes_nothing(runs: tuple) -> None:
    """Run again, it rebuilds nothing: every kernel is reported already installed."""
    second = runs[1]
    assert second.returncode == 0, second.stderr
    assert "dkms build" not in second.stderr
    assert "already installed" in second.stderr


def test_dkms_install_says_when_the_running_kernel_cannot_load_modules(runs: tuple) -> None:
    """On a kernel without /lib/modules for itself, one line says the module cannot load here."""
    import platform
    from pathlib import Path

    if (Path("/lib/modules") / platform.release()).is_dir():
        pytest.skip("this machine's running kernel can load modules")
    assert "cannot load modules here" in runs[0].stderr
