# SPDX-License-Identifier: MIT OR Apache-2.0
"""The memlog command's arguments, output formats and errors, without a device.

In-process tests give ``cli.main`` an opener making Devices on the fake system
calls of tests/unit/conftest.py; subprocess tests run ``python -m memlog``.
"""

from __future__ import annotations

import argparse
import base64
import errno
import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from memlog import __version__, cli, uapi
from memlog.device import Device
from memlog.records import Record, iter_records

SRC = str(Path(__file__).resolve().parents[2] / "src")
# The records' times are relative to NOW, and the command's clock is held at
# NOW (below): however long after collection a test runs, "a minute ago" stays so.
NOW = time.time_ns()
OLD = Record(1, NOW - 3 * 3600 * 10**9, 1000, 7, bytes(16), b"three hours ago")
MID = Record(2, NOW - 60 * 10**9, 1000, 7, bytes(16), b"a minute ago")
NEW = Record(3, NOW, 1000, 7, bytes(range(16)), b"\x00\xffnow")


@pytest.fixture(autouse=True)
def _clock_at_now(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli.time, "time_ns", lambda: NOW)


def _run(*args: str, stdin: bytes = b"", **kwargs: Any) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "PYTHONPATH": SRC}
    return subprocess.run(
        [sys.executable, "-m", "memlog", *args],
        input=stdin,
        capture_output="stdout" not in kwargs,
        check=False,
        env=env,
        **kwargs,
    )


def _main(fake: Any, *args: str) -> int:
    """cli.main on a Device made on ``fake``."""

    def opener(path: str, mode: str) -> Device:
        return Device(path, mode, syscalls=fake)

    return cli.main(["--device", "/dev/fake", *args], opener=opener)


def _records(fake: Any) -> Any:
    return fake(reads=[r.to_bytes() for r in (OLD, MID, NEW)])


def _json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines()]


def _stdin(monkeypatch: pytest.MonkeyPatch, data: bytes) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))


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


def test_show_prints_one_json_line_per_record(fake_syscalls: Any, capsys: Any) -> None:
    """`memlog show` prints every record of the view, oldest first, as JSON lines."""
    assert _main(_records(fake_syscalls), "show", "--format", "json") == 0
    assert [line["seq"] for line in _json_lines(capsys.readouterr().out)] == [1, 2, 3]


def test_show_limit_keeps_the_newest_records(fake_syscalls: Any, capsys: Any) -> None:
    """--limit N prints the newest N records."""
    assert _main(_records(fake_syscalls), "show", "--format", "json", "--limit", "2") == 0
    assert [line["seq"] for line in _json_lines(capsys.readouterr().out)] == [2, 3]


def test_show_since_drops_older_records(fake_syscalls: Any, capsys: Any) -> None:
    """--since 2h leaves out a record written three hours ago."""
    assert _main(_records(fake_syscalls), "show", "--format", "json", "--since", "2h") == 0
    assert [line["seq"] for line in _json_lines(capsys.readouterr().out)] == [2, 3]


def test_show_since_then_limit(fake_syscalls: Any, capsys: Any) -> None:
    """--limit applies after --since: the newest N of the recent ones."""
    args = ("--format", "json", "--since", "10m", "--limit", "5")
    assert _main(_records(fake_syscalls), "show", *args) == 0
    assert [line["seq"] for line in _json_lines(capsys.readouterr().out)] == [2, 3]


def test_show_all_selects_every_uid(fake_syscalls: Any) -> None:
    """--all sets the fd's view to MEMLOG_UID_ALL before reading."""
    fake = fake_syscalls()
    assert _main(fake, "show", "--all") == 0
    assert fake.ioctls()[0] == (uapi.IOC_FILTER_UID, uapi.U32.pack(uapi.UID_ALL))
    assert {request for request, _ in fake.ioctls()[1:]} == {uapi.IOC_GET_LOST}


def test_show_uid_selects_that_uid(fake_syscalls: Any) -> None:
    """--uid 1001 sets the fd's view to uid 1001."""
    fake = fake_syscalls()
    assert _main(fake, "show", "--uid", "1001") == 0
    assert fake.ioctls()[0] == (uapi.IOC_FILTER_UID, uapi.U32.pack(1001))
    assert {request for request, _ in fake.ioctls()[1:]} == {uapi.IOC_GET_LOST}


def test_show_raw_writes_the_records_bytes(fake_syscalls: Any, capsysbinary: Any) -> None:
    """--format raw writes each header and blob exactly as read, nothing else."""
    assert _main(_records(fake_syscalls), "show", "--format", "raw") == 0
    assert capsysbinary.readouterr().out == OLD.to_bytes() + MID.to_bytes() + NEW.to_bytes()


