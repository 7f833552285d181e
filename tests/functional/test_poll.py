"""poll(): readable exactly when the file's view has unread records."""

from __future__ import annotations

import os
import select
import subprocess
import sys
import threading
import time

from guestlib import DEVICE, run_as, write_as, write_records


def _readable(fd: int, timeout_ms: int) -> bool:
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    return any(events & select.POLLIN for _, events in poller.poll(timeout_ms))


def test_poll_is_not_readable_with_nothing_unread() -> None:
    """With no records, poll reports nothing to read."""
    fd = os.open(DEVICE, os.O_RDONLY)
    try:
        assert not _readable(fd, 0)
    finally:
        os.close(fd)


def test_poll_is_readable_with_an_unread_record() -> None:
    """An unread record makes the file readable at once."""
    write_records([b"waiting"])
    fd = os.open(DEVICE, os.O_RDONLY)
    try:
        assert _readable(fd, 0)
    finally:
        os.close(fd)


def test_poll_is_not_readable_once_every_record_was_read() -> None:
    """After the last record is read, poll reports nothing to read."""
    write_records([b"read me"])
    fd = os.open(DEVICE, os.O_RDONLY)
    try:
        os.read(fd, 1 << 20)
        assert not _readable(fd, 0)
    finally:
        os.close(fd)


def test_poll_ignores_another_uids_records() -> None:
    """bob's record does not make alice's file readable."""
    write_as("bob", [b"not for alice"])
    readable = run_as(
        "alice",
        """
        fd = os.open(DEVICE, os.O_RDONLY)
        p = select.poll(); p.register(fd, select.POLLIN)
        result(bool(p.poll(0)))
        """,
    )
    assert readable is False


def test_a_write_wakes_a_poller_that_is_already_waiting() -> None:
    """A reader blocked in poll() wakes within the timeout when another process writes."""
    fd = os.open(DEVICE, os.O_RDONLY)
    woke: list[float] = []
    entered = threading.Event()

    def wait() -> None:
        started = time.monotonic()
        entered.set()
        if _readable(fd, 20_000):
            woke.append(time.monotonic() - started)

    try:
        waiter = threading.Thread(target=wait)
        waiter.start()
        entered.wait(10)
        time.sleep(0.5)  # the waiter is blocked in poll() by now
        assert not woke
        writer = [
            sys.executable,
            "-c",
            f"import os; os.write(os.open({DEVICE!r}, os.O_WRONLY), b'w')",
        ]
        subprocess.run(writer, check=True, timeout=60)
        waiter.join(25)
    finally:
        os.close(fd)
    assert woke and woke[0] < 20
