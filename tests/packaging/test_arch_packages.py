"""The Arch packages: built with makepkg, complete, reproducible, shellcheck-clean PKGBUILDs."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import pytest

from wintermute import config
from wintermute.packaging import arch
from wintermute.packaging.system_files import INSTALLED_PATHS
from wintermute.paths import out_dir

pytestmark = pytest.mark.build


def _digests(paths: list[Path]) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in paths}


@pytest.fixture(scope="module")
def builds() -> tuple[dict[str, str], list[Path]]:
    """Two makepkg runs from the same inputs: the first one's digests, the second one's files."""
    first = _digests(arch.build())
    return first, arch.build()


def _package(builds: tuple[dict[str, str], list[Path]], name: str) -> Path:
    [path] = [p for p in builds[1] if p.name.startswith(f"{name}-{config.load().memlog.version}")]
    return path


def _members(path: Path) -> set[str]:
    out = subprocess.run(["bsdtar", "-tf", str(path)], capture_output=True, text=True, check=True)
    return {"/" + line.rstrip("/") for line in out.stdout.splitlines()}


def _pkginfo(path: Path) -> str:
    return subprocess.run(
        ["bsdtar", "-xOf", str(path), ".PKGINFO"], capture_output=True, text=True, check=True
    ).stdout


def test_both_packages_are_built_as_pkg_tar_zst(builds: tuple[dict[str, str], list[Path]]) -> None:
    """memlog-dkms and memlog-tools .pkg.tar.zst files land in out/arch/."""
    cfg = config.load()
    assert sorted(p.name for p in builds[1]) == sorted(
        f"{name}-{cfg.memlog.version}-{cfg.memlog.release}-any.pkg.tar.zst"
        for name in (cfg.packages.dkms, cfg.packages.tools)
    )


def test_packages_are_byte_identical_when_built_twice(
    builds: tuple[dict[str, str], list[Path]],
) -> None:
    """The same inputs and SOURCE_DATE_EPOCH give the same package bytes."""
    assert builds[0] == _digests(builds[1])


def test_memlog_dkms_ships_the_source_under_usr_src(
    builds: tuple[dict[str, str], list[Path]],
) -> None:
    """memlog-dkms holds /usr/src/memlog-VERSION with dkms.conf and the sources."""
    cfg = config.load()
    members = _members(_package(builds, cfg.packages.dkms))
    src = f"/usr/src/memlog-{cfg.memlog.version}"
    for name in ("dkms.conf", "Kbuild", "memlog_main.c", "include/uapi/linux/memlog.h"):
        assert f"{src}/{name}" in members


def test_memlog_dkms_depends_on_dkms_and_memlog_tools(
    builds: tuple[dict[str, str], list[Path]],
) -> None:
    """.PKGINFO of memlog-dkms depends on dkms and memlog-tools."""
    cfg = config.load()
    info = _pkginfo(_package(builds, cfg.packages.dkms))
    assert "depend = dkms" in info and f"depend = {cfg.packages.tools}" in info
    assert f"pkgver = {cfg.memlog.version}-{cfg.memlog.release}" in info


def test_memlog_tools_ships_command_library_system_files_and_licence(
    builds: tuple[dict[str, str], list[Path]],
) -> None:
    """memlog-tools holds the command, its library, the four system files and the MIT text."""
    cfg = config.load()
    members = _members(_package(builds, cfg.packages.tools))
    expected = {
        "/usr/bin/memlog",
        f"/usr/lib/{cfg.packages.tools}/memlog/cli.py",
        f"/usr/share/licenses/{cfg.packages.tools}/LICENSE-MIT",
        *INSTALLED_PATHS.values(),
    }
    assert expected <= members


def test_srcinfo_agrees_with_the_pkgbuild(builds: object) -> None:
    """.SRCINFO (makepkg --printsrcinfo) names the PKGBUILD's package, version and sources."""
    cfg = config.load()
    for name in (cfg.packages.dkms, cfg.packages.tools):
        srcinfo = (out_dir() / "arch" / name / ".SRCINFO").read_text()
        pkgbuild = (out_dir() / "arch" / name / "PKGBUILD").read_text()
        assert f"pkgname = {name}" in srcinfo
        assert f"pkgver = {cfg.memlog.version}" in srcinfo
        sources = [line.split(" = ")[1] for line in srcinfo.splitlines() if "\tsource = " in line]
        assert sources and all(f"'{s}'" in pkgbuild for s in sources)


def test_pkgbuilds_pass_shellcheck(builds: object) -> None:
    """Every rendered PKGBUILD passes shellcheck."""
    pkgbuilds = sorted((out_dir() / "render" / "arch").glob("*/PKGBUILD"))
    assert len(pkgbuilds) == 2
    proc = subprocess.run(["shellcheck", *map(str, pkgbuilds)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout
