# SPDX-License-Identifier: MIT OR Apache-2.0
"""An event's transcript for people: the turns in order, tool calls shortened, compactions marked.

Two payloads are understood, by the event's media type: a Claude Code
transcript (JSON lines of entries; ``user`` and ``assistant`` entries carry a
Messages API ``message``, a ``system`` entry of subtype ``compact_boundary``
marks an earlier compaction and the ``user`` entry after it with
``isCompactSummary`` holds its summary) and Messages API messages, one per
line (the SDK helpers; a ``compaction`` block is a compaction).  Lines that
are neither (Claude Code writes many: attachments, API request records,
costs) are skipped; lines that are not JSON are shown as they are.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any

SHORT = 300
"""Characters kept of a tool call's input or a tool's result."""


@dataclass(frozen=True)
class Turn:
    """One thing that happened, in transcript order."""

    role: str
    """user, assistant, tool (a tool's result), system (a local command's output),
    compaction, summary, or raw."""
    kind: str
    """text, thinking, tool_use, tool_result, boundary, summary, or raw."""
    text: str
    name: str | None = None
    """The tool's name (tool_use)."""

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


def printable(text: str) -> str:
    """``text`` with control and format characters (ESC, bidi overrides...) but newlines and
    tabs shown as ``\\u....``: a hostile transcript must not drive the reader's terminal."""
    return "".join(ch if ch.isprintable() or ch in "\n\t" else f"\\u{ord(ch):04x}" for ch in text)


def shorten(text: str, limit: int = SHORT) -> str:
    """``text`` on one line, at most ``limit`` characters, control characters escaped."""
    flat = " ".join(printable(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _block_text(content: Any) -> str:
    """The text of a content value: a string, or the text of a list of blocks."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for block in content:
            if isinstance(block, dict) and isinstance(block.get("text"), str):
                parts.append(block["text"])
            elif isinstance(block, str):
                parts.append(block)
        return "\n".join(parts)
    return "" if content is None else json.dumps(content, ensure_ascii=False)


def _message_turns(role: str, content: Any) -> Iterator[Turn]:
    """The turns of one Messages API message."""
    if isinstance(content, str):
        yield Turn(role, "text", content)
        return
    if not isinstance(content, list):
        return
    for block in content:
        if not isinstance(block, dict):
            continue
        kind = block.get("type")
        if kind == "text":
            yield Turn(role, "text", str(block.get("text", "")))
        elif kind == "thinking":
            yield Turn(role, "thinking", shorten(str(block.get("thinking", ""))))
        elif kind == "tool_use":
            args = json.dumps(block.get("input"), ensure_ascii=False)
            yield Turn(role, "tool_use", shorten(args), name=str(block.get("name", "?")))
        elif kind == "tool_result":
            yield Turn("tool", "tool_result", shorten(_block_text(block.get("content"))))
        elif kind == "compaction":
            summary = block.get("content")
            if summary is None:  # a failed compaction: no boundary
                continue
            yield Turn("compaction", "boundary", "")
            yield Turn("summary", "summary", _block_text(summary))


def _entry_turns(entry: dict[str, Any]) -> Iterator[Turn]:
    """The turns of one line of a Claude Code transcript."""
    kind = entry.get("type")
    if kind == "system" and entry.get("subtype") == "compact_boundary":
        meta = entry.get("compactMetadata")
        trigger = meta.get("trigger") if isinstance(meta, dict) else None
        yield Turn("compaction", "boundary", str(trigger or ""))
        return
    if kind == "system" and entry.get("subtype") == "local_command":
        yield Turn("system", "text", shorten(_block_text(entry.get("content"))))
        return
    if kind not in ("user", "assistant") or entry.get("isMeta"):
        return
    message = entry.get("message")
    if not isinstance(message, dict):
        return
    if entry.get("isCompactSummary"):
        yield Turn("summary", "summary", _block_text(message.get("content")))
        return
    yield from _message_turns(str(message.get("role", kind)), message.get("content"))


def turns(payload: bytes, media_type: str | None) -> list[Turn]:
    """The turns of a transcript or message list (see the module's docstring)."""
    found: list[Turn] = []
    messages = isinstance(media_type, str) and "anthropic-messages" in media_type
    # JSON lines end at "\n" only: U+2028 and the like are text inside a line
    for line in payload.split(b"\n"):
        raw = line.decode("utf-8", errors="replace")
        if not raw.strip():
            continue
        try:
            value = json.loads(raw)
        except (ValueError, RecursionError):  # not JSON, or nested past Python's limit
            found.append(Turn("raw", "raw", shorten(raw)))
            continue
        if not isinstance(value, dict):
            continue
        if messages:
            found.extend(_message_turns(str(value.get("role", "?")), value.get("content")))
        else:
            found.extend(_entry_turns(value))
    return found


def markdown(title: str, found: list[Turn], summary: str | None, status: str) -> str:
    """The turns as Markdown, ending with the compaction this event captured (control
    characters escaped)."""
    return printable(_markdown(title, found, summary, status))


def _markdown(title: str, found: list[Turn], summary: str | None, status: str) -> str:
    lines = [f"# {title}", "", f"Status: {status}.", ""]
    for turn in found:
        if turn.kind == "boundary":
            lines += ["---", "", f"*Compacted here{f' ({turn.text})' if turn.text else ''}.*", ""]
        elif turn.kind == "summary":
            lines += ["**Summary**:", "", *(f"> {line}" for line in turn.text.splitlines()), ""]
        elif turn.kind == "tool_use":
            lines += [f"**{turn.role}** calls `{turn.name}`: `{turn.text}`", ""]
        elif turn.kind == "tool_result":
            lines += [f"**tool result**: {turn.text}", ""]
        elif turn.kind == "thinking":
            lines += [f"**{turn.role}** (thinking): {turn.text}", ""]
        else:
            lines += [f"**{turn.role}**: {turn.text}", ""]
    lines += ["---", "", f"*This event: {status}.*", ""]
    if summary is not None:
        lines += ["**Summary**:", "", *(f"> {line}" for line in summary.splitlines()), ""]
    return "\n".join(lines)
