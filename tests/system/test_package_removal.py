"""Facts about removing and reinstalling the packages (these run last, in this order)."""

from __future__ import annotations

from typing import Any

import pytest

from wintermute import config
from wintermute.packaging.system_files import INSTALLED_PATHS

pytestmark = pytest.mark.removes_packages

APT = "DEBIAN_FRONTEND=noninteractive apt-get -y -q"


def test_removing_memlog_dkms_removes_the_module_from_dkms(host: Any, cfg: config.Config) -> None:
    """After `apt-get remove memlog-dkms`, dkms no longer lists memlog."""
    host.check_output(f"{APT} remove {cfg.packages.dkms}")
    assert host.check_output("dkms status -m memlog") == ""


def test_removing_memlog_dkms_removes_the_module_from_lib_modules(host: Any) -> None:
    """After removal, no memlog.ko is left under /lib/modules."""
    assert host.check_output("find /lib/modules -name 'memlog.ko*'") == ""


def test_purging_memlog_tools_removes_its_files(host: Any, cfg: config.Config) -> None:
    """After `apt-get purge memlog-tools`, its command and system files are gone."""
    host.check_output(f"{APT} purge {cfg.packages.tools}")
    for path in [*INSTALLED_PATHS.values(), "/usr/bin/memlog"]:
        assert not host.file(path).exists, path


def test_reinstalling_memlog_dkms_builds_and_loads_the_module_again(
    host: Any, cfg: config.Config
) -> None:
    """`apt-get install memlog-dkms` again: DKMS installs memlog and it loads."""
    host.run("rmmod memlog")
    assert not host.file("/sys/module/memlog").exists
    host.check_output(f"{APT} install {cfg.packages.dkms}")
    release = host.check_output("uname -r")
    status = host.check_output(f"dkms status -m memlog -v {cfg.memlog.version} -k {release}")
    assert status.endswith("installed"), status
    host.check_output("modprobe memlog && udevadm settle")
    node = host.file("/dev/memlog")
    assert (node.group, node.mode) == (
        cfg.memlog.system.group,
        int(cfg.memlog.system.device_mode, 8),
    )
