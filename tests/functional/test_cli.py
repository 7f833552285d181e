"""The memlog command, end to end, run by real users against the real device."""

from __future__ import annotations

import base64
import json
import os
import pwd
import signal
import subprocess
import sys
import time

from guestlib import memlog_cli, read_records, uid_of

from memlog.records import iter_records


def test_member_writes_with_memlog_write_and_reads_it_back_as_json() -> None:
    """alice pipes a blob into `memlog write`; `memlog show` prints it base64-encoded."""
    blob = bytes(range(256))
    assert memlog_cli("alice", "write", stdin=blob).returncode == 0
    shown = memlog_cli("alice", "show", "--format", "json")
    assert shown.returncode == 0
    [line] = shown.stdout.decode().splitlines()
    record = json.loads(line)
    assert base64.b64decode(record["blob"]) == blob
    assert (record["uid"], record["length"]) == (uid_of("alice"), 256)


def test_write_with_empty_stdin_fails_and_stores_nothing() -> None:
    """`memlog write` with nothing on stdin exits 1 with one error line."""
    result = memlog_cli("alice", "write", stdin=b"")
    assert result.returncode == 1
    assert result.stderr.decode().count("\n") == 1
    assert "empty" in result.stderr.decode()
    assert read_records(uid_of("alice")) == []


def test_write_over_64_kib_fails_and_stores_nothing() -> None:
    """`memlog write` of 64 KiB + 1 exits 1 and stores nothing."""
    result = memlog_cli("alice", "write", stdin=b"x" * 65537)
    assert result.returncode == 1
    assert "64 KiB" in result.stderr.decode()
    assert read_records(uid_of("alice")) == []


def test_non_member_is_told_to_join_the_memlog_group() -> None:
    """carol's `memlog write` exits 1 naming the group to join; nothing is stored."""
    result = memlog_cli("carol", "write", stdin=b"nope")
    assert result.returncode == 1
    assert "join the memlog group" in result.stderr.decode()
    assert read_records(uid_of("carol")) == []


def test_clear_as_a_non_admin_fails_with_a_clear_message() -> None:
    """`memlog clear` as alice exits 1 saying it needs root."""
    result = memlog_cli("alice", "clear")
    assert result.returncode == 1
    assert "CAP_SYS_ADMIN" in result.stderr.decode()


def test_stats_prints_the_record_count() -> None:
    """`memlog stats` shows records_in_ring after two writes."""
    for blob in (b"one", b"two"):
        memlog_cli("alice", "write", stdin=blob)
    out = memlog_cli("alice", "stats").stdout.decode()
    assert "records_in_ring: 2" in out
    assert "ring_capacity: 4194304" in out


def test_raw_output_is_header_and_blob_records() -> None:
    """`memlog show --format raw` output parses as <header><blob> records."""
    for blob in (b"raw-1", b"raw-22"):
        memlog_cli("alice", "write", stdin=blob)
    raw = memlog_cli("alice", "show", "--format", "raw").stdout
    assert [r.blob for r in iter_records(raw)] == [b"raw-1", b"raw-22"]


def test_show_limit_keeps_the_newest_records() -> None:
    """`memlog show --limit 2` prints the two newest records."""
    for i in range(5):
        memlog_cli("alice", "write", stdin=b"n%d" % i)
    out = memlog_cli("alice", "show", "--limit", "2").stdout.decode().splitlines()
    assert [base64.b64decode(json.loads(x)["blob"]) for x in out] == [b"n3", b"n4"]


def test_root_show_all_includes_every_users_records() -> None:
    """`memlog show --all` as root lists alice's and bob's records."""
    memlog_cli("alice", "write", stdin=b"from-alice")
    memlog_cli("bob", "write", stdin=b"from-bob")
    out = memlog_cli("root", "show", "--all").stdout.decode().splitlines()
    assert {json.loads(x)["uid"] for x in out} == {uid_of("alice"), uid_of("bob")}


def test_tail_follow_prints_a_record_written_after_it_started() -> None:
    """`memlog tail -f` prints a record written while it runs."""
    entry = pwd.getpwnam("alice")
    groups = [g for g in os.getgrouplist("alice", entry.pw_gid)]
    follower = subprocess.Popen(
        [sys.executable, "-m", "memlog", "tail", "-f"],
        user=entry.pw_uid,
        group=entry.pw_gid,
        extra_groups=groups,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "HOME": "/"},
    )
    try:
        time.sleep(3)  # python start-up under emulation
        memlog_cli("alice", "write", stdin=b"followed")
        line = follower.stdout.readline() if follower.stdout else b""
    finally:
        follower.send_signal(signal.SIGINT)
        follower.wait(30)
    assert base64.b64decode(json.loads(line)["blob"]) == b"followed"
    assert follower.returncode == 0


def test_version_prints_the_kernel_schema_version() -> None:
    """`memlog version` names schema 1."""
    result = memlog_cli("alice", "version")
    assert result.returncode == 0
    assert "kernel record schema 1" in result.stdout.decode()
