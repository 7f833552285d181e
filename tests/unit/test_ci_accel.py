"""Choosing QEMU's accelerator, without booting anything."""

from __future__ import annotations

from pathlib import Path

import pytest

from ci import accel
from wintermute.errors import UserError


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


def test_forced_accelerator_is_announced_with_its_reason(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The one progress line names the accelerator and why it was chosen."""
    monkeypatch.setenv("WINTERMUTE_ACCEL", "kvm")
    assert accel.choose(tmp_path / "vmlinuz") == "kvm"
    assert "accelerator: kvm (forced by WINTERMUTE_ACCEL)" in capsys.readouterr().err
