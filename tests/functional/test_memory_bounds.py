"""Memory is bounded: rings grow with use, all of them within kernel.memlog.max_bytes."""

from __future__ import annotations

import ctypes
import errno
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from guestlib import (
    MAX_BYTES,
    clear,
    open_as,
    read_records,
    reload_module,
    stats,
    write_as_uid,
    write_records,
)

from memlog import uapi

FIRST_UID = 30000
KIB = 1024
MIB = 1024 * KIB


def _write(fd: int, blob: bytes) -> int:
    """0 or the errno of write()."""
    try:
        os.write(fd, blob)
        return 0
    except OSError as exc:
        return exc.errno or -1


def _set_max_bytes(value: int) -> None:
    MAX_BYTES.write_text(f"{value}\n")


def test_max_bytes_defaults_to_64_mib() -> None:
    """The documented default, 1/16 of a 1 GiB machine."""
    assert int(MAX_BYTES.read_text()) == uapi.MAX_BYTES_DEFAULT == 64 * MIB


@pytest.mark.parametrize("value", ["65535", "0", "-1", "lots"])
def test_max_bytes_below_64_kib_or_not_a_number_is_refused(value: str) -> None:
    """EINVAL, and the value stays."""
    with pytest.raises(OSError) as exc:
        MAX_BYTES.write_text(value + "\n")
    assert exc.value.errno == errno.EINVAL
    assert int(MAX_BYTES.read_text()) == uapi.MAX_BYTES_DEFAULT


def test_a_thousand_uids_with_one_small_record_each_fit_in_16_mib() -> None:
    """Rings are not allocated whole: 1,000 first writes of 64 bytes fit within 16 MiB."""
    _set_max_bytes(16 * MIB)
    results = [write_as_uid(FIRST_UID + i, [b"m" * 64])[0] for i in range(1000)]
    assert results.count(0) == 1000, {errno.errorcode[e] for e in results if e}
    assert stats(uapi.UID_ALL)["records_in_ring"] == 1000


def test_past_max_bytes_a_ring_evicts_its_own_oldest_records() -> None:
    """With 64 KiB for everyone, 200 records of 1 KiB all succeed; the ring keeps the newest."""
    uid = FIRST_UID + 2000  # counters outlive CLEAR: a uid of this test's own
    _set_max_bytes(64 * KIB)
    blobs = [i.to_bytes(4, "big") * 256 for i in range(200)]
    assert write_as_uid(uid, blobs) == [0] * 200
    own = stats(uid)
    assert own["total_writes"] == 200
    assert own["total_evictions"] > 0
    assert own["ring_bytes"] <= 64 * KIB
    kept = [blob for _, blob in read_records(uid)]
    assert kept == blobs[-len(kept) :]


def test_a_first_write_larger_than_the_writers_share_gets_enospc_and_takes_nothing() -> None:
    """Room is taken from a bigger user only up to the newcomer's share (here 32 KiB of 64)."""
    uid = FIRST_UID + 3000  # counters outlive CLEAR: uids of this test's own
    _set_max_bytes(64 * KIB)
    write_as_uid(uid, [b"f" * 1024] * 200)
    holder = stats(uid)
    assert write_as_uid(uid + 1, [b"l" * 40000]) == [errno.ENOSPC]
    assert stats(uid + 1)["total_writes"] == 0
    assert read_records(uid + 1) == []
    assert stats(uid) == holder


def test_clear_frees_what_it_empties() -> None:
    """After CLEAR of the uid holding the budget, a new uid can take all of it."""
    _set_max_bytes(64 * KIB)
    write_as_uid(FIRST_UID, [b"f" * 1024] * 200)
    assert write_as_uid(FIRST_UID + 1, [b"l" * 40000]) == [errno.ENOSPC]
    clear(FIRST_UID)
    assert write_as_uid(FIRST_UID + 1, [b"n" * 40000]) == [0]


def test_failed_first_writes_leave_no_ring_behind() -> None:
    """EFAULT and ENOSPC first writes take nothing from max_bytes: 16 rings of 4 KiB still fit."""
    _set_max_bytes(64 * KIB)
    libc = ctypes.CDLL(None, use_errno=True)
    for i in range(20):
        fd = open_as(FIRST_UID + 100 + i, os.O_WRONLY)
        try:
            assert libc.write(fd, ctypes.c_void_p(4096), 64) == -1
            assert ctypes.get_errno() == errno.EFAULT
        finally:
            os.close(fd)
    results = [write_as_uid(FIRST_UID + i, [b"x" * 64])[0] for i in range(16)]
    assert results == [0] * 16
    assert write_as_uid(FIRST_UID + 16, [b"x" * 64]) == [errno.ENOSPC]
    assert stats(uapi.UID_ALL)["records_in_ring"] == 16


def test_stats_capacity_is_max_bytes_for_every_uid_and_the_ring_size_for_one() -> None:
    """All uids: max_bytes; one uid, with a ring or not: the usable ring size, at most max_bytes."""
    _set_max_bytes(1 * MIB)
    write_as_uid(FIRST_UID, [b"one"])
    everyone = stats(uapi.UID_ALL)
    assert (everyone["ring_capacity"], everyone["ring_bytes"]) == (1 * MIB, 64)
    assert stats(FIRST_UID + 1)["ring_capacity"] == 1 * MIB
    _set_max_bytes(64 * MIB)
    nobody = stats(FIRST_UID + 1)
    assert (nobody["ring_capacity"], nobody["ring_bytes"]) == (uapi.RING_SIZE_DEFAULT, 0)


