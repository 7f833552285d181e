"""A record's pid is the writer's pid as the reader's pid namespace sees it.

The reader's namespace is the fd opener's (as for uids): the initial
namespace sees the global pid, the writer's own namespace its pid there, a
namespace that cannot see the writer 0 (as SCM_CREDENTIALS does).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from typing import Any

from guestlib import PRELUDE, read_records

# Run as root in a new pid namespace (its pid 1): the /proc of the initial
# namespace is still mounted, so /proc/self names the global pid.
WRITE_AND_READ = """
fd = os.open(DEVICE, os.O_RDWR)
os.write(fd, b"from pid namespace A")
records = []
while buf := os.read(fd, 56 + 65536):
    h = header(buf)
    records.append({"pid": h["pid"], "blob": buf[56:].decode()})
result({"own": os.getpid(), "global": int(os.readlink("/proc/self")), "records": records})
"""
READ_ONLY = """
fd = os.open(DEVICE, os.O_RDONLY)
records = []
while buf := os.read(fd, 56 + 65536):
    h = header(buf)
    records.append({"pid": h["pid"], "blob": buf[56:].decode()})
result({"own": os.getpid(), "records": records})
"""


def _in_new_pid_namespace(code: str) -> Any:
    proc = subprocess.run(
        ["unshare", "--pid", "--fork", sys.executable, "-c", PRELUDE + textwrap.dedent(code)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _pid_of(records: list[dict[str, Any]], blob: str) -> int:
    return next(int(r["pid"]) for r in records if r["blob"] == blob)


def test_a_writer_in_a_pid_namespace_reads_its_own_pid_there() -> None:
    """The namespace's pid 1 reads its record back with pid 1."""
    seen = _in_new_pid_namespace(WRITE_AND_READ)
    assert seen["own"] == 1
    assert _pid_of(seen["records"], "from pid namespace A") == 1


def test_the_initial_namespace_reads_the_writers_global_pid_after_the_namespace_is_gone() -> None:
    seen = _in_new_pid_namespace(WRITE_AND_READ)
    assert seen["global"] > 1
    pids = [h["pid"] for h, blob in read_records(0) if blob == b"from pid namespace A"]
    assert pids == [seen["global"]]


def test_a_sibling_pid_namespace_reads_pid_0_for_a_writer_it_cannot_see() -> None:
    """Another new namespace (a sibling) sees the record, but not its writer: pid 0."""
    _in_new_pid_namespace(WRITE_AND_READ)
    sibling = _in_new_pid_namespace(READ_ONLY)
    assert sibling["own"] == 1
    assert _pid_of(sibling["records"], "from pid namespace A") == 0
