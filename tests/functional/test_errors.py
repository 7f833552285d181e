"""Bad writes store nothing; bad reads consume nothing; seeking is only rewinding."""

from __future__ import annotations

import ctypes
import errno
import os

import pytest
from guestlib import DEVICE, RING_SIZE, counter_blobs, read_records, stats, write_records

from memlog import uapi

LIBC = ctypes.CDLL(None, use_errno=True)
BAD_POINTER = ctypes.c_void_p(8)  # the first page is never mapped


def _errno_of_write(blob: bytes) -> int:
    fd = os.open(DEVICE, os.O_WRONLY)
    try:
        with pytest.raises(OSError) as excinfo:
            os.write(fd, blob)
        return excinfo.value.errno
    finally:
        os.close(fd)


def test_zero_length_write_returns_zero_and_stores_nothing() -> None:
    """write() of 0 bytes returns 0 and no record appears."""
    writes = stats()["total_writes"]
    fd = os.open(DEVICE, os.O_WRONLY)
    try:
        assert os.write(fd, b"") == 0
    finally:
        os.close(fd)
    assert stats()["total_writes"] == writes
    assert read_records() == []


def test_write_over_64_kib_is_emsgsize_and_stores_nothing() -> None:
    """A 65537-byte write fails with EMSGSIZE; nothing is stored."""
    writes = stats()["total_writes"]
    assert _errno_of_write(b"x" * (uapi.RECORD_MAX + 1)) == errno.EMSGSIZE
    assert stats()["total_writes"] == writes
    assert read_records() == []


def test_record_larger_than_the_ring_is_emsgsize() -> None:
    """With a 64 KiB ring, a 64 KiB blob (plus its header) does not fit: EMSGSIZE."""
    RING_SIZE.write_text("65536\n")
    assert _errno_of_write(b"x" * 65536) == errno.EMSGSIZE
    assert read_records() == []


def test_record_larger_than_the_ring_leaves_the_ring_intact() -> None:
    """A refused oversized record evicts nothing already stored."""
    RING_SIZE.write_text("65536\n")
    write_records([b"kept"])
    assert _errno_of_write(b"x" * 65536) == errno.EMSGSIZE
    assert [blob for _, blob in read_records()] == [b"kept"]


@pytest.mark.parametrize("pointer", [BAD_POINTER, None], ids=["unmapped", "null"])
def test_write_from_a_bad_pointer_is_efault_and_stores_nothing(pointer: object) -> None:
    """write() from an unmapped address or NULL fails with EFAULT; nothing is stored."""
    writes = stats()["total_writes"]
    fd = os.open(DEVICE, os.O_WRONLY)
    try:
        ret = LIBC.write(fd, pointer, ctypes.c_size_t(100))
        err = ctypes.get_errno()
    finally:
        os.close(fd)
    assert (ret, err) == (-1, errno.EFAULT)
    assert read_records() == []
    assert stats()["total_writes"] == writes


def test_write_from_a_bad_pointer_into_a_full_ring_evicts_nothing() -> None:
    """An EFAULT write that would have needed evictions leaves every record in place."""
    RING_SIZE.write_text("65536\n")
    blobs = counter_blobs(60)  # 60 x 1080 bytes: nearly full
    write_records(blobs)
    before = stats()
    fd = os.open(DEVICE, os.O_WRONLY)
    try:
        ret = LIBC.write(fd, BAD_POINTER, ctypes.c_size_t(4096))
        err = ctypes.get_errno()
    finally:
        os.close(fd)
    assert (ret, err) == (-1, errno.EFAULT)
    assert stats()["total_evictions"] == before["total_evictions"]
    assert [blob for _, blob in read_records()] == blobs


def test_read_into_a_too_small_buffer_is_einval_and_keeps_the_record() -> None:
    """A buffer smaller than the next record gives EINVAL; the next big read gets that record."""
    write_records([b"y" * 100])
    fd = os.open(DEVICE, os.O_RDONLY)
    try:
        with pytest.raises(OSError) as excinfo:
            os.read(fd, uapi.RECORD_HEADER.size + 99)
        again = os.read(fd, 1 << 20)
    finally:
        os.close(fd)
    assert excinfo.value.errno == errno.EINVAL
    assert again[uapi.RECORD_HEADER.size :] == b"y" * 100


def test_read_into_a_bad_pointer_is_efault_and_keeps_the_record() -> None:
    """read() into an unmapped address fails with EFAULT; the next read gets that record."""
    write_records([b"still here"])
    fd = os.open(DEVICE, os.O_RDONLY)
    try:
        ret = LIBC.read(fd, BAD_POINTER, ctypes.c_size_t(1 << 20))
        err = ctypes.get_errno()
        again = os.read(fd, 1 << 20)
    finally:
        os.close(fd)
    assert (ret, err) == (-1, errno.EFAULT)
    assert again[uapi.RECORD_HEADER.size :] == b"still here"


def test_read_with_nothing_unread_returns_zero_bytes() -> None:
    """With no record to read, read() returns 0 bytes at once."""
    fd = os.open(DEVICE, os.O_RDONLY)
    try:
        assert os.read(fd, 1 << 20) == b""
    finally:
        os.close(fd)


def test_read_after_the_last_record_returns_zero_bytes() -> None:
    """Once every record was read, read() returns 0 bytes."""
    write_records([b"only"])
    fd = os.open(DEVICE, os.O_RDONLY)
    try:
        os.read(fd, 1 << 20)
        assert os.read(fd, 1 << 20) == b""
    finally:
        os.close(fd)


def test_seek_to_zero_rewinds_the_file() -> None:
    """lseek(fd, 0, SEEK_SET) makes the records readable again."""
    write_records([b"once"])
    fd = os.open(DEVICE, os.O_RDONLY)
    try:
        first = os.read(fd, 1 << 20)
        assert os.read(fd, 1 << 20) == b""
        assert os.lseek(fd, 0, os.SEEK_SET) == 0
        again = os.read(fd, 1 << 20)
    finally:
        os.close(fd)
    assert again == first


@pytest.mark.parametrize(
    ("offset", "whence"),
    [(5, os.SEEK_SET), (0, os.SEEK_CUR), (0, os.SEEK_END)],
    ids=["offset-5", "seek-cur", "seek-end"],
)
def test_any_other_seek_is_espipe(offset: int, whence: int) -> None:
    """Every seek except to offset 0 from the start fails with ESPIPE."""
    fd = os.open(DEVICE, os.O_RDONLY)
    try:
        with pytest.raises(OSError) as excinfo:
            os.lseek(fd, offset, whence)
    finally:
        os.close(fd)
    assert excinfo.value.errno == errno.ESPIPE
