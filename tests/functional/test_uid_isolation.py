"""Each uid has its own ring: readers see their own, floods evict only the flooder's."""

from __future__ import annotations

import errno

from guestlib import RING_SIZE, read_records, run_as, stats, uid_of, write_records

from memlog import uapi

WRITE = "fd = os.open(DEVICE, os.O_WRONLY)\nfor b in {blobs}: os.write(fd, b)\nresult(0)"
# count records of 1 KiB, each filled with a 4-byte counter, made in the writer
FLOOD = '[i.to_bytes(4, "big") * 256 for i in range({count})]'


def _write_as(user: str, blobs: list[bytes]) -> None:
    run_as(user, WRITE.format(blobs=repr(blobs)))


def _flood_as(user: str, count: int) -> list[bytes]:
    """``user`` writes ``count`` 1 KiB records; returns them, oldest first."""
    run_as(user, WRITE.format(blobs=FLOOD.format(count=count)))
    return [i.to_bytes(4, "big") * 256 for i in range(count)]


def test_a_reader_sees_only_its_own_uids_records() -> None:
    """bob reads nothing of alice's records, only his own."""
    _write_as("alice", [b"alice-secret"])
    _write_as("bob", [b"bob-note"])
    seen = run_as("bob", "fd = os.open(DEVICE, os.O_RDONLY); result(read_all(fd))")
    assert [bytes.fromhex(r["blob"]) for r in seen] == [b"bob-note"]
    assert {r["uid"] for r in seen} == {uid_of("bob")}


def test_a_uids_flood_never_evicts_another_uids_records() -> None:
    """bob wrapping his ring many times leaves alice's record in place."""
    RING_SIZE.write_text("65536\n")
    evicted_before = stats(uid_of("alice"))["total_evictions"]
    _write_as("alice", [b"alice-audit-trail"])
    _flood_as("bob", 400)
    assert [b for _, b in read_records(uid_of("alice"))] == [b"alice-audit-trail"]
    assert stats(uid_of("alice"))["total_evictions"] == evicted_before


def test_a_full_ring_evicts_its_own_oldest_records_first() -> None:
    """When bob's ring is full, his oldest records go and his newest stay."""
    RING_SIZE.write_text("65536\n")
    before = stats(uid_of("bob"))["total_evictions"]
    blobs = _flood_as("bob", 200)
    kept = [b for _, b in read_records(uid_of("bob"))]
    assert kept == blobs[-len(kept) :]
    assert 0 < len(kept) < len(blobs)
    assert stats(uid_of("bob"))["total_evictions"] - before == len(blobs) - len(kept)


def test_root_can_read_another_uids_records() -> None:
    """With CAP_SYS_ADMIN, FILTER_UID selects alice's ring."""
    _write_as("alice", [b"for-root"])
    assert [b for _, b in read_records(uid_of("alice"))] == [b"for-root"]


def test_root_all_uid_view_shows_every_uid_in_seq_order() -> None:
    """MEMLOG_UID_ALL returns every uid's records, ordered by seq."""
    _write_as("alice", [b"a1"])
    _write_as("bob", [b"b1"])
    write_records([b"r1"])
    _write_as("alice", [b"a2"])
    records = read_records(uapi.UID_ALL)
    assert [b for _, b in records] == [b"a1", b"b1", b"r1", b"a2"]
    seqs = [h["seq"] for h, _ in records]
    assert seqs == sorted(seqs)


FILTER = """
fd = os.open(DEVICE, os.O_RDONLY)
try:
    fcntl.ioctl(fd, uapi.IOC_FILTER_UID, uapi.U32.pack({uid}))
    result(0)
except OSError as exc:
    result(exc.errno)
"""


def test_non_admin_filter_of_a_foreign_uid_is_eperm() -> None:
    """alice may not select bob's records: EPERM."""
    assert run_as("alice", FILTER.format(uid=uid_of("bob"))) == errno.EPERM


def test_non_admin_filter_of_all_uids_is_eperm() -> None:
    """alice may not select every uid: EPERM."""
    assert run_as("alice", FILTER.format(uid=uapi.UID_ALL)) == errno.EPERM


def test_non_admin_filter_of_its_own_uid_is_allowed() -> None:
    """alice may select her own uid."""
    assert run_as("alice", FILTER.format(uid=uid_of("alice"))) == 0
