"""max_bytes is shared fairly between users: a flood takes its room from the flooder.

A user is a uid of the initial user namespace; the uids of another user
namespace count as the namespace's owner. When max_bytes is used up, room for
a user within its share (max_bytes / users holding memory) comes from the
user holding the most, never from one holding less than its share.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import grp
import os

from guestlib import (
    DEVICE,
    GROUP,
    MAX_BYTES,
    lost,
    open_as,
    read_fd,
    read_records,
    stats,
    uid_of,
    write_as_uid,
)

from memlog import uapi

KIB = 1024
MIB = 1024 * KIB
# counters outlive CLEAR: uids of this module's own
FLOODERS = [40000 + i for i in range(20)]
VICTIM = 40100
NEWCOMERS = [40200 + i for i in range(8)]
NS_OUTSIDE = 300000  # the 64 uids of alice's namespace, as the initial namespace sees them
NS_UIDS = 64
CLONE_NEWUSER = 0x10000000


def _blobs(tag: str, count: int, size: int) -> list[bytes]:
    return [f"{tag}-{i:05d}-".encode().ljust(size, b".") for i in range(count)]


def _flood(uids: list[int], records: int = 200) -> None:
    for uid in uids:
        write_as_uid(uid, _blobs(f"flood{uid}", records, KIB))


def test_a_flood_of_twenty_uids_takes_nothing_from_a_user_within_its_share() -> None:
    """The victim keeps every record and can still grow; a newcomer's first write succeeds."""
    MAX_BYTES.write_text(f"{1 * MIB}\n")
    early = _blobs("victim", 8, 512)
    assert write_as_uid(VICTIM, early) == [0] * 8
    _flood(FLOODERS)
    assert stats(uapi.UID_ALL)["ring_bytes"] <= 1 * MIB

    later = _blobs("victim-later", 20, KIB)
    assert write_as_uid(VICTIM, later) == [0] * 20, "the victim's ring could not grow"
    assert [blob for _, blob in read_records(VICTIM)] == early + later
    assert stats(VICTIM)["total_evictions"] == 0

    assert write_as_uid(NEWCOMERS[0], [b"first words"]) == [0]
    assert [blob for _, blob in read_records(NEWCOMERS[0])] == [b"first words"]


def test_records_taken_from_the_flooder_are_counted_as_evictions_and_lost_to_its_readers() -> None:
    """A reader of the flooder's uid gets every record or counts it in GET_LOST."""
    MAX_BYTES.write_text(f"{1 * MIB}\n")
    hog = 40300
    reader = open_as(0, os.O_RDONLY)
    try:
        fcntl.ioctl(reader, uapi.IOC_FILTER_UID, uapi.U32.pack(hog))
        write_as_uid(hog, _blobs("hog", 1000, KIB))  # a 1 MiB ring: the whole budget
        before = stats(hog)["total_evictions"]
        for uid in NEWCOMERS:
            assert write_as_uid(uid, [b"x" * 2048]) == [0], uid
        after = stats(hog)
        assert after["total_evictions"] > before, "the newcomers' room came from nowhere"
        got = read_fd(reader)
        assert len(got) + lost(reader) == after["total_writes"]
        assert len(got) == after["records_in_ring"]
    finally:
        os.close(reader)


