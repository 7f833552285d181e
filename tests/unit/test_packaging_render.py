"""Rendered Debian and Arch packaging carries kernel.yaml's values and nothing else's."""

from __future__ import annotations

import dataclasses
import hashlib
import re
import subprocess
from pathlib import Path

import pytest

from wintermute import config
from wintermute.packaging import targets


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return targets.render(tmp_path_factory.mktemp("r") / "render")


def _debian(rendered: Path) -> Path:
    return next((rendered / "debian").iterdir())


def test_debian_control_names_packages_and_maintainer_from_kernel_yaml(rendered: Path) -> None:
    """debian/control's package names and maintainer are kernel.yaml's."""
    cfg = config.load()
    control = (_debian(rendered) / "debian" / "control").read_text()
    assert f"Maintainer: {cfg.maintainer}" in control
    assert f"Package: {cfg.packages.tools}" in control
    assert f"Package: {cfg.packages.dkms}" in control
    assert "debhelper-compat (= 13)" in control and "dh-sequence-dkms" in control


def test_debian_changelog_version_is_version_dash_release(rendered: Path) -> None:
    """The changelog's version is kernel.yaml's version-release."""
    cfg = config.load()
    first = (_debian(rendered) / "debian" / "changelog").read_text().splitlines()[0]
    assert first.startswith(f"memlog ({cfg.memlog.version}-{cfg.memlog.release}) ")


def test_debian_rules_uses_the_dh_sequencer_with_pybuild(rendered: Path) -> None:
    """debian/rules is dh with the python3 addon and pybuild."""
    rules = (_debian(rendered) / "debian" / "rules").read_text()
    assert "\tdh $@ --with python3 --buildsystem=pybuild" in rules


def test_debian_sysusers_file_creates_the_configured_group(tmp_path: Path) -> None:
    """A different group in kernel.yaml shows up in memlog-tools' sysusers.d file."""
    cfg = config.load()
    system = dataclasses.replace(cfg.memlog.system, group="agents")
    cfg = dataclasses.replace(cfg, memlog=dataclasses.replace(cfg.memlog, system=system))
    out = targets.render(tmp_path / "render", cfg)
    sysusers = next((out / "debian").iterdir()) / "debian" / f"{cfg.packages.tools}.sysusers"
    assert "g agents - -" in sysusers.read_text()


def test_debian_maintainer_scripts_pass_shellcheck(rendered: Path) -> None:
    """Every rendered maintainer script passes shellcheck."""
    scripts = sorted((_debian(rendered) / "debian").glob("*.post*"))
    assert scripts
    proc = subprocess.run(
        ["shellcheck", "-s", "sh", *map(str, scripts)], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout


def test_arch_pkgbuilds_carry_name_version_and_release(rendered: Path) -> None:
    """Each PKGBUILD's pkgname, pkgver and pkgrel come from kernel.yaml."""
    cfg = config.load()
    for name in (cfg.packages.dkms, cfg.packages.tools):
        text = (rendered / "arch" / name / "PKGBUILD").read_text()
        assert f"pkgname={name}\n" in text
        assert f"pkgver={cfg.memlog.version}\n" in text
        assert f"pkgrel={cfg.memlog.release}\n" in text


def test_arch_sha256sums_match_the_source_files(rendered: Path) -> None:
    """The sha256sums array lists each source file's real digest, in order."""
    for pkg in (rendered / "arch").iterdir():
        text = (pkg / "PKGBUILD").read_text()
        sources = re.findall(r"'([^']+)'", text.split("source=(")[1].split(")")[0])
        sums = re.findall(r"'([0-9a-f]{64})'", text.split("sha256sums=(")[1].split(")")[0])
        assert len(sources) == len(sums) > 0
        for name, digest in zip(sources, sums, strict=True):
            assert hashlib.sha256((pkg / name).read_bytes()).hexdigest() == digest


def test_arch_memlog_dkms_depends_on_dkms_and_tools(rendered: Path) -> None:
    """memlog-dkms's PKGBUILD depends on dkms and memlog-tools."""
    cfg = config.load()
    text = (rendered / "arch" / cfg.packages.dkms / "PKGBUILD").read_text()
    assert f"depends=('dkms' '{cfg.packages.tools}')" in text
