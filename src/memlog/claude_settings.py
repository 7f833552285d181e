# SPDX-License-Identifier: MIT OR Apache-2.0
"""Installing ``memlog hook claude-code`` into one of Claude Code's settings files.

Claude Code reads hooks from four files, each with its own audience (its
"scopes"): the user's own (``~/.claude/settings.json``, or
``$CLAUDE_CONFIG_DIR/settings.json``), a project's shared one
(``.claude/settings.json``, committed), a project's local one
(``.claude/settings.local.json``, the user's alone) and the machine's
managed settings (``/etc/claude-code/managed-settings.json``, which users
cannot override: an organisation enforcing the audit).  :func:`install`
adds the hook for every event memlog handles, with the absolute path of
the ``memlog`` that installs it, and leaves everything else in the file as
it was.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import stat
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from memlog import episodes
from memlog.errors import MemlogError

HOOK_EVENTS = ("PreCompact", "PostCompact", "SessionEnd")
"""The Claude Code events ``memlog hook claude-code`` handles (one command for all)."""

HOOK_TIMEOUT = 60
"""The timeout written into each hook entry, in seconds: twice the hook's own deadline."""

SCOPES = ("user", "project", "local", "managed")

MANAGED_SETTINGS = Path("/etc/claude-code/managed-settings.json")
"""Where Claude Code reads an organisation's managed settings on Linux."""

_FILE_MODES = {"managed": 0o644}
"""A new settings file's mode: the user's own (0600), but every user reads the managed one."""


def settings_path(
    scope: str, project: Path | None = None, environ: Mapping[str, str] = os.environ
) -> Path:
    """The settings file of ``scope``; ``project`` (default: the current directory) for
    the project and local scopes."""
    if scope == "user":
        config = environ.get("CLAUDE_CONFIG_DIR")
        base = Path(config) if config else Path(os.path.expanduser("~")) / ".claude"
        return base / "settings.json"
    if scope in ("project", "local"):
        name = "settings.json" if scope == "project" else "settings.local.json"
        return (project if project is not None else Path.cwd()) / ".claude" / name
    if scope == "managed":
        return MANAGED_SETTINGS
    raise ValueError(f"unknown scope {scope!r}")


def hook_command(program: str | None = None) -> str:
    """``<absolute path of memlog> hook claude-code``, quoted for the shell Claude Code uses.

    ``program`` is the memlog to install; by default the one running now (its
    script, else the ``memlog`` on PATH).  Claude Code may run without the
    user's PATH (a systemd user session, an IDE): a bare ``memlog`` would fail
    there with 127.
    """
    if program is None:
        running = Path(sys.argv[0]) if sys.argv and sys.argv[0] else None
        if running is not None and running.name == "memlog" and running.is_file():
            program = str(running)
        else:
            program = shutil.which("memlog")
        if program is None:
            raise MemlogError("cannot find the memlog command on PATH: give it with --command")
    path = Path(program).absolute()
    if not (path.is_file() and os.access(path, os.X_OK)):
        raise MemlogError(f"{path} is not an executable file")
    return f"{shlex.quote(str(path))} hook claude-code"


def _is_ours(command: object) -> bool:
    """Whether ``command`` runs some memlog's ``hook claude-code`` (an older install's too)."""
    if not isinstance(command, str):
        return False
    try:
        words = shlex.split(command)
    except ValueError:
        return False
    return (
        len(words) >= 3
        and Path(words[0]).name == "memlog"
        and words[1:3]
        == [
            "hook",
            "claude-code",
        ]
    )


def add_hooks(settings: dict[str, Any], command: str) -> bool:
    """Make ``settings`` (in place) run ``command`` on every event of HOOK_EVENTS.

    An entry of ours already there (any memlog's ``hook claude-code``, whatever
    its matcher) is brought up to date rather than doubled.  Returns whether
    anything changed.
    """
    hooks = settings.setdefault("hooks", {})
    if not isinstance(hooks, dict):
        raise MemlogError('the settings\' "hooks" is not a JSON object')
    changed = False
    for event in HOOK_EVENTS:
        entries = hooks.setdefault(event, [])
        if not isinstance(entries, list):
            raise MemlogError(f'the settings\' "hooks"."{event}" is not a JSON array')
        ours = [
            hook
            for entry in entries
            if isinstance(entry, dict) and isinstance(entry.get("hooks"), list)
            for hook in entry["hooks"]
            if isinstance(hook, dict) and _is_ours(hook.get("command"))
        ]
        wanted = {"type": "command", "command": command, "timeout": HOOK_TIMEOUT}
        for hook in ours:
            if {k: hook.get(k) for k in wanted} != wanted:
                hook.update(wanted)
                changed = True
        if not ours:
            # No matcher: PreCompact runs for both triggers, SessionEnd for every reason.
            entries.append({"hooks": [dict(wanted)]})
            changed = True
    return changed


@dataclass(frozen=True)
class Installed:
    path: Path
    command: str
    changed: bool
    backup: Path | None


def install(path: Path, command: str, *, mode: int = 0o600) -> Installed:
    """Add the hooks to the settings file ``path``, keeping everything else in it.

    A second run changes nothing.  Before changing an existing file, a copy
    is kept as ``<name>.memlog-<time>.bak``; the new file replaces the old one
    atomically, with the old one's mode (``mode`` for a new file).  A settings
    file that is a symbolic link (a dotfiles repository) stays one: its
    target is replaced.
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
    if not add_hooks(settings, command):
        return Installed(path, command, False, None)
    backup = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if text is not None:
            mode = stat.S_IMODE(path.stat().st_mode)
            backup = path.with_name(f"{path.name}.memlog-{time.strftime('%Y%m%d%H%M%S')}.bak")
            shutil.copy2(path, backup)
        text = json.dumps(settings, indent=2, ensure_ascii=False) + "\n"
        episodes.write_atomically(path, text.encode(), mode)
    except OSError as exc:
        raise MemlogError(f"cannot write {path}: {exc.strerror}") from None
    return Installed(path, command, True, backup)


def install_scope(
    scope: str, *, project: Path | None = None, program: str | None = None
) -> Installed:
    """:func:`install` into the settings file of ``scope``, with the running memlog's path."""
    return install(
        settings_path(scope, project), hook_command(program), mode=_FILE_MODES.get(scope, 0o600)
    )
