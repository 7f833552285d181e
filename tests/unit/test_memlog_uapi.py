# SPDX-License-Identifier: MIT OR Apache-2.0
"""memlog.uapi: the _IOC encoding and the memlog ioctl numbers, against known values."""

from __future__ import annotations

import pytest

from memlog import uapi


def test_ior_encodes_a_well_known_linux_ioctl() -> None:
    """_IOR('T', 0x30, unsigned int) is TIOCGPTN, 0x80045430."""
    assert uapi.ior(ord("T"), 0x30, 4) == 0x80045430


def test_iow_encodes_a_well_known_linux_ioctl() -> None:
    """_IOW('T', 202, int) is TUNSETIFF, 0x400454CA."""
    assert uapi.iow(ord("T"), 202, 4) == 0x400454CA


def test_io_encodes_a_well_known_linux_ioctl() -> None:
    """_IO(0x12, 97) is BLKFLSBUF, 0x1261."""
    assert uapi.io(0x12, 97) == 0x1261


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("IOC_STATS", 0x8030C101),
        ("IOC_CLEAR", 0x0000C102),
        ("IOC_SET_RING_SIZE", 0x4004C103),
        ("IOC_FILTER_UID", 0x4004C104),
        ("IOC_GET_VERSION", 0x8004C105),
        ("IOC_SET_SESSION", 0x4010C106),
    ],
)
def test_memlog_ioctl_number_has_its_known_value(name: str, value: int) -> None:
    """Each memlog ioctl number is the one _IOC gives on x86_64 (type 0xC1)."""
    assert getattr(uapi, name) == value


@pytest.mark.parametrize(
    ("direction", "type_", "nr", "size"),
    [(4, 0xC1, 1, 0), (0, 0x100, 1, 0), (0, 0xC1, 256, 0), (0, 0xC1, 1, 1 << 14), (0, 0xC1, 1, -1)],
)
def test_ioc_refuses_a_field_that_does_not_fit(
    direction: int, type_: int, nr: int, size: int
) -> None:
    """Direction, type, number and size beyond their bit widths raise ValueError."""
    with pytest.raises(ValueError, match="does not fit"):
        uapi.ioc(direction, type_, nr, size)


def test_record_header_format_is_56_bytes() -> None:
    """The record header struct is 56 bytes, as the header's comment says."""
    assert uapi.RECORD_HEADER.size == 56


def test_stats_format_is_48_bytes() -> None:
    """The stats struct is 48 bytes, as the header's comment says."""
    assert uapi.STATS.size == 48


def test_record_size_is_header_plus_blob_rounded_to_8() -> None:
    """A 1-byte record takes 64 bytes of ring; 8 bytes takes 64; 9 takes 72."""
    assert [uapi.record_size(n) for n in (1, 8, 9)] == [64, 64, 72]
