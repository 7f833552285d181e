"""Identity is the opener's; uids are seen through the opener's user namespace."""

from __future__ import annotations

import grp
import os
import socket

from guestlib import DEVICE, GROUP, read_records, run_as, uid_of

OVERFLOW_UID = 65534


def test_an_fd_opened_by_alice_writes_as_alice_in_roots_hands() -> None:
    """alice opens and passes the fd (SCM_RIGHTS) to root: root's writes are alice's records."""
    parent, child_sock = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    child = os.fork()
    if child == 0:
        try:
            parent.close()
            os.setgroups([grp.getgrnam(GROUP).gr_gid])
            os.setgid(grp.getgrnam(GROUP).gr_gid)
            os.setuid(uid_of("alice"))
            fd = os.open(DEVICE, os.O_RDWR)
            socket.send_fds(child_sock, [b"fd"], [fd])
        finally:
            os._exit(0)
    child_sock.close()
    _, [fd], _, _ = socket.recv_fds(parent, 16, 1)
    os.waitpid(child, 0)
    try:
        os.write(fd, b"written by root through alice's fd")
    finally:
        os.close(fd)
    assert [(h["uid"], blob) for h, blob in read_records(uid_of("alice"))] == [
        (uid_of("alice"), b"written by root through alice's fd")
    ]
    assert read_records(0) == []


def test_an_fd_opened_by_root_keeps_roots_identity_after_the_process_drops_to_alice() -> None:
    """Passing an fd passes its identity: alice writing on root's fd writes root's records."""
    fd = os.open(DEVICE, os.O_WRONLY)
    child = os.fork()
    if child == 0:
        try:
            os.setuid(uid_of("alice"))
            os.write(fd, b"via root's fd")
        finally:
            os._exit(0)
    os.waitpid(child, 0)
    os.close(fd)
    assert [(h["uid"], blob) for h, blob in read_records(0)] == [(0, b"via root's fd")]
    assert read_records(uid_of("alice")) == []


# alice in a new user namespace without a uid map: she is unmapped there
IN_USERNS = """
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
outer = os.geteuid()
if libc.unshare(0x10000000):  # CLONE_NEWUSER
    raise OSError(ctypes.get_errno(), "unshare")
{setup}
fd = os.open(DEVICE, os.O_RDWR)
os.write(fd, b"from a namespace")
own = read_all(fd)
errors = {{}}
for uid in {filter_uids}:
    try:
        fcntl.ioctl(fd, uapi.IOC_FILTER_UID, uapi.U32.pack(uid))
        errors[uid] = [r["uid"] for r in read_all(fd)]
    except OSError as exc:
        errors[uid] = errno.errorcode[exc.errno]
result({{"own": [r["uid"] for r in own], "filtered": errors}})
"""
MAP_SELF_TO_0 = """
open("/proc/self/setgroups", "w").write("deny")
open("/proc/self/uid_map", "w").write("0 %d 1" % outer)
"""


def test_a_reader_in_a_user_namespace_that_maps_it_to_0_sees_its_records_as_uid_0() -> None:
    """Header uids are translated into the opener's namespace; FILTER_UID takes its uids."""
    seen = run_as("alice", IN_USERNS.format(setup=MAP_SELF_TO_0, filter_uids="[0, 1]"))
    assert seen["own"] == [0]
    assert seen["filtered"] == {"0": [0], "1": "EINVAL"}
    assert [h["uid"] for h, _ in read_records(uid_of("alice"))] == [uid_of("alice")]


def test_a_uid_the_readers_namespace_does_not_map_reads_as_the_overflow_uid() -> None:
    """alice, unmapped in her new namespace, sees her own records as uid 65534."""
    seen = run_as("alice", IN_USERNS.format(setup="", filter_uids="[]"))
    assert seen["own"] == [OVERFLOW_UID]
