"""The memlog library without a device: record parsing, error mapping, the Device seam."""

from __future__ import annotations

import errno
import os
import uuid

import pytest

from memlog import uapi
from memlog.device import Device, Syscalls, session_bytes
from memlog.errors import (
    DeviceMissingError,
    MemlogError,
    NotPermittedError,
    PermissionDeniedError,
    RecordFormatError,
    RecordTooLargeError,
)
from memlog.records import Record, iter_records, parse_record

RECORD = Record(seq=7, ts_ns=1_700_000_000_123_456_789, uid=1000, pid=42,
                session_id=bytes(range(16)), blob=b"context")  # fmt: skip


def test_record_round_trips_through_its_bytes() -> None:
    """parse_record(record.to_bytes()) gives the same record."""
    assert parse_record(RECORD.to_bytes()) == RECORD


def test_parse_record_rejects_wrong_magic() -> None:
    """A record whose magic is not MLOG is refused."""
    buf = bytearray(RECORD.to_bytes())
    buf[0] ^= 0xFF
    with pytest.raises(RecordFormatError, match="magic"):
        parse_record(bytes(buf))


def test_parse_record_rejects_another_schema_version() -> None:
    """A schema version other than 1 is refused."""
    buf = bytearray(RECORD.to_bytes())
    buf[4] = 2
    with pytest.raises(RecordFormatError, match="schema version 2"):
        parse_record(bytes(buf))


def test_parse_record_rejects_a_length_that_disagrees_with_the_data() -> None:
    """A header announcing more blob than follows is refused."""
    with pytest.raises(RecordFormatError, match="says 7 bytes"):
        parse_record(RECORD.to_bytes()[:-1])


def test_parse_record_rejects_a_short_buffer() -> None:
    """Fewer bytes than a header are refused."""
    with pytest.raises(RecordFormatError, match="shorter"):
        parse_record(b"MLOG")


def test_iter_records_splits_a_raw_dump() -> None:
    """A concatenation of records splits back into them."""
    other = Record(8, 2, 0, 1, bytes(16), b"")
    assert iter_records(RECORD.to_bytes() + other.to_bytes()) == [RECORD, other]


def test_record_time_is_utc() -> None:
    """Record.time is the timestamp as an aware UTC datetime."""
    assert RECORD.time.isoformat().startswith("2023-11-14T22:13:20.123456")


def test_record_size_is_header_plus_blob_rounded_to_8() -> None:
    """A 1-byte record takes 64 bytes of ring; 8 bytes takes 64; 9 takes 72."""
    assert [uapi.record_size(n) for n in (1, 8, 9)] == [64, 64, 72]


def test_session_bytes_accepts_uuid_text_and_raw_bytes() -> None:
    """A UUID, its text with or without dashes, and 16 raw bytes all work."""
    u = uuid.UUID("12345678-1234-5678-1234-567812345678")
    assert session_bytes(u) == session_bytes(str(u)) == session_bytes(u.hex) == u.bytes
    assert session_bytes(bytes(16)) == bytes(16)
    with pytest.raises(MemlogError):
        session_bytes("not-a-uuid")


class FakeSyscalls(Syscalls):
    """Records writes; replays canned reads; raises the errno it is given."""

    def __init__(self, *, open_errno: int = 0, write_errno: int = 0, reads: list[bytes] = ()):
        self.open_errno = open_errno
        self.write_errno = write_errno
        self.reads = list(reads)
        self.written: list[bytes] = []

    def open(self, path: str, flags: int) -> int:  # type: ignore[override]
        if self.open_errno:
            raise OSError(self.open_errno, os.strerror(self.open_errno))
        return 99

    def close(self, fd: int) -> None:  # type: ignore[override]
        pass

    def write(self, fd: int, data: bytes) -> int:  # type: ignore[override]
        if self.write_errno:
            raise OSError(self.write_errno, os.strerror(self.write_errno))
        self.written.append(bytes(data))
        return len(data)

    def read(self, fd: int, size: int) -> bytes:  # type: ignore[override]
        return self.reads.pop(0) if self.reads else b""


def test_missing_device_says_to_load_the_module() -> None:
    """ENOENT on open becomes DeviceMissingError naming modprobe."""
    with pytest.raises(DeviceMissingError, match="modprobe memlog"):
        Device("/dev/memlog", syscalls=FakeSyscalls(open_errno=errno.ENOENT))


def test_permission_denied_says_to_join_the_group() -> None:
    """EACCES on open becomes PermissionDeniedError naming the group to join."""
    with pytest.raises(PermissionDeniedError, match=r"join the \S+ group"):
        Device("/nonexistent/memlog", syscalls=FakeSyscalls(open_errno=errno.EACCES))


def test_eperm_says_root_is_needed() -> None:
    """EPERM from the kernel becomes NotPermittedError."""
    fake = FakeSyscalls(write_errno=errno.EPERM)
    with pytest.raises(NotPermittedError, match="CAP_SYS_ADMIN"):
        Device(syscalls=fake, mode="w").write(b"x")


def test_emsgsize_becomes_record_too_large() -> None:
    """EMSGSIZE from the kernel (record larger than the ring) becomes RecordTooLargeError."""
    with pytest.raises(RecordTooLargeError):
        Device(syscalls=FakeSyscalls(write_errno=errno.EMSGSIZE), mode="w").write(b"x")


def test_empty_write_is_refused_before_the_kernel() -> None:
    """Device.write(b'') raises and makes no system call."""
    fake = FakeSyscalls()
    with pytest.raises(MemlogError, match="empty"):
        Device(syscalls=fake, mode="w").write(b"")
    assert fake.written == []


def test_oversized_write_is_refused_before_the_kernel() -> None:
    """A blob over 64 KiB raises RecordTooLargeError and makes no system call."""
    fake = FakeSyscalls()
    with pytest.raises(RecordTooLargeError):
        Device(syscalls=fake, mode="w").write(b"x" * (uapi.RECORD_MAX + 1))
    assert fake.written == []


def test_iterating_a_device_yields_records_until_end_of_file() -> None:
    """Iteration parses each read and stops at a zero-byte read."""
    fake = FakeSyscalls(reads=[RECORD.to_bytes(), RECORD.to_bytes()])
    assert list(Device(syscalls=fake)) == [RECORD, RECORD]


def test_device_rejects_an_unknown_mode() -> None:
    """Only r, w and rw are modes."""
    with pytest.raises(ValueError, match="mode"):
        Device(mode="a", syscalls=FakeSyscalls())
