# SPDX-License-Identifier: MIT OR Apache-2.0
"""memlog hook install: the hooks land in the settings file of the chosen scope, and nothing
else in it changes."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

import pytest

from memlog import claude_settings, cli

OTHER_SETTINGS = {
    "model": "opus",
    "permissions": {"allow": ["Bash(git status)"]},
    "hooks": {
        "PreToolUse": [{"matcher": "Bash", "hooks": [{"type": "command", "command": "audit"}]}],
        "PreCompact": [{"matcher": "manual", "hooks": [{"type": "command", "command": "notify"}]}],
    },
}


@pytest.fixture
def memlog_bin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An installed `memlog` on PATH, in a directory with a space in its name."""
    directory = tmp_path / "memlog bin"
    directory.mkdir()
    program = directory / "memlog"
    program.write_text("#!/bin/sh\n")
    program.chmod(0o755)
    monkeypatch.setenv("PATH", f"{directory}:/usr/bin:/bin")
    return program


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, memlog_bin: Path) -> Path:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("CLAUDE_CONFIG_DIR", raising=False)
    return tmp_path


def _command(program: Path) -> str:
    return f"'{program}' hook claude-code"


def _ours(program: Path) -> dict[str, Any]:
    return {"type": "command", "command": _command(program), "timeout": 60}


def test_install_adds_the_three_events_with_memlogs_absolute_path(
    home: Path, memlog_bin: Path, capsys: Any
) -> None:
    assert cli.main(["hook", "install"]) == 0
    settings = json.loads((home / ".claude/settings.json").read_text())
    assert settings == {
        "hooks": {
            event: [{"hooks": [_ours(memlog_bin)]}]
            for event in ("PreCompact", "PostCompact", "SessionEnd")
        }
    }
    assert stat.S_IMODE((home / ".claude/settings.json").stat().st_mode) == 0o600
    assert _command(memlog_bin) in capsys.readouterr().out


def test_the_hook_timeout_leaves_room_for_the_hooks_own_deadline() -> None:
    assert claude_settings.HOOK_TIMEOUT >= 2 * cli.HOOK_TIMEOUT


