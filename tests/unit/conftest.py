# SPDX-License-Identifier: MIT OR Apache-2.0
"""Shared fixtures of the unit tests: a fake of the system calls memlog.Device makes."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import pytest

from memlog.device import Syscalls

FAKE_FD = 99


class FakeSyscalls(Syscalls):
    """Device's system calls without a device: canned reads, chosen errnos, a call log.

    ``reads`` are returned by read() in turn, then b"" (end of file).  Each
    poll() takes the next item of ``polls``: a list of records' bytes that
    arrive (poll returns True), False (a timeout), or an exception to raise;
    with none left it times out.  ``ioctl_results`` maps a request number to
    the bytes the kernel would fill in (a list: one per call, the last one
    repeated).  ``calls`` logs every call.
    """

    def __init__(
        self,
        *,
        open_errno: int = 0,
        write_errno: int = 0,
        ioctl_errno: int = 0,
        reads: list[bytes] | None = None,
        polls: list[Any] | None = None,
        ioctl_results: dict[int, bytes | list[bytes]] | None = None,
    ) -> None:
        self.open_errno = open_errno
        self.write_errno = write_errno
        self.ioctl_errno = ioctl_errno
        self.reads = list(reads or [])
        self.polls = list(polls or [])
        self.ioctl_results = dict(ioctl_results or {})
        self.calls: list[tuple[Any, ...]] = []
        self.written: list[bytes] = []

    @staticmethod
    def _fail(code: int) -> None:
        if code:
            raise OSError(code, os.strerror(code))

    def open(self, path: str, flags: int) -> int:  # type: ignore[override]
        self.calls.append(("open", path, flags))
        self._fail(self.open_errno)
        return FAKE_FD

    def close(self, fd: int) -> None:  # type: ignore[override]
        self.calls.append(("close", fd))

    def write(self, fd: int, data: bytes) -> int:  # type: ignore[override]
        self.calls.append(("write", fd, bytes(data)))
        self._fail(self.write_errno)
        self.written.append(bytes(data))
        return len(data)

    def read(self, fd: int, size: int) -> bytes:  # type: ignore[override]
        self.calls.append(("read", fd, size))
        return self.reads.pop(0) if self.reads else b""

    def lseek(self, fd: int, pos: int, how: int) -> int:  # type: ignore[override]
        self.calls.append(("lseek", fd, pos, how))
        return pos

    def ioctl(self, fd: int, request: int, arg: Any = 0, mutate: bool = True) -> int:  # type: ignore[override]
        self.calls.append(("ioctl", request, bytes(arg) if isinstance(arg, bytearray) else arg))
        self._fail(self.ioctl_errno)
        if request in self.ioctl_results:
            result = self.ioctl_results[request]
            if isinstance(result, list):  # successive calls; the last one sticks
                result = result.pop(0) if len(result) > 1 else result[0]
            arg[:] = result
        return 0

    def poll(self, fd: int, timeout_ms: int | None) -> bool:  # type: ignore[override]
        self.calls.append(("poll", fd, timeout_ms))
        outcome = self.polls.pop(0) if self.polls else False
        if isinstance(outcome, BaseException):
            raise outcome
        if outcome is False:
            return False
        self.reads.extend(outcome)
        return True

    def ioctls(self) -> list[tuple[int, Any]]:
        """(request, argument) of every ioctl made."""
        return [(call[1], call[2]) for call in self.calls if call[0] == "ioctl"]


MakeFake = Callable[..., FakeSyscalls]


@pytest.fixture
def fake_syscalls() -> MakeFake:
    """Makes a FakeSyscalls: ``fake_syscalls(reads=[...], write_errno=errno.EPERM, ...)``."""
    return FakeSyscalls
