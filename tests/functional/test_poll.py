"""poll(): readable exactly when the file has unread records."""

from __future__ import annotations

import os
import select
import threading
import time

from guestlib import DEVICE, write_records


def _readable(fd: int, timeout_ms: int) -> bool:
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    return bool(poller.poll(timeout_ms))


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
        os.read(fd, 1 << 20)
        assert not _readable(fd, 0)
    finally:
        os.close(fd)


def test_a_write_wakes_a_poller_that_is_already_waiting() -> None:
    """A reader blocked in poll() wakes when another process writes."""
    fd = os.open(DEVICE, os.O_RDONLY)
    woke: list[float] = []

    def wait() -> None:
        started = time.monotonic()
        if _readable(fd, 20_000):
            woke.append(time.monotonic() - started)

    try:
        waiter = threading.Thread(target=wait)
        waiter.start()
        time.sleep(0.5)  # the waiter is in poll() by now
        pid = os.fork()
        if pid == 0:
            os._exit(0 if os.write(os.open(DEVICE, os.O_WRONLY), b"wake") == 4 else 1)
        os.waitpid(pid, 0)
        waiter.join(25)
    finally:
        os.close(fd)
    assert woke and woke[0] < 20
