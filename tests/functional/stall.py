"""User memory that never answers: a userfaultfd region whose faults are not served.

A write() from such a buffer (or a read() into it) stalls inside the
kernel's user copy until the region is released, like a buffer mapped from
a FUSE file whose server never replies.  Root only (userfaultfd handling
kernel-mode faults needs privilege); x86-64 numbers.
"""

from __future__ import annotations

import ctypes
import fcntl
import mmap
import os
import struct
import subprocess
import threading
import time
from typing import Any

from memlog import uapi

SYS_USERFAULTFD = 323  # x86-64
UFFD_API = 0xAA
UFFDIO_API = uapi.ioc(uapi.IOC_READ | uapi.IOC_WRITE, 0xAA, 0x3F, 24)
UFFDIO_REGISTER = uapi.ioc(uapi.IOC_READ | uapi.IOC_WRITE, 0xAA, 0x00, 32)
UFFDIO_REGISTER_MODE_MISSING = 1

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long
_libc.write.argtypes = (ctypes.c_int, ctypes.c_void_p, ctypes.c_size_t)
_libc.write.restype = ctypes.c_ssize_t
_libc.read.argtypes = (ctypes.c_int, ctypes.c_void_p, ctypes.c_size_t)
_libc.read.restype = ctypes.c_ssize_t


class StalledRegion:
    """An anonymous mapping registered with userfaultfd; its first touch waits for close()."""

    def __init__(self, size: int = 16 * 4096) -> None:
        fd = _libc.syscall(SYS_USERFAULTFD, os.O_CLOEXEC | os.O_NONBLOCK)
        if fd < 0:
            raise OSError(ctypes.get_errno(), "userfaultfd")
        self.fd = int(fd)
        fcntl.ioctl(self.fd, UFFDIO_API, bytearray(struct.pack("QQQ", UFFD_API, 0, 0)), True)
        self.size = size
        self.map = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
        self.addr = ctypes.addressof(ctypes.c_char.from_buffer(self.map))
        register = bytearray(struct.pack("QQQQ", self.addr, size, UFFDIO_REGISTER_MODE_MISSING, 0))
        fcntl.ioctl(self.fd, UFFDIO_REGISTER, register, True)
        self.released = False

    def release(self) -> None:
        """Close the userfaultfd: the stalled copies go on (with zero pages) or fail."""
        if not self.released:
            os.close(self.fd)
            self.released = True


class StalledCall:
    """write() from, or read() into, a StalledRegion, in a thread of its own."""

    def __init__(self, op: str, fd: int, region: StalledRegion, count: int) -> None:
        self.result: list[tuple[int, int]] = []
        call = _libc.write if op == "write" else _libc.read

        def run() -> None:
            ret = call(fd, region.addr, count)
            self.result.append((int(ret), ctypes.get_errno()))

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()
        time.sleep(1.0)  # let it reach the fault
        assert not self.result, f"the {op} did not stall: {self.result}"

    def join(self, timeout: float = 30) -> tuple[int, int] | None:
        self.thread.join(timeout)
        return self.result[0] if self.result else None


def finishes_within(proc: subprocess.Popen[Any], seconds: float) -> bool:
    """Whether ``proc`` exits within ``seconds`` (it is never waited on for longer)."""
    try:
        proc.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        return False
    return True