# In a child of the test: become ``owner`` (in the memlog group), make a user
# namespace, and wait for the test (root) to write its uid map.
def _enter_namespace_of(owner: int, ready_w: int, mapped_r: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    os.setgroups([grp.getgrnam(GROUP).gr_gid])
    os.setresgid(owner, owner, owner)
    os.setresuid(owner, owner, owner)
    if libc.unshare(CLONE_NEWUSER):
        os._exit(10)
    os.write(ready_w, b"r")
    if os.read(mapped_r, 1) != b"m":
        os._exit(11)


# Run by a child of the test as alice: a user namespace of alice's with 64
# uids (mapped by the test, as root), each writing through its own fd.
def _namespace_flood(ready_w: int, mapped_r: int, records: int) -> None:
    _enter_namespace_of(uid_of("alice"), ready_w, mapped_r)
    children = []
    for uid in range(NS_UIDS):
        pid = os.fork()
        if pid == 0:
            status = 12
            try:
                os.setresuid(uid, uid, uid)
                fd = os.open(DEVICE, os.O_WRONLY)
                for blob in _blobs(f"ns{uid}", records, KIB):
                    os.write(fd, blob)
                status = 0
            finally:
                os._exit(status)
        children.append(pid)
    failed = sum(1 for pid in children if os.waitpid(pid, 0)[1])
    os._exit(min(failed, 1) * 13)


def _flood_from_alices_namespace(records: int) -> None:
    ready_r, ready_w = os.pipe()
    mapped_r, mapped_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            _namespace_flood(ready_w, mapped_r, records)
        finally:
            os._exit(14)
    assert os.read(ready_r, 1) == b"r", "alice's child could not make a user namespace"
    with open(f"/proc/{pid}/uid_map", "w") as fh:
        fh.write(f"0 {NS_OUTSIDE} {NS_UIDS}\n")
    os.write(mapped_w, b"m")
    _, status = os.waitpid(pid, 0)
    for fd in (ready_r, ready_w, mapped_r, mapped_w):
        os.close(fd)
    assert os.waitstatus_to_exitcode(status) == 0, "a uid of the namespace failed to write"


def test_the_64_uids_of_one_users_namespace_count_as_one_user_beside_eight_newcomers() -> None:
    """alice's namespace fills max_bytes; eight users arriving after all write, from her share."""
    MAX_BYTES.write_text(f"{1 * MIB}\n")
    _flood_from_alices_namespace(records=60)
    assert stats(uapi.UID_ALL)["ring_bytes"] <= 1 * MIB
    for uid in NEWCOMERS:
        assert write_as_uid(uid, [b"n" * 2048]) == [0], f"newcomer {uid} was refused"
        assert len(read_records(uid)) == 1
    # records still carry the writer's own uid, as the reader's namespace sees it
    uids = {h["uid"] for h, _ in read_records(uapi.UID_ALL)}
    assert {NS_OUTSIDE, NS_OUTSIDE + NS_UIDS - 1} <= uids
    evicted = sum(stats(NS_OUTSIDE + i)["total_evictions"] for i in range(NS_UIDS))
    assert evicted > 0


def test_a_user_at_its_share_evicts_its_own_records_rather_than_anothers() -> None:
    """Two users over a small budget: the second flood costs the first nothing below its share."""
    MAX_BYTES.write_text(f"{256 * KIB}\n")
    first, second = FLOODERS[:2]
    kept = _blobs("first", 40, KIB)  # 40 KiB: below half of 256 KiB
    assert write_as_uid(first, kept) == [0] * 40
    assert write_as_uid(second, _blobs("second", 1000, KIB)) == [0] * 1000
    assert [blob for _, blob in read_records(first)] == kept
    assert stats(second)["total_evictions"] > 0
    assert stats(uapi.UID_ALL)["ring_bytes"] <= 256 * KIB


def test_one_ring_reclaimed_four_times_keeps_its_newest_records_whole_and_counted() -> None:
    """A hog holding all of max_bytes gives room to 15 newcomers of 64 KiB, four groups
    of them: its ring gives room once per group, from 1 MiB down to 64 KiB. Its reader,
    10 records in before the first, reads on: the newest records, whole and in order, the
    rest counted in GET_LOST, and every one of them in STATS' evictions."""
    MAX_BYTES.write_text(f"{1 * MIB}\n")
    hog = 40400
    newcomers = [40500 + i for i in range(15)]
    groups = [newcomers[:8], newcomers[8:12], newcomers[12:14], newcomers[14:]]
    written = _blobs("hog", 900, KIB)  # 900 records of 1080 bytes: all in 1 MiB
    reader = open_as(0, os.O_RDONLY)
    try:
        fcntl.ioctl(reader, uapi.IOC_FILTER_UID, uapi.U32.pack(hog))
        assert write_as_uid(hog, written) == [0] * len(written)
        first = [os.read(reader, uapi.RECORD_HEADER.size + KIB) for _ in range(10)]
        sizes = [stats(hog)["ring_bytes"]]
        for group in groups:
            for uid in group:
                assert write_as_uid(uid, _blobs(f"new{uid}", 50, KIB)) == [0] * 50, uid
            sizes.append(stats(hog)["ring_bytes"])
        rest = [blob for _, blob in read_fd(reader)]
        missed = lost(reader)
    finally:
        os.close(reader)
    # each group's first write found max_bytes used up: the hog's ring (1 MiB) gave half,
    # once per group, its newest records filling what it kept
    assert [MIB >> (k + 1) < size <= MIB >> k for k, size in enumerate(sizes)] == [True] * 5, sizes
    assert [r[uapi.RECORD_HEADER.size :] for r in first] == written[:10]
    assert rest == written[len(written) - len(rest) :]
    after = stats(hog)
    assert 10 + len(rest) + missed == after["total_writes"] == len(written)
    # evicted: what the reader missed, and the 10 it had read (the oldest)
    assert after["total_evictions"] == missed + 10
    assert after["records_in_ring"] == len(rest)
    assert stats(uapi.UID_ALL)["ring_bytes"] <= 1 * MIB


# Run by a child of the test as ``owner``: a user namespace of ``count`` uids
# (mapped by the test, as root), whose uids write one record each, in turn;
# each write's errno goes to ``results_w`` as one byte (0: stored).
def _namespace_writes(owner: int, ready_w: int, mapped_r: int, results_w: int, count: int) -> None:
    _enter_namespace_of(owner, ready_w, mapped_r)
    for uid in range(count):
        pid = os.fork()
        if pid == 0:
            code = 255
            try:
                os.setresuid(uid, uid, uid)
                fd = os.open(DEVICE, os.O_WRONLY)
                try:
                    os.write(fd, f"ns-uid-{uid}".encode())
                    code = 0
                except OSError as exc:
                    code = exc.errno or 255
            finally:
                os.write(results_w, bytes([code]))
                os._exit(0)
        os.waitpid(pid, 0)
    os._exit(0)


def _write_from_a_namespace(owner: int, outside: int, count: int) -> list[int]:
    """Each of the ``count`` uids of a new namespace of ``owner``'s (the initial
    namespace sees them as ``outside`` and up) writes one record: their errnos."""
    ready_r, ready_w = os.pipe()
    mapped_r, mapped_w = os.pipe()
    results_r, results_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            _namespace_writes(owner, ready_w, mapped_r, results_w, count)
        finally:
            os._exit(14)
    try:
        assert os.read(ready_r, 1) == b"r", "the child could not make a user namespace"
        with open(f"/proc/{pid}/uid_map", "w") as fh:
            fh.write(f"0 {outside} {count}\n")
        os.write(mapped_w, b"m")
    finally:
        _, status = os.waitpid(pid, 0)
    os.close(results_w)
    results = b""
    while chunk := os.read(results_r, 4096):
        results += chunk
    for fd in (ready_r, ready_w, mapped_r, mapped_w, results_r):
        os.close(fd)
    assert os.waitstatus_to_exitcode(status) == 0
    return list(results)


def test_a_user_holds_at_most_as_many_rings_as_max_bytes_has_first_buffers() -> None:
    """With max_bytes at 64 KiB (16 first buffers of 4 KiB), the 17th uid of one user's
    namespace gets ENOSPC on its first write; the user's uids with a ring and other users
    write on, and raising max_bytes raises the bound: ring structs are bounded per user."""
    MAX_BYTES.write_text(f"{64 * KIB}\n")
    owner, outside, newcomer = 41000, 320000, 41001
    bounded = [0] * 16 + [errno.ENOSPC] * 8
    assert _write_from_a_namespace(owner, outside, 24) == bounded
    assert write_as_uid(newcomer, [b"another user"]) == [0]
    assert _write_from_a_namespace(owner, outside, 24) == bounded
    assert not read_records(outside + 20)

    MAX_BYTES.write_text(f"{128 * KIB}\n")
    assert _write_from_a_namespace(owner, outside, 24) == [0] * 24
    assert [blob for _, blob in read_records(outside + 20)] == [b"ns-uid-20"]
