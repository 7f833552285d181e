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


class UnsupportedError(MemlogError):
    """The file does not answer this ioctl (ENOTTY): not memlog, or an older driver."""


class RecordFormatError(MemlogError):
    """Bytes read do not form a valid memlog record (or stats)."""


DEFAULT_GROUP = "memlog"

# open(2) errors meaning "no driver behind this path": no node, or a node left without its module
_MISSING_ON_OPEN = frozenset({errno.ENOENT, errno.ENODEV, errno.ENXIO})


def _group_of(path: str) -> str:
    """The group owning ``path`` (the one to join), or memlog if it cannot be told."""
    try:
        return grp.getgrgid(os.stat(path).st_gid).gr_name
    except (OSError, KeyError):
        return DEFAULT_GROUP


def from_oserror(exc: OSError, path: str, action: str) -> MemlogError:
    """Map an OSError from ``action`` (``"open"``, ``"write"``, ``"clear"``...) on ``path``.

    The one place errnos become MemlogErrors: ENOENT/ENODEV/ENXIO on open ->
    DeviceMissingError, EACCES -> PermissionDeniedError, EPERM ->
    NotPermittedError, EMSGSIZE -> RecordTooLargeError, ENOTTY (not memlog's
    ioctl) -> UnsupportedError saying so, anything else ->
    MemlogError naming the action and the system's message.
    """
    code = exc.errno
    if code in _MISSING_ON_OPEN and action == "open":
        what = "does not exist" if code == errno.ENOENT else "has no driver behind it"
        return DeviceMissingError(f"{path} {what}: is the memlog module loaded? (modprobe memlog)")
    if code == errno.EACCES:
        group = _group_of(path)
        return PermissionDeniedError(
            f"permission denied on {path}: join the {group} group "
            f"(usermod -aG {group} $USER) and log in again"
        )
    if code == errno.EPERM:
        return NotPermittedError(f"{action}: not permitted: needs CAP_SYS_ADMIN (run as root)")
    if code == errno.EMSGSIZE:
        return RecordTooLargeError(
            f"{action}: record too large: over 64 KiB or larger than the ring "
            "(sysctl kernel.memlog.ring_size)"
        )
    if code == errno.ENOTTY:
        return UnsupportedError(f"{action}: {path} is not the memlog device (ioctl not supported)")
    return MemlogError(f"{action} on {path}: {os.strerror(code) if code else exc}")
