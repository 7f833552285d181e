"""A write is one record; a read returns it whole, stamped by the kernel."""

from __future__ import annotations

import fcntl
import grp
import itertools
import os
import threading
import time

import pytest
from guestlib import (
    DEVICE,
    GROUP,
    RING_SIZE,
    read_records,
    uid_of,
    write_as,
    write_records,
)

from memlog import uapi


@pytest.mark.parametrize("size", [1, 7, 57, 1001, 4096, 65535, 65536])
def test_write_then_read_returns_the_blob_byte_exact(size: int) -> None:
    """What is written comes back byte for byte, at every size up to 64 KiB."""
    blob = os.urandom(size)
    write_records([blob])
    [(header, got)] = read_records()
    assert header["length"] == size
    assert got == blob


def test_a_record_exactly_the_ring_size_is_stored() -> None:
    """In a 64 KiB ring, a blob of 64 KiB minus the 56-byte header fits."""
    RING_SIZE.write_text("65536\n")
    blob = os.urandom(65536 - uapi.RECORD_HEADER.size)
    write_records([blob])
    assert [got for _, got in read_records()] == [blob]


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
    """uid and pid are the writing process's uid and pid."""
    pid = write_as("alice", [b"me"])
    [(header, _)] = read_records(uid_of("alice"))
    assert (header["uid"], header["pid"]) == (uid_of("alice"), pid)


def test_header_uid_is_the_openers_effective_uid() -> None:
    """A process whose euid differs from its real uid when it opens writes under that euid."""
    child = os.fork()
    if child == 0:  # real uid root, effective uid alice, then open
        try:
            os.setegid(grp.getgrnam(GROUP).gr_gid)
            os.seteuid(uid_of("alice"))
            fd = os.open(DEVICE, os.O_WRONLY)
            os._exit(0 if os.write(fd, b"euid") == 4 else 1)
        finally:
            os._exit(2)
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert [h["uid"] for h, _ in read_records(uid_of("alice"))] == [uid_of("alice")]
    assert read_records(0) == []


def test_header_pid_is_the_thread_group_id() -> None:
    """A write from a second thread carries the process id, not the thread id."""
    fd = os.open(DEVICE, os.O_WRONLY)
    tids: list[int] = []

    def write() -> None:
        tids.append(threading.get_native_id())
        os.write(fd, b"from a thread")

    try:
        writer = threading.Thread(target=write)
        writer.start()
        writer.join(30)
    finally:
        os.close(fd)
    [(header, _)] = read_records()
    assert tids and tids[0] != os.getpid()
    assert header["pid"] == os.getpid()


def test_sequence_numbers_strictly_increase_across_writes() -> None:
    """seq grows with every write."""
    write_records([b"%d" % i for i in range(20)])
    seqs = [h["seq"] for h, _ in read_records()]
    assert len(seqs) == 20
    assert all(a < b for a, b in itertools.pairwise(seqs))


def test_sequence_numbers_are_global_across_uids() -> None:
    """A write by another uid in between takes the next seq number."""
    write_records([b"root-1"])
    write_as("alice", [b"a"])
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
    size = uapi.RECORD_HEADER.size
    assert (a[size:], b[size:], end) == (b"first", b"second", b"")


def test_records_survive_the_death_of_their_writer() -> None:
    """A record written by a process that has exited is still there."""
    write_as("alice", [b"last words"])
    assert [blob for _, blob in read_records(uid_of("alice"))] == [b"last words"]


def test_session_id_tags_this_files_later_writes() -> None:
    """After SET_SESSION, this fd's writes carry the session id; its earlier ones keep zeros."""
    session = bytes(range(16))
    fd = os.open(DEVICE, os.O_WRONLY)
    try:
        os.write(fd, b"before")
        fcntl.ioctl(fd, uapi.IOC_SET_SESSION, session)
        os.write(fd, b"after")
    finally:
        os.close(fd)
    got = {blob: header["session"] for header, blob in read_records()}
    assert got == {b"before": bytes(16), b"after": session}


def test_session_id_does_not_tag_other_files_writes() -> None:
    """Another fd of the same process keeps writing zero session ids."""
    tagged = os.open(DEVICE, os.O_WRONLY)
    plain = os.open(DEVICE, os.O_WRONLY)
    try:
        fcntl.ioctl(tagged, uapi.IOC_SET_SESSION, b"\xab" * 16)
        os.write(plain, b"plain")
    finally:
        os.close(tagged)
        os.close(plain)
    [(header, _)] = read_records()
    assert header["session"] == bytes(16)
