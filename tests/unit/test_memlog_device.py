# SPDX-License-Identifier: MIT OR Apache-2.0
"""memlog.device.Device on faked system calls (tests/unit/conftest.py): no module needed."""

from __future__ import annotations

import errno
import os
import uuid
from typing import Any

import pytest

from memlog import uapi
from memlog.device import READ_BUFFER, Device, session_bytes
from memlog.errors import (
    DeviceMissingError,
    MemlogError,
    NotPermittedError,
    PermissionDeniedError,
    RecordTooLargeError,
)
from memlog.records import Record, Stats

RECORD = Record(7, 1_700_000_000_000_000_000, 1000, 42, bytes(16), b"context")
LATER = Record(8, 1_700_000_001_000_000_000, 1000, 42, bytes(16), b"later")


@pytest.mark.parametrize(
    ("mode", "flag"), [("r", os.O_RDONLY), ("w", os.O_WRONLY), ("rw", os.O_RDWR)]
)
def test_device_opens_with_the_flags_of_its_mode(fake_syscalls: Any, mode: str, flag: int) -> None:
    """r, w and rw open the node read-only, write-only and read-write, close-on-exec."""
    fake = fake_syscalls()
    Device("/dev/memlog", mode, syscalls=fake)
    assert fake.calls == [("open", "/dev/memlog", flag | os.O_CLOEXEC)]


def test_device_rejects_an_unknown_mode(fake_syscalls: Any) -> None:
    """Only r, w and rw are modes."""
    with pytest.raises(ValueError, match="mode"):
        Device(mode="a", syscalls=fake_syscalls())


def test_missing_device_raises_device_missing_error(fake_syscalls: Any) -> None:
    """ENOENT on open raises DeviceMissingError naming modprobe."""
    with pytest.raises(DeviceMissingError, match=r"modprobe memlog"):
        Device(syscalls=fake_syscalls(open_errno=errno.ENOENT))


def test_eacces_on_open_raises_permission_denied_error(fake_syscalls: Any) -> None:
    """EACCES on open raises PermissionDeniedError naming the group to join."""
    with pytest.raises(PermissionDeniedError, match=r"join the \S+ group"):
        Device("/nonexistent/memlog", syscalls=fake_syscalls(open_errno=errno.EACCES))


def test_context_manager_closes_the_fd(fake_syscalls: Any) -> None:
    """Leaving the with block closes the descriptor, once."""
    fake = fake_syscalls()
    with Device(syscalls=fake) as dev:
        pass
    dev.close()
    assert [c for c in fake.calls if c[0] == "close"] == [("close", 99)]


def test_a_closed_device_refuses_calls(fake_syscalls: Any) -> None:
    """fileno() and reads after close() raise MemlogError."""
    dev = Device(syscalls=fake_syscalls())
    dev.close()
    with pytest.raises(MemlogError, match="closed"):
        dev.read()


def test_write_stores_the_blob_in_one_call(fake_syscalls: Any) -> None:
    """write(blob) is one write(2) of exactly the blob."""
    fake = fake_syscalls()
    Device(mode="w", syscalls=fake).write(b"context")
    assert fake.written == [b"context"]


def test_empty_write_is_refused_before_the_kernel(fake_syscalls: Any) -> None:
    """write(b'') raises MemlogError and makes no system call."""
    fake = fake_syscalls()
    with pytest.raises(MemlogError, match="empty"):
        Device(mode="w", syscalls=fake).write(b"")
    assert fake.written == []


def test_oversized_write_is_refused_before_the_kernel(fake_syscalls: Any) -> None:
    """A blob over 64 KiB raises RecordTooLargeError and makes no system call."""
    fake = fake_syscalls()
    with pytest.raises(RecordTooLargeError, match="65537 bytes"):
        Device(mode="w", syscalls=fake).write(b"x" * (uapi.RECORD_MAX + 1))
    assert fake.written == []


def test_a_64_kib_write_reaches_the_kernel(fake_syscalls: Any) -> None:
    """Exactly RECORD_MAX bytes is allowed."""
    fake = fake_syscalls()
    Device(mode="w", syscalls=fake).write(b"x" * uapi.RECORD_MAX)
    assert len(fake.written[0]) == uapi.RECORD_MAX


def test_emsgsize_from_the_kernel_raises_record_too_large(fake_syscalls: Any) -> None:
    """EMSGSIZE (larger than the ring) raises RecordTooLargeError."""
    with pytest.raises(RecordTooLargeError, match="ring"):
        Device(mode="w", syscalls=fake_syscalls(write_errno=errno.EMSGSIZE)).write(b"x")


def test_read_asks_for_a_header_and_the_largest_blob(fake_syscalls: Any) -> None:
    """read() makes one read(2) of 56 + 65536 bytes and parses the record."""
    fake = fake_syscalls(reads=[RECORD.to_bytes()])
    assert Device(syscalls=fake).read() == RECORD
    assert fake.calls[-1] == ("read", 99, 56 + 65536) and READ_BUFFER == 56 + 65536


def test_read_at_end_of_file_is_none(fake_syscalls: Any) -> None:
    """A zero-byte read(2) means no unread record: None."""
    assert Device(syscalls=fake_syscalls()).read() is None


def test_iterating_yields_records_until_end_of_file(fake_syscalls: Any) -> None:
    """Iteration parses each read and stops at the first zero-byte read."""
    fake = fake_syscalls(reads=[RECORD.to_bytes(), LATER.to_bytes()])
    assert list(Device(syscalls=fake)) == [RECORD, LATER]


def test_rewind_seeks_to_zero(fake_syscalls: Any) -> None:
    """rewind() is lseek(fd, 0, SEEK_SET)."""
    fake = fake_syscalls()
    Device(syscalls=fake).rewind()
    assert fake.calls[-1] == ("lseek", 99, 0, os.SEEK_SET)


