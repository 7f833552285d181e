"""The tracepoint memlog:record_written fires on each stored record."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest
from guestlib import read_records, write_records

TRACING = Path("/sys/kernel/tracing")
EVENT = TRACING / "events" / "memlog" / "record_written"


@pytest.fixture
def tracing() -> Path:
    if not (TRACING / "trace").exists():
        subprocess.run(["mount", "-t", "tracefs", "nodev", str(TRACING)], check=True)
    (TRACING / "trace").write_text("")
    yield EVENT
    (EVENT / "enable").write_text("0")


def test_record_written_event_exists_under_tracing(tracing: Path) -> None:
    """events/memlog/record_written is there with its format."""
    fmt = (tracing / "format").read_text()
    for field in ("seq", "uid", "pid", "length"):
        assert re.search(rf"\b{field}\b", fmt), field


def test_record_written_event_reports_seq_uid_pid_and_length(tracing: Path) -> None:
    """Enabled, the event logs the stored record's seq, uid, pid and length."""
    (tracing / "enable").write_text("1")
    write_records([b"z" * 123])
    (tracing / "enable").write_text("0")
    [(header, _)] = read_records()
    trace = (TRACING / "trace").read_text()
    lines = [line for line in trace.splitlines() if "record_written" in line]
    assert len(lines) == 1, trace
    line = lines[0]
    assert f"seq={header['seq']}" in line
    assert f"uid={os.getuid()}" in line
    assert f"pid={os.getpid()}" in line
    assert "length=123" in line
