"""The node's group and mode are the one gate: members of memlog write, others cannot open."""

from __future__ import annotations

import errno
import os
import stat

from guestlib import DEVICE, GROUP, read_records, run_as, uid_of

OPEN_AND_WRITE = """
try:
    fd = os.open(DEVICE, os.O_WRONLY)
    os.write(fd, b"hello")
    result(0)
except OSError as exc:
    result(exc.errno)
"""


def test_device_node_is_a_character_device_with_mode_0660() -> None:
    """The driver creates /dev/memlog as a character device with mode 0660."""
    mode = os.stat(DEVICE).st_mode
    assert stat.S_ISCHR(mode)
    assert stat.S_IMODE(mode) == 0o660


def test_a_member_of_the_memlog_group_can_write() -> None:
    """alice, in the memlog group, opens for writing and stores a record."""
    assert run_as("alice", OPEN_AND_WRITE) == 0
    assert [b for _, b in read_records(uid_of("alice"))] == [b"hello"]


def test_a_user_outside_the_memlog_group_cannot_open_the_device() -> None:
    """carol, not in the group, gets EACCES on open and stores nothing."""
    import grp

    assert "carol" not in grp.getgrnam(GROUP).gr_mem
    assert run_as("carol", OPEN_AND_WRITE) == errno.EACCES
    assert read_records(uid_of("carol")) == []
