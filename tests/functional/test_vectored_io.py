"""One call, one record: vectored writes are concatenated, vectored reads return one record."""

from __future__ import annotations

import ctypes
import errno
import os

import pytest
from guestlib import DEVICE, read_records, write_records

from memlog import uapi


class _Iovec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]


def test_writev_stores_its_iovecs_as_one_record() -> None:
    """writev(["ab", "cd", "ef"]) is the one record "abcdef"."""
    fd = os.open(DEVICE, os.O_WRONLY)
    try:
        assert os.writev(fd, [b"ab", b"cd", b"ef"]) == 6
    finally:
        os.close(fd)
    assert [blob for _, blob in read_records(0)] == [b"abcdef"]


def test_pwritev2_at_the_current_position_stores_one_record() -> None:
    """pwritev2(offset -1) takes the same path: one record."""
    fd = os.open(DEVICE, os.O_WRONLY)
    try:
        assert os.pwritev(fd, [b"x" * 10, b"y" * 20], -1, os.RWF_DSYNC) == 30
    finally:
        os.close(fd)
    assert [blob for _, blob in read_records(0)] == [b"x" * 10 + b"y" * 20]


def test_writev_with_a_bad_later_iovec_fails_with_efault_and_stores_nothing() -> None:
    """All or nothing: the good first iovec is not stored when the second faults."""
    good = ctypes.create_string_buffer(b"good", 4)
    iov = (_Iovec * 2)(_Iovec(ctypes.addressof(good), 4), _Iovec(4096, 4))
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(DEVICE, os.O_WRONLY)
    try:
        ret = libc.writev(fd, iov, 2)
        err = ctypes.get_errno()
    finally:
        os.close(fd)
    assert (ret, err) == (-1, errno.EFAULT)
    assert read_records(0) == []


def test_writev_of_more_than_64_kib_in_all_is_emsgsize() -> None:
    """The iovecs together are the record: two of 40 KiB are too large."""
    fd = os.open(DEVICE, os.O_WRONLY)
    try:
        with pytest.raises(OSError) as exc:
            os.writev(fd, [b"a" * 40960, b"b" * 40960])
    finally:
        os.close(fd)
    assert exc.value.errno == errno.EMSGSIZE
    assert read_records(0) == []


def test_readv_returns_one_record_across_its_iovecs() -> None:
    """The header lands in the first iovec, the blob in the second; the next record stays."""
    write_records([b"first" * 10, b"second"])
    fd = os.open(DEVICE, os.O_RDONLY)
    try:
        head, body = bytearray(uapi.RECORD_HEADER.size), bytearray(4096)
        assert os.readv(fd, [head, body]) == uapi.RECORD_HEADER.size + 50
        assert uapi.RECORD_HEADER.unpack_from(head)[2] == 50
        assert bytes(body[:50]) == b"first" * 10
        rest = os.read(fd, 4096)
    finally:
        os.close(fd)
    assert rest[uapi.RECORD_HEADER.size :] == b"second"


def test_readv_with_iovecs_too_small_for_the_record_is_einval_and_consumes_nothing() -> None:
    """Two 20-byte iovecs cannot take a 56-byte header and its blob."""
    write_records([b"z" * 100])
    fd = os.open(DEVICE, os.O_RDONLY)
    try:
        with pytest.raises(OSError) as exc:
            os.readv(fd, [bytearray(20), bytearray(20)])
        again = os.read(fd, 4096)
    finally:
        os.close(fd)
    assert exc.value.errno == errno.EINVAL
    assert again[uapi.RECORD_HEADER.size :] == b"z" * 100
