"""Each uid has its own ring: readers see their own, floods evict only the flooder's."""

from __future__ import annotations

import errno

from guestlib import (
    COUNTER_BLOBS,
    RING_SIZE,
    counter_blobs,
    read_records,
    run_as,
    stats,
    uid_of,
    write_as,
    write_records,
)

from memlog import uapi


def _flood_as(user: str, count: int) -> list[bytes]:
    """``user`` writes ``count`` 1 KiB records (made by the writer); returns them, oldest first."""
    write_as(user, COUNTER_BLOBS.format(count=count))
    return counter_blobs(count)


def test_a_reader_sees_only_its_own_uids_records() -> None:
    """bob reads nothing of alice's records, only his own."""
    write_as("alice", [b"alice-secret"])
    write_as("bob", [b"bob-note"])
    seen = run_as("bob", "fd = os.open(DEVICE, os.O_RDONLY); result(read_all(fd))")
    assert [bytes.fromhex(r["blob"]) for r in seen] == [b"bob-note"]
    assert {r["uid"] for r in seen} == {uid_of("bob")}


def test_a_non_admins_stats_are_of_its_own_ring() -> None:
    """alice's STATS count her records, not bob's."""
    write_as("alice", [b"one"])
    write_as("bob", [b"two", b"three"])
    got = run_as(
        "alice",
        """
        fd = os.open(DEVICE, os.O_RDONLY)
        buf = bytearray(uapi.STATS.size)
        fcntl.ioctl(fd, uapi.IOC_STATS, buf, True)
        result(uapi.STATS.unpack(buf)[2])
        """,
    )
    assert got == 1


def test_a_uids_flood_never_evicts_another_uids_records() -> None:
    """bob wrapping his 64 KiB ring several times leaves alice's record in place."""
    RING_SIZE.write_text("65536\n")
    alice_before = stats(uid_of("alice"))["total_evictions"]
    bob_before = stats(uid_of("bob"))["total_evictions"]
    write_as("alice", [b"alice-audit-trail"])
    flood = _flood_as("bob", 400)  # 432,000 bytes: about 6.6 times the ring
    bobs = [b for _, b in read_records(uid_of("bob"))]
    assert stats(uid_of("bob"))["total_evictions"] - bob_before > 300
    assert flood[0] not in bobs
    assert [b for _, b in read_records(uid_of("alice"))] == [b"alice-audit-trail"]
    assert stats(uid_of("alice"))["total_evictions"] == alice_before


def test_a_full_ring_evicts_its_own_oldest_records_first() -> None:
    """When bob's ring is full, his oldest records go and his newest stay, in order."""
    RING_SIZE.write_text("65536\n")
    before = stats(uid_of("bob"))["total_evictions"]
    blobs = _flood_as("bob", 200)
    kept = [b for _, b in read_records(uid_of("bob"))]
    assert 0 < len(kept) < len(blobs)
    assert kept == blobs[-len(kept) :]
    assert stats(uid_of("bob"))["total_evictions"] - before == len(blobs) - len(kept)


def test_a_full_ring_keeps_as_many_records_as_fit() -> None:
    """A 64 KiB ring of 1080-byte records holds at least 64 KiB minus one record of them."""
    RING_SIZE.write_text("65536\n")
    _flood_as("bob", 200)
    s = stats(uid_of("bob"))
    assert s["ring_bytes"] <= 65536
    assert s["ring_bytes"] > 65536 - 2 * uapi.record_size(1024)


def test_root_can_read_another_uids_records() -> None:
    """With CAP_SYS_ADMIN, FILTER_UID selects alice's ring."""
    write_as("alice", [b"for-root"])
    assert [b for _, b in read_records(uid_of("alice"))] == [b"for-root"]


def test_root_all_uid_view_shows_every_uid_in_seq_order() -> None:
    """MEMLOG_UID_ALL returns every uid's records, ordered by seq."""
    write_as("alice", [b"a1"])
    write_as("bob", [b"b1"])
    write_records([b"r1"])
    write_as("alice", [b"a2"])
    records = read_records(uapi.UID_ALL)
    assert [b for _, b in records] == [b"a1", b"b1", b"r1", b"a2"]
    assert [h["uid"] for h, _ in records] == [uid_of("alice"), uid_of("bob"), 0, uid_of("alice")]
    seqs = [h["seq"] for h, _ in records]
    assert seqs == sorted(seqs)


FILTER = """
fd = os.open(DEVICE, os.O_RDONLY)
try:
    fcntl.ioctl(fd, uapi.IOC_FILTER_UID, uapi.U32.pack({uid}))
    result(read_all(fd))
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
    """alice may select her own uid, and then reads her own records."""
    write_as("alice", [b"mine"])
    got = run_as("alice", FILTER.format(uid=uid_of("alice")))
    assert [bytes.fromhex(r["blob"]) for r in got] == [b"mine"]
