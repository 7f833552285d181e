"""A write is one record; a read returns it whole, stamped by the kernel."""

from __future__ import annotations

import os
import time

import pytest
from guestlib import DEVICE, read_records, run_as, uid_of, write_records

from memlog import uapi


@pytest.mark.parametrize("size", [1, 7, 4096, 65535, 65536])
def test_write_then_read_returns_the_blob_byte_exact(size: int) -> None:
    """What is written comes back byte for byte, at every size up to 64 KiB."""
    blob = os.urandom(size)
    write_records([blob])
    [(header, got)] = read_records()
    assert header["length"] == size
    assert got == blob


def test_header_carries_magic_schema_and_zero_reserved() -> None:
    """Each record starts with MLOG magic, schema version 1 and a zero reserved field."""
    write_records([b"x"])
    [(header, _)] = read_records()
    assert (header["magic"], header["schema"], header["reserved"]) == (
        uapi.MAGIC,
        uapi.SCHEMA_VERSION,
        0,
    )


def test_header_timestamp_is_the_realtime_clock_at_write() -> None:
    """ts_ns lies between CLOCK_REALTIME just before and just after the write."""
    before = time.clock_gettime_ns(time.CLOCK_REALTIME)
    write_records([b"when"])
    after = time.clock_gettime_ns(time.CLOCK_REALTIME)
    [(header, _)] = read_records()
    assert before <= header["ts_ns"] <= after


def test_header_carries_the_writers_uid_and_pid() -> None:
    """uid and pid are the writing process's uid and tgid."""
    got = run_as(
        "alice",
        """
        fd = os.open(DEVICE, os.O_WRONLY); os.write(fd, b"me"); result(os.getpid())
        """,
    )
    [(header, _)] = read_records(uid_of("alice"))
    assert (header["uid"], header["pid"]) == (uid_of("alice"), got)


def test_sequence_numbers_strictly_increase_across_writes() -> None:
    """seq grows with every write."""
    write_records([b"%d" % i for i in range(20)])
    seqs = [h["seq"] for h, _ in read_records()]
    assert seqs == sorted(seqs) and len(set(seqs)) == 20


def test_sequence_numbers_are_global_across_uids() -> None:
    """A write by another uid in between takes the next seq number."""
    write_records([b"root-1"])
    run_as("alice", 'fd = os.open(DEVICE, os.O_WRONLY); os.write(fd, b"a"); result(0)')
    write_records([b"root-2"])
    mine = [h["seq"] for h, _ in read_records()]
    [alice] = [h["seq"] for h, _ in read_records(uid_of("alice"))]
    assert mine[0] < alice < mine[1]


def test_one_read_returns_exactly_one_record() -> None:
    """Two writes give two reads, then end of file."""
    write_records([b"first", b"second"])
    fd = os.open(DEVICE, os.O_RDONLY)
    try:
        a = os.read(fd, 1 << 20)
        b = os.read(fd, 1 << 20)
        end = os.read(fd, 1 << 20)
    finally:
        os.close(fd)
    assert (a[56:], b[56:], end) == (b"first", b"second", b"")


def test_records_survive_the_death_of_their_writer() -> None:
    """A record written by a process that has exited is still there."""
    run_as("alice", 'fd = os.open(DEVICE, os.O_WRONLY); os.write(fd, b"last words"); result(0)')
    assert [blob for _, blob in read_records(uid_of("alice"))] == [b"last words"]


def test_session_id_tags_this_files_later_writes() -> None:
    """After SET_SESSION, this fd's writes carry the session id; another fd's keep zeros."""
    session = bytes(range(16))
    tagged = os.open(DEVICE, os.O_WRONLY)
    plain = os.open(DEVICE, os.O_WRONLY)
    try:
        import fcntl

        fcntl.ioctl(tagged, uapi.IOC_SET_SESSION, session)
        os.write(tagged, b"tagged")
        os.write(plain, b"plain")
    finally:
        os.close(tagged)
        os.close(plain)
    got = {blob: header["session"] for header, blob in read_records()}
    assert got == {b"tagged": session, b"plain": bytes(16)}
