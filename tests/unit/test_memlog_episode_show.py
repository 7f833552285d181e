# SPDX-License-Identifier: MIT OR Apache-2.0
"""memlog episode show and grep, on events the hook wrote into an in-memory ring."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import RingSyscalls
from test_memlog_compaction import SESSION

from memlog import cli

DATA = Path(__file__).with_name("data")


def _main(ring: RingSyscalls, *args: str) -> int:
    return cli.main(["--device", "/dev/fake", *args], opener=ring.opener())


def _hook(ring: RingSyscalls, monkeypatch: pytest.MonkeyPatch, **fields: Any) -> None:
    stdin = json.dumps({"session_id": SESSION, "cwd": "/p", **fields}).encode()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin)))
    assert _main(ring, "hook", "claude-code") == 0


@pytest.fixture
def compacted(ring: RingSyscalls, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A real transcript captured at PreCompact, then confirmed with a summary."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    path = tmp_path / "t.jsonl"
    path.write_bytes((DATA / "claude-code-transcript.jsonl").read_bytes())
    _hook(ring, monkeypatch, hook_event_name="PreCompact", transcript_path=str(path),
          trigger="manual", prompt_id="p1")  # fmt: skip
    _hook(ring, monkeypatch, hook_event_name="PostCompact", transcript_path=str(path),
          trigger="manual", prompt_id="p1", compact_summary="Alice wants the report.")  # fmt: skip
    return path


def test_show_renders_the_sessions_newest_event_as_a_conversation(
    ring: RingSyscalls, compacted: Path, capsys: Any
) -> None:
    assert _main(ring, "episode", "show", "--session", SESSION) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"# Session {SESSION}, event ")
    assert "Status: confirmed." in out and "**user**: hello" in out
    assert out.rstrip().endswith("> Alice wants the report.")


def test_show_json_gives_the_turns_status_and_summary(
    ring: RingSyscalls, compacted: Path, capsys: Any
) -> None:
    assert _main(ring, "episode", "show", "--session", SESSION, "--format", "json") == 0
    shown = json.loads(capsys.readouterr().out)
    assert (shown["status"], shown["summary"]) == ("confirmed", "Alice wants the report.")
    assert shown["turns"][0] == {"role": "user", "kind": "text", "text": "hello"}


def test_show_reads_a_promoted_file_with_its_metadata(
    ring: RingSyscalls, compacted: Path, tmp_path: Path, capsys: Any
) -> None:
    assert (
        _main(ring, "episode", "promote", "--session", SESSION, "--out", str(tmp_path / "o")) == 0
    )
    [jsonl] = (tmp_path / "o" / SESSION).glob("*.jsonl")
    capsys.readouterr()
    assert _main(ring, "episode", "show", str(jsonl)) == 0
    out = capsys.readouterr().out
    assert "Status: confirmed." in out and "> Alice wants the report." in out


def test_show_of_a_session_not_in_the_ring_is_one_error_line(
    ring: RingSyscalls, capsys: Any
) -> None:
    assert _main(ring, "episode", "show", "--session", "nobody") == 1
    assert capsys.readouterr().err == "memlog: error: session nobody has no capture in the ring\n"


def test_grep_finds_a_turn_once_in_the_ring_and_the_promoted_files(
    ring: RingSyscalls, compacted: Path, tmp_path: Path, capsys: Any
) -> None:
    out_dir = tmp_path / "o"
    assert _main(ring, "episode", "promote", "--session", SESSION, "--out", str(out_dir)) == 0
    capsys.readouterr()
    assert _main(ring, "episode", "grep", "FOURTH prompt", "-i", "--out", str(out_dir)) == 0
    [line] = capsys.readouterr().out.splitlines()
    assert line.startswith("ring:") and line.endswith(f"{SESSION} user: fourth prompt")


def test_grep_searches_the_summaries(ring: RingSyscalls, compacted: Path, capsys: Any) -> None:
    assert _main(ring, "episode", "grep", "wants the report") == 0
    [line] = capsys.readouterr().out.splitlines()
    assert "summary: Alice wants the report." in line


def test_grep_with_a_bad_pattern_is_one_error_line(ring: RingSyscalls, capsys: Any) -> None:
    assert _main(ring, "episode", "grep", "(") == 1
    assert capsys.readouterr().err.startswith("memlog: error: bad pattern '('")


def test_grep_searches_promoted_episodes_no_longer_in_the_ring(
    ring: RingSyscalls, compacted: Path, tmp_path: Path, capsys: Any
) -> None:
    out_dir = tmp_path / "o"
    assert _main(ring, "episode", "promote", "--session", SESSION, "--out", str(out_dir)) == 0
    ring.records.clear()  # evicted, or the machine rebooted
    capsys.readouterr()
    assert _main(ring, "episode", "grep", "fourth prompt", "--out", str(out_dir)) == 0
    [line] = capsys.readouterr().out.splitlines()
    assert line.startswith(str(out_dir)) and line.endswith(f"{SESSION} user: fourth prompt")


def test_grep_goes_on_past_an_event_that_does_not_decode(
    ring: RingSyscalls, compacted: Path, capsys: Any
) -> None:
    import cbor2

    from memlog import compaction

    bad = compaction.encode_event(
        b"x" * 1000, source="s", session="other", trigger="auto", ts=1,
        media_type=compaction.MEDIA_CLAUDE_CODE,
    )[0].to_map()  # fmt: skip
    bad["sha256"] = bytes(32)
    with ring.opener()("/dev/fake", "w") as dev:
        dev.write(cbor2.dumps(bad, canonical=True))
    assert _main(ring, "episode", "grep", "fourth prompt") == 0
    out, err = capsys.readouterr()
    assert "fourth prompt" in out and "does not match its sha256" in err
