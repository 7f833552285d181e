"""A user whose memory never answers (a page fault that never completes) delays only itself.

The stall is a userfaultfd region whose faults are not served until the
test releases it, as a FUSE mapping whose server never replies would do.
Everything another uid does meanwhile must complete; a task waiting for the
stalled fd's own lock must die on SIGKILL.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from guestlib import DEVICE, PRELUDE, credentials, read_records, uid_of, write_records
from stall import StalledCall, StalledRegion, finishes_within

# What another uid does while root's call is stalled: write, read, STATS,
# close, and reading the sysctl; prints how long each took.
OTHER_UID = """
t = time.monotonic()
fd = os.open(DEVICE, os.O_RDWR)
os.write(fd, b"still here")
records = read_all(fd)
buf = bytearray(uapi.STATS.size)
fcntl.ioctl(fd, uapi.IOC_STATS, buf, True)
os.close(fd)
ring_size = open("/proc/sys/kernel/memlog/ring_size").read()
result({"records": len(records), "ring_size": int(ring_size), "seconds": time.monotonic() - t})
"""
# What root does with other fds meanwhile: an all-uid dump, STATS, close, sysctl read and write
ROOT_ELSEWHERE = """
fd = os.open(DEVICE, os.O_RDONLY)
fcntl.ioctl(fd, uapi.IOC_FILTER_UID, uapi.U32.pack(uapi.UID_ALL))
records = read_all(fd)
fcntl.ioctl(fd, uapi.IOC_STATS, bytearray(uapi.STATS.size), True)
os.close(fd)
value = open("/proc/sys/kernel/memlog/ring_size").read()
open("/proc/sys/kernel/memlog/ring_size", "w").write(value)
result(len(records))
"""
DEADLINE = 20.0  # seconds, or five times the same work without a stall if longer


def _start(user: str, code: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-c", PRELUDE + code],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        **credentials(user),
    )


def _deadline(user: str, code: str) -> float:
    """DEADLINE, or five times what ``code`` takes without a stall on this (debug?) kernel."""
    started = time.monotonic()
    proc = _start(user, code)
    proc.communicate(timeout=600)
    assert proc.returncode == 0, proc.stderr
    return max(DEADLINE, 5 * (time.monotonic() - started))


def test_a_writer_stalled_in_a_page_fault_delays_no_other_uid_and_no_other_fd() -> None:
    """While root's write() waits on a fault, alice and bob write, read, close; root's other
    fds dump, STATS, close and the sysctl reads and writes."""
    write_records([b"root was here"])
    deadline = _deadline("root", ROOT_ELSEWHERE)
    region = StalledRegion()
    fd = os.open(DEVICE, os.O_WRONLY)
    stalled = StalledCall("write", fd, region, 4096)
    others = [_start("alice", OTHER_UID), _start("bob", OTHER_UID), _start("root", ROOT_ELSEWHERE)]
    try:
        done = [finishes_within(proc, deadline) for proc in others]
    finally:
        region.release()
        outcome = stalled.join()
        for proc in others:
            proc.wait(60)
        os.close(fd)
    assert done == [True, True, True], f"not done within {deadline:.0f} s while a writer stalled"
    assert [proc.returncode for proc in others] == [0, 0, 0], [p.stderr.read() for p in others]
    assert outcome is not None, "the stalled write never returned after the release"


def test_a_reader_stalled_in_a_page_fault_delays_no_other_uid() -> None:
    """root's read() into a never-answering buffer does not stop alice and bob."""
    write_records([b"r" * 100])
    deadline = _deadline("bob", OTHER_UID)
    region = StalledRegion()
    fd = os.open(DEVICE, os.O_RDONLY)
    stalled = StalledCall("read", fd, region, 65536 + 56)
    others = [_start("alice", OTHER_UID), _start("bob", OTHER_UID)]
    try:
        done = [finishes_within(proc, deadline) for proc in others]
    finally:
        region.release()
        stalled.join()
        for proc in others:
            proc.wait(60)
        os.close(fd)
    assert done == [True, True]


def test_a_task_waiting_behind_a_stalled_reader_of_its_fd_dies_on_sigkill() -> None:
    """A second reader of the same fd waits for it killably: SIGKILL ends it at once."""
    write_records([b"one", b"two"])
    region = StalledRegion()
    fd = os.open(DEVICE, os.O_RDONLY)
    stalled = StalledCall("read", fd, region, 65536 + 56)
    child = os.fork()
    if child == 0:  # shares the open file, so waits for its lock
        os.close(region.fd)  # else the stall could only end when this child does
        os.read(fd, 65536 + 56)
        os._exit(0)
    try:
        time.sleep(1.0)
        os.kill(child, signal.SIGKILL)
        deadline = time.monotonic() + 10
        reaped = 0
        while time.monotonic() < deadline and not reaped:
            reaped, _ = os.waitpid(child, os.WNOHANG)
            time.sleep(0.1)
    finally:
        region.release()
        stalled.join()
        if not reaped:
            os.waitpid(child, 0)
        os.close(fd)
    assert reaped == child, "SIGKILL did not end a task waiting for the fd's lock within 10 s"


def test_a_stalled_write_that_fails_stores_nothing_and_others_records_are_whole() -> None:
    """After the stall, the other uids' records are all there and intact."""
    deadline = _deadline("bob", OTHER_UID)
    region = StalledRegion()
    fd = os.open(DEVICE, os.O_WRONLY)
    stalled = StalledCall("write", fd, region, 4096)
    others = [_start("alice", OTHER_UID)]
    try:
        assert finishes_within(others[0], deadline)
    finally:
        region.release()
        stalled.join()
        others[0].wait(60)
        os.close(fd)
    assert [blob for _, blob in read_records(uid_of("alice"))] == [b"still here"]
    root_records = [blob for _, blob in read_records(0)]
    assert root_records in ([], [bytes(4096)])  # failed cleanly, or went on with a zero page
