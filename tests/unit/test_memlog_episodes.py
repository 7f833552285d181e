# SPDX-License-Identifier: MIT OR Apache-2.0
"""Compaction events in and out of a ring (an in-memory one): written whole, listed, promoted."""

from __future__ import annotations

import errno
import hashlib
import json
import os
from pathlib import Path
from typing import Any

import cbor2
import pytest
import zstandard
from conftest import RingSyscalls
from test_memlog_compaction import SESSION, encode, transcript

from memlog import catalog, cli, compaction, episodes
from memlog.device import Device
from memlog.errors import MemlogError


def _write(ring: RingSyscalls, payload: bytes, **kwargs: Any) -> list[compaction.Part]:
    parts = encode(payload, **kwargs)
    with Device("/dev/fake", "w", syscalls=ring) as dev:
        episodes.write_event(dev, parts)
    return parts


def _events(ring: RingSyscalls) -> list[episodes.Event]:
    with Device("/dev/fake", "r", syscalls=ring) as dev:
        return episodes.collect_events(dev)


def _promote(ring: RingSyscalls, event: episodes.Event, out: Path) -> tuple[Path, Path]:
    return catalog.Catalog(_events(ring)).promote(event, out)


def test_an_event_is_written_as_its_parts_in_order(ring: RingSyscalls) -> None:
    parts = _write(ring, transcript(1 << 20))
    assert [r.blob for r in ring.records] == [p.to_blob() for p in parts]


def test_the_records_carry_the_session_uuid_in_their_header(ring: RingSyscalls) -> None:
    _write(ring, b"hello")
    assert ring.records[0].session_id == compaction.header_session_id(SESSION)


def test_an_event_larger_than_the_ring_is_refused_before_writing() -> None:
    ring = RingSyscalls(capacity=128 << 10)
    with pytest.raises(MemlogError, match="ring holds at most 131072"):
        _write(ring, os.urandom(300_000))
    assert ring.records == []


def test_a_failed_part_is_named(ring: RingSyscalls) -> None:
    ring.fail_writes = {3: errno.EACCES}
    with pytest.raises(MemlogError, match="part 3 of 5 of event"):
        _write(ring, os.urandom(300_000))


def test_parts_evicted_while_the_event_was_written_are_an_error() -> None:
    """STATS promised room, but the ring (shared with another writer) evicted the first parts."""
    ring = RingSyscalls(capacity=200 << 10, stats_capacity=4 << 20)
    with pytest.raises(episodes.IncompleteEventError, match=r"parts 1-2 of 5 gone"):
        _write(ring, os.urandom(300_000))


def test_a_complete_event_is_listed_complete(ring: RingSyscalls) -> None:
    payload = transcript(1 << 20)
    parts = _write(ring, payload)
    [event] = _events(ring)
    assert event.complete and event.expected == len(parts) and event.missing == []
    assert event.summary()["size"] == len(payload)


def test_events_are_told_apart_by_session_and_event(ring: RingSyscalls) -> None:
    _write(ring, b"one", event="e1")
    _write(ring, b"two", event="e2")
    _write(ring, b"three", event="e1", session="other")
    assert [(e.session, e.event) for e in _events(ring)] == [
        (SESSION, "e1"),
        (SESSION, "e2"),
        ("other", "e1"),
    ]


def test_records_that_are_not_parts_are_skipped(ring: RingSyscalls) -> None:
    with Device("/dev/fake", "w", syscalls=ring) as dev:
        dev.write(b'{"hello":"world"}')
    _write(ring, b"hello")
    assert len(_events(ring)) == 1


def test_an_event_whose_first_parts_were_evicted_names_them() -> None:
    ring = RingSyscalls(capacity=4 << 20)
    payload = os.urandom(300_000)
    _write(ring, payload)
    ring.records = ring.records[2:]  # a shrunk ring kept the newest three
    [event] = _events(ring)
    assert not event.complete and event.missing == [(0, 1)]
    with pytest.raises(episodes.IncompleteEventError, match=r"missing parts 1-2 of 5"):
        event.payload()


def test_a_part_disagreeing_with_the_others_makes_the_event_incomplete(
    ring: RingSyscalls,
) -> None:
    _write(ring, b"hello", event="e1")
    _write(ring, b"other payload", event="e1")
    [event] = _events(ring)
    assert event.conflicts == 1 and not event.complete


def test_promote_writes_the_transcript_byte_for_byte_and_its_metadata(
    ring: RingSyscalls, tmp_path: Path
) -> None:
    payload = transcript(1 << 20)
    parts = _write(ring, payload, extra={"cwd": "/home/alice/project"})
    [event] = _events(ring)
    jsonl, meta = _promote(ring, event, tmp_path)
    assert jsonl == tmp_path / SESSION / f"{parts[0].event}.jsonl"
    assert jsonl.read_bytes() == payload
    info = json.loads(meta.read_text())
    assert info["session"] == SESSION and info["parts"] == len(parts)
    assert info["cwd"] == "/home/alice/project" and info["size"] == len(payload)
    assert [r["seq"] for r in info["records"]] == [r.seq for r in ring.records]


def test_promote_of_an_incomplete_event_writes_nothing(tmp_path: Path) -> None:
    ring = RingSyscalls()
    _write(ring, os.urandom(300_000))
    ring.records = ring.records[1:]
    [event] = _events(ring)
    with pytest.raises(episodes.IncompleteEventError):
        _promote(ring, event, tmp_path)
    assert list(tmp_path.rglob("*")) == []


def test_promote_leaves_no_temporary_file(ring: RingSyscalls, tmp_path: Path) -> None:
    _write(ring, b"hello", event="e1")
    _promote(ring, _events(ring)[0], tmp_path)
    assert sorted(p.name for p in (tmp_path / SESSION).iterdir()) == ["e1.json", "e1.jsonl"]


def test_a_session_that_is_not_a_file_name_is_refused_before_writing(ring: RingSyscalls) -> None:
    with pytest.raises(MemlogError, match="not usable as a file name"):
        _write(ring, b"hello", session="../../etc")
    assert ring.records == []


def _raw(ring: RingSyscalls, fields: dict[str, Any]) -> None:
    """A record as a hostile writer makes it, whatever the format says (in deterministic
    CBOR: the fields themselves are what is hostile)."""
    with Device("/dev/fake", "w", syscalls=ring) as dev:
        dev.write(cbor2.dumps(fields, canonical=True))


def _hostile(**changes: Any) -> dict[str, Any]:
    fields = encode(b"hello", event="e1")[0].to_map()
    fields.update(changes)
    return fields


@pytest.mark.parametrize(
    "changes",
    [
        {"session": "../../etc"},
        {"event": "e1\n"},
        {"source": "a\nFAKE\x1b[31m"},
        {"parts": 2**40},
        {"part": 2**70, "parts": 2**71},
        {"ts": 2**64},
        {"v": 10**5000},
        {"size": 2**40},
    ],
    ids=["traversal", "newline", "escape", "parts", "bignum", "ts", "huge v", "size"],
)
def test_a_crafted_part_is_skipped_with_a_warning_and_never_promoted(
    ring: RingSyscalls, tmp_path: Path, capsys: Any, changes: dict[str, Any]
) -> None:
    _raw(ring, _hostile(**changes))
    _write(ring, b"good", event="e2", session="s2")
    assert _main(ring, "episode", "promote", "--all-sessions", "--out", str(tmp_path)) == 0
    out, err = capsys.readouterr()
    assert out.splitlines() == [str(tmp_path / "s2" / "e2.jsonl")]
    assert err.startswith("memlog: warning: record 1 skipped: compaction part")
    assert [p.name for p in tmp_path.iterdir()] == ["s2"]


def test_a_zstd_frame_claiming_a_terabyte_is_refused_without_inflating(
    ring: RingSyscalls, tmp_path: Path, capsys: Any
) -> None:
    """A 15-byte frame whose header claims 1 TiB (zstd's one-shot API would allocate it)."""
    claims_a_terabyte = (
        bytes.fromhex("28b52ffd")  # magic
        + bytes([0xE0])  # single segment, an 8-byte content size
        + (1 << 40).to_bytes(8, "little")
        + bytes.fromhex("010000")  # the last block: raw, empty
    )
    assert zstandard.frame_content_size(claims_a_terabyte) == 1 << 40
    _raw(ring, _hostile(encoding="zstd", data=claims_a_terabyte, size=1 << 20))
    args = ("--session", SESSION, "--event", "e1", "--out", str(tmp_path))
    assert _main(ring, "episode", "promote", *args) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "claims another size" in err
    assert list(tmp_path.iterdir()) == []


def test_zstd_data_whose_frame_size_differs_from_its_parts_is_refused(
    ring: RingSyscalls, tmp_path: Path, capsys: Any
) -> None:
    data = zstandard.ZstdCompressor().compress(b"hello world")
    fields = _hostile(encoding="zstd", data=data, size=5, sha256=hashlib.sha256(b"hello").digest())
    _raw(ring, fields)
    args = ("--session", SESSION, "--event", "e1", "--out", str(tmp_path))
    assert _main(ring, "episode", "promote", *args) == 1
    assert "claims another size" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_unknown_fields_of_a_part_never_reach_the_metadata(
    ring: RingSyscalls, tmp_path: Path
) -> None:
    fields = _hostile(uid="0", records="forged", cwd="/home/alice")
    fields[1] = "a non-text key"
    _raw(ring, fields)
    [event] = _events(ring)
    _, meta = _promote(ring, event, tmp_path)
    info = json.loads(meta.read_text())
    assert info["uid"] == ring.uid and info["records"][0]["seq"] == 1
    assert info["cwd"] == "/home/alice"


# -- the commands


def _main(ring: RingSyscalls, *args: str) -> int:
    return cli.main(["--device", "/dev/fake", *args], opener=ring.opener())


def test_episode_list_prints_one_line_per_event(ring: RingSyscalls, capsys: Any) -> None:
    _write(ring, transcript(1 << 20), event="e1")
    _write(ring, b"hello", event="e2")
    assert _main(ring, "episode", "list") == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2
    assert f"session {SESSION} event e1 claude-code trigger auto parts" in lines[0]
    assert lines[0].endswith("size 1.0 MiB recorded")  # written with no hook: not PreCompact


def test_episode_list_json_says_parts_present_and_expected(ring: RingSyscalls, capsys: Any) -> None:
    _write(ring, os.urandom(300_000), event="e1")
    ring.records = ring.records[3:]
    assert _main(ring, "episode", "list", "--format", "json") == 0
    [line] = capsys.readouterr().out.splitlines()
    info = json.loads(line)
    assert (info["parts_present"], info["parts_expected"], info["complete"]) == (2, 5, False)


def test_episode_list_filters_by_session(ring: RingSyscalls, capsys: Any) -> None:
    _write(ring, b"one", session="s1")
    _write(ring, b"two", session="s2")
    assert _main(ring, "episode", "list", "--session", "s2") == 0
    [line] = capsys.readouterr().out.splitlines()
    assert "session s2 " in line


def test_episode_promote_writes_every_complete_event_of_the_session(
    ring: RingSyscalls, tmp_path: Path, capsys: Any
) -> None:
    _write(ring, b"one", event="e1")
    _write(ring, b"two", event="e2")
    _write(ring, b"three", event="e3", session="other")
    assert _main(ring, "episode", "promote", "--session", SESSION, "--out", str(tmp_path)) == 0
    assert sorted(p.name for p in (tmp_path / SESSION).glob("*.jsonl")) == ["e1.jsonl", "e2.jsonl"]
    assert not (tmp_path / "other").exists()


def test_episode_promote_of_a_missing_part_is_one_error_line_naming_it(
    tmp_path: Path, capsys: Any
) -> None:
    ring = RingSyscalls()
    _write(ring, os.urandom(300_000), event="e1")
    ring.records = ring.records[1:]
    args = ("--session", SESSION, "--event", "e1", "--out", str(tmp_path))
    assert _main(ring, "episode", "promote", *args) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "missing parts 1 of 5" in err
    assert list(tmp_path.iterdir()) == []


def test_episode_promote_of_an_unknown_event_is_an_error(
    ring: RingSyscalls, tmp_path: Path, capsys: Any
) -> None:
    _write(ring, b"one", event="e1")
    args = ("--session", SESSION, "--event", "nope", "--out", str(tmp_path))
    assert _main(ring, "episode", "promote", *args) == 1
    assert "no event nope" in capsys.readouterr().err


def test_promote_all_sessions_writes_each_complete_event_once(
    ring: RingSyscalls, tmp_path: Path, capsys: Any
) -> None:
    """What memlog-promote.service runs: new complete events of any session, then nothing."""
    _write(ring, b"one", event="e1", session="s1")
    _write(ring, b"two", event="e2", session="s2")
    _write(ring, os.urandom(300_000), event="e3", session="s3")
    ring.records = [r for r in ring.records if r.seq != 3]  # e3 lost its first part
    args = ("episode", "promote", "--all-sessions", "--out", str(tmp_path))
    assert _main(ring, *args) == 0
    assert capsys.readouterr().out.splitlines() == [
        str(tmp_path / "s1" / "e1.jsonl"),
        str(tmp_path / "s2" / "e2.jsonl"),
    ]
    assert _main(ring, *args) == 0
    assert capsys.readouterr() == ("", "")


def test_promote_all_sessions_promotes_again_an_event_whose_file_changed(
    ring: RingSyscalls, tmp_path: Path, capsys: Any
) -> None:
    _write(ring, b"one", event="e1", session="s1")
    args = ("episode", "promote", "--all-sessions", "--out", str(tmp_path))
    _main(ring, *args)
    (tmp_path / "s1" / "e1.jsonl").write_bytes(b"on")
    capsys.readouterr()
    assert _main(ring, *args) == 0
    assert (tmp_path / "s1" / "e1.jsonl").read_bytes() == b"one"


def test_promote_all_sessions_goes_on_after_an_event_that_fails(
    ring: RingSyscalls, tmp_path: Path, capsys: Any
) -> None:
    _write(ring, b"one", event="e1", session="s1")
    _write(ring, b"two", event="e2", session="s2")
    (tmp_path / "s1").write_text("a file where the session's directory goes")
    assert _main(ring, "episode", "promote", "--all-sessions", "--out", str(tmp_path)) == 1
    out, err = capsys.readouterr()
    assert out.splitlines() == [str(tmp_path / "s2" / "e2.jsonl")]
    assert "cannot write the episode" in err


def test_promote_of_every_uid_is_a_usage_error(capsys: Any) -> None:
    """Promoted files are named by session and event: one uid at a time (--uid)."""
    assert cli.main(["episode", "promote", "--session", "s", "--all"]) == 2  # not --all-sessions
    assert "unrecognized arguments: --all" in capsys.readouterr().err


def test_list_of_every_uid_names_each_event_s_uid(ring: RingSyscalls, capsys: Any) -> None:
    _write(ring, b"one", event="e1")
    assert _main(ring, "episode", "list", "--all") == 0
    assert f" uid {ring.uid} session {SESSION} event e1 " in capsys.readouterr().out
