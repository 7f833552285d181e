"""A ring moving to a new buffer (growth, a new ring size) keeps its records and readers' places.

Records keep their logical offsets when their ring moves, and the end of a
buffer a record did not fit in is a filler that moves with them: these tests
make rings wrap (fillers between records), then move them, and read back.
The all-uid view's sync looks at every ring once more rings were written
since its last sync than it walks under the seq lock (256).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import random

from guestlib import (
    RING_SIZE,
    lost,
    open_as,
    read_fd,
    read_records,
    stats,
    write_as_uid,
    write_records,
)

from memlog import uapi

FIRST_UID = 31000
SMALL_RING = uapi.RING_SIZE_MIN  # 64 KiB


def _blobs(count: int, seed: int, longest: int = 3600) -> list[bytes]:
    """Blobs of uneven sizes up to ``longest`` bytes (so fillers of many sizes), each its index."""
    rng = random.Random(seed)
    return [i.to_bytes(4, "big") * rng.randrange(1, longest // 4) for i in range(count)]


def _wrapped_ring(count: int = 400) -> list[bytes]:
    """root's ring at the smallest ring size, written round several times; the blobs written."""
    RING_SIZE.write_text(f"{SMALL_RING}\n")
    blobs = _blobs(count, seed=count)
    write_records(blobs)
    assert stats()["total_evictions"] > 0, "the ring never wrapped"
    return blobs


def _open_view(view_uid: int) -> int:
    fd = os.open("/dev/memlog", os.O_RDONLY)
    fcntl.ioctl(fd, uapi.IOC_FILTER_UID, uapi.U32.pack(view_uid))
    return fd


def _read_some(fd: int, count: int) -> list[bytes]:
    return [
        os.read(fd, uapi.RECORD_HEADER.size + uapi.RECORD_MAX)[uapi.RECORD_HEADER.size :]
        for _ in range(count)
    ]


def test_records_that_wrapped_their_buffer_read_back_whole_after_the_ring_grows() -> None:
    """A wrapped 64 KiB ring grown by more writes holds its newest records, whole, in order."""
    blobs = _wrapped_ring()
    kept = [b for _, b in read_records()]
    RING_SIZE.write_text(f"{16 << 20}\n")
    more = _blobs(2000, seed=7)  # about 3.7 MiB: the ring doubles 6 times
    write_records(more)
    after = [b for _, b in read_records()]
    assert after == kept + more
    assert kept == blobs[-len(kept) :]


def test_a_reader_half_way_through_a_ring_reads_on_after_it_grows_without_loss_or_repeats() -> None:
    """A reader that read half the records goes on from the next after the ring moved: none lost."""
    _wrapped_ring()
    fd = _open_view(0)
    try:
        everything = [b for _, b in read_records()]
        half = len(everything) // 2
        assert _read_some(fd, half) == everything[:half]
        RING_SIZE.write_text(f"{16 << 20}\n")
        more = _blobs(2000, seed=8)
        write_records(more)
        rest = [b for _, b in read_fd(fd)]
        assert rest == everything[half:] + more
        assert lost(fd) == 0
    finally:
        os.close(fd)


def test_a_reader_half_way_through_a_ring_reads_on_after_it_shrinks_counting_the_evicted() -> None:
    """After a shrink, a reader half way through reads the records kept; the others are lost."""
    RING_SIZE.write_text(f"{1 << 20}\n")
    blobs = _blobs(2000, seed=9, longest=400)  # about 0.5 MiB: nothing evicted yet
    write_records(blobs)
    fd = _open_view(0)
    try:
        assert _read_some(fd, 1000) == blobs[:1000]
        RING_SIZE.write_text(f"{SMALL_RING}\n")
        rest = [b for _, b in read_fd(fd)]
        assert 0 < len(rest) < 1000
        assert rest == blobs[-len(rest) :]
        assert lost(fd) == 1000 - len(rest)
    finally:
        os.close(fd)


def test_the_all_uid_view_returns_every_record_of_300_uids_written_since_it_last_read() -> None:
    """An all-uid fd that read once, then 300 uids writing: every record, in seq order."""
    fd = _open_view(uapi.UID_ALL)
    try:
        write_records([b"before"])
        assert [b for _, b in read_fd(fd)] == [b"before"]
        uids = [FIRST_UID + i for i in range(300)]
        for uid in uids:
            assert write_as_uid(uid, [b"first %d" % uid]) == [0]
        writer = open_as(uids[0], os.O_WRONLY)
        try:
            os.write(writer, b"again")
        finally:
            os.close(writer)
        for uid in reversed(uids[1:]):
            assert write_as_uid(uid, [b"second %d" % uid]) == [0]
        records = read_fd(fd)
    finally:
        os.close(fd)
    expected = (
        [b"first %d" % u for u in uids]
        + [b"again"]
        + [b"second %d" % u for u in reversed(uids[1:])]
    )
    assert [b for _, b in records] == expected
    seqs = [h["seq"] for h, _ in records]
    assert seqs == sorted(seqs)


def _grow_and_clear(uid: int, cycles: int, done_w: int) -> None:
    """Child: as ``uid``, grow the ring to 64 MiB ``cycles`` times, CLEARed between; then
    one byte on ``done_w`` (``0``: all went well) and exit, whatever happened."""
    ok = False
    try:
        big = b"g" * uapi.RECORD_MAX
        for _ in range(cycles):
            if write_as_uid(uid, [big] * 1000) != [0] * 1000:
                break
            fd = _open_view(uid)
            try:
                fcntl.ioctl(fd, uapi.IOC_CLEAR, 0)
            finally:
                os.close(fd)
        else:
            ok = True
    finally:
        try:
            os.write(done_w, b"0" if ok else b"1")
        finally:
            os._exit(0)


def test_a_nonblocking_write_gets_eagain_while_its_ring_moves_and_no_write_lacks_room() -> None:
    """Another task grows the ring (64 MiB, a copy at each doubling) and CLEARs it: an
    O_NONBLOCK writer of the same uid never waits for that, it gets EAGAIN; every other
    write of it is stored (none refused with ENOSPC while the CLEARed buffer is being
    freed), and STATS counts exactly the writes that succeeded."""
    uid = FIRST_UID + 500
    RING_SIZE.write_text(f"{64 << 20}\n")
    done_r, done_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(done_r)
        _grow_and_clear(uid, 3, done_w)
    os.close(done_w)
    os.set_blocking(done_r, False)
    fd = open_as(uid, os.O_WRONLY | os.O_NONBLOCK)
    stored = again = 0
    other: list[int] = []
    grower = b""
    try:
        while not grower:
            try:
                os.write(fd, b"n" * 64)
                stored += 1
            except BlockingIOError:
                again += 1
            except OSError as exc:
                other.append(exc.errno or 0)
            with contextlib.suppress(BlockingIOError):
                grower = os.read(done_r, 1)
    finally:
        os.close(fd)
        os.close(done_r)
        os.waitpid(pid, 0)
    assert grower == b"0", "the growing writer failed"
    assert other == [], f"nonblocking writes failed otherwise: {sorted(set(other))}"
    assert again > 0, f"{stored} nonblocking writes, none refused while the ring moved"
    assert stats(uid)["total_writes"] == 3 * 1000 + stored
