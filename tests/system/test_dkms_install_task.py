"""Facts about `invoke dkms-install`, run in the guest as a user runs it (after the purge).

The guest gets this repository's toolkit (tasks.py, src/, wintermute-kernel/,
templates/) and runs it with Debian's own python3-invoke, -yaml, -jinja2 and
-jsonschema; ``--debs`` points it at the packages already built on the host
from the same kernel.yaml (the guest has no debhelper).
"""

from __future__ import annotations

import shlex
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest

from ci.package_verify import GUEST_REPOS
from wintermute.paths import REPO

CHECKOUT = "/root/wintermute"
TOOLKIT = ("tasks.py", "src", "wintermute-kernel", "templates")


@pytest.fixture(scope="module")
def checkout(final_host: Any, guest: Any) -> str:
    """The toolkit copied into the guest; returns the command that runs the task there."""
    with tempfile.TemporaryDirectory() as tmp:
        stage = Path(tmp)
        for name in TOOLKIT:
            src = REPO / name
            if src.is_dir():
                shutil.copytree(src, stage / name, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copy2(src, stage / name)
        shutil.copy2(guest.cfg.source, stage / "kernel.yaml")
        guest.vm.put(stage, CHECKOUT)
    return (
        f"cd {CHECKOUT} && WINTERMUTE_KERNEL_YAML={CHECKOUT}/kernel.yaml "
        f"invoke dkms-install --debs {shlex.quote(GUEST_REPOS['current'])}"
    )


def _installed(host: Any, package: str) -> bool:
    result = host.run(f"dpkg-query -W -f '${{Status}}' {package}")
    return result.rc == 0 and result.stdout.endswith(" installed")


def test_dkms_install_refuses_without_headers_for_the_running_kernel(
    final_host: Any, cfg: Any, checkout: str
) -> None:
    """Headers of the running kernel hidden: one E: line naming them, nothing installed."""
    build = "/lib/modules/$(uname -r)/build"
    final_host.check_output(f"mv {build} {build}.hidden")
    try:
        result = final_host.run(checkout)
    finally:
        final_host.check_output(f"mv {build}.hidden {build}")
    assert result.rc == 1, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("E: ")]
    assert len(errors) == 1 and "linux-headers-" in errors[0], result.stderr
    assert not _installed(final_host, cfg.packages.dkms)
    assert not _installed(final_host, cfg.packages.tools)


def test_dkms_install_installs_both_packages_with_apt(
    final_host: Any, cfg: Any, checkout: str
) -> None:
    """With headers, it installs memlog-dkms and memlog-tools (dpkg says installed)."""
    result = final_host.run(checkout)
    assert result.rc == 0, result.stderr
    assert _installed(final_host, cfg.packages.dkms)
    assert _installed(final_host, cfg.packages.tools)


def test_dkms_install_leaves_memlog_loaded_with_the_configured_node(
    final_host: Any, cfg: Any, checkout: str
) -> None:
    """Afterwards the module is loaded and /dev/memlog has kernel.yaml's group and mode."""
    assert final_host.file("/sys/module/memlog").is_directory
    node = final_host.file("/dev/memlog")
    assert (node.group, node.mode) == (
        cfg.memlog.system.group,
        int(cfg.memlog.system.device_mode, 8),
    )


def test_dkms_install_a_second_time_changes_nothing(
    final_host: Any, cfg: Any, checkout: str
) -> None:
    """Run again: it says the version is already installed, and apt-get installs nothing."""
    result = final_host.run(checkout)
    assert result.rc == 0, result.stderr
    assert "is already installed" in result.stderr
    log = final_host.check_output(f"tail -n 30 {CHECKOUT}/out/logs/dkms-install.log")
    assert "0 upgraded, 0 newly installed, 0 to remove" in log, log
