# SPDX-License-Identifier: MIT OR Apache-2.0
"""Claude Code's PreCompact hook: keep the transcript about to be compacted in /dev/memlog.

Claude Code runs a command hook with JSON on stdin (``session_id``,
``transcript_path``, ``trigger``, ``cwd``, ``hook_event_name``); the Claude
Agent SDK hands the same fields to a callback.  :func:`capture` turns them
into one compaction event; :func:`install` adds ``memlog hook claude-code``
to a settings.json without disturbing anything else in it.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from memlog import compaction, episodes, uapi
from memlog.device import Device
from memlog.errors import MemlogError

HOOK_COMMAND = "memlog hook claude-code"
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


# -- settings.json


def settings_path(project: Path | None) -> Path:
    """The user's ``~/.claude/settings.json``, or ``PROJECT/.claude/settings.json``."""
    base = project if project is not None else Path(os.path.expanduser("~"))
    return base / ".claude" / "settings.json"


def _has_hook(entries: list[Any], command: str) -> bool:
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        hooks = entry.get("hooks")
        for hook in hooks if isinstance(hooks, list) else []:
            if isinstance(hook, dict) and hook.get("command") == command:
                return True  # whatever its matcher: the user chose it
    return False


def add_hook(settings: dict[str, Any], command: str = HOOK_COMMAND) -> bool:
    """Add the PreCompact command hook to ``settings`` (in place); False if it was there."""
    hooks = settings.setdefault("hooks", {})
    if not isinstance(hooks, dict):
        raise MemlogError('the settings\' "hooks" is not a JSON object')
    entries = hooks.setdefault(HOOK_EVENT, [])
    if not isinstance(entries, list):
        raise MemlogError(f'the settings\' "hooks"."{HOOK_EVENT}" is not a JSON array')
    if _has_hook(entries, command):
        return False
    # No matcher: the hook runs for both triggers, manual (/compact) and auto.
    entries.append({"hooks": [{"type": "command", "command": command}]})
    return True


@dataclass(frozen=True)
class Installed:
    path: Path
    changed: bool
    backup: Path | None


def install(path: Path, command: str = HOOK_COMMAND) -> Installed:
    """Add the hook to the settings file ``path``, keeping everything else in it.

    A second run changes nothing.  Before changing an existing file, a copy
    is kept as ``settings.json.memlog-<time>.bak``; the new file replaces the
    old one atomically, with the old one's mode.  A settings.json that is a
    symbolic link (a dotfiles repository) stays one: its target is replaced.
    """
    path = path.resolve() if path.is_symlink() else path
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        text = None
    except UnicodeDecodeError:
        raise MemlogError(f"{path} is not UTF-8 text: fix it first") from None
    except OSError as exc:
        raise MemlogError(f"cannot read {path}: {exc.strerror}") from None
    try:
        settings = json.loads(text) if text is not None and text.strip() else {}
    except (ValueError, RecursionError) as exc:
        raise MemlogError(f"{path} is not valid JSON ({exc}): fix it first") from None
    if not isinstance(settings, dict):
        raise MemlogError(f"{path} does not hold a JSON object")
    if not add_hook(settings, command):
        return Installed(path, False, None)
    backup = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        mode = 0o600
        if text is not None:
            mode = stat.S_IMODE(path.stat().st_mode)
            backup = path.with_name(f"{path.name}.memlog-{time.strftime('%Y%m%d%H%M%S')}.bak")
            shutil.copy2(path, backup)
        text = json.dumps(settings, indent=2, ensure_ascii=False) + "\n"
        episodes.write_atomically(path, text.encode(), mode)
    except OSError as exc:
        raise MemlogError(f"cannot write {path}: {exc.strerror}") from None
    return Installed(path, True, backup)
