"""STATS, CLEAR, SET_RING_SIZE, FILTER_UID and GET_VERSION, with their scopes and permissions."""

from __future__ import annotations

import errno
import fcntl
import os

import pytest
from guestlib import (
    DEVICE,
    RING_SIZE,
    clear,
    read_records,
    root_ioctl,
    run_as,
    stats,
    uid_of,
    write_as,
    write_records,
)

from memlog import uapi

COUNTERS = ("total_writes", "total_evictions", "records_in_ring", "ring_bytes")

# Run as another user: the errno of one ioctl on a fresh fd, 0 if it worked
IOCTL_ERRNO = """
fd = os.open(DEVICE, os.O_RDONLY)
try:
    fcntl.ioctl(fd, {request}, {arg!r})
    result(0)
except OSError as exc:
    result(exc.errno)
"""


def _root_ioctl_errno(request: int, arg: bytes | int) -> int:
    try:
        root_ioctl(request, arg)
    except OSError as exc:
        return exc.errno or -1
    return 0


def test_get_version_returns_schema_version_1() -> None:
    """GET_VERSION is the record schema version, 1."""
    assert uapi.U32.unpack(root_ioctl(uapi.IOC_GET_VERSION, bytes(4)))[0] == 1


def test_unknown_ioctl_is_enotty() -> None:
    """An ioctl number memlog does not define fails with ENOTTY."""
    assert _root_ioctl_errno(uapi.io(uapi.IOC_TYPE, 0x63), 0) == errno.ENOTTY


def test_known_ioctl_number_with_a_wrong_size_is_enotty() -> None:
    """STATS's number encoded with another argument size is not STATS: ENOTTY."""
    request = uapi.ior(uapi.IOC_TYPE, 1, uapi.STATS.size - 8)
    assert _root_ioctl_errno(request, bytes(uapi.STATS.size)) == errno.ENOTTY


def test_stats_count_the_views_records_and_bytes() -> None:
    """STATS reports writes, records, bytes (header + blob, 8-aligned) and capacity."""
    counted = stats()
    write_records([b"a" * 10, b"b" * 100, b"c" * 1001])
    s = stats()
    assert s["total_writes"] - counted["total_writes"] == 3
    assert s["records_in_ring"] == 3
    assert s["total_evictions"] == counted["total_evictions"]
    assert s["ring_bytes"] == sum(uapi.record_size(n) for n in (10, 100, 1001)) == 1296
    assert s["ring_capacity"] == int(RING_SIZE.read_text())


def test_stats_oldest_and_newest_are_the_ring_ends_timestamps() -> None:
    """oldest_ts_ns and newest_ts_ns are the first and last stored records' ts_ns."""
    write_records([b"1", b"2", b"3"])
    headers = [h for h, _ in read_records()]
    s = stats()
    assert (s["oldest_ts_ns"], s["newest_ts_ns"]) == (headers[0]["ts_ns"], headers[-1]["ts_ns"])


def test_stats_of_an_empty_ring_have_zero_timestamps() -> None:
    """After CLEAR, records_in_ring, ring_bytes, oldest and newest are 0."""
    write_records([b"soon cleared"])
    root_ioctl(uapi.IOC_CLEAR)
    s = stats()
    assert (s["records_in_ring"], s["ring_bytes"], s["oldest_ts_ns"], s["newest_ts_ns"]) == (
        0,
        0,
        0,
        0,
    )


def test_stats_of_a_uid_that_never_wrote_are_zero() -> None:
    """A uid with no ring (carol never writes) has zero counters and the ring size as capacity."""
    s = stats(uid_of("carol"))
    assert [s[name] for name in (*COUNTERS, "oldest_ts_ns", "newest_ts_ns")] == [0] * 6
    assert s["ring_capacity"] == int(RING_SIZE.read_text())


def test_stats_of_all_uids_are_the_sums_of_every_ring() -> None:
    """For MEMLOG_UID_ALL, the counters are sums and oldest/newest the min/max of the rings.

    Counters outlive CLEAR and other tests' uids have rings: the totals are
    compared as what this test's writes added to them.
    """
    uids = (0, uid_of("alice"), uid_of("bob"))
    every_before = stats(uapi.UID_ALL)
    rings_before = [stats(uid) for uid in uids]
    write_records([b"r"])
    write_as("alice", [b"a", b"aa"])
    write_as("bob", [b"b" * 100])
    rings = [stats(uid) for uid in uids]
    every = stats(uapi.UID_ALL)
    for name in COUNTERS:
        added = sum(r[name] - b[name] for r, b in zip(rings, rings_before, strict=True))
        assert every[name] - every_before[name] == added, name
    assert every["records_in_ring"] == 4
    assert every["oldest_ts_ns"] == min(r["oldest_ts_ns"] for r in rings)
    assert every["newest_ts_ns"] == max(r["newest_ts_ns"] for r in rings)


