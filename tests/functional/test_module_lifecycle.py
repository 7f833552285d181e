"""Loading and unloading: the load line, a busy module, and nothing left behind."""

from __future__ import annotations

import os
import stat
import subprocess
from collections.abc import Callable
from pathlib import Path

from guestlib import (
    DEVICE,
    load_module,
    module_loaded,
    read_records,
    rmmod,
    stats,
    wait_for,
    write_as,
    write_records,
)

from memlog import uapi


def _kmsg_lines_during(action: Callable[[], None]) -> list[str]:
    """The kernel log lines printed while ``action()`` ran."""
    fd = os.open("/dev/kmsg", os.O_RDONLY | os.O_NONBLOCK)
    try:
        os.lseek(fd, 0, os.SEEK_END)
        action()
        lines = []
        while True:
            try:
                entry = os.read(fd, 8192).decode(errors="replace")
            except BlockingIOError:
                return lines
            except BrokenPipeError:  # overwritten while reading: read on
                continue
            lines.append(entry.split(";", 1)[-1].splitlines()[0])
    finally:
        os.close(fd)


def test_unload_with_no_open_files_succeeds() -> None:
    """rmmod memlog succeeds when no file is open and /sys/module/memlog goes."""
    write_records([b"gone soon"])
    result = rmmod()
    assert result.returncode == 0, result.stderr
    assert not module_loaded()


def test_unload_removes_the_device_node() -> None:
    """After rmmod, /dev/memlog disappears."""
    assert rmmod().returncode == 0
    assert wait_for(lambda: not os.path.exists(DEVICE))


def test_unload_is_refused_while_a_file_is_open() -> None:
    """rmmod fails with "in use" (EBUSY) while /dev/memlog is open; the module stays."""
    fd = os.open(DEVICE, os.O_RDONLY)
    try:
        result = rmmod()
    finally:
        os.close(fd)
    assert result.returncode != 0
    assert "in use" in result.stderr
    assert module_loaded()


def test_load_logs_version_and_ring_size() -> None:
    """insmod prints one kernel log line naming the driver version and the ring size."""
    assert rmmod().returncode == 0
    logged = _kmsg_lines_during(load_module)
    lines = [line for line in logged if line.startswith("memlog:") and "version" in line]
    version = Path("/sys/module/memlog/version").read_text().strip()
    assert len(lines) == 1, lines
    assert f"version {version}" in lines[0]
    assert str(uapi.RING_SIZE_DEFAULT) in lines[0]


def test_load_creates_a_root_only_character_device() -> None:
    """Without a udev rule, a freshly loaded module's /dev/memlog is 0600 root:root.

    The group and mode users get come from the packages' udev rule alone.
    """
    assert rmmod().returncode == 0
    subprocess.run(["insmod", os.environ["MEMLOG_KO"]], check=True)
    assert wait_for(lambda: os.path.exists(DEVICE))
    st = os.stat(DEVICE)
    assert stat.S_ISCHR(st.st_mode)
    assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) == (0o600, 0, 0)


def test_records_are_gone_after_a_reload() -> None:
    """Unloading frees every ring: a reloaded module has no record of any uid."""
    write_records([b"before"])
    write_as("alice", [b"before"])
    assert rmmod().returncode == 0
    load_module()
    assert read_records(uapi.UID_ALL) == []


def test_counters_start_at_zero_after_a_reload() -> None:
    """A reloaded module's STATS for every uid are zero."""
    write_records([b"before"])
    assert rmmod().returncode == 0
    load_module()
    s = stats(uapi.UID_ALL)
    assert (s["total_writes"], s["total_evictions"], s["records_in_ring"]) == (0, 0, 0)
