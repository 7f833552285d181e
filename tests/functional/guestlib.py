"""Helpers of the functional suite (run inside the VM as root): device, users, records."""

from __future__ import annotations

import fcntl
import grp
import json
import os
import pwd
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

from memlog import uapi

DEVICE = "/dev/memlog"
RING_SIZE = Path("/proc/sys/kernel/memlog/ring_size")
MAX_BYTES = Path("/proc/sys/kernel/memlog/max_bytes")
GROUP = "memlog"
MEMBERS = ("alice", "bob")
OUTSIDER = "carol"


def module_loaded() -> bool:
    return Path("/sys/module/memlog").exists()


def wait_for(predicate: Any, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return bool(predicate())


def prepare_node() -> None:
    """Give the node the group and mode the udev rule of the packages gives it.

    After udev has handled the module's events: where memlog-tools is
    installed (the built-kernel tier), its rule would otherwise set its own
    group and mode on the node after this did.
    """
    assert wait_for(lambda: os.path.exists(DEVICE)), f"{DEVICE} did not appear"
    subprocess.run(["udevadm", "settle", "--timeout=60"], check=False)
    os.chown(DEVICE, 0, grp.getgrnam(GROUP).gr_gid)
    os.chmod(DEVICE, 0o660)


def load_module() -> None:
    """insmod $MEMLOG_KO unless it is loaded, then give the node its group and mode."""
    if not module_loaded():
        subprocess.run(["insmod", os.environ["MEMLOG_KO"]], check=True)
    prepare_node()


def rmmod() -> subprocess.CompletedProcess[str]:
    return subprocess.run(["rmmod", "memlog"], capture_output=True, text=True, check=False)


def reload_module() -> None:
    """Unload and load the module again: every ring and setting back to the start."""
    result = rmmod()
    assert result.returncode == 0, result.stderr
    load_module()


def ensure_users() -> None:
    if subprocess.run(["getent", "group", GROUP], capture_output=True).returncode:
        subprocess.run(["groupadd", "--system", GROUP], check=True)
    for name in (*MEMBERS, OUTSIDER):
        if subprocess.run(["id", name], capture_output=True).returncode:
            subprocess.run(["useradd", "--system", "--no-create-home", name], check=True)
    for name in MEMBERS:
        subprocess.run(["usermod", "-aG", GROUP, name], check=True)


def uid_of(user: str) -> int:
    return pwd.getpwnam(user).pw_uid


def root_ioctl(request: int, arg: bytes | int = 0) -> bytes:
    fd = os.open(DEVICE, os.O_RDONLY)
    try:
        if isinstance(arg, bytes):
            buf = bytearray(arg)
            fcntl.ioctl(fd, request, buf, True)
            return bytes(buf)
        fcntl.ioctl(fd, request, arg)
        return b""
    finally:
        os.close(fd)


def clear(view_uid: int) -> None:
    """CLEAR, as root, the records of ``view_uid`` (or of every uid with UID_ALL)."""
    fd = os.open(DEVICE, os.O_RDONLY)
    try:
        fcntl.ioctl(fd, uapi.IOC_FILTER_UID, uapi.U32.pack(view_uid))
        fcntl.ioctl(fd, uapi.IOC_CLEAR, 0)
    finally:
        os.close(fd)


def reset_device() -> None:
    """Every ring empty (and its memory freed), ring size and max_bytes back to the defaults."""
    RING_SIZE.write_text(f"{uapi.RING_SIZE_DEFAULT}\n")
    clear(uapi.UID_ALL)
    MAX_BYTES.write_text(f"{uapi.MAX_BYTES_DEFAULT}\n")


def open_as(uid: int, flags: int = os.O_RDWR) -> int:
    """Open the device with effective uid ``uid`` (and the device's group): the fd's identity.

    The test process (root) switches only its effective ids and back, so it
    can hold fds of many identities at once.
    """
    os.setegid(grp.getgrnam(GROUP).gr_gid)
    os.seteuid(uid)
    try:
        return os.open(DEVICE, flags)
    finally:
        os.seteuid(0)
        os.setegid(0)


def write_as_uid(uid: int, blobs: list[bytes]) -> list[int]:
    """Write ``blobs`` through one fd opened as ``uid``; each write's errno (0: stored)."""
    fd = open_as(uid, os.O_WRONLY)
    try:
        results = []
        for blob in blobs:
            try:
                os.write(fd, blob)
                results.append(0)
            except OSError as exc:
                results.append(exc.errno or -1)
        return results
    finally:
        os.close(fd)


def lost(fd: int) -> int:
    """GET_LOST of ``fd``."""
    buf = bytearray(uapi.U64.size)
    fcntl.ioctl(fd, uapi.IOC_GET_LOST, buf, True)
    return int(uapi.U64.unpack(buf)[0])


def read_fd(fd: int) -> list[tuple[dict[str, Any], bytes]]:
    """Every record left to read on ``fd``, as (header fields, blob)."""
    names = ("magic", "schema", "length", "reserved", "ts_ns", "seq", "uid", "pid", "session")
    out = []
    while buf := os.read(fd, uapi.RECORD_HEADER.size + uapi.RECORD_MAX):
        header = dict(zip(names, uapi.RECORD_HEADER.unpack_from(buf), strict=True))
        out.append((header, buf[uapi.RECORD_HEADER.size :]))
    return out


PRELUDE = textwrap.dedent(
    """
    import errno, fcntl, json, os, select, struct, sys, time
    from memlog import uapi
    DEVICE = "/dev/memlog"
    def header(buf):
        return dict(zip(
            ("magic", "schema", "length", "reserved", "ts_ns", "seq", "uid", "pid", "session"),
            uapi.RECORD_HEADER.unpack_from(buf)))
    def read_all(fd):
        out = []
        while True:
            buf = os.read(fd, 56 + 65536)
            if not buf:
                return out
            h = header(buf)
            out.append({"seq": h["seq"], "uid": h["uid"], "blob": buf[56:].hex()})
    def result(value):
        print(json.dumps(value))
    """
)


def credentials(user: str) -> dict[str, Any]:
    """subprocess arguments that run a child as ``user``: uid, gid and exactly its groups."""
    entry = pwd.getpwnam(user)
    return {
        "user": entry.pw_uid,
        "group": entry.pw_gid,
        "extra_groups": [g.gr_gid for g in grp.getgrall() if user in g.gr_mem],
        "env": {**os.environ, "HOME": "/"},
    }


def run_as(user: str, code: str, *, stdin: bytes | None = None) -> Any:
    """Run Python ``code`` as ``user`` (real credentials and groups); return its JSON result."""
    proc = subprocess.run(
        [sys.executable, "-c", PRELUDE + textwrap.dedent(code)],
        input=stdin,
        capture_output=True,
        timeout=120,
        check=False,
        **credentials(user),
    )
    assert proc.returncode == 0, proc.stderr.decode()
    return json.loads(proc.stdout)


WRITE_AS = """
fd = os.open(DEVICE, os.O_WRONLY)
for blob in {blobs}:
    assert os.write(fd, blob) == len(blob)
result(os.getpid())
"""


def write_as(user: str, blobs: list[bytes] | str) -> int:
    """``user`` writes ``blobs`` (a list, or a Python expression making one); returns its pid."""
    return int(run_as(user, WRITE_AS.format(blobs=blobs)))


def memlog_cli(
    user: str, *args: str, stdin: bytes = b"", timeout: float = 60
) -> subprocess.CompletedProcess[bytes]:
    """The memlog command run as ``user``."""
    return subprocess.run(
        [sys.executable, "-m", "memlog", *args],
        input=stdin,
        capture_output=True,
        timeout=timeout,
        check=False,
        **credentials(user),
    )


# count records of 1 KiB (1080 bytes with the header), each a 4-byte counter repeated;
# COUNTER_BLOBS makes them in a writer run by run_as/write_as (too big for its argv)
COUNTER_BLOBS = '[i.to_bytes(4, "big") * 256 for i in range({count})]'


def counter_blobs(count: int) -> list[bytes]:
    return [i.to_bytes(4, "big") * 256 for i in range(count)]


def write_records(blobs: list[bytes]) -> None:
    fd = os.open(DEVICE, os.O_WRONLY)
    try:
        for blob in blobs:
            assert os.write(fd, blob) == len(blob)
    finally:
        os.close(fd)


def read_records(view_uid: int | None = None) -> list[tuple[dict[str, Any], bytes]]:
    """Every record of a view, as (header fields, blob), read as root."""
    fd = os.open(DEVICE, os.O_RDONLY)
    try:
        if view_uid is not None:
            fcntl.ioctl(fd, uapi.IOC_FILTER_UID, uapi.U32.pack(view_uid))
        return read_fd(fd)
    finally:
        os.close(fd)


def stats(view_uid: int | None = None) -> dict[str, int]:
    fd = os.open(DEVICE, os.O_RDONLY)
    try:
        if view_uid is not None:
            fcntl.ioctl(fd, uapi.IOC_FILTER_UID, uapi.U32.pack(view_uid))
        buf = bytearray(uapi.STATS.size)
        fcntl.ioctl(fd, uapi.IOC_STATS, buf, True)
    finally:
        os.close(fd)
    names = (
        "total_writes",
        "total_evictions",
        "records_in_ring",
        "ring_bytes",
        "ring_capacity",
        "oldest_ts_ns",
        "newest_ts_ns",
    )
    return dict(zip(names, uapi.STATS.unpack(buf), strict=True))
