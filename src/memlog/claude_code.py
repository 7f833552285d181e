# SPDX-License-Identifier: MIT OR Apache-2.0
"""Claude Code's hooks: keep what a compaction drops in /dev/memlog, and whether it happened.

Claude Code runs a command hook with JSON on stdin (``hook_event_name``,
``session_id``, ``transcript_path``, ``cwd``, and per event ``trigger``,
``custom_instructions``, ``reason``, ...); the Claude Agent SDK hands the same
fields to a callback.  One command handles three events:

- PreCompact: the capture.  Claude Code runs it *before* it knows whether it
  will compact (it may find nothing to compact, or another hook may block
  it), so the capture alone is "unconfirmed".
- PostCompact: the compaction happened; a "compacted" event of the same id
  carries its summary.
- SessionEnd: what the session appended after its last capture.

A capture stores the transcript bytes appended since the session's last
capture that the ring still holds whole (a *delta*), or the whole transcript
when there is none or the file no longer starts as that capture's did.  It
reads only to the transcript's last complete line: a line Claude Code is
still appending is left for the next capture.  :mod:`memlog.claude_settings`
installs the hook.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from memlog import compaction, episodes, uapi
from memlog.catalog import Catalog
from memlog.device import Device
from memlog.errors import MemlogError

PRE_COMPACT = "PreCompact"
POST_COMPACT = "PostCompact"
SESSION_END = "SessionEnd"
EVENTS = (PRE_COMPACT, POST_COMPACT, SESSION_END)

TRANSCRIPT_MAX = compaction.PAYLOAD_MAX
"""The largest transcript a hook reads (256 MiB, the largest ring; rings are smaller)."""

SUMMARY_FIELDS = ("compact_summary", "summary")
"""Where a PostCompact input carries the compaction's summary."""

_TEXT_FIELDS = ("custom_instructions", "prompt_id", "agent_id", "agent_type", "reason")
"""Optional text fields of the input kept in the record as they are."""


