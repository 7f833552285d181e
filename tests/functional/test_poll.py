"""poll(): readable exactly when the file's view has unread records."""

from __future__ import annotations

import fcntl
import os
import select
import subprocess
import sys
import threading
import time

import pytest
from guestlib import DEVICE, run_as, uid_of, write_as, write_records

from memlog import uapi


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


def _filter(fd: int, uid: int) -> None:
    fcntl.ioctl(fd, uapi.IOC_FILTER_UID, uapi.U32.pack(uid))


def _epoll_wakes_after_filter(first: int, then: int, flags: int) -> bool:
    """An epoll set registered on an fd viewing ``first``, the view then switched to
    ``then``: does bob's write wake epoll_wait?"""
    fd = os.open(DEVICE, os.O_RDONLY)
    ep = select.epoll()
    try:
        _filter(fd, first)
        ep.register(fd, select.EPOLLIN | flags)
        assert ep.poll(0) == []  # nothing to read yet: registered, not ready
        _filter(fd, then)
        write_as("bob", [b"after the switch"])
        return any(events & select.EPOLLIN for _, events in ep.poll(10))
    finally:
        ep.close()
        os.close(fd)


@pytest.mark.parametrize("flags", [0, select.EPOLLET], ids=["level", "edge"])
def test_epoll_wakes_after_filter_uid_switches_to_another_uid(flags: int) -> None:
    """epoll registers once; a view switched from root's uid to bob's still wakes it."""
    assert _epoll_wakes_after_filter(0, uid_of("bob"), flags)


@pytest.mark.parametrize("flags", [0, select.EPOLLET], ids=["level", "edge"])
def test_epoll_wakes_after_filter_uid_switches_to_every_uid(flags: int) -> None:
    """A root `tail -f --all` on epoll: switched to every uid, bob's write wakes it."""
    assert _epoll_wakes_after_filter(0, uapi.UID_ALL, flags)


def test_epoll_wakes_after_filter_uid_switches_from_every_uid_to_one() -> None:
    """From every uid to bob's: bob's write wakes it."""
    assert _epoll_wakes_after_filter(uapi.UID_ALL, uid_of("bob"), 0)


def test_level_triggered_epoll_is_quiet_when_the_view_has_nothing_to_read() -> None:
    """Another uid's write wakes nothing that would read nothing: no busy loop."""
    fd = os.open(DEVICE, os.O_RDONLY)
    ep = select.epoll()
    try:
        _filter(fd, uid_of("alice"))
        ep.register(fd, select.EPOLLIN)
        write_as("bob", [b"not alice's"])
        assert ep.poll(0.5) == []
    finally:
        ep.close()
        os.close(fd)