def test_show_raw_output_splits_back_into_the_records(tmp_path: Path) -> None:
    """`memlog show --format raw > dump` round-trips through iter_records."""
    device = tmp_path / "memlog"  # a file holding one record reads like the device
    device.write_bytes(NEW.to_bytes())
    result = _run("--device", str(device), "show", "--format", "raw")
    assert result.returncode == 0
    assert iter_records(result.stdout) == [NEW]


def test_show_exits_0_quietly_when_the_reader_goes_away(tmp_path: Path) -> None:
    """A closed pipe on stdout (memlog show | head) exits 0 with nothing on stderr."""
    device = tmp_path / "memlog"
    device.write_bytes(NEW.to_bytes())
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        result = _run("--device", str(device), "show", stdout=write_end, stderr=subprocess.PIPE)
    finally:
        os.close(write_end)
    assert (result.returncode, result.stderr) == (0, b"")


def test_show_interrupted_exits_130(fake_syscalls: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C during show (not following) exits 130."""
    monkeypatch.setattr(cli, "_emit", lambda *a: (_ for _ in ()).throw(KeyboardInterrupt))
    assert _main(_records(fake_syscalls), "show") == 130


def test_tail_prints_the_newest_n_records(fake_syscalls: Any, capsys: Any) -> None:
    """`memlog tail -n 2` prints the two newest records."""
    assert _main(_records(fake_syscalls), "tail", "--format", "json", "-n", "2") == 0
    assert [line["seq"] for line in _json_lines(capsys.readouterr().out)] == [2, 3]


def test_tail_prints_ten_records_by_default(fake_syscalls: Any, capsys: Any) -> None:
    """Without -n, tail prints the newest 10."""
    many = [Record(i, NOW, 1000, 7, bytes(16), b"x").to_bytes() for i in range(1, 13)]
    assert _main(fake_syscalls(reads=many), "tail", "--format", "json") == 0
    assert [line["seq"] for line in _json_lines(capsys.readouterr().out)] == list(range(3, 13))


def test_tail_follow_prints_new_records_and_exits_0_on_ctrl_c(
    fake_syscalls: Any, capsys: Any
) -> None:
    """`memlog tail -f` prints records as poll() announces them; Ctrl-C exits 0."""
    fake = fake_syscalls(reads=[OLD.to_bytes()], polls=[[NEW.to_bytes()], KeyboardInterrupt()])
    assert _main(fake, "tail", "--format", "json", "-f") == 0
    assert [line["seq"] for line in _json_lines(capsys.readouterr().out)] == [1, 3]


def _lost(*counts: int) -> dict[int, list[bytes]]:
    return {uapi.IOC_GET_LOST: [uapi.U64.pack(n) for n in counts]}


def test_show_warns_on_stderr_when_records_were_evicted_unread(
    fake_syscalls: Any, capsys: Any
) -> None:
    """GET_LOST growing while `memlog show` reads is one warning line per growth on stderr."""
    fake = fake_syscalls(
        reads=[r.to_bytes() for r in (OLD, MID, NEW)], ioctl_results=_lost(0, 5, 5, 7)
    )
    assert _main(fake, "show", "--format", "json") == 0
    out, err = capsys.readouterr()
    assert len(_json_lines(out)) == 3
    warning = "memlog: warning: {} record(s) evicted before they could be read ({} since {})"
    assert err.splitlines() == [
        warning.format(5, 5, "this reader started"),
        warning.format(2, 7, "this reader started"),
    ]


def test_show_says_nothing_on_stderr_when_nothing_was_lost(fake_syscalls: Any, capsys: Any) -> None:
    """No eviction, no warning."""
    assert _main(_records(fake_syscalls), "show") == 0
    assert capsys.readouterr().err == ""


def test_tail_follow_warns_once_per_growth_across_the_backlog_and_the_follow(
    fake_syscalls: Any, capsys: Any
) -> None:
    """Loss seen while printing the backlog is not reported again while following."""
    fake = fake_syscalls(
        reads=[OLD.to_bytes()],
        polls=[[NEW.to_bytes()], KeyboardInterrupt()],
        ioctl_results=_lost(0, 3, 3, 4),
    )
    assert _main(fake, "tail", "--format", "json", "-f") == 0
    err = capsys.readouterr().err.splitlines()
    assert [line.split(" record(s)")[0] for line in err] == [
        "memlog: warning: 3",
        "memlog: warning: 1",
    ]


def test_stats_prints_each_counter(fake_syscalls: Any, capsys: Any) -> None:
    """`memlog stats` prints one `name: value` line per field."""
    fake = fake_syscalls(ioctl_results={uapi.IOC_STATS: uapi.STATS.pack(1, 2, 3, 4, 5, 6, 7)})
    assert _main(fake, "stats") == 0
    assert capsys.readouterr().out.splitlines() == [
        "total_writes: 1", "total_evictions: 2", "records_in_ring: 3", "ring_bytes: 4",
        "ring_capacity: 5", "oldest_ts_ns: 6", "newest_ts_ns: 7",
    ]  # fmt: skip


def test_clear_without_root_is_one_error_line_and_exit_1(fake_syscalls: Any, capsys: Any) -> None:
    """EPERM from CLEAR prints `memlog: error: ...CAP_SYS_ADMIN...` and exits 1."""
    assert _main(fake_syscalls(ioctl_errno=errno.EPERM), "clear") == 1
    assert capsys.readouterr().err == (
        "memlog: error: clear: not permitted: needs CAP_SYS_ADMIN (run as root)\n"
    )


def test_version_prints_the_tool_and_kernel_versions(fake_syscalls: Any, capsys: Any) -> None:
    """`memlog version` prints this tool's version and the kernel's schema version."""
    fake = fake_syscalls(ioctl_results={uapi.IOC_GET_VERSION: uapi.U32.pack(1)})
    assert _main(fake, "version") == 0
    assert capsys.readouterr().out == f"memlog {__version__}\nkernel record schema 1\n"


def test_write_stores_stdin_as_one_record(
    fake_syscalls: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`memlog write` writes standard input in one write(2)."""
    fake = fake_syscalls()
    _stdin(monkeypatch, b"\xa1\x61x\x01")
    assert _main(fake, "write") == 0
    assert fake.written == [b"\xa1\x61x\x01"]


def test_write_session_tags_the_fd_before_writing(
    fake_syscalls: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--session sets the session id, then the record is written."""
    fake = fake_syscalls()
    _stdin(monkeypatch, b"blob")
    assert _main(fake, "write", "--session", "12345678123456781234567812345678") == 0
    kinds = [c[0] for c in fake.calls]
    assert kinds == ["open", "ioctl", "write", "close"]
    assert fake.ioctls() == [(uapi.IOC_SET_SESSION, bytes.fromhex("12345678" * 4))]


def test_write_of_empty_stdin_opens_nothing(
    fake_syscalls: Any, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    """Empty stdin exits 1 saying so; the device is not even opened."""
    fake = fake_syscalls()
    _stdin(monkeypatch, b"")
    assert _main(fake, "write") == 1
    assert fake.calls == []
    assert capsys.readouterr().err == "memlog: error: nothing to write: standard input is empty\n"


def test_write_of_oversized_stdin_opens_nothing(
    fake_syscalls: Any, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    """More than 64 KiB on stdin exits 1 naming the limit; the device is not opened."""
    fake = fake_syscalls()
    _stdin(monkeypatch, b"x" * (uapi.RECORD_MAX + 1))
    assert _main(fake, "write") == 1
    assert fake.calls == []
    assert "64 KiB" in capsys.readouterr().err


def test_write_of_exactly_64_kib_is_written(
    fake_syscalls: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Exactly 64 KiB on stdin is one record."""
    fake = fake_syscalls()
    _stdin(monkeypatch, b"x" * uapi.RECORD_MAX)
    assert _main(fake, "write") == 0
    assert [len(w) for w in fake.written] == [uapi.RECORD_MAX]


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
        ["show", "--since", "yesterday"],
        ["show", "--format", "cbor"],
        ["tail", "-n", "-1"],
        ["write", "--session", "not-a-uuid"],
    ],
)
def test_usage_errors_exit_2(args: list[str]) -> None:
    """Bad arguments are usage errors: exit status 2."""
    assert _run(*args).returncode == 2


@pytest.mark.parametrize(
    "command",
    [
        "write",
        "show",
        "tail",
        "stats",
        "clear",
        "version",
        "hook",
        "hook claude-code",
        "hook install",
        "episode",
        "episode list",
        "episode promote",
        "episode show",
        "episode grep",
    ],
)
def test_every_command_has_help(command: str) -> None:
    """`memlog COMMAND --help` explains it and exits 0."""
    result = _run(*command.split(), "--help")
    assert result.returncode == 0
    assert b"usage: memlog " + command.encode() in result.stdout
