"""invoke dkms-install's refusals, which happen before anything is built or installed."""

from __future__ import annotations

from pathlib import Path

import pytest

from wintermute import config, dkms_install
from wintermute.errors import UserError


@pytest.fixture
def cfg() -> config.Config:
    return config.load()


@pytest.fixture
def modules(tmp_path: Path) -> Path:
    """A /lib/modules with headers for 6.1.0-9-amd64 only."""
    build = tmp_path / "6.1.0-9-amd64" / "build"
    build.mkdir(parents=True)
    (build / "Makefile").write_text("")
    return tmp_path


@pytest.fixture(autouse=True)
def as_root_with_apt(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dkms_install.os, "geteuid", lambda: 0)
    monkeypatch.setattr(dkms_install.shutil, "which", lambda name: f"/usr/bin/{name}")


def test_dkms_install_refuses_without_headers_for_the_running_kernel(
    cfg: config.Config, modules: Path
) -> None:
    """No headers for the running kernel: one line naming the package to install."""
    with pytest.raises(UserError, match=r"apt-get install linux-headers-6\.12\.9-amd64") as info:
        dkms_install.preflight(cfg, "6.12.9-amd64", modules)
    assert "nothing was installed" in str(info.value) and "\n" not in str(info.value)


def test_dkms_install_accepts_a_kernel_with_headers(cfg: config.Config, modules: Path) -> None:
    """Headers present and a supported kernel: no objection."""
    dkms_install.preflight(cfg, "6.1.0-9-amd64", modules)


def test_dkms_install_refuses_a_kernel_older_than_memlog_supports(
    cfg: config.Config, tmp_path: Path
) -> None:
    """A kernel older than min_kernel would be skipped by DKMS: refused up front."""
    build = tmp_path / "5.10.0-30-amd64" / "build"
    build.mkdir(parents=True)
    (build / "Makefile").write_text("")
    with pytest.raises(UserError, match=f"older than {cfg.memlog.min_kernel}"):
        dkms_install.preflight(cfg, "5.10.0-30-amd64", tmp_path)


def test_dkms_install_refuses_when_not_root(
    cfg: config.Config, modules: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not root: refused before anything else."""
    monkeypatch.setattr(dkms_install.os, "geteuid", lambda: 1000)
    with pytest.raises(UserError, match="as root"):
        dkms_install.preflight(cfg, "6.1.0-9-amd64", modules)


def test_dkms_install_refuses_without_apt(
    cfg: config.Config, modules: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not a Debian system: refused, pointing at the Arch packages."""
    monkeypatch.setattr(dkms_install.shutil, "which", lambda name: None)
    with pytest.raises(UserError, match="pacman -U"):
        dkms_install.preflight(cfg, "6.1.0-9-amd64", modules)


def test_dkms_install_names_a_missing_package_file(cfg: config.Config, tmp_path: Path) -> None:
    """--debs DIR without this version's packages: one line saying how to build them."""
    with pytest.raises(UserError, match="invoke deb"):
        dkms_install.package_files(cfg, tmp_path)
