"""The node's group and mode are the one gate: members of memlog write, others cannot open."""

from __future__ import annotations

import errno
import grp

from guestlib import GROUP, read_records, run_as, stats, uid_of

OPEN_AND_WRITE = """
try:
    fd = os.open(DEVICE, os.O_WRONLY)
    os.write(fd, b"hello")
    result(0)
except OSError as exc:
    result(exc.errno)
"""


def test_a_member_of_the_memlog_group_can_write() -> None:
    """alice, in the memlog group, opens for writing and stores a record."""
    assert run_as("alice", OPEN_AND_WRITE) == 0
    assert [b for _, b in read_records(uid_of("alice"))] == [b"hello"]


def test_a_user_outside_the_memlog_group_cannot_open_the_device() -> None:
    """carol, not in the group, gets EACCES on open."""
    assert "carol" not in grp.getgrnam(GROUP).gr_mem
    assert run_as("carol", OPEN_AND_WRITE) == errno.EACCES


def test_a_user_outside_the_memlog_group_stores_nothing() -> None:
    """After carol's refused open, carol has no records and no writes counted."""
    run_as("carol", OPEN_AND_WRITE)
    assert read_records(uid_of("carol")) == []
    assert stats(uid_of("carol"))["total_writes"] == 0
