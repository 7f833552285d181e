"""The memlog command's arguments, output formats and errors, without a device."""

from __future__ import annotations

import argparse
import base64
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from memlog import cli
from memlog.records import Record


def _run(*args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "memlog", *args], input=stdin, capture_output=True, check=False
    )


@pytest.mark.parametrize(
    ("text", "seconds"), [("30s", 30), ("10m", 600), ("2h", 7200), ("1d", 86400)]
)
def test_durations_are_parsed(text: str, seconds: int) -> None:
    """--since takes 30s, 10m, 2h and 1d."""
    assert cli.parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "10", "5x", "-1m", "1.5h"])
def test_bad_durations_are_refused(text: str) -> None:
    """Anything else is a usage error."""
    with pytest.raises(argparse.ArgumentTypeError):
        cli.parse_duration(text)


def test_json_output_is_one_object_with_a_base64_blob() -> None:
    """A record prints as one JSON line with every header field and the blob in base64."""
    record = Record(3, 1_700_000_000_000_000_000, 1000, 7, bytes(16), b"\x00\xffhi")
    data = json.loads(cli.record_json(record))
    assert data == {
        "seq": 3,
        "ts_ns": 1_700_000_000_000_000_000,
        "time": "2023-11-14T22:13:20.000000Z",
        "uid": 1000,
        "pid": 7,
        "session_id": "00" * 16,
        "length": 4,
        "blob": base64.b64encode(b"\x00\xffhi").decode(),
    }


def test_raw_output_is_the_records_bytes() -> None:
    """--format raw writes header and blob exactly as the device returned them."""
    record = Record(3, 5, 1000, 7, bytes(16), b"raw")
    raw = io.BytesIO()
    cli._emit([record], "raw", io.StringIO(), raw)
    assert raw.getvalue() == record.to_bytes()


def test_missing_device_is_one_error_line_and_exit_1(tmp_path: Path) -> None:
    """With no device node the command prints one error line and exits 1."""
    result = _run("--device", str(tmp_path / "memlog"), "show")
    assert result.returncode == 1
    assert result.stderr.decode().splitlines() == [
        f"memlog: error: {tmp_path / 'memlog'} does not exist: is the memlog module loaded? "
        "(modprobe memlog)"
    ]


def test_empty_stdin_is_refused_before_opening_the_device(tmp_path: Path) -> None:
    """`memlog write` with nothing on stdin exits 1 saying so."""
    result = _run("--device", str(tmp_path / "memlog"), "write", stdin=b"")
    assert result.returncode == 1
    assert "standard input is empty" in result.stderr.decode()


def test_oversized_stdin_is_refused_before_opening_the_device(tmp_path: Path) -> None:
    """`memlog write` of more than 64 KiB exits 1 saying so."""
    result = _run("--device", str(tmp_path / "memlog"), "write", stdin=b"x" * 65537)
    assert result.returncode == 1
    assert "64 KiB" in result.stderr.decode()


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["frobnicate"],
        ["show", "--limit", "0"],
        ["show", "--uid", "x"],
        ["show", "--all", "--uid", "1"],
    ],
)
def test_usage_errors_exit_2(args: list[str]) -> None:
    """Bad arguments are usage errors: exit status 2."""
    assert _run(*args).returncode == 2


@pytest.mark.parametrize("command", ["write", "show", "tail", "stats", "clear", "version"])
def test_every_command_has_help(command: str) -> None:
    """`memlog COMMAND --help` explains it and exits 0."""
    result = _run(command, "--help")
    assert result.returncode == 0
    assert b"usage: memlog " + command.encode() in result.stdout