def test_stats_of_all_uids_sum_the_rings_capacities() -> None:
    """For MEMLOG_UID_ALL, ring_capacity is the ring size times the number of rings."""
    write_records([b"r"])
    write_as("alice", [b"a"])
    capacity = stats(uapi.UID_ALL)["ring_capacity"]
    size = int(RING_SIZE.read_text())
    assert capacity % size == 0
    assert capacity >= 2 * size


def test_clear_needs_cap_sys_admin() -> None:
    """alice's CLEAR fails with EPERM and her records stay."""
    write_as("alice", [b"keep"])
    assert run_as("alice", IOCTL_ERRNO.format(request=uapi.IOC_CLEAR, arg=0)) == errno.EPERM
    assert len(read_records(uid_of("alice"))) == 1


def test_clear_of_one_uid_leaves_other_uids_records() -> None:
    """Root clearing alice's view leaves bob's records."""
    write_as("alice", [b"a"])
    write_as("bob", [b"b"])
    clear(uid_of("alice"))
    assert read_records(uid_of("alice")) == []
    assert [b for _, b in read_records(uid_of("bob"))] == [b"b"]


def test_clear_keeps_the_counters() -> None:
    """After CLEAR, total_writes and total_evictions are what they were."""
    RING_SIZE.write_text("65536\n")
    write_records([b"e" * 4000] * 20)  # wraps the 64 KiB ring
    before = stats()
    root_ioctl(uapi.IOC_CLEAR)
    after = stats()
    assert before["total_evictions"] > 0
    assert (after["total_writes"], after["total_evictions"]) == (
        before["total_writes"],
        before["total_evictions"],
    )
    assert after["records_in_ring"] == 0


def test_clear_of_all_uids_empties_every_ring() -> None:
    """Root's CLEAR with MEMLOG_UID_ALL drops every uid's records."""
    write_records([b"r"])
    write_as("alice", [b"a"])
    clear(uapi.UID_ALL)
    assert read_records(uapi.UID_ALL) == []


def test_set_ring_size_needs_cap_sys_admin() -> None:
    """alice's SET_RING_SIZE fails with EPERM and the size is unchanged."""
    arg = uapi.U32.pack(1 << 20)
    got = run_as("alice", IOCTL_ERRNO.format(request=uapi.IOC_SET_RING_SIZE, arg=arg))
    assert got == errno.EPERM
    assert int(RING_SIZE.read_text()) == uapi.RING_SIZE_DEFAULT


@pytest.mark.parametrize("size", [0, uapi.RING_SIZE_MIN - 1, uapi.RING_SIZE_MAX + 1, 0xFFFFFFFF])
def test_set_ring_size_out_of_range_is_einval(size: int) -> None:
    """SET_RING_SIZE outside 64 KiB..256 MiB fails with EINVAL; the size is unchanged."""
    assert _root_ioctl_errno(uapi.IOC_SET_RING_SIZE, uapi.U32.pack(size)) == errno.EINVAL
    assert int(RING_SIZE.read_text()) == uapi.RING_SIZE_DEFAULT


def test_set_ring_size_by_root_changes_the_sysctl() -> None:
    """Root's SET_RING_SIZE is what kernel.memlog.ring_size then says."""
    root_ioctl(uapi.IOC_SET_RING_SIZE, uapi.U32.pack(1 << 20))
    assert int(RING_SIZE.read_text()) == 1 << 20


def test_set_ring_size_by_root_changes_every_rings_capacity() -> None:
    """After SET_RING_SIZE, STATS of an existing ring reports the new capacity."""
    write_as("alice", [b"a"])
    root_ioctl(uapi.IOC_SET_RING_SIZE, uapi.U32.pack(1 << 20))
    assert stats(uid_of("alice"))["ring_capacity"] == 1 << 20


def test_filter_uid_rewinds_the_file() -> None:
    """FILTER_UID on a file that read everything makes the records readable again."""
    write_records([b"again"])
    fd = os.open(DEVICE, os.O_RDONLY)
    try:
        first = os.read(fd, 1 << 20)
        assert os.read(fd, 1 << 20) == b""
        fcntl.ioctl(fd, uapi.IOC_FILTER_UID, uapi.U32.pack(0))
        again = os.read(fd, 1 << 20)
    finally:
        os.close(fd)
    assert again == first
