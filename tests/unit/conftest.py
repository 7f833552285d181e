# SPDX-License-Identifier: MIT OR Apache-2.0
"""Shared fixtures of the unit tests: fakes of the system calls memlog.Device makes."""

from __future__ import annotations

import errno
import os
import time
from collections.abc import Callable
from typing import Any

import pytest

from memlog import uapi
from memlog.device import Device, Syscalls
from memlog.records import Record

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


class RingSyscalls(Syscalls):
    """A whole device in memory: one uid's ring that writes fill and every open fd reads.

    Records are stamped as the driver stamps them (seq, time, ``uid``, ``pid``,
    the fd's session); the oldest are evicted when the ring's bytes would
    exceed ``capacity``; each fd reads from the oldest unread record on.
    ``fail_writes`` maps the n-th write (1-based) to an errno; ``stats_capacity``
    makes STATS claim another capacity than the ring has (a ring shared with
    another writer of the same uid, as seen by one of them).
    """

    def __init__(
        self,
        capacity: int = 4 << 20,
        *,
        uid: int = 1000,
        pid: int = 4242,
        fail_writes: dict[int, int] | None = None,
        stats_capacity: int | None = None,
    ) -> None:
        self.capacity = capacity
        self.stats_capacity = capacity if stats_capacity is None else stats_capacity
        self.uid, self.pid = uid, pid
        self.fail_writes = dict(fail_writes or {})
        self.records: list[Record] = []
        self.seq = 0
        self.writes = 0
        self.evictions = 0
        self.next_fd = 10
        self.cursors: dict[int, int] = {}  # fd -> seq of the last record read
        self.sessions: dict[int, bytes] = {}

    @staticmethod
    def size(record: Record) -> int:
        return (uapi.RECORD_HEADER.size + len(record.blob) + 7) & ~7

    def open(self, path: str, flags: int) -> int:  # type: ignore[override]
        self.next_fd += 1
        self.cursors[self.next_fd] = 0
        self.sessions[self.next_fd] = bytes(16)
        return self.next_fd

    def close(self, fd: int) -> None:  # type: ignore[override]
        del self.cursors[fd]

    def write(self, fd: int, data: bytes) -> int:  # type: ignore[override]
        self.writes += 1
        if self.writes in self.fail_writes:
            code = self.fail_writes[self.writes]
            raise OSError(code, os.strerror(code))
        self.seq += 1
        record = Record(self.seq, time.time_ns(), self.uid, self.pid, self.sessions[fd], data)
        self.records.append(record)
        while sum(self.size(r) for r in self.records) > self.capacity:
            self.records.pop(0)
            self.evictions += 1
        return len(data)

    def read(self, fd: int, size: int) -> bytes:  # type: ignore[override]
        for record in self.records:
            if record.seq > self.cursors[fd]:
                self.cursors[fd] = record.seq
                return record.to_bytes()
        return b""

    def ioctl(self, fd: int, request: int, arg: Any = 0, mutate: bool = True) -> int:  # type: ignore[override]
        if request == uapi.IOC_SET_SESSION:
            self.sessions[fd] = bytes(arg)
        elif request == uapi.IOC_STATS:
            arg[:] = uapi.STATS.pack(
                self.seq,
                self.evictions,
                len(self.records),
                sum(self.size(r) for r in self.records),
                self.stats_capacity,
                self.records[0].ts_ns if self.records else 0,
                self.records[-1].ts_ns if self.records else 0,
            )
        elif request == uapi.IOC_FILTER_UID:
            self.cursors[fd] = 0
        elif request == uapi.IOC_GET_LOST:
            arg[:] = uapi.U64.pack(0)
        else:
            raise OSError(errno.ENOTTY, os.strerror(errno.ENOTTY))
        return 0

    def opener(self) -> Callable[[str, str], Device]:
        """An opener for memlog.cli.main and memlog.claude_code.capture on this ring."""
        return lambda path, mode: Device(path, mode, syscalls=self)


@pytest.fixture
def ring() -> RingSyscalls:
    """A 4 MiB in-memory ring of uid 1000 (see RingSyscalls)."""
    return RingSyscalls()