@dataclass(frozen=True)
class HookInput:
    """The fields of a hook's input that memlog uses."""

    event: str
    session_id: str
    transcript_path: str
    trigger: str | None = None
    cwd: str | None = None
    summary: str | None = None
    agent_transcript_path: str | None = None
    fields: tuple[tuple[str, str], ...] = ()
    """The optional text fields present (``_TEXT_FIELDS``), in that order."""

    @classmethod
    def from_mapping(cls, data: Any) -> HookInput:
        """Check the hook's input (a JSON object, as Claude Code sends it)."""
        if not isinstance(data, Mapping):
            raise MemlogError("the hook input is not a JSON object")
        event = data.get("hook_event_name", PRE_COMPACT)
        if event not in EVENTS:
            raise MemlogError(
                f"the hook input is for {str(event)[:40]!r}: memlog handles {', '.join(EVENTS)}"
            )
        session = data.get("session_id")
        if not isinstance(session, str) or not session:
            raise MemlogError("the hook input has no session_id")
        transcript = data.get("transcript_path") or ""  # "" or null: not persisted
        if not isinstance(transcript, str):
            raise MemlogError("the hook input's transcript_path is not text")
        trigger = data.get("trigger")
        if event != SESSION_END and (not isinstance(trigger, str) or not trigger):
            raise MemlogError("the hook input has no trigger")
        summary = next((data[k] for k in SUMMARY_FIELDS if isinstance(data.get(k), str)), None)
        cwd = data.get("cwd")
        return cls(
            event=event,
            session_id=session,
            transcript_path=transcript,
            trigger=trigger if isinstance(trigger, str) else None,
            cwd=cwd if isinstance(cwd, str) and cwd else None,
            summary=summary,
            agent_transcript_path=_text(data.get("agent_transcript_path")),
            fields=tuple(
                (k, data[k]) for k in _TEXT_FIELDS if isinstance(data.get(k), str) and data[k]
            ),
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> HookInput:
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise MemlogError(f"the hook input is not JSON: {exc}") from None
        return cls.from_mapping(data)

    @property
    def agent_id(self) -> str | None:
        return dict(self.fields).get("agent_id")

    @property
    def session(self) -> str:
        """The events' session: the agent's, or ``<session>.agent-<id>`` for a subagent's
        own transcript."""
        if self.agent_id is None:
            return self.session_id
        return f"{self.session_id}.agent-{self.agent_id}"

    def transcript(self) -> str:
        """The transcript file this event is about ("" when the session keeps none).

        A subagent's compaction names the parent's transcript; the subagent's
        own is its ``agent_transcript_path`` when the input has one, else
        ``<parent's directory>/<session>/subagents/agent-<id>.jsonl``.
        """
        if not self.transcript_path or self.agent_id is None:
            return self.transcript_path
        if self.agent_transcript_path:
            return self.agent_transcript_path
        compaction.check_id(self.agent_id, "agent id")
        parent = Path(self.transcript_path)
        return str(parent.parent / parent.stem / "subagents" / f"agent-{self.agent_id}.jsonl")

    def extra(self) -> dict[str, str]:
        """The optional text fields of its events, each cut to what the format allows (long
        /compact instructions must not cost the capture)."""
        extra = {"hook": self.event, **dict(self.fields)}
        if self.cwd:
            extra["cwd"] = self.cwd
        if self.agent_id is not None:
            extra["parent_session"] = self.session_id
        if not self.transcript_path:
            extra["transcript"] = "unavailable"
        return {key: _fit(value) for key, value in extra.items()}


def _fit(text: str) -> str:
    """``text`` as valid UTF-8 (a lone surrogate becomes replacement characters) cut to
    compaction.OPTIONAL_TEXT_MAX bytes on a character boundary."""
    data = text.encode("utf-8", errors="surrogatepass").decode("utf-8", errors="replace")
    encoded = data.encode()[: compaction.OPTIONAL_TEXT_MAX]
    return encoded.decode("utf-8", errors="ignore")


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def read_transcript(path: str) -> bytes:
    """The transcript's bytes up to its last complete line; a clear error if it is missing,
    not a file, or too large.

    Opened without blocking (a FIFO in its place must not hang the agent).
    A last line without its newline is being written: it is left out.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise MemlogError(f"cannot open the transcript {path}: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as transcript:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise MemlogError(f"the transcript {path} is not a regular file")
        if info.st_size > TRANSCRIPT_MAX:
            raise MemlogError(
                f"the transcript {path} is {info.st_size} bytes, more than the "
                f"{TRANSCRIPT_MAX} a hook keeps"
            )
        try:
            data = transcript.read(TRANSCRIPT_MAX + 1)
        except OSError as exc:
            raise MemlogError(f"cannot read the transcript {path}: {exc.strerror}") from None
    if len(data) > TRANSCRIPT_MAX:
        raise MemlogError(f"the transcript {path} grew past {TRANSCRIPT_MAX} bytes while read")
    return data[: data.rfind(b"\n") + 1]


@dataclass(frozen=True)
class _Ring:
    """The caller's own ring as the hook finds it."""

    catalog: Catalog
    sizes: list[tuple[int, int]]
    """(seq, bytes in the ring) of every record, oldest first."""
    capacity: int

    def held_since(self, event: episodes.Event) -> int:
        """Bytes of the records from ``event``'s first one on: what must stay for it to."""
        first = min(record.seq for record, _ in event.parts.values())
        return sum(size for seq, size in self.sizes if seq >= first)


def _ring(device: str, opener: Callable[[str, str], Device]) -> _Ring:
    """The events of the caller's own ring (malformed parts skipped), its records' sizes and
    its capacity."""
    with opener(device, "r") as dev:
        records = list(dev)
        capacity = dev.stats().ring_capacity
    sizes = [(r.seq, episodes.record_bytes(len(r.blob))) for r in records]
    return _Ring(Catalog(episodes.collect_events(records)), sizes, capacity)


def _parts_bytes(parts: list[compaction.Part]) -> int:
    return sum(episodes.record_bytes(len(part.to_blob())) for part in parts)


def _delta(data: bytes, base: episodes.Event | None) -> compaction.Delta | None:
    """Where ``data`` continues ``base``'s transcript, if it starts as that did."""
    if base is None:
        return None
    first = base.first
    end = first.end
    if not 0 < end <= len(data) or first.transcript_sha256 is None:
        return None
    if hashlib.sha256(data[:end]).digest() != first.transcript_sha256:
        return None  # rewritten, or another file: a full capture
    return compaction.Delta(base.event, end, first.transcript_sha256)


def capture(
    hook: HookInput,
    *,
    device: str = uapi.DEVICE_PATH,
    source: str = "claude-code",
    opener: Callable[[str, str], Device] = Device,
) -> episodes.Stored:
    """Write the event ``hook`` calls for; raise MemlogError if it is not written whole.

    ``opener(path, mode)`` opens the device (tests pass one on fake syscalls).
    """
    session = compaction.check_id(hook.session, "session id")
    ring = _ring(device, opener)
    if hook.event == POST_COMPACT:
        return episodes.store_event(
            (hook.summary or "").encode(),
            source=source,
            session=session,
            extra=hook.extra(),
            device=device,
            opener=opener,
            trigger=hook.trigger or "unknown",
            media_type=compaction.MEDIA_SUMMARY,
            kind=compaction.KIND_COMPACTED,
            event=_unconfirmed(ring.catalog, session, dict(hook.fields).get("prompt_id")),
        )
    path = hook.transcript()
    data = read_transcript(path) if path else b""
    base = ring.catalog.latest_reachable(session) if path else None
    delta = _delta(data, base)

    def encode(delta: compaction.Delta | None) -> list[compaction.Part]:
        return compaction.encode_event(
            data[delta.offset :] if delta else data,
            source=source,
            session=session,
            trigger=hook.trigger or "session-end",
            ts=time.time_ns(),
            media_type=compaction.MEDIA_CLAUDE_CODE,
            extra=hook.extra(),
            delta=delta,
            transcript_sha256=hashlib.sha256(data).digest(),
        )

    parts = encode(delta)
    if delta is not None and base is not None:
        root = ring.catalog.root(base)
        if ring.held_since(root) + _parts_bytes(parts) > ring.capacity:
            # Writing the delta would evict its own chain's first records: a whole
            # capture, if the ring holds it, can be rebuilt from the ring alone.
            whole = encode(None)
            if _parts_bytes(whole) <= ring.capacity:
                parts = whole
    with opener(device, "w") as dev:
        sizes = episodes.write_event(dev, parts)
    return episodes.Stored(session, parts[0].event, sizes, len(data))


def _unconfirmed(catalog: Catalog, session: str, prompt_id: str | None) -> str | None:
    """The id of the PreCompact capture a PostCompact confirms; None: none is in the ring
    (the "compacted" event then gets a new id of its own).

    The session's newest PreCompact capture, of the same prompt (Claude Code
    gives both hooks the ``prompt_id`` of the turn that compacted) when the
    input has one, if it is not confirmed yet: a PreCompact of an earlier turn
    that found nothing to compact stays unconfirmed.
    """
    for event in reversed(list(catalog.captures.values())):
        extra = event.first.extra
        if event.session != session or extra.get("hook") != PRE_COMPACT:
            continue
        if prompt_id is not None and extra.get("prompt_id") not in (None, prompt_id):
            continue
        return None if catalog.confirmation(event) is not None else event.event
    return None
