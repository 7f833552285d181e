"""The QEMU command line for one run, and starting QEMU (faked)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from ci import qemu, rootfs


def _launch(tmp_path: Path, accelerator: str = "tcg", port: int = 2222) -> qemu.Launch:
    image = rootfs.Image(
        tmp_path / "image.raw", tmp_path / "vmlinuz", tmp_path / "initrd.img", "6.1.0-1-amd64", "k"
    )
    return qemu.Launch(
        image=image,
        overlay=tmp_path / "o.qcow2",
        accelerator=accelerator,
        port=port,
        console=tmp_path / "console.log",
        cmdline_extra="wintermute.ssh_key=QUJD",
    )


def test_qemu_command_forwards_ssh_on_loopback_only(tmp_path: Path) -> None:
    """ssh is forwarded from 127.0.0.1:PORT, never from every address."""
    cmd = qemu.command(_launch(tmp_path, port=2345))
    assert cmd[cmd.index("-netdev") + 1] == "user,id=n0,hostfwd=tcp:127.0.0.1:2345-:22"
    assert "virtio-net-pci,netdev=n0" in cmd


def test_qemu_command_boots_the_overlay_not_the_cached_image(tmp_path: Path) -> None:
    """The disk QEMU writes to is the run's overlay."""
    cmd = qemu.command(_launch(tmp_path))
    drives = [cmd[i + 1] for i, arg in enumerate(cmd) if arg == "-drive"]
    assert drives == [f"file={tmp_path / 'o.qcow2'},if=virtio,format=qcow2,cache=unsafe"]
    assert str(tmp_path / "image.raw") not in " ".join(cmd)


def test_qemu_command_boots_the_image_kernel_with_root_on_the_first_partition(
    tmp_path: Path,
) -> None:
    """-kernel/-initrd are the image's; the command line mounts /dev/vda1 and logs to ttyS0."""
    cmd = qemu.command(_launch(tmp_path))
    assert cmd[cmd.index("-kernel") + 1] == str(tmp_path / "vmlinuz")
    assert cmd[cmd.index("-initrd") + 1] == str(tmp_path / "initrd.img")
    words = cmd[cmd.index("-append") + 1].split()
    assert {"root=/dev/vda1", "rw", "console=ttyS0", "wintermute.ssh_key=QUJD"} <= set(words)


def test_qemu_command_from_disk_leaves_kernel_and_command_line_to_the_boot_loader(
    tmp_path: Path,
) -> None:
    """Booting from the disk: no -kernel, -initrd or -append; the same disk and console."""
    launch = dataclasses.replace(_launch(tmp_path), from_disk=True)
    cmd = qemu.command(launch)
    assert not {"-kernel", "-initrd", "-append"} & set(cmd)
    assert cmd[cmd.index("-drive") + 1].startswith(f"file={tmp_path / 'o.qcow2'},")
    assert f"file:{tmp_path / 'console.log'}" in cmd


def test_qemu_command_lets_the_guest_reboot_and_reads_no_user_config(tmp_path: Path) -> None:
    """No -no-reboot (vm.reboot() needs it); -no-user-config keeps the host's files out."""
    cmd = qemu.command(_launch(tmp_path))
    assert "-no-reboot" not in cmd
    assert "-no-user-config" in cmd
    assert cmd[cmd.index("-m") + 1] == "2048" and cmd[cmd.index("-smp") + 1] == "2"


def test_qemu_command_keeps_the_serial_console_in_a_file(tmp_path: Path) -> None:
    """The guest's console goes to the run's console.log."""
    cmd = qemu.command(_launch(tmp_path))
    assert cmd[cmd.index("-serial") + 1] == f"file:{tmp_path / 'console.log'}"


def test_qemu_start_retries_with_a_new_port_when_the_port_is_taken(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A port taken between choosing and binding it costs one retry, not the run."""
    ports: list[int] = []

    class FakeProc:
        def __init__(self, cmd: list[str], log: Path, *, detach: bool) -> None:
            port = int(cmd[cmd.index("-netdev") + 1].split(":")[2].split("-")[0])
            ports.append(port)
            self.taken = len(ports) == 1
            if self.taken:
                with log.open("a") as fh:
                    fh.write(f"{qemu.PORT_IN_USE} 'tcp:127.0.0.1:{port}-:22'\n")
            self.returncode = 1 if self.taken else None

        def wait(self, timeout: float | None = None) -> int:
            if self.taken:
                return 1
            raise qemu.subprocess.TimeoutExpired("qemu", timeout or 0)

    monkeypatch.setattr(qemu, "_spawn", FakeProc)
    monkeypatch.setattr(qemu, "free_port", lambda: 3333)
    _proc, launch = qemu.start(_launch(tmp_path, port=2222), tmp_path / "qemu.log")
    assert ports == [2222, 3333]
    assert launch.port == 3333


def test_qemu_command_uses_the_chosen_accelerator_and_never_cpu_host(tmp_path: Path) -> None:
    """-accel is what was chosen; -cpu host (which aborts here) is never used."""
    for accelerator in ("kvm", "tcg"):
        cmd = qemu.command(_launch(tmp_path, accelerator))
        assert cmd[cmd.index("-accel") + 1] == accelerator
        assert "host" not in cmd
    assert "-cpu" not in qemu.command(_launch(tmp_path, "kvm"))


def test_a_tcg_guest_has_no_5_level_paging(tmp_path: Path) -> None:
    """la57 off: Linux 7.2's KASAN reports interrupts in identify_cpu() as wild accesses."""
    cmd = qemu.command(_launch(tmp_path, "tcg"))
    assert cmd[cmd.index("-cpu") + 1] == "max,la57=off"
