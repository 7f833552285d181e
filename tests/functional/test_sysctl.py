"""kernel.memlog.ring_size: its default, its range, and shrinking."""

from __future__ import annotations

import errno
import sys

import pytest
from guestlib import (
    COUNTER_BLOBS,
    RING_SIZE,
    counter_blobs,
    read_records,
    reload_module,
    stats,
    uid_of,
    write_as,
    write_records,
)

from memlog import uapi

BLOBS = counter_blobs(200)  # 200 x 1080 bytes with the headers: 216,000 bytes


def _write_sysctl(value: str) -> int:
    try:
        RING_SIZE.write_text(value + "\n")
        return 0
    except OSError as exc:
        return exc.errno or -1


def test_ring_size_defaults_to_4_mib() -> None:
    """A freshly loaded module's kernel.memlog.ring_size is 4194304."""
    RING_SIZE.write_text("65536\n")
    reload_module()
    assert int(RING_SIZE.read_text()) == uapi.RING_SIZE_DEFAULT == 4194304


@pytest.mark.parametrize("value", ["65535", str((256 << 20) + 1), "garbage", "-1", "4294967296"])
def test_out_of_range_ring_size_is_einval_and_changes_nothing(value: str) -> None:
    """Writing a size outside 64 KiB..256 MiB, or not a number, fails with EINVAL; it stays."""
    assert _write_sysctl(value) == errno.EINVAL
    assert int(RING_SIZE.read_text()) == uapi.RING_SIZE_DEFAULT


@pytest.mark.parametrize("value", [65536, 1 << 20, 256 << 20])
def test_ring_size_in_range_applies(value: int) -> None:
    """Sizes from 64 KiB to 256 MiB, limits included, are accepted and read back."""
    assert _write_sysctl(str(value)) == 0
    assert int(RING_SIZE.read_text()) == value


def test_ring_size_applies_to_existing_rings() -> None:
    """A new ring size is the capacity STATS reports for a ring made before."""
    write_records([b"made before"])
    assert _write_sysctl(str(1 << 20)) == 0
    assert stats()["ring_capacity"] == 1 << 20


def test_shrinking_keeps_the_newest_records_within_the_new_size() -> None:
    """After shrinking to 64 KiB, the ring holds at most 64 KiB: the newest records, in order."""
    write_records(BLOBS)
    assert _write_sysctl("65536") == 0
    s = stats()
    kept = [b for _, b in read_records()]
    assert s["ring_bytes"] <= 65536
    assert s["ring_bytes"] == len(kept) * uapi.record_size(1024)
    assert 0 < len(kept) < len(BLOBS)
    assert kept == BLOBS[-len(kept) :]


def test_shrinking_counts_the_evicted_records() -> None:
    """Records dropped by a shrink are counted in total_evictions."""
    write_records(BLOBS)
    before = stats()["total_evictions"]
    assert _write_sysctl("65536") == 0
    s = stats()
    assert s["total_evictions"] - before == len(BLOBS) - s["records_in_ring"]


def test_shrinking_evicts_from_every_uids_ring() -> None:
    """A shrink trims alice's ring as well as root's, oldest records first."""
    write_records(BLOBS)
    write_as("alice", COUNTER_BLOBS.format(count=200))  # made by the writer
    assert _write_sysctl("65536") == 0
    kept = [b for _, b in read_records(uid_of("alice"))]
    assert stats(uid_of("alice"))["ring_bytes"] <= 65536
    assert 0 < len(kept) < len(BLOBS)
    assert kept == BLOBS[-len(kept) :]


def test_growing_keeps_every_record() -> None:
    """Raising the ring size drops nothing."""
    RING_SIZE.write_text("65536\n")
    write_records(BLOBS[:50])
    assert _write_sysctl(str(8 << 20)) == 0
    assert [b for _, b in read_records()] == BLOBS[:50]


WRITE_RING_SIZE = f"""
import os
fd = os.open("{RING_SIZE}", os.O_WRONLY)
os.write(fd, b"{uapi.RING_SIZE_MIN}")
"""


def test_writing_ring_size_needs_cap_sys_admin_even_as_root() -> None:
    """root without CAP_SYS_ADMIN (dropped from its bounding set) gets EPERM; the value stays."""
    import subprocess

    result = subprocess.run(
        ["setpriv", "--inh-caps=-sys_admin", "--bounding-set=-sys_admin", "--",
         sys.executable, "-c", WRITE_RING_SIZE],
        capture_output=True,
        text=True,
        check=False,
    )  # fmt: skip
    assert result.returncode != 0
    assert "PermissionError: [Errno 1] Operation not permitted" in result.stderr
    assert int(RING_SIZE.read_text()) == uapi.RING_SIZE_DEFAULT
