"""The VM's entry points that need no QEMU: dry-run command and timeouts."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from ci import qemu, rootfs, vm


def test_show_command_prints_a_shell_command_without_booting(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """show_command() is one shlex-quoted line naming the cache entry for the current inputs."""
    monkeypatch.setenv("WINTERMUTE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("WINTERMUTE_OUT", str(tmp_path / "out"))
    monkeypatch.delenv("WINTERMUTE_ACCEL", raising=False)
    monkeypatch.setattr(rootfs, "kernel_candidate", lambda: "6.1.1-1")
    monkeypatch.setattr(qemu.subprocess, "Popen", lambda *a, **k: pytest.fail("started QEMU"))
    line = vm.show_command()
    argv = shlex.split(line)
    assert argv[0] == "qemu-system-x86_64"
    assert argv[argv.index("-accel") + 1] == "tcg"
    entry = tmp_path / "cache" / "rootfs" / rootfs.cache_key("6.1.1-1")
    assert argv[argv.index("-kernel") + 1] == str(entry / "vmlinuz")
    assert not (tmp_path / "cache" / "rootfs").exists()


def test_boot_timeout_depends_on_the_accelerator_unless_overridden(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """TCG gets longer than KVM; WINTERMUTE_BOOT_TIMEOUT overrides both."""
    monkeypatch.delenv("WINTERMUTE_BOOT_TIMEOUT", raising=False)
    assert vm.boot_timeout("tcg") > vm.boot_timeout("kvm")
    monkeypatch.setenv("WINTERMUTE_BOOT_TIMEOUT", "42")
    assert vm.boot_timeout("tcg") == 42.0