CGROUP = Path("/sys/fs/cgroup/memlog-test")
MEMCG_UID = FIRST_UID + 4000


def test_ring_memory_is_charged_to_the_writers_memory_cgroup_without_oom_kills() -> None:
    """A writer in a cgroup with 4 MiB to spare fills a 64 MiB ring: it stops growing, no OOM."""
    if "memory" not in Path("/sys/fs/cgroup/cgroup.controllers").read_text().split():
        pytest.fail("cgroup v2 memory controller missing in the guest")
    Path("/proc/sys/kernel/memlog/ring_size").write_text(f"{64 * MIB}\n")
    _set_max_bytes(256 * MIB)
    CGROUP.mkdir(exist_ok=True)
    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:
        code = 1
        try:
            os.close(write_end)
            os.read(read_end, 1)  # wait until the cgroup's limit is set
            fd = open_as(MEMCG_UID, os.O_WRONLY)
            errors = [_write(fd, b"c" * 65536) for _ in range(1000)]
            code = 0 if set(errors) <= {0, errno.ENOMEM} else 3
        finally:
            os._exit(code)
    try:
        (CGROUP / "cgroup.procs").write_text(f"{child}\n")
        current = int((CGROUP / "memory.current").read_text())
        (CGROUP / "memory.max").write_text(f"{current + 4 * MIB}\n")
        (CGROUP / "memory.swap.max").write_text("0\n")
        os.close(write_end)
        _, status = os.waitpid(child, 0)
        own = stats(MEMCG_UID)
        events = dict(line.split() for line in (CGROUP / "memory.events").read_text().splitlines())
    finally:
        os.close(read_end)
        clear(MEMCG_UID)
        if CGROUP.exists():
            CGROUP.rmdir()
    assert os.waitstatus_to_exitcode(status) == 0
    assert events["oom_kill"] == "0"
    assert own["total_writes"] >= 900
    assert own["ring_bytes"] <= 4 * MIB


VIEW_CGROUP = Path("/sys/fs/cgroup/memlog-test-view")
MANY_RINGS = 20000  # an all-uid view's cursors for them: about 1 MiB
# As root in VIEW_CGROUP once the parent has set the limit: FILTER_UID to every
# uid, then what the fd still reads.
FILTER_ALL_UNDER_A_LIMIT = """
import errno, fcntl, json, os, sys
sys.path[:0] = {path!r}
from memlog import uapi
fd = os.open("/dev/memlog", os.O_RDONLY)
print("ready", flush=True)
sys.stdin.readline()
try:
    fcntl.ioctl(fd, uapi.IOC_FILTER_UID, uapi.U32.pack(uapi.UID_ALL))
    err = 0
except OSError as exc:
    err = exc.errno
blobs = []
while buf := os.read(fd, uapi.RECORD_HEADER.size + 64):
    blobs.append(buf[uapi.RECORD_HEADER.size :].decode())
buf = bytearray(uapi.U64.size)
fcntl.ioctl(fd, uapi.IOC_GET_LOST, buf, True)
print(json.dumps({{"errno": err, "blobs": blobs, "lost": uapi.U64.unpack(buf)[0]}}), flush=True)
"""


def test_filter_uid_without_memory_for_the_view_is_enomem_and_leaves_the_view_as_it_was() -> None:
    """In a memory cgroup with no room for the cursors of 20,000 rings: ENOMEM, no OOM kill."""
    _set_max_bytes(256 * MIB)
    for start in range(0, MANY_RINGS, 2000):  # rings stay after CLEAR; their buffers go
        for uid in range(FIRST_UID + start, FIRST_UID + start + 2000):
            assert write_as_uid(uid, [b"r"]) == [0]
        clear(uapi.UID_ALL)
    write_records([b"mine 1", b"mine 2"])
    assert write_as_uid(FIRST_UID, [b"another uid's"]) == [0]  # what an all-uid view would show
    VIEW_CGROUP.mkdir(exist_ok=True)
    child = subprocess.Popen(
        [sys.executable, "-c", FILTER_ALL_UNDER_A_LIMIT.format(path=sys.path)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert child.stdout is not None and child.stdin is not None
        assert child.stdout.readline() == "ready\n"
        (VIEW_CGROUP / "cgroup.procs").write_text(f"{child.pid}\n")
        current = int((VIEW_CGROUP / "memory.current").read_text())
        (VIEW_CGROUP / "memory.max").write_text(f"{current + 128 * KIB}\n")
        (VIEW_CGROUP / "memory.swap.max").write_text("0\n")
        child.stdin.write("go\n")
        child.stdin.flush()
        result = json.loads(child.stdout.readline() or "null")
        child.wait(timeout=60)
        events = dict(
            line.split() for line in (VIEW_CGROUP / "memory.events").read_text().splitlines()
        )
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        VIEW_CGROUP.rmdir()
        reload_module()  # the 20,000 rings' structs go with the module
    assert events["oom_kill"] == "0"
    assert result == {"errno": errno.ENOMEM, "blobs": ["mine 1", "mine 2"], "lost": 0}