def test_install_honours_claude_config_dir(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLAUDE_CONFIG_DIR", str(tmp_path / "config"))
    assert cli.main(["hook", "install"]) == 0
    assert "PostCompact" in json.loads((tmp_path / "config/settings.json").read_text())["hooks"]
    assert not (home / ".claude").exists()


@pytest.mark.parametrize(
    ("scope", "name"), [("project", "settings.json"), ("local", "settings.local.json")]
)
def test_install_into_a_projects_shared_or_local_settings(
    home: Path, tmp_path: Path, scope: str, name: str
) -> None:
    project = tmp_path / "project"
    assert cli.main(["hook", "install", "--scope", scope, "--project", str(project)]) == 0
    assert [p.name for p in (project / ".claude").iterdir()] == [name]
    assert not (home / ".claude").exists()


def test_the_project_scope_defaults_to_the_current_directory(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert cli.main(["hook", "install", "--scope", "local"]) == 0
    assert (tmp_path / ".claude/settings.local.json").is_file()


def test_a_project_directory_without_a_project_scope_is_refused(home: Path, capsys: Any) -> None:
    assert cli.main(["hook", "install", "--project", str(home)]) == 1
    assert "--project DIR goes with --scope project or --scope local" in capsys.readouterr().err
    assert not (home / ".claude").exists()


def test_the_managed_scope_writes_the_system_wide_file_readable_by_all(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    managed = tmp_path / "etc/claude-code/managed-settings.json"
    monkeypatch.setattr(claude_settings, "MANAGED_SETTINGS", managed)
    assert cli.main(["hook", "install", "--scope", "managed"]) == 0
    assert stat.S_IMODE(managed.stat().st_mode) == 0o644
    assert set(json.loads(managed.read_text())["hooks"]) == set(claude_settings.HOOK_EVENTS)


def test_the_managed_settings_path_is_claude_codes_on_linux() -> None:
    assert claude_settings.settings_path("managed") == Path(
        "/etc/claude-code/managed-settings.json"
    )


def test_install_without_memlog_on_path_asks_for_command(
    home: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    assert cli.main(["hook", "install"]) == 1
    assert "give it with --command" in capsys.readouterr().err
    assert not (home / ".claude").exists()


def test_install_with_a_command_that_is_not_executable_is_refused(
    home: Path, tmp_path: Path, capsys: Any
) -> None:
    assert cli.main(["hook", "install", "--command", str(tmp_path / "none")]) == 1
    assert "is not an executable file" in capsys.readouterr().err


def test_install_keeps_every_other_setting_and_hook(home: Path, memlog_bin: Path) -> None:
    path = home / ".claude/settings.json"
    path.parent.mkdir()
    path.write_text(json.dumps(OTHER_SETTINGS))
    assert cli.main(["hook", "install"]) == 0
    settings = json.loads(path.read_text())
    assert settings["model"] == "opus" and settings["permissions"] == OTHER_SETTINGS["permissions"]
    assert settings["hooks"]["PreToolUse"] == OTHER_SETTINGS["hooks"]["PreToolUse"]
    assert settings["hooks"]["PreCompact"][0] == OTHER_SETTINGS["hooks"]["PreCompact"][0]
    assert settings["hooks"]["PreCompact"][1]["hooks"] == [_ours(memlog_bin)]


def test_install_updates_an_older_installs_bare_memlog_instead_of_adding_one(
    home: Path, memlog_bin: Path
) -> None:
    path = home / ".claude/settings.json"
    path.parent.mkdir()
    bare = {"type": "command", "command": "memlog hook claude-code"}
    path.write_text(json.dumps({"hooks": {"PreCompact": [{"hooks": [bare]}]}}))
    assert cli.main(["hook", "install"]) == 0
    assert json.loads(path.read_text())["hooks"]["PreCompact"] == [{"hooks": [_ours(memlog_bin)]}]


def test_install_keeps_a_backup_of_the_file_it_changed(home: Path) -> None:
    path = home / ".claude/settings.json"
    path.parent.mkdir()
    path.write_text(json.dumps(OTHER_SETTINGS))
    path.chmod(0o640)
    cli.main(["hook", "install"])
    [backup] = path.parent.glob("settings.json.memlog-*.bak")
    assert json.loads(backup.read_text()) == OTHER_SETTINGS
    assert stat.S_IMODE(path.stat().st_mode) == 0o640


def _snapshot(directory: Path) -> list[tuple[str, bytes, int]]:
    return sorted((p.name, p.read_bytes(), p.stat().st_mtime_ns) for p in directory.iterdir())


def test_a_second_install_changes_nothing(home: Path, capsys: Any) -> None:
    path = home / ".claude/settings.json"
    path.parent.mkdir()
    path.write_text(json.dumps(OTHER_SETTINGS))
    cli.main(["hook", "install"])
    after_first = _snapshot(path.parent)
    capsys.readouterr()
    assert cli.main(["hook", "install"]) == 0
    assert "nothing changed" in capsys.readouterr().out
    assert _snapshot(path.parent) == after_first


def test_install_refuses_a_settings_file_that_is_not_json(home: Path, capsys: Any) -> None:
    path = home / ".claude/settings.json"
    path.parent.mkdir()
    path.write_text("{ not json")
    assert cli.main(["hook", "install"]) == 1
    assert "is not valid JSON" in capsys.readouterr().err
    assert path.read_text() == "{ not json"
    assert [p.name for p in path.parent.iterdir()] == ["settings.json"]


def test_install_refuses_a_settings_file_that_is_not_utf8(home: Path, capsys: Any) -> None:
    path = home / ".claude/settings.json"
    path.parent.mkdir()
    path.write_bytes(b'{"model": "\xff"}')
    assert cli.main(["hook", "install"]) == 1
    assert "is not UTF-8 text" in capsys.readouterr().err
    assert path.read_bytes() == b'{"model": "\xff"}'


def test_install_keeps_a_symlinked_settings_file_a_symlink(home: Path) -> None:
    dotfiles = home / "dotfiles"
    dotfiles.mkdir()
    (dotfiles / "settings.json").write_text(json.dumps(OTHER_SETTINGS))
    (home / ".claude").mkdir()
    (home / ".claude/settings.json").symlink_to(dotfiles / "settings.json")
    assert cli.main(["hook", "install"]) == 0
    assert (home / ".claude/settings.json").is_symlink()
    assert "hook claude-code" in (dotfiles / "settings.json").read_text()


def test_install_ignores_entries_of_an_unexpected_shape(home: Path) -> None:
    path = home / ".claude/settings.json"
    path.parent.mkdir()
    path.write_text(json.dumps({"hooks": {"PreCompact": [{"hooks": 5}, "x"]}}))
    assert cli.main(["hook", "install"]) == 0
    entries = json.loads(path.read_text())["hooks"]["PreCompact"]
    assert entries[:2] == [{"hooks": 5}, "x"] and len(entries) == 3
