# SPDX-License-Identifier: MIT OR Apache-2.0
"""Events rendered for people: turns in order, tools shortened, compactions and summaries marked.

``data/claude-code-transcript.jsonl`` is a real transcript: Claude Code 2.1.337 against the
test suite's fake Messages API (hello, /compact, /compact with nothing to compact, a blocked
/compact, an auto compaction), its user, assistant and system lines kept.
"""

from __future__ import annotations

import json
from pathlib import Path

from memlog import compaction, render

DATA = Path(__file__).with_name("data")


def _real() -> list[render.Turn]:
    payload = (DATA / "claude-code-transcript.jsonl").read_bytes()
    return render.turns(payload, compaction.MEDIA_CLAUDE_CODE)


def test_a_claude_code_transcript_reads_as_the_conversation_in_order() -> None:
    said = [(t.role, t.text) for t in _real() if t.role in ("user", "assistant")]
    assert said[:2] == [("user", "hello"), ("assistant", "ok")]
    assert ("user", "fourth prompt") in said and said[-1] == ("assistant", "ok")


def test_each_compaction_in_a_transcript_is_marked_with_its_summary() -> None:
    found = _real()
    kinds = [t.kind for t in found if t.kind in ("boundary", "summary")]
    assert kinds == ["boundary", "summary", "boundary", "summary"]
    boundaries = [t.text for t in found if t.kind == "boundary"]
    assert boundaries == ["manual", "auto"]
    assert all("Fake summary" in t.text for t in found if t.kind == "summary")


def test_local_commands_outcomes_are_shown_and_meta_lines_are_not() -> None:
    texts = [t.text for t in _real()]
    assert any("Not enough messages to compact" in t for t in texts)
    assert any("Compaction blocked by PreCompact hook" in t for t in texts)
    assert not any("local-command-caveat" in t for t in texts)


def test_tool_calls_and_results_are_shortened() -> None:
    line = {
        "type": "assistant",
        "message": {
            "role": "assistant",
            "content": [{"type": "tool_use", "name": "Bash", "input": {"command": "x" * 5000}}],
        },
    }
    result = {
        "type": "user",
        "message": {
            "role": "user",
            "content": [{"type": "tool_result", "content": [{"type": "text", "text": "y" * 5000}]}],
        },
    }
    payload = (json.dumps(line) + "\n" + json.dumps(result) + "\n").encode()
    call, answer = render.turns(payload, compaction.MEDIA_CLAUDE_CODE)
    assert (call.kind, call.name, answer.role) == ("tool_use", "Bash", "tool")
    assert len(call.text) == len(answer.text) == render.SHORT


def test_sdk_messages_with_a_failed_compaction_mark_no_boundary() -> None:
    messages = [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": [{"type": "compaction", "content": None}]},
        {"role": "assistant", "content": [{"type": "compaction", "content": "what happened"}]},
    ]
    payload = "".join(json.dumps(m) + "\n" for m in messages).encode()
    found = render.turns(payload, compaction.MEDIA_MESSAGES)
    assert [(t.role, t.kind) for t in found] == [
        ("user", "text"),
        ("compaction", "boundary"),
        ("summary", "summary"),
    ]


def test_markdown_marks_the_events_own_compaction_and_its_summary() -> None:
    text = render.markdown("s, event e", _real(), "The summary.", "confirmed")
    assert text.startswith("# s, event e\n") and "**user**: hello" in text
    assert text.count("*Compacted here") == 2
    assert text.rstrip().endswith("> The summary.") and "*This event: confirmed.*" in text


def test_lines_that_are_not_json_are_shown_raw() -> None:
    [turn] = render.turns(b"not json at all\n", compaction.MEDIA_CLAUDE_CODE)
    assert (turn.role, turn.text) == ("raw", "not json at all")


def test_a_line_separator_inside_a_message_is_text_not_a_new_line() -> None:
    line = {"type": "user", "message": {"role": "user", "content": "copied\u2028text"}}
    payload = json.dumps(line, ensure_ascii=False).encode() + b"\n"
    [turn] = render.turns(payload, compaction.MEDIA_CLAUDE_CODE)
    assert (turn.role, turn.text) == ("user", "copied\u2028text")


def test_a_line_nested_past_pythons_limit_is_shown_raw() -> None:
    [turn] = render.turns(b"[" * 100_000 + b"\n", compaction.MEDIA_CLAUDE_CODE)
    assert turn.role == "raw"


def test_control_characters_never_reach_the_terminal() -> None:
    line = {"type": "user", "message": {"role": "user", "content": "\x1b[31mred\u202e"}}
    found = render.turns(json.dumps(line).encode() + b"\n", compaction.MEDIA_CLAUDE_CODE)
    text = render.markdown("t", found, "\x1b]0;title\x07", "confirmed")
    assert "\x1b" not in text and "\u202e" not in text and "\\u001b[31mred" in text
