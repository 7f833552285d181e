"""Facts about upgrading memlog's packages to the next version with apt-get.

The guest has version N installed from the signed repository; then N+1 (built
from the same kernel.yaml with memlog.version one step newer) is published into
that repository, as a new release would be.  An upgrade replaces
the packages and has DKMS build the new module for the running kernel (and the
newest installed one, DKMS's default), but does not unload the running
module: records stay readable until the module is reloaded (or the machine
reboots), which drops them.
"""

from __future__ import annotations

from typing import Any

import pytest

from wintermute.packaging.system_files import installed_paths

WRITER = "agent-upgrader"
RECORD = "written-before-the-upgrade"
RECORD_B64 = "d3JpdHRlbi1iZWZvcmUtdGhlLXVwZ3JhZGU="  # RECORD in base64


def _versions(host: Any, cfg: Any) -> dict[str, str]:
    out = host.check_output(
        f"dpkg-query -W -f '${{Package}} ${{Version}}\\n' {cfg.packages.tools} {cfg.packages.dkms}"
    )
    return dict(line.split() for line in out.splitlines())


@pytest.fixture(scope="module")
def upgraded(final_host: Any, guest: Any, cfg: Any) -> dict[str, Any]:
    """A member writes a record with version N, then apt-get upgrades to N+1."""
    host = final_host
    if not host.user(WRITER).exists:
        host.check_output(f"useradd --create-home --shell /bin/sh {WRITER}")
    host.check_output(f"usermod -aG {cfg.memlog.system.group} {WRITER}")
    host.check_output(f"printf {RECORD} | runuser -u {WRITER} -- memlog write")
    before = {"versions": _versions(host, cfg), "srcversion": _srcversion(host)}
    with guest.timings.step("package upgrade: apt-get install (DKMS builds)"):
        guest.publish_signed("upgrade")
        guest.apt(f"install {cfg.packages.dkms}")
    return before


def _srcversion(host: Any) -> str:
    return host.check_output("cat /sys/module/memlog/srcversion")


def test_upgrade_installs_the_next_version_of_both_packages(
    final_host: Any, guest: Any, cfg: Any, upgraded: dict[str, Any]
) -> None:
    """apt-get install memlog-dkms from the newer repository upgrades memlog-tools with it."""
    new = f"{guest.upgrade_cfg.memlog.version}-{guest.upgrade_cfg.memlog.release}"
    old = f"{cfg.memlog.version}-{cfg.memlog.release}"
    assert set(upgraded["versions"].values()) == {old}
    assert _versions(final_host, cfg) == {cfg.packages.tools: new, cfg.packages.dkms: new}


def test_dkms_builds_the_new_version_for_the_running_kernel_and_forgets_the_old(
    final_host: Any, guest: Any, upgraded: dict[str, Any]
) -> None:
    """dkms status lists only the new version, installed for the running (and newest) kernel.

    DKMS's postinst builds for the running kernel and the newest installed one,
    not for every kernel (unless autoinstall_all_kernels is set in
    /etc/dkms/framework.conf); the old version is removed for all of them.
    """
    status = final_host.check_output("dkms status -m memlog").splitlines()
    running = final_host.check_output("uname -r")
    assert status == [f"memlog/{guest.upgrade_cfg.memlog.version}, {running}, x86_64: installed"]


def test_the_group_and_its_members_survive_the_upgrade(
    final_host: Any, cfg: Any, upgraded: dict[str, Any]
) -> None:
    """The memlog group still exists, with the member added before the upgrade."""
    group = cfg.memlog.system.group
    assert group in final_host.user(WRITER).groups


def test_the_system_files_survive_the_upgrade(
    final_host: Any, cfg: Any, upgraded: dict[str, Any]
) -> None:
    """The udev rule, sysusers, sysctl.d and modules-load.d files are still installed."""
    for path in installed_paths("debian", cfg.packages.tools).values():
        assert final_host.file(path).is_file, path


def test_records_stay_readable_across_the_upgrade(
    final_host: Any, upgraded: dict[str, Any]
) -> None:
    """The upgrade does not unload the running module: the member still reads its record."""
    assert _srcversion(final_host) == upgraded["srcversion"]
    shown = final_host.check_output(f"runuser -u {WRITER} -- memlog show --format json")
    assert RECORD_B64 in shown


def test_reloading_after_the_upgrade_brings_back_the_node_and_sysctl_and_drops_records(
    final_host: Any, guest: Any, cfg: Any, upgraded: dict[str, Any]
) -> None:
    """rmmod + modprobe: the new version loads, gets its node and sysctl; records are gone."""
    final_host.check_output("rmmod memlog && modprobe memlog && udevadm settle")
    version = final_host.check_output("cat /sys/module/memlog/version")
    assert version == guest.upgrade_cfg.memlog.version
    node = final_host.file("/dev/memlog")
    assert (node.group, node.mode) == (
        cfg.memlog.system.group,
        int(cfg.memlog.system.device_mode, 8),
    )
    assert final_host.sysctl("kernel.memlog.ring_size") == cfg.memlog.system.ring_size
    shown = final_host.check_output(f"runuser -u {WRITER} -- memlog show --format json")
    assert RECORD_B64 not in shown
