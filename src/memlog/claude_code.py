# SPDX-License-Identifier: MIT OR Apache-2.0
"""Claude Code's PreCompact hook: keep the transcript about to be compacted in /dev/memlog.

Claude Code runs a command hook with JSON on stdin (``session_id``,
``transcript_path``, ``trigger``, ``cwd``, ``hook_event_name``); the Claude
Agent SDK hands the same fields to a callback.  :func:`capture` turns them
into one compaction event; :mod:`memlog.claude_settings` installs the hook.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from memlog import compaction, episodes, uapi
from memlog.device import Device
from memlog.errors import MemlogError

HOOK_EVENT = "PreCompact"
TRANSCRIPT_MAX = compaction.PAYLOAD_MAX
"""The largest transcript a hook reads (256 MiB, the largest ring; rings are smaller)."""


@dataclass(frozen=True)
class HookInput:
    """The PreCompact fields memlog uses."""

    session_id: str
    transcript_path: str
    trigger: str
    cwd: str | None = None

    @classmethod
    def from_mapping(cls, data: Any) -> HookInput:
        """Check the hook's input (a JSON object, as Claude Code sends it)."""
        if not isinstance(data, Mapping):
            raise MemlogError("the hook input is not a JSON object")
        event = data.get("hook_event_name", HOOK_EVENT)
        if event != HOOK_EVENT:
            raise MemlogError(f"the hook input is for {event!r}, not {HOOK_EVENT}")
        fields: dict[str, str] = {}
        for name in ("session_id", "transcript_path", "trigger"):
            value = data.get(name)
            if not isinstance(value, str) or not value:
                raise MemlogError(f"the hook input has no {name}")
            fields[name] = value
        cwd = data.get("cwd")
        return cls(**fields, cwd=cwd if isinstance(cwd, str) else None)

    @classmethod
    def from_json(cls, text: str | bytes) -> HookInput:
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise MemlogError(f"the hook input is not JSON: {exc}") from None
        return cls.from_mapping(data)


def read_transcript(path: str) -> bytes:
    """The transcript's bytes; a clear error if it is missing, not a file, or too large.

    Opened without blocking (a FIFO in its place must not hang the agent).
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
    return data


def capture(
    hook: HookInput,
    *,
    device: str = uapi.DEVICE_PATH,
    source: str = "claude-code",
    opener: Callable[[str, str], Device] = Device,
) -> episodes.Stored:
    """Write the transcript ``hook`` names as one compaction event; raise MemlogError if not whole.

    ``opener(path, mode)`` opens the device (tests pass one on fake syscalls).
    """
    return episodes.store_event(
        read_transcript(hook.transcript_path),
        source=source,
        session=hook.session_id,
        trigger=hook.trigger,
        extra={"cwd": hook.cwd} if hook.cwd else None,
        device=device,
        opener=opener,
    )
