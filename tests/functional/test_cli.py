"""The memlog command, end to end, run by real users against the real device."""

from __future__ import annotations

import base64
import json
import select
import signal
import subprocess
import sys

from guestlib import credentials, memlog_cli, read_records, stats, uid_of

from memlog import uapi
from memlog.records import iter_records


def _write(user: str, blob: bytes) -> None:
    result = memlog_cli(user, "write", stdin=blob)
    assert result.returncode == 0, result.stderr.decode()


def _blobs(json_lines: bytes) -> list[bytes]:
    return [base64.b64decode(json.loads(line)["blob"]) for line in json_lines.splitlines()]


def _readline(proc: subprocess.Popen[bytes], timeout: float) -> bytes:
    """One line of ``proc``'s stdout, or b"" if none came within ``timeout`` seconds."""
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    return proc.stdout.readline() if ready else b""


def test_member_writes_with_memlog_write_and_reads_it_back_as_json() -> None:
    """alice pipes a blob into `memlog write`; her `memlog show --format json` shows it."""
    blob = bytes(range(256))
    _write("alice", blob)
    shown = memlog_cli("alice", "show", "--format", "json")
    assert shown.returncode == 0, shown.stderr.decode()
    [line] = shown.stdout.decode().splitlines()
    record = json.loads(line)
    assert base64.b64decode(record["blob"]) == blob
    assert (record["uid"], record["length"]) == (uid_of("alice"), 256)


def test_write_with_empty_stdin_fails_with_one_line_and_stores_nothing() -> None:
    """`memlog write` with nothing on stdin exits 1 with one error line; nothing is written."""
    writes = stats(uid_of("alice"))["total_writes"]
    result = memlog_cli("alice", "write", stdin=b"")
    assert result.returncode == 1
    assert len(result.stderr.decode().splitlines()) == 1
    assert "empty" in result.stderr.decode()
    assert stats(uid_of("alice"))["total_writes"] == writes


def test_write_over_64_kib_fails_and_stores_nothing() -> None:
    """`memlog write` of 64 KiB + 1 exits 1 naming the limit; nothing is written."""
    writes = stats(uid_of("alice"))["total_writes"]
    result = memlog_cli("alice", "write", stdin=b"x" * 65537)
    assert result.returncode == 1
    assert "64 KiB" in result.stderr.decode()
    assert stats(uid_of("alice"))["total_writes"] == writes


def test_non_member_is_told_to_join_the_memlog_group() -> None:
    """carol's `memlog write` exits 1 with one line telling her to join the memlog group."""
    result = memlog_cli("carol", "write", stdin=b"nope")
    assert result.returncode == 1
    assert len(result.stderr.decode().splitlines()) == 1
    assert "join the memlog group" in result.stderr.decode()


def test_non_members_write_stores_nothing() -> None:
    """After carol's refused `memlog write`, no record of any uid exists."""
    memlog_cli("carol", "write", stdin=b"nope")
    assert read_records(uapi.UID_ALL) == []


def test_clear_as_a_non_admin_fails_saying_it_needs_root() -> None:
    """`memlog clear` as alice exits 1 saying it needs root; her records stay."""
    _write("alice", b"stays")
    result = memlog_cli("alice", "clear")
    assert result.returncode == 1
    assert "root" in result.stderr.decode()
    assert [b for _, b in read_records(uid_of("alice"))] == [b"stays"]


def test_clear_as_root_drops_the_selected_uids_records() -> None:
    """`memlog clear --uid ALICE` as root exits 0 and empties alice's ring."""
    _write("alice", b"goes")
    assert memlog_cli("root", "clear", "--uid", str(uid_of("alice"))).returncode == 0
    assert read_records(uid_of("alice")) == []


def test_stats_prints_the_counts() -> None:
    """`memlog stats` shows total_writes, records_in_ring and ring_capacity."""
    writes = stats(uid_of("alice"))["total_writes"]
    for blob in (b"one", b"two"):
        _write("alice", blob)
    result = memlog_cli("alice", "stats")
    assert result.returncode == 0
    lines = result.stdout.decode().splitlines()
    assert f"total_writes: {writes + 2}" in lines
    assert "records_in_ring: 2" in lines
    assert "ring_capacity: 4194304" in lines


def test_raw_output_is_header_and_blob_records() -> None:
    """`memlog show --format raw` output parses as <header><blob> records of the writer."""
    for blob in (b"raw-1", b"raw-22"):
        _write("alice", blob)
    result = memlog_cli("alice", "show", "--format", "raw")
    assert result.returncode == 0
    records = iter_records(result.stdout)
    assert [r.blob for r in records] == [b"raw-1", b"raw-22"]
    assert {r.uid for r in records} == {uid_of("alice")}


def test_show_limit_keeps_the_newest_records() -> None:
    """`memlog show --limit 2` prints the two newest records."""
    for i in range(5):
        _write("alice", b"n%d" % i)
    shown = memlog_cli("alice", "show", "--limit", "2", "--format", "json").stdout
    assert _blobs(shown) == [b"n3", b"n4"]


def test_show_prints_a_line_per_record_for_people_by_default() -> None:
    """The README's `echo -n '{"hello":"world"}' | memlog write; memlog show --limit 5`."""
    _write("alice", b'{"hello":"world"}')
    result = memlog_cli("alice", "show", "--limit", "5")
    assert result.returncode == 0
    [line] = result.stdout.decode().splitlines()
    assert f" uid={uid_of('alice')} " in line
    assert line.endswith(' 17 B: {"hello":"world"}')


def test_root_show_all_includes_every_users_records() -> None:
    """`memlog show --all` as root lists alice's and bob's records."""
    _write("alice", b"from-alice")
    _write("bob", b"from-bob")
    out = memlog_cli("root", "show", "--all", "--format", "json").stdout.decode().splitlines()
    assert {json.loads(x)["uid"] for x in out} == {uid_of("alice"), uid_of("bob")}


def test_show_all_as_a_non_admin_fails_saying_it_needs_root() -> None:
    """`memlog show --all` as alice exits 1 (FILTER_UID of every uid needs root)."""
    result = memlog_cli("alice", "show", "--all")
    assert result.returncode == 1
    assert "root" in result.stderr.decode()


def test_tail_follow_prints_a_record_written_after_it_started() -> None:
    """`memlog tail -f` prints a record written while it runs."""
    _write("alice", b"before")
    follower = subprocess.Popen(
        [sys.executable, "-m", "memlog", "tail", "-f", "--format", "json"],
        bufsize=0,  # unbuffered: select() then sees every line still to be read
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        **credentials("alice"),
    )
    try:
        first = _readline(follower, 60)  # printed once it has read the ring: it is following
        _write("alice", b"followed")
        second = _readline(follower, 30)
    finally:
        follower.send_signal(signal.SIGINT)
        follower.wait(30)
    assert _blobs(first + second) == [b"before", b"followed"]
    assert follower.returncode == 0


def test_version_prints_schema_1() -> None:
    """`memlog version` exits 0 and names kernel record schema 1."""
    result = memlog_cli("alice", "version")
    assert result.returncode == 0
    assert "kernel record schema 1" in result.stdout.decode()
