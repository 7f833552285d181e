"""Facts about a machine where memlog-tools is installed and memlog's module loads at boot.

The same for every way the module gets there: DKMS on a stock kernel
(``tests/system/test_installed_system.py``) and the linux-wintermute kernel
with memlog in the tree (``tests/built_kernel``).  Each importing test module
supplies the fixtures ``host`` (testinfra's, for the guest) and ``cfg`` (the
kernel.yaml the packages were built from); pytest collects the imported
``test_*`` functions there.
"""

from __future__ import annotations

from typing import Any

import pytest

from wintermute.packaging.system_files import DEBIAN_PATHS, installed_paths

MEMBER = "agent-alice"
OUTSIDER = "agent-mallory"

__all__ = [
    "test_dev_memlog_belongs_to_root_and_the_memlog_group",
    "test_dev_memlog_has_the_configured_mode",
    "test_dev_memlog_is_a_character_device",
    "test_group_member_can_write_and_read_back_a_record",
    "test_memlog_group_is_a_system_group",
    "test_memlog_module_is_loaded_at_boot",
    "test_non_member_gets_a_permission_error_naming_the_group",
    "test_non_member_write_stores_nothing",
    "test_ring_size_sysctl_has_the_configured_value_after_boot",
    "test_ring_size_sysctl_is_applied_again_when_the_module_loads_late",
    "test_system_file_is_installed_by_memlog_tools",
    "users",
]


@pytest.fixture(scope="module")
def users(host: Any, cfg: Any) -> None:
    """A member of the memlog group and a user who is not one."""
    group = cfg.memlog.system.group
    for name in (MEMBER, OUTSIDER):
        if not host.user(name).exists:
            host.check_output(f"useradd --create-home --shell /bin/sh {name}")
    host.check_output(f"usermod -aG {group} {MEMBER}")


def test_memlog_group_is_a_system_group(host: Any, cfg: Any) -> None:
    """The memlog group exists with a system gid."""
    group = host.group(cfg.memlog.system.group)
    assert group.exists
    sys_gid_max = int(
        host.check_output("awk '$1 == \"SYS_GID_MAX\" {print $2}' /etc/login.defs") or 999
    )
    assert group.gid <= sys_gid_max


def test_dev_memlog_is_a_character_device(host: Any) -> None:
    """/dev/memlog exists and is a character device."""
    assert host.run("test -c /dev/memlog").rc == 0


def test_dev_memlog_belongs_to_root_and_the_memlog_group(host: Any, cfg: Any) -> None:
    """/dev/memlog is owned by root and the configured group."""
    node = host.file("/dev/memlog")
    assert (node.user, node.group) == ("root", cfg.memlog.system.group)


def test_dev_memlog_has_the_configured_mode(host: Any, cfg: Any) -> None:
    """/dev/memlog's mode is kernel.yaml's device_mode."""
    assert host.file("/dev/memlog").mode == int(cfg.memlog.system.device_mode, 8)


@pytest.mark.parametrize("name", sorted(DEBIAN_PATHS))
def test_system_file_is_installed_by_memlog_tools(host: Any, cfg: Any, name: str) -> None:
    """Each system integration file is owned by memlog-tools (dpkg -S)."""
    path = installed_paths("debian", cfg.packages.tools)[name]
    owner = host.check_output(f"dpkg -S {path}")
    assert owner.split(":")[0] == cfg.packages.tools


def test_memlog_module_is_loaded_at_boot(host: Any) -> None:
    """/sys/module/memlog exists after boot, with no manual step."""
    assert host.file("/sys/module/memlog").is_directory


def test_ring_size_sysctl_has_the_configured_value_after_boot(host: Any, cfg: Any) -> None:
    """kernel.memlog.ring_size equals kernel.yaml's ring_size after boot."""
    assert host.sysctl("kernel.memlog.ring_size") == cfg.memlog.system.ring_size


def test_ring_size_sysctl_is_applied_again_when_the_module_loads_late(host: Any, cfg: Any) -> None:
    """After rmmod and modprobe, kernel.memlog.ring_size is the configured value again."""
    host.check_output("rmmod memlog && modprobe memlog && udevadm settle")
    assert host.sysctl("kernel.memlog.ring_size") == cfg.memlog.system.ring_size


def test_group_member_can_write_and_read_back_a_record(host: Any, users: None) -> None:
    """A member of the memlog group writes a record with `memlog write` and reads it back."""
    host.check_output(f"printf 'context-to-keep' | runuser -u {MEMBER} -- memlog write")
    shown = host.check_output(f"runuser -u {MEMBER} -- memlog show --format json")
    # "context-to-keep" in base64
    assert "Y29udGV4dC10by1rZWVw" in shown


def test_non_member_gets_a_permission_error_naming_the_group(
    host: Any, cfg: Any, users: None
) -> None:
    """A user outside the memlog group gets a clear permission error from `memlog write`."""
    result = host.run(f"printf 'nope' | runuser -u {OUTSIDER} -- memlog write")
    assert result.rc == 1
    assert f"join the {cfg.memlog.system.group} group" in result.stderr, result.stderr


def test_non_member_write_stores_nothing(host: Any, users: None) -> None:
    """A refused write leaves no record from that user in any ring."""
    host.run(f"printf 'nope' | runuser -u {OUTSIDER} -- memlog write")
    uid = host.user(OUTSIDER).uid
    shown = host.check_output(f"memlog show --uid {uid} --format json")
    assert shown == ""
