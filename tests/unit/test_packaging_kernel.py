"""The kernel's packaging as rendered: Debian's debian/ and Arch's PKGBUILD, before a build."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path
from typing import Any

import pytest

from wintermute import config
from wintermute.kernel.build import context
from wintermute.kernel.source import Tarball
from wintermute.packaging import kernel_arch, kernel_debian

RELEASE = "7.2.13-1-wintermute"


@pytest.fixture
def ctx() -> dict[str, Any]:
    return context(config.load(), RELEASE, "7.2.13", "linux-source-7.2 7.2.13-1 (sid)")


def test_debian_maintainer_scripts_take_the_packages_names(
    ctx: dict[str, Any], tmp_path: Path
) -> None:
    debian = kernel_debian.render(ctx, tmp_path)
    names = {p.name for p in debian.iterdir()}
    for script in ("preinst", "postinst", "prerm", "postrm"):
        assert f"linux-image-{RELEASE}.{script}" in names
    assert f"linux-headers-{RELEASE}.postinst" in names
    assert not [n for n in names if n.startswith(("image.", "headers."))]


def test_debian_control_names_both_packages_and_recommends_memlog_tools(
    ctx: dict[str, Any], tmp_path: Path
) -> None:
    control = (kernel_debian.render(ctx, tmp_path) / "control").read_text()
    assert f"Package: linux-image-{RELEASE}\n" in control
    assert f"Package: linux-headers-{RELEASE}\n" in control
    assert f"Recommends: {ctx['packages']['tools']}\n" in control


def test_debian_rules_is_executable_and_never_cleans_the_tree(
    ctx: dict[str, Any], tmp_path: Path
) -> None:
    rules = kernel_debian.render(ctx, tmp_path) / "rules"
    assert rules.stat().st_mode & 0o111
    text = rules.read_text()
    assert "override_dh_auto_clean:\n\n" in text  # an empty override: the objects stay
    assert "INSTALL_MOD_STRIP=1" in text


def test_debian_changelog_version_is_the_kernel_version_and_revision(
    ctx: dict[str, Any], tmp_path: Path
) -> None:
    debian = kernel_debian.render(ctx, tmp_path)
    version = subprocess.run(
        ["dpkg-parsechangelog", "-l", debian / "changelog", "-S", "Version"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    assert version == "7.2.13-1"


def test_maintainer_scripts_pass_shellcheck(ctx: dict[str, Any], tmp_path: Path) -> None:
    debian = kernel_debian.render(ctx, tmp_path)
    scripts = sorted(p for p in debian.iterdir() if p.name.endswith(("inst", "rm")))
    result = subprocess.run(["shellcheck", "-s", "sh", *scripts], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


def _pkgbuild(ctx: dict[str, Any], tmp_path: Path) -> Path:
    tarball = tmp_path / "linux-source-7.2.tar.xz"
    tarball.write_bytes(b"a tarball")
    config_file = tmp_path / "dot-config"
    config_file.write_text("CONFIG_MEMLOG=m\n")
    src = Tarball(tarball, hashlib.sha256(b"a tarball").hexdigest(), "test")
    return kernel_arch.render(
        ctx, src, "linux-source-7.2", config_file, "0.1.0", [], tmp_path / "r"
    )


def test_pkgbuild_lists_every_source_with_its_sha256(ctx: dict[str, Any], tmp_path: Path) -> None:
    pkg_dir = _pkgbuild(ctx, tmp_path)
    text = (pkg_dir / "PKGBUILD").read_text()
    for path in sorted(pkg_dir.iterdir()):
        if path.name == "PKGBUILD":
            continue
        assert f"  {path.name}\n" in text, path.name
        assert f"'{hashlib.sha256(path.read_bytes()).hexdigest()}'" in text, path.name


def test_pkgbuild_is_a_split_package_that_never_provides_linux(
    ctx: dict[str, Any], tmp_path: Path
) -> None:
    text = (_pkgbuild(ctx, tmp_path) / "PKGBUILD").read_text()
    assert 'pkgname=("$pkgbase" "$pkgbase-headers")' in text
    assert f"pkgbase={ctx['kernel']['package']}\n" in text
    assert "provides=" not in text and "conflicts=" not in text


def test_pkgbuild_parses_in_bash(ctx: dict[str, Any], tmp_path: Path) -> None:
    pkgbuild = _pkgbuild(ctx, tmp_path) / "PKGBUILD"
    result = subprocess.run(["bash", "-n", pkgbuild], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
