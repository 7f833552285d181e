"""Loading and unloading: the load line, a busy module, and nothing left behind."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from guestlib import DEVICE, load_module, module_loaded, read_records, wait_for, write_records


def _rmmod() -> subprocess.CompletedProcess[str]:
    return subprocess.run(["rmmod", "memlog"], capture_output=True, text=True, check=False)


def test_unload_with_no_open_files_removes_module_and_node() -> None:
    """rmmod succeeds; /sys/module/memlog and /dev/memlog disappear."""
    write_records([b"gone soon"])
    assert _rmmod().returncode == 0
    assert not module_loaded()
    assert wait_for(lambda: not os.path.exists(DEVICE))
    load_module()


def test_unload_is_refused_while_a_file_is_open() -> None:
    """rmmod fails while /dev/memlog is open."""
    fd = os.open(DEVICE, os.O_RDONLY)
    try:
        result = _rmmod()
    finally:
        os.close(fd)
    assert result.returncode != 0
    assert "in use" in result.stderr
    assert module_loaded()


def test_load_logs_version_and_ring_size() -> None:
    """insmod prints a kernel log line naming the version and the ring size."""
    assert _rmmod().returncode == 0
    subprocess.run(["dmesg", "-C"], check=True)
    load_module()
    log = subprocess.run(["dmesg"], capture_output=True, text=True, check=True).stdout
    lines = [line for line in log.splitlines() if "memlog" in line]
    assert any("version" in line and "4194304" in line for line in lines), log


def test_records_are_gone_after_a_reload() -> None:
    """Unloading frees every ring: a reloaded module starts empty."""
    write_records([b"before"])
    assert _rmmod().returncode == 0
    load_module()
    assert read_records() == []
    assert Path("/sys/module/memlog").exists()