def test_follow_yields_records_that_arrive_after_waiting(fake_syscalls: Any) -> None:
    """follow() yields the unread records, then the ones poll() announces."""
    fake = fake_syscalls(reads=[RECORD.to_bytes()], polls=[[LATER.to_bytes()]])
    assert list(Device(syscalls=fake).follow(timeout=0.5)) == [RECORD, LATER]


def test_follow_stops_after_the_timeout(fake_syscalls: Any) -> None:
    """follow(timeout) returns when poll() times out, having waited timeout in ms."""
    fake = fake_syscalls()
    assert list(Device(syscalls=fake).follow(timeout=1.5)) == []
    assert fake.calls[-1] == ("poll", 99, 1500)


def test_wait_without_timeout_waits_forever(fake_syscalls: Any) -> None:
    """wait() with no timeout polls with no time limit."""
    fake = fake_syscalls(polls=[[RECORD.to_bytes()]])
    assert Device(syscalls=fake).wait() is True
    assert fake.calls[-1] == ("poll", 99, None)


def test_stats_parses_what_the_stats_ioctl_fills(fake_syscalls: Any) -> None:
    """stats() passes a 48-byte buffer to MEMLOG_IOC_STATS and parses it."""
    fake = fake_syscalls(ioctl_results={uapi.IOC_STATS: uapi.STATS.pack(1, 2, 3, 4, 5, 6, 7)})
    assert Device(syscalls=fake).stats() == Stats(1, 2, 3, 4, 5, 6, 7)
    assert fake.ioctls() == [(uapi.IOC_STATS, bytes(48))]


def test_clear_is_the_clear_ioctl(fake_syscalls: Any) -> None:
    """clear() is MEMLOG_IOC_CLEAR with no argument."""
    fake = fake_syscalls()
    Device(syscalls=fake).clear()
    assert fake.ioctls() == [(uapi.IOC_CLEAR, 0)]


def test_clear_without_cap_sys_admin_raises_not_permitted(fake_syscalls: Any) -> None:
    """EPERM from CLEAR raises NotPermittedError."""
    with pytest.raises(NotPermittedError, match=r"clear: .*CAP_SYS_ADMIN"):
        Device(syscalls=fake_syscalls(ioctl_errno=errno.EPERM)).clear()


def test_filter_uid_passes_the_uid_as_a_u32(fake_syscalls: Any) -> None:
    """filter_uid(UID_ALL) is MEMLOG_IOC_FILTER_UID with ff ff ff ff."""
    fake = fake_syscalls()
    Device(syscalls=fake).filter_uid(uapi.UID_ALL)
    assert fake.ioctls() == [(uapi.IOC_FILTER_UID, b"\xff\xff\xff\xff")]


def test_filter_uid_refuses_a_negative_uid(fake_syscalls: Any) -> None:
    """A uid that is not a u32 raises MemlogError without an ioctl."""
    fake = fake_syscalls()
    with pytest.raises(MemlogError, match="32-bit"):
        Device(syscalls=fake).filter_uid(-1)
    assert fake.ioctls() == []


def test_set_ring_size_passes_the_size_as_a_u32(fake_syscalls: Any) -> None:
    """set_ring_size(n) is MEMLOG_IOC_SET_RING_SIZE with n little-endian."""
    fake = fake_syscalls()
    Device(syscalls=fake).set_ring_size(uapi.RING_SIZE_MIN)
    assert fake.ioctls() == [(uapi.IOC_SET_RING_SIZE, uapi.U32.pack(65536))]


@pytest.mark.parametrize("size", [uapi.RING_SIZE_MIN - 1, uapi.RING_SIZE_MAX + 1])
def test_set_ring_size_out_of_range_is_refused_before_the_kernel(
    fake_syscalls: Any, size: int
) -> None:
    """Sizes outside 64 KiB..256 MiB raise MemlogError without an ioctl."""
    fake = fake_syscalls()
    with pytest.raises(MemlogError, match="outside"):
        Device(syscalls=fake).set_ring_size(size)
    assert fake.ioctls() == []


def test_set_session_passes_the_uuid_bytes(fake_syscalls: Any) -> None:
    """set_session(UUID) is MEMLOG_IOC_SET_SESSION with its 16 bytes."""
    fake = fake_syscalls()
    session = uuid.UUID("12345678-1234-5678-1234-567812345678")
    Device(mode="w", syscalls=fake).set_session(session)
    assert fake.ioctls() == [(uapi.IOC_SET_SESSION, session.bytes)]


def test_version_reads_the_schema_version(fake_syscalls: Any) -> None:
    """version() is the u32 MEMLOG_IOC_GET_VERSION fills."""
    fake = fake_syscalls(ioctl_results={uapi.IOC_GET_VERSION: uapi.U32.pack(1)})
    assert Device(syscalls=fake).version() == 1


def test_session_bytes_accepts_a_uuid_its_text_and_hex() -> None:
    """A UUID, its text with dashes and its 32 hex digits give the same 16 bytes."""
    u = uuid.UUID("12345678-1234-5678-1234-567812345678")
    assert session_bytes(u) == session_bytes(str(u)) == session_bytes(u.hex) == u.bytes


def test_session_bytes_accepts_16_raw_bytes() -> None:
    """16 bytes are a session id as they are."""
    assert session_bytes(bytes(range(16))) == bytes(range(16))


@pytest.mark.parametrize("session", ["not-a-uuid", b"short"])
def test_session_bytes_refuses_anything_else(session: str | bytes) -> None:
    """Text that is not a UUID and bytes not 16 long raise MemlogError."""
    with pytest.raises(MemlogError, match="session id"):
        session_bytes(session)
