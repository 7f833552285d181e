# SPDX-License-Identifier: MIT OR Apache-2.0
"""What can go wrong talking to /dev/memlog, each with a message a user can act on."""

from __future__ import annotations

import errno
import grp
import os


class MemlogError(Exception):
    """Base of every memlog error."""


class DeviceMissingError(MemlogError):
    """The device node does not exist: the module is not loaded."""


class PermissionDeniedError(MemlogError):
    """The caller may not open the device."""


class NotPermittedError(MemlogError):
    """The operation needs CAP_SYS_ADMIN."""


class RecordTooLargeError(MemlogError):
    """The record is larger than 64 KiB or than the ring."""


class RecordFormatError(MemlogError):
    """Bytes read do not form a valid memlog record."""


def _group_of(path: str) -> str:
    try:
        return grp.getgrgid(os.stat(path).st_gid).gr_name
    except (OSError, KeyError):
        return "memlog"


def from_oserror(exc: OSError, path: str, action: str) -> MemlogError:
    """Map an OSError from ``action`` on ``path`` to the matching MemlogError."""
    code = exc.errno
    if code == errno.ENOENT and action == "open":
        return DeviceMissingError(
            f"{path} does not exist: is the memlog module loaded? (modprobe memlog)"
        )
    if code == errno.EACCES:
        group = _group_of(path)
        return PermissionDeniedError(
            f"permission denied opening {path}: join the {group} group "
            f"(usermod -aG {group} $USER) and log in again"
        )
    if code == errno.EPERM:
        return NotPermittedError(f"{action}: not permitted: needs CAP_SYS_ADMIN (run as root)")
    if code == errno.EMSGSIZE:
        return RecordTooLargeError(f"{action}: record too large for the ring (at most 64 KiB)")
    return MemlogError(f"{action} on {path}: {os.strerror(code or 0)}")
