"""The VM machinery, without booting anything: image key, QEMU command, ssh config, accelerator."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from ci import accel, rootfs, ssh, vm
from wintermute.errors import UserError


@pytest.fixture
def rootfs_inputs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of ci/rootfs to change without touching the repository."""
    import shutil

    copy = tmp_path / "rootfs"
    shutil.copytree(rootfs.ROOTFS_DIR, copy)
    monkeypatch.setattr(rootfs, "PACKAGES_FILE", copy / "packages.txt")
    monkeypatch.setattr(rootfs, "SOURCES_FILE", copy / "sources.list")
    monkeypatch.setattr(rootfs, "OVERLAY_DIR", copy / "overlay")
    return copy


def test_image_key_is_stable_for_the_same_inputs(rootfs_inputs: Path) -> None:
    """The same inputs give the same cache key."""
    assert rootfs.cache_key("6.1.1-1") == rootfs.cache_key("6.1.1-1")


def test_image_key_changes_when_the_package_list_changes(rootfs_inputs: Path) -> None:
    """Adding a package to packages.txt makes a new image."""
    before = rootfs.cache_key("6.1.1-1")
    with (rootfs_inputs / "packages.txt").open("a") as fh:
        fh.write("strace\n")
    assert rootfs.cache_key("6.1.1-1") != before


def test_image_key_changes_when_a_guest_config_file_changes(rootfs_inputs: Path) -> None:
    """Editing a file of the overlay makes a new image."""
    before = rootfs.cache_key("6.1.1-1")
    (rootfs_inputs / "overlay" / "etc" / "hostname").write_text("other\n")
    assert rootfs.cache_key("6.1.1-1") != before


def test_image_key_changes_with_the_kernel_version(rootfs_inputs: Path) -> None:
    """A new linux-image-amd64 makes a new image (its kernel must match the host's headers)."""
    assert rootfs.cache_key("6.1.1-1") != rootfs.cache_key("6.1.2-1")


def test_package_list_ignores_comments_and_blank_lines() -> None:
    """packages.txt lists package names only."""
    names = rootfs.packages()
    assert "openssh-server" in names and "linux-image-amd64" in names
    assert all(name and not name.startswith("#") and " " not in name for name in names)


def _image(tmp_path: Path) -> rootfs.Image:
    return rootfs.Image(
        tmp_path / "image.raw", tmp_path / "vmlinuz", tmp_path / "initrd.img", "6.1.0-1-amd64", "k"
    )


def test_qemu_command_forwards_ssh_on_loopback_only(tmp_path: Path) -> None:
    """ssh is forwarded from 127.0.0.1:PORT, never from every address."""
    cmd = vm.qemu_command(
        _image(tmp_path), tmp_path / "o.qcow2", "tcg", 2222, tmp_path / "c.log", ""
    )
    assert "user,id=n0,hostfwd=tcp:127.0.0.1:2222-:22" in cmd


def test_qemu_command_boots_the_overlay_not_the_cached_image(tmp_path: Path) -> None:
    """The disk QEMU writes to is the run's overlay."""
    cmd = vm.qemu_command(
        _image(tmp_path), tmp_path / "o.qcow2", "tcg", 2222, tmp_path / "c.log", ""
    )
    drives = [cmd[i + 1] for i, arg in enumerate(cmd) if arg == "-drive"]
    assert drives == [f"file={tmp_path / 'o.qcow2'},if=virtio,format=qcow2,cache=unsafe"]
    assert str(tmp_path / "image.raw") not in " ".join(cmd)


def test_qemu_command_uses_the_chosen_accelerator(tmp_path: Path) -> None:
    """-accel is what was chosen; -cpu host (which aborts here) is never used."""
    for accelerator in ("kvm", "tcg"):
        cmd = vm.qemu_command(_image(tmp_path), tmp_path / "o", accelerator, 1, tmp_path / "c", "")
        assert cmd[cmd.index("-accel") + 1] == accelerator
        assert "host" not in cmd


def test_qemu_command_keeps_the_serial_console_in_a_file(tmp_path: Path) -> None:
    """The guest's console goes to the run's console.log."""
    cmd = vm.qemu_command(_image(tmp_path), tmp_path / "o", "tcg", 1, tmp_path / "console.log", "")
    assert cmd[cmd.index("-serial") + 1] == f"file:{tmp_path / 'console.log'}"


def test_ssh_config_names_port_key_and_no_host_key_checking(tmp_path: Path) -> None:
    """The ssh config file testinfra and ssh use points at the forwarded port and the run's key."""
    text = ssh.write_config(tmp_path / "cfg", 2345, tmp_path / "id").read_text()
    assert "Host wintermute-vm\n" in text
    for line in ("HostName 127.0.0.1", "Port 2345", "User root", f"IdentityFile {tmp_path / 'id'}",
                 "StrictHostKeyChecking no", "UserKnownHostsFile /dev/null"):  # fmt: skip
        assert f"  {line}\n" in text


def test_public_key_travels_base64_encoded_on_the_kernel_command_line(tmp_path: Path) -> None:
    """The run's public key is one command-line word the guest decodes."""
    (tmp_path / "id.pub").write_text("ssh-ed25519 AAAA test\n")
    word = ssh.key_cmdline_arg(tmp_path / "id")
    assert " " not in word
    assert base64.b64decode(word.split("=", 1)[1]) == b"ssh-ed25519 AAAA test\n"


def test_accelerator_can_be_forced_by_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """WINTERMUTE_ACCEL=tcg skips the probe."""
    monkeypatch.setenv("WINTERMUTE_ACCEL", "tcg")
    monkeypatch.setattr(accel, "probe_kvm", lambda kernel: pytest.fail("probed"))
    assert accel.choose(tmp_path / "vmlinuz") == "tcg"


def test_unknown_forced_accelerator_is_a_user_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """WINTERMUTE_ACCEL=xen is refused with a clear message."""
    monkeypatch.setenv("WINTERMUTE_ACCEL", "xen")
    with pytest.raises(UserError, match="kvm or tcg"):
        accel.choose(tmp_path / "vmlinuz")


def test_probe_says_no_without_a_usable_dev_kvm(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Without read-write access to /dev/kvm the probe reports no KVM, starting nothing."""
    monkeypatch.setattr(accel.os, "access", lambda path, mode: False)
    assert accel.probe_kvm(tmp_path / "vmlinuz") is False
