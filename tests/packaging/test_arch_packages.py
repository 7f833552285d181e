"""The Arch packages: built with the real makepkg, complete, and reproducible wherever built."""

from __future__ import annotations

import hashlib
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from wintermute import config
from wintermute.packaging import arch
from wintermute.packaging.reproducible import source_date_epoch
from wintermute.packaging.system_files import INSTALLED_PATHS

pytestmark = pytest.mark.build


@dataclass(frozen=True)
class Build:
    out: Path  # WINTERMUTE_OUT of this build
    packages: list[Path]

    def package(self, name: str) -> Path:
        [path] = [
            p
            for p in self.packages
            if re.fullmatch(rf"{re.escape(name)}-[^-]+-[^-]+-any\..*", p.name)
        ]
        return path


@pytest.fixture(scope="module")
def builds(tmp_path_factory: pytest.TempPathFactory) -> tuple[Build, Build]:
    """The same inputs built twice, in two different out/ directories."""
    results = []
    for label in ("first", "second"):
        out = tmp_path_factory.mktemp(f"arch-{label}")
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("WINTERMUTE_OUT", str(out))
            results.append(Build(out, arch.build()))
    return results[0], results[1]


@pytest.fixture(scope="module")
def cfg() -> config.Config:
    return config.load()


def _digests(paths: list[Path]) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in paths}


def _members(path: Path) -> set[str]:
    out = subprocess.run(["bsdtar", "-tf", str(path)], capture_output=True, text=True, check=True)
    return {"/" + line.rstrip("/") for line in out.stdout.splitlines()}


def _meta(path: Path, member: str) -> dict[str, list[str]]:
    """A .PKGINFO or .BUILDINFO as key -> values."""
    text = subprocess.run(
        ["bsdtar", "-xOf", str(path), member], capture_output=True, text=True, check=True
    ).stdout
    values: dict[str, list[str]] = {}
    for line in text.splitlines():
        if " = " in line and not line.startswith("#"):
            key, _, value = line.partition(" = ")
            values.setdefault(key, []).append(value)
    return values


def test_both_packages_are_built_as_pkg_tar_zst(
    builds: tuple[Build, Build], cfg: config.Config
) -> None:
    """memlog-dkms and memlog-tools NAME-VERSION-RELEASE-any.pkg.tar.zst land in out/arch/."""
    first, _ = builds
    assert sorted(p.name for p in first.packages) == sorted(
        f"{name}-{cfg.memlog.version}-{cfg.memlog.release}-any.pkg.tar.zst"
        for name in (cfg.packages.dkms, cfg.packages.tools)
    )
    assert all(p.parent == first.out / "arch" for p in first.packages)


def test_packages_are_byte_identical_when_built_in_two_directories(
    builds: tuple[Build, Build],
) -> None:
    """The same inputs and SOURCE_DATE_EPOCH give the same bytes, whatever out/ is."""
    first, second = builds
    assert first.out != second.out
    assert _digests(first.packages) == _digests(second.packages)


def test_buildinfo_records_the_fixed_build_path_date_and_packager(
    builds: tuple[Build, Build], cfg: config.Config
) -> None:
    """.BUILDINFO names the fixed build mount, SOURCE_DATE_EPOCH and kernel.yaml's maintainer."""
    first, _ = builds
    for path in first.packages:
        info = _meta(path, ".BUILDINFO")
        assert info["builddir"] == [str(arch.BUILD_MOUNT / "work")]
        assert info["startdir"][0].startswith(f"{arch.BUILD_MOUNT}/")
        assert info["builddate"] == [str(source_date_epoch())]
        assert info["packager"] == [cfg.maintainer]


def test_memlog_dkms_ships_dkms_conf_and_the_source_under_usr_src(
    builds: tuple[Build, Build], cfg: config.Config
) -> None:
    """memlog-dkms holds /usr/src/memlog-VERSION: dkms.conf, Kbuild, sources, the UAPI header."""
    first, _ = builds
    members = _members(first.package(cfg.packages.dkms))
    src = f"/usr/src/memlog-{cfg.memlog.version}"
    for name in ("dkms.conf", "Kbuild", "Makefile", "memlog_main.c", "include/uapi/linux/memlog.h"):
        assert f"{src}/{name}" in members
    assert {m for m in members if not m.startswith("/.")} <= {"/usr", "/usr/src", src} | {
        m for m in members if m.startswith(f"{src}/")
    }


