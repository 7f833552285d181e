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


@pytest.fixture
def probe_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[Path]:
    """No forced accelerator, an empty cache, a fake host boot id; records each probe."""
    monkeypatch.delenv("WINTERMUTE_ACCEL", raising=False)
    monkeypatch.setenv("WINTERMUTE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(accel, "_chosen", None)
    boot_id = tmp_path / "boot_id"
    boot_id.write_text("boot-1\n")
    monkeypatch.setattr(accel, "HOST_BOOT_ID", boot_id)
    probes: list[Path] = []

    def fake_probe(kernel: Path, seconds: float = 0) -> bool:
        probes.append(kernel)
        return False

    monkeypatch.setattr(accel, "probe_kvm", fake_probe)
    return probes


def test_probe_answer_is_reused_for_the_rest_of_the_host_boot(
    probe_env: list[Path], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A second process on the same host boot does not probe again."""
    assert accel.choose(tmp_path / "vmlinuz") == "tcg"
    monkeypatch.setattr(accel, "_chosen", None)  # as in a new process
    assert accel.choose(tmp_path / "vmlinuz") == "tcg"
    assert len(probe_env) == 1


def test_probe_runs_again_after_the_host_reboots(
    probe_env: list[Path], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A remembered answer from another host boot is not trusted."""
    accel.choose(tmp_path / "vmlinuz")
    monkeypatch.setattr(accel, "_chosen", None)
    accel.HOST_BOOT_ID.write_text("boot-2\n")
    accel.choose(tmp_path / "vmlinuz")
    assert len(probe_env) == 2


def test_tcg_choice_says_why_kvm_was_not_used(
    probe_env: list[Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The one line names tcg and the failed KVM probe."""
    accel.choose(tmp_path / "vmlinuz")
    line = capsys.readouterr().err.strip()
    assert line.startswith("==> accelerator: tcg (no usable KVM")
    assert "\n" not in line
