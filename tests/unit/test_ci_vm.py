"""The VM without QEMU: the dry-run command, boot timeouts, and how the boot wait fails."""

from __future__ import annotations

import shlex
import threading
import time
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


def _guest(tmp_path: Path, proc: object) -> vm.Vm:
    image = rootfs.Image(tmp_path / "i", tmp_path / "k", tmp_path / "r", "6.1", "key")
    launch = qemu.Launch(image, tmp_path / "o", "tcg", 2222, tmp_path / "console.log")
    return vm.Vm(tmp_path, proc, launch, "tcg")  # type: ignore[arg-type]


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

    guest = _guest(tmp_path, PanickingQemu(None))
    with pytest.raises(InfraError, match="crashed") as info:
        guest.wait_for_ssh(timeout=60)
    assert str(console) in str(info.value) and "Unable to mount root fs" in str(info.value)


def test_boot_wait_ignores_a_panic_logged_before_it_started(tmp_path: Path) -> None:
    """After a reboot, the console log's earlier lines do not count."""
    console = tmp_path / "console.log"
    console.write_text("Kernel panic - not syncing: old\n")
    assert vm.crash_line(console, console.stat().st_size) is None
    assert vm.crash_line(console, 0) == "Kernel panic - not syncing: old"


@pytest.mark.parametrize(
    "line",
    [
        "[   12.5] BUG: kernel NULL pointer dereference, address: 0000000000000008",
        "[   12.5] Oops: 0002 [#1] PREEMPT SMP NOPTI",
        "[   12.5] general protection fault, probably for non-canonical address",
        "[   12.5] WARNING: CPU: 1 PID: 310 at drivers/char/memlog/memlog_main.c:42",
    ],
)
def test_console_lines_of_a_dying_kernel_count_as_a_crash(tmp_path: Path, line: str) -> None:
    """BUG:, Oops, GPFs and WARNINGs on the console are crashes; ordinary lines are not."""
    console = tmp_path / "console.log"
    console.write_text("[    0.0] Linux version 6.1.0\n[    1.0] memlog: version 0.1.0\n")
    assert vm.crash_line(console) is None
    with console.open("a") as fh:
        fh.write(line + "\n")
    assert vm.crash_line(console) == line


def test_a_guest_command_fails_at_once_when_the_guest_kernel_crashes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A command still running when the console shows an Oops fails with the console's tail."""
    guest = _guest(tmp_path, _FakeQemu(None))
    guest.console_log.write_text("booted\n")
    # stands for ssh: a command that hangs, as one does on a guest whose kernel died
    monkeypatch.setattr(guest, "ssh_argv", lambda *extra: ["sh", "-c", "sleep 30"])

    def crash() -> None:
        time.sleep(1)
        with guest.console_log.open("a") as fh:
            fh.write("Oops: 0000 [#1] SMP\n")

    threading.Thread(target=crash, daemon=True).start()
    started = time.monotonic()
    with pytest.raises(InfraError, match="crashed") as info:
        guest.run("cat /dev/memlog", timeout=60)
    assert time.monotonic() - started < 10
    assert str(guest.console_log) in str(info.value) and "Oops" in str(info.value)


def test_a_guest_command_returns_its_output_and_status(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A command that ends normally gives back its stdout, stderr and exit status."""
    guest = _guest(tmp_path, _FakeQemu(None))
    monkeypatch.setattr(guest, "ssh_argv", lambda *extra: ["sh", "-c"])
    result = guest.run("echo out; echo err >&2; exit 3", check=False)
    assert (result.returncode, result.stdout, result.stderr) == (3, "out\n", "err\n")
    with pytest.raises(InfraError, match="exit 3"):
        guest.run("exit 3")


def test_boot_wait_fails_when_qemu_exits_naming_the_console_log(tmp_path: Path) -> None:
    """QEMU gone before ssh answered: the error names the console log and shows its tail."""
    guest = _guest(tmp_path, _FakeQemu(1))
    guest.console_log.write_text("last words\n")
    with pytest.raises(InfraError, match="QEMU exited with 1") as info:
        guest.wait_for_ssh(timeout=60)
    assert str(guest.console_log) in str(info.value) and "last words" in str(info.value)
