"""kernel.memlog.ring_size: its default, its range, and shrinking."""

from __future__ import annotations

import errno

import pytest
from guestlib import RING_SIZE, read_records, stats, write_records

from memlog import uapi


def _write_sysctl(value: str) -> int:
    try:
        RING_SIZE.write_text(value + "\n")
        return 0
    except OSError as exc:
        return exc.errno or -1


def test_ring_size_defaults_to_4_mib() -> None:
    """A freshly loaded module's ring size is 4 MiB (set back by the suite's fixture)."""
    assert int(RING_SIZE.read_text()) == uapi.RING_SIZE_DEFAULT == 4 << 20


@pytest.mark.parametrize("value", ["65535", str((256 << 20) + 1), "garbage", "-1"])
def test_out_of_range_ring_size_is_einval_and_changes_nothing(value: str) -> None:
    """Writing a size outside 64 KiB..256 MiB fails with EINVAL; the value stays."""
    assert _write_sysctl(value) == errno.EINVAL
    assert int(RING_SIZE.read_text()) == uapi.RING_SIZE_DEFAULT


@pytest.mark.parametrize("value", [65536, 256 << 20])
def test_ring_size_accepts_the_range_limits(value: int) -> None:
    """64 KiB and 256 MiB are accepted."""
    assert _write_sysctl(str(value)) == 0
    assert int(RING_SIZE.read_text()) == value


def test_shrinking_evicts_the_oldest_records_down_to_the_new_size() -> None:
    """After shrinking to 64 KiB, the ring holds at most 64 KiB of the newest records."""
    blobs = [i.to_bytes(4, "big") * 256 for i in range(200)]  # 200 KiB of records
    write_records(blobs)
    assert _write_sysctl("65536") == 0
    s = stats()
    kept = [b for _, b in read_records()]
    assert s["ring_bytes"] <= 65536
    assert s["ring_capacity"] == 65536
    assert 0 < len(kept) < len(blobs)
    assert kept == blobs[-len(kept) :]
