"""The tracepoint memlog:record_written fires on each stored record."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from guestlib import read_records, uid_of, write_as

TRACING = Path("/sys/kernel/tracing")
EVENT = TRACING / "events" / "memlog" / "record_written"


@pytest.fixture
def tracing() -> Iterator[Path]:
    """tracefs mounted, the trace buffer empty; the event disabled afterwards."""
    if not (TRACING / "trace").exists():
        subprocess.run(["mount", "-t", "tracefs", "nodev", str(TRACING)], check=True)
    (TRACING / "trace").write_text("")
    yield EVENT
    if EVENT.exists():
        (EVENT / "enable").write_text("0")


def test_record_written_event_exists_under_tracing(tracing: Path) -> None:
    """events/memlog/record_written is there, its format naming seq, uid, pid and length."""
    fmt = (tracing / "format").read_text()
    for field in ("seq", "uid", "pid", "length"):
        assert re.search(rf"\bfield:\w+ {field};", fmt), field


def test_record_written_event_reports_seq_uid_pid_and_length(tracing: Path) -> None:
    """Enabled, the event logs the stored record's seq, uid, pid and length."""
    (tracing / "enable").write_text("1")
    pid = write_as("alice", [b"z" * 123])
    (tracing / "enable").write_text("0")
    [(header, _)] = read_records(uid_of("alice"))
    trace = (TRACING / "trace").read_text()
    lines = [line for line in trace.splitlines() if "record_written:" in line]
    assert len(lines) == 1, trace
    fields = dict(re.findall(r"(\w+)=(\d+)", lines[0].split("record_written:", 1)[1]))
    assert fields == {
        "seq": str(header["seq"]),
        "uid": str(uid_of("alice")),
        "pid": str(pid),
        "length": "123",
    }
