"""Loss is visible: GET_LOST counts the records of a view evicted before the fd read them."""

from __future__ import annotations

import fcntl
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

from guestlib import RING_SIZE, credentials, lost, open_as, read_fd, uid_of, write_as_uid

from memlog import uapi

UID = 30500
BLOBS = [i.to_bytes(4, "big") * 256 for i in range(100)]  # 1,088 bytes each in the ring


def _fill(uid: int, blobs: list[bytes]) -> None:
    assert write_as_uid(uid, blobs) == [0] * len(blobs)


def test_get_lost_counts_records_evicted_before_this_fd_read_them() -> None:
    """A 64 KiB ring keeps 60 of 100 records: the reader opened before gets 60 and 40 lost."""
    RING_SIZE.write_text(f"{uapi.RING_SIZE_MIN}\n")
    reader = open_as(UID, os.O_RDONLY)
    try:
        assert lost(reader) == 0
        _fill(UID, BLOBS)
        got = [blob for _, blob in read_fd(reader)]
        assert got == BLOBS[-len(got) :]
        assert lost(reader) == len(BLOBS) - len(got) > 0
    finally:
        os.close(reader)


def test_get_lost_starts_again_from_zero_on_rewind() -> None:
    """lseek(fd, 0, SEEK_SET) rewinds the count with the cursor."""
    RING_SIZE.write_text(f"{uapi.RING_SIZE_MIN}\n")
    reader = open_as(UID, os.O_RDONLY)
    try:
        _fill(UID, BLOBS)
        read_fd(reader)
        assert lost(reader) > 0
        os.lseek(reader, 0, os.SEEK_SET)
        assert lost(reader) == 0
    finally:
        os.close(reader)


def test_get_lost_of_an_all_uid_reader_adds_up_over_every_ring() -> None:
    """Two flooded uids: records read + lost == records written, in the all-uid view."""
    RING_SIZE.write_text(f"{uapi.RING_SIZE_MIN}\n")
    reader = os.open("/dev/memlog", os.O_RDONLY)
    try:
        fcntl.ioctl(reader, uapi.IOC_FILTER_UID, uapi.U32.pack(uapi.UID_ALL))
        _fill(UID, BLOBS)
        _fill(UID + 1, BLOBS)
        got = read_fd(reader)
        seqs = [h["seq"] for h, _ in got]
        assert seqs == sorted(seqs)
        assert len(got) + lost(reader) == 2 * len(BLOBS)
        assert lost(reader) > 0
    finally:
        os.close(reader)


def _waiting_in_poll(pid: int, timeout: float = 120) -> None:
    """Until ``pid`` has the device open and sleeps in poll(): a slow kernel (the debug
    one under TCG) can take many seconds to start a Python program."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            fds = [os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")]
            wchan = Path(f"/proc/{pid}/wchan").read_text()
        except OSError:
            fds, wchan = [], ""
        if "/dev/memlog" in fds and ("poll" in wchan or "select" in wchan):
            return
        time.sleep(0.2)
    raise AssertionError(f"memlog tail -f was not waiting in poll() after {timeout} s")


def _stderr_until(proc: subprocess.Popen[bytes], text: str, timeout: float = 120) -> str:
    """What ``proc`` wrote on stderr, read until ``text`` appears or ``timeout`` passes
    (its stdout drained meanwhile, so that a full pipe never stops it)."""
    assert proc.stderr is not None and proc.stdout is not None
    err, out = proc.stderr.fileno(), proc.stdout.fileno()
    seen = b""
    deadline = time.monotonic() + timeout
    while text.encode() not in seen and time.monotonic() < deadline:
        ready, _, _ = select.select([err, out], [], [], deadline - time.monotonic())
        if not ready:
            break
        if out in ready:
            os.read(out, 65536)
        if err in ready:
            chunk = os.read(err, 4096)
            if not chunk:
                break
            seen += chunk
    return seen.decode()


def test_tail_follow_warns_on_stderr_when_records_were_evicted_while_it_was_stopped() -> None:
    """`memlog tail -f` says how many records it lost when it falls behind the ring."""
    RING_SIZE.write_text(f"{uapi.RING_SIZE_MIN}\n")
    tail = subprocess.Popen(
        [sys.executable, "-m", "memlog", "tail", "-f"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        **credentials("alice"),
    )
    try:
        _waiting_in_poll(tail.pid)
        os.kill(tail.pid, signal.SIGSTOP)
        _fill(uid_of("alice"), BLOBS)
        os.kill(tail.pid, signal.SIGCONT)
        err = _stderr_until(tail, "record(s) evicted before they could be read")
        tail.send_signal(signal.SIGINT)
        tail.communicate(timeout=60)
    finally:
        tail.kill()
    assert "record(s) evicted before they could be read" in err
