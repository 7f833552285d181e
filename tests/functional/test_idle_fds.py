"""An idle fd costs the kernel next to nothing: its buffers live only as long as a call."""

from __future__ import annotations

import os
import resource
from pathlib import Path

from guestlib import clear, open_as

from memlog import uapi

FDS = 1000
FIRST_UID = 41000  # a uid per fd: each reads back its own record
KIB = 1024


def _kernel_kib() -> int:
    """Unreclaimable slab (kmalloc, large ones included) and vmalloc: what kvmalloc takes.

    Every slab cache is shrunk first: that also empties KASAN's quarantine of
    freed objects (the debug kernel keeps a call's freed buffers there for a
    while, which an fd does not hold).
    """
    Path("/proc/sys/vm/drop_caches").write_text("2\n")
    for shrink in Path("/sys/kernel/slab").glob("*/shrink"):
        shrink.write_text("1\n")
    fields = dict(line.split(":", 1) for line in Path("/proc/meminfo").read_text().splitlines())
    return sum(int(fields[name].split()[0]) for name in ("SUnreclaim", "VmallocUsed"))


def test_a_thousand_fds_that_each_wrote_and_read_a_large_record_hold_under_4_kib_each() -> None:
    """1,000 fds, each after a 2 KiB write and a read of it back, then idle (rings cleared)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, FDS + 64), max(hard, FDS + 64)))
    fds: list[int] = []
    try:
        before = _kernel_kib()
        for i in range(FDS):
            fd = open_as(FIRST_UID + i, os.O_RDWR)
            fds.append(fd)
            blob = i.to_bytes(4, "big") * 512  # 2 KiB: past the on-stack sizes
            os.write(fd, blob)
            assert os.read(fd, uapi.RECORD_HEADER.size + uapi.RECORD_MAX)[-len(blob) :] == blob
        clear(uapi.UID_ALL)  # the rings' buffers are not the fds'
        held = _kernel_kib() - before
    finally:
        for fd in fds:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert held < FDS * 4, f"{FDS} idle fds hold {held} KiB ({held * KIB // FDS} bytes each)"
