# SPDX-License-Identifier: MIT OR Apache-2.0
"""memlog.errors: each errno becomes the error whose message says what to do."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from memlog.errors import (
    DeviceMissingError,
    MemlogError,
    NotPermittedError,
    PermissionDeniedError,
    RecordTooLargeError,
    from_oserror,
)


def _error(code: int, action: str = "open", path: str = "/dev/memlog") -> MemlogError:
    return from_oserror(OSError(code, os.strerror(code)), path, action)


def test_enoent_on_open_says_to_load_the_module() -> None:
    """ENOENT on open is DeviceMissingError naming modprobe."""
    error = _error(errno.ENOENT)
    assert isinstance(error, DeviceMissingError)
    assert (
        str(error) == "/dev/memlog does not exist: is the memlog module loaded? (modprobe memlog)"
    )


@pytest.mark.parametrize("code", [errno.ENODEV, errno.ENXIO])
def test_a_node_without_its_driver_is_a_missing_device(code: int) -> None:
    """ENODEV and ENXIO on open (a stale node) are DeviceMissingError too."""
    assert isinstance(_error(code), DeviceMissingError)


def test_enoent_after_open_is_not_a_missing_device() -> None:
    """ENOENT from another call is a plain MemlogError."""
    assert type(_error(errno.ENOENT, "read")) is MemlogError


def test_eacces_says_to_join_the_memlog_group(tmp_path: Path) -> None:
    """EACCES is PermissionDeniedError naming the group, usermod and logging in again."""
    error = _error(errno.EACCES, path=str(tmp_path / "absent"))
    assert isinstance(error, PermissionDeniedError)
    assert "join the memlog group (usermod -aG memlog $USER) and log in again" in str(error)


def test_eacces_names_the_group_owning_the_node(tmp_path: Path) -> None:
    """When the node exists, the group to join is the one owning it."""
    import grp

    node = tmp_path / "memlog"
    node.touch()
    group = grp.getgrgid(node.stat().st_gid).gr_name
    assert f"join the {group} group" in str(_error(errno.EACCES, path=str(node)))


def test_eperm_says_cap_sys_admin_is_needed() -> None:
    """EPERM is NotPermittedError naming the action and CAP_SYS_ADMIN."""
    error = _error(errno.EPERM, "clear")
    assert isinstance(error, NotPermittedError)
    assert str(error) == "clear: not permitted: needs CAP_SYS_ADMIN (run as root)"


def test_emsgsize_is_record_too_large() -> None:
    """EMSGSIZE is RecordTooLargeError naming both limits."""
    error = _error(errno.EMSGSIZE, "write")
    assert isinstance(error, RecordTooLargeError)
    assert "64 KiB" in str(error) and "ring" in str(error)


def test_enotty_says_the_path_is_not_the_memlog_device() -> None:
    """ENOTTY (an ioctl on another file) says the path is not memlog's device."""
    assert "not the memlog device" in str(_error(errno.ENOTTY, "stats", "/tmp/x"))


def test_other_errnos_name_the_action_path_and_reason() -> None:
    """Any other errno is a MemlogError with the action, path and strerror."""
    assert str(_error(errno.EIO, "read")) == f"read on /dev/memlog: {os.strerror(errno.EIO)}"


def test_every_memlog_error_is_a_memlog_error() -> None:
    """One except clause catches them all."""
    for cls in (DeviceMissingError, PermissionDeniedError, NotPermittedError, RecordTooLargeError):
        assert issubclass(cls, MemlogError)