def test_memlog_dkms_ships_no_built_module(builds: tuple[Build, Build], cfg: config.Config) -> None:
    """No .ko or object file: DKMS compiles on the target."""
    first, _ = builds
    members = _members(first.package(cfg.packages.dkms))
    assert not [m for m in members if m.endswith((".ko", ".o", ".ko.zst"))]


def test_memlog_dkms_pkginfo_has_version_and_depends_on_dkms_and_memlog_tools(
    builds: tuple[Build, Build], cfg: config.Config
) -> None:
    """.PKGINFO: pkgver VERSION-RELEASE, arch any, depends dkms and memlog-tools."""
    first, _ = builds
    info = _meta(first.package(cfg.packages.dkms), ".PKGINFO")
    assert info["pkgver"] == [f"{cfg.memlog.version}-{cfg.memlog.release}"]
    assert info["arch"] == ["any"]
    assert info["depend"] == ["dkms", cfg.packages.tools]
    assert info["license"] == ["GPL-2.0-only"]


def test_memlog_tools_ships_command_library_system_files_and_licences(
    builds: tuple[Build, Build], cfg: config.Config
) -> None:
    """memlog-tools holds the command, its private library, the system files, both licences."""
    first, _ = builds
    name = cfg.packages.tools
    members = _members(first.package(name))
    expected = {
        "/usr/bin/memlog",
        f"/usr/lib/{name}/memlog/__init__.py",
        f"/usr/lib/{name}/memlog/cli.py",
        f"/usr/share/licenses/{name}/LICENSE-MIT",
        f"/usr/share/licenses/{name}/LICENSE-Apache-2.0",
        "/usr/share/man/man1/memlog.1.gz",
        *INSTALLED_PATHS.values(),
    }
    assert expected <= members
    assert not [m for m in members if "__pycache__" in m or m.endswith(".pyc")]


def test_memlog_tools_pkginfo_has_version_and_depends_on_python_and_systemd(
    builds: tuple[Build, Build], cfg: config.Config
) -> None:
    """.PKGINFO: pkgver VERSION-RELEASE, depends python and systemd, MIT OR Apache-2.0."""
    first, _ = builds
    info = _meta(first.package(cfg.packages.tools), ".PKGINFO")
    assert info["pkgver"] == [f"{cfg.memlog.version}-{cfg.memlog.release}"]
    assert info["depend"] == ["python", "systemd"]
    assert info["license"] == ["MIT OR Apache-2.0"]


def test_memlog_tools_carries_its_install_script(
    builds: tuple[Build, Build], cfg: config.Config
) -> None:
    """memlog-tools.install is in the package as .INSTALL."""
    first, _ = builds
    assert "/.INSTALL" in _members(first.package(cfg.packages.tools))


def test_package_files_are_owned_by_root(builds: tuple[Build, Build], cfg: config.Config) -> None:
    """fakeroot made every member root:root, not the build user."""
    first, _ = builds
    for path in first.packages:
        out = subprocess.run(
            ["bsdtar", "--numeric-owner", "-tvf", str(path)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert all(line.split()[2:4] == ["0", "0"] for line in out.splitlines()), out


def test_srcinfo_beside_each_pkgbuild_is_what_makepkg_prints(
    builds: tuple[Build, Build], cfg: config.Config
) -> None:
    """out/arch/PACKAGE/.SRCINFO equals makepkg --printsrcinfo run on the same PKGBUILD."""
    first, _ = builds
    env = arch.makepkg_env(source_date_epoch(), cfg.maintainer)
    for name in (cfg.packages.dkms, cfg.packages.tools):
        printed = arch.makepkg_printsrcinfo(first.out / "build" / "arch", name, env)
        assert (first.out / "arch" / name / ".SRCINFO").read_text() == printed
