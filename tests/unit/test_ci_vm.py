"""The VM without QEMU: the dry-run command, boot timeouts, and how the boot wait fails."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from ci import qemu, rootfs, vm
from wintermute.errors import InfraError


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


class _FakeQemu:
    def __init__(self, returncode: int | None) -> None:
        self.returncode = returncode

    def poll(self) -> int | None:
        return self.returncode


def test_boot_wait_stops_at_a_kernel_panic_naming_the_console_log(tmp_path: Path) -> None:
    """A guest that panics fails the wait at once, with the console's tail, not at the timeout."""
    console = tmp_path / "console.log"
    console.write_text("Kernel panic - not syncing: from an earlier boot, before the wait\n")

    class PanickingQemu(_FakeQemu):
        def poll(self) -> int | None:  # the guest panics while we wait
            with console.open("a") as fh:
                fh.write("Kernel panic - not syncing: VFS: Unable to mount root fs\n")
            return None

    guest = vm.Vm(tmp_path, PanickingQemu(None), 2222, "tcg")  # type: ignore[arg-type]
    with pytest.raises(InfraError, match="panicked") as info:
        guest.wait_for_ssh(timeout=60)
    assert str(console) in str(info.value) and "Unable to mount root fs" in str(info.value)


def test_boot_wait_ignores_a_panic_logged_before_it_started(tmp_path: Path) -> None:
    """After a reboot, the console log's earlier lines do not count."""
    guest = vm.Vm(tmp_path, _FakeQemu(None), 2222, "tcg")  # type: ignore[arg-type]
    guest.console_log.write_text("Kernel panic - not syncing: old\n")
    assert not guest._panicked(guest.console_log.stat().st_size)
    assert guest._panicked(0)


def test_boot_wait_fails_when_qemu_exits_naming_the_console_log(tmp_path: Path) -> None:
    """QEMU gone before ssh answered: the error names the console log and shows its tail."""
    guest = vm.Vm(tmp_path, _FakeQemu(1), 2222, "tcg")  # type: ignore[arg-type]
    guest.console_log.write_text("last words\n")
    with pytest.raises(InfraError, match="QEMU exited with 1") as info:
        guest.wait_for_ssh(timeout=60)
    assert str(guest.console_log) in str(info.value) and "last words" in str(info.value)
