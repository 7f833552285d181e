"""STATS, CLEAR, SET_RING_SIZE and GET_VERSION, with their scopes and permissions."""

from __future__ import annotations

import errno
import time

from guestlib import (
    DEVICE,
    RING_SIZE,
    read_records,
    root_ioctl,
    run_as,
    stats,
    uid_of,
    write_records,
)

from memlog import uapi


def test_get_version_returns_schema_version_1() -> None:
    """GET_VERSION is the record schema version."""
    assert uapi.U32.unpack(root_ioctl(uapi.IOC_GET_VERSION, bytes(4)))[0] == 1


def test_stats_count_the_views_records_and_bytes() -> None:
    """STATS reports writes, records, bytes (header + blob, 8-aligned) and capacity."""
    counted = stats()
    before = time.clock_gettime_ns(time.CLOCK_REALTIME)
    write_records([b"a" * 10, b"b" * 100, b"c" * 1000])
    s = stats()
    assert s["total_writes"] - counted["total_writes"] == 3
    assert s["records_in_ring"] == 3
    assert s["total_evictions"] == counted["total_evictions"]
    assert s["ring_bytes"] == sum(uapi.record_size(n) for n in (10, 100, 1000))
    assert s["ring_capacity"] == int(RING_SIZE.read_text())
    assert before <= s["oldest_ts_ns"] <= s["newest_ts_ns"]


def test_stats_of_a_uid_that_never_wrote_are_zero() -> None:
    """A uid with no ring (carol never writes) has zero counters and the ring size as capacity."""
    s = stats(uid_of("carol"))
    assert s["total_writes"] == s["records_in_ring"] == s["ring_bytes"] == 0
    assert s["ring_capacity"] == int(RING_SIZE.read_text())


def test_stats_of_all_uids_are_sums() -> None:
    """For MEMLOG_UID_ALL, STATS sums every ring."""
    write_records([b"r"])
    run_as("alice", 'fd = os.open(DEVICE, os.O_WRONLY); os.write(fd, b"a"); result(0)')
    s = stats(uapi.UID_ALL)
    assert s["records_in_ring"] == 2
    assert s["ring_bytes"] == 2 * uapi.record_size(1)


CLEAR = """
fd = os.open(DEVICE, os.O_RDONLY)
try:
    fcntl.ioctl(fd, uapi.IOC_CLEAR, 0)
    result(0)
except OSError as exc:
    result(exc.errno)
"""


def test_clear_needs_cap_sys_admin() -> None:
    """alice's CLEAR fails with EPERM and her records stay."""
    run_as("alice", 'fd = os.open(DEVICE, os.O_WRONLY); os.write(fd, b"keep"); result(0)')
    assert run_as("alice", CLEAR) == errno.EPERM
    assert len(read_records(uid_of("alice"))) == 1


def test_clear_empties_only_the_selected_uids_ring() -> None:
    """Root clearing alice's view leaves bob's records; counters are kept."""
    writes_before = stats(uid_of("alice"))["total_writes"]
    run_as("alice", 'fd = os.open(DEVICE, os.O_WRONLY); os.write(fd, b"a"); result(0)')
    run_as("bob", 'fd = os.open(DEVICE, os.O_WRONLY); os.write(fd, b"b"); result(0)')
    import fcntl
    import os

    fd = os.open(DEVICE, os.O_RDONLY)
    try:
        fcntl.ioctl(fd, uapi.IOC_FILTER_UID, uapi.U32.pack(uid_of("alice")))
        fcntl.ioctl(fd, uapi.IOC_CLEAR, 0)
    finally:
        os.close(fd)
    assert read_records(uid_of("alice")) == []
    assert [b for _, b in read_records(uid_of("bob"))] == [b"b"]
    assert stats(uid_of("alice"))["total_writes"] == writes_before + 1


SET_RING = """
fd = os.open(DEVICE, os.O_RDONLY)
try:
    fcntl.ioctl(fd, uapi.IOC_SET_RING_SIZE, uapi.U32.pack(1 << 20))
    result(0)
except OSError as exc:
    result(exc.errno)
"""


def test_set_ring_size_needs_cap_sys_admin() -> None:
    """alice's SET_RING_SIZE fails with EPERM and the size is unchanged."""
    assert run_as("alice", SET_RING) == errno.EPERM
    assert int(RING_SIZE.read_text()) == uapi.RING_SIZE_DEFAULT


def test_set_ring_size_out_of_range_is_einval() -> None:
    """SET_RING_SIZE below 64 KiB fails with EINVAL."""
    import fcntl
    import os

    fd = os.open(DEVICE, os.O_RDONLY)
    try:
        try:
            fcntl.ioctl(fd, uapi.IOC_SET_RING_SIZE, uapi.U32.pack(1024))
            err = 0
        except OSError as exc:
            err = exc.errno
    finally:
        os.close(fd)
    assert err == errno.EINVAL
    assert int(RING_SIZE.read_text()) == uapi.RING_SIZE_DEFAULT


def test_set_ring_size_by_root_changes_the_sysctl() -> None:
    """Root's SET_RING_SIZE is what kernel.memlog.ring_size then says."""
    root_ioctl(uapi.IOC_SET_RING_SIZE, uapi.U32.pack(1 << 20))
    assert int(RING_SIZE.read_text()) == 1 << 20
