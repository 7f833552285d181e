"""The Arch packages: built with the real makepkg, reproducible, installable with pacman.

The build itself already stops on a wrong checksum (makepkg), a .SRCINFO that
is not the package's (pkgbase), an altered file after installing (pacman -Qkk)
or an expected path owned by the wrong package (pacman -Qo); the facts below
are what it does not check, and the scratch-root facts, one each.
"""

from __future__ import annotations

import hashlib
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from wintermute import config
from wintermute.packaging import arch, targets
from wintermute.packaging.system_files import INSTALLED_PATHS
from wintermute.reproducible import source_date_epoch

pytestmark = pytest.mark.build


@dataclass(frozen=True)
class Build:
    out: Path  # WINTERMUTE_OUT of this build
    packages: list[Path]

    def package(self, name: str) -> Path:
        [path] = [
            p
            for p in self.packages
            if re.fullmatch(rf"{re.escape(name)}-[^-]+-[^-]+-(any|x86_64)\..*", p.name)
        ]
        return path


@pytest.fixture(scope="module", autouse=True)
def out(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """This module's out/ (logs of the scratch-root queries), never the shared one."""
    path = tmp_path_factory.mktemp("arch-out")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("WINTERMUTE_OUT", str(path))
        yield path


@pytest.fixture(scope="module")
def builds(tmp_path_factory: pytest.TempPathFactory) -> tuple[Build, Build]:
    """The same inputs built twice, in two different out/ directories."""
    results = []
    for label in ("first", "second"):
        out = tmp_path_factory.mktemp(f"arch-{label}")
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("WINTERMUTE_OUT", str(out))
            results.append(Build(out, arch.build(targets.render())))
    return results[0], results[1]


@pytest.fixture(scope="module")
def cfg() -> config.Config:
    return config.load()


@pytest.fixture(scope="module")
def root(builds: tuple[Build, Build], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first build's packages, installed by pacman into a scratch root."""
    first, _ = builds
    return arch.install_into_scratch_root(first.packages, tmp_path_factory.mktemp("scratch"))


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


def _srcinfo(path: Path) -> dict[str, list[str]]:
    """A single-package .SRCINFO as key -> values (pkgbase section and pkgname)."""
    values: dict[str, list[str]] = {}
    for line in path.read_text().splitlines():
        if " = " in line:
            key, _, value = line.strip().partition(" = ")
            values.setdefault(key, []).append(value)
    return values


def test_both_packages_are_built_as_pkg_tar_zst(
    builds: tuple[Build, Build], cfg: config.Config
) -> None:
    """memlog-dkms and memlog-tools NAME-VERSION-RELEASE-any.pkg.tar.zst, and libmemlog's
    -x86_64 one, land in out/arch/."""
    first, _ = builds
    version = f"{cfg.memlog.version}-{cfg.memlog.release}"
    assert sorted(p.name for p in first.packages) == sorted(
        [f"{name}-{version}-any.pkg.tar.zst" for name in (cfg.packages.dkms, cfg.packages.tools)]
        + [f"libmemlog-{version}-x86_64.pkg.tar.zst"]
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


def test_memlog_tools_ships_both_licences_and_no_bytecode(
    builds: tuple[Build, Build], cfg: config.Config
) -> None:
    """memlog-tools holds LICENSE-MIT and LICENSE-Apache-2.0, and no __pycache__ or .pyc."""
    first, _ = builds
    name = cfg.packages.tools
    members = _members(first.package(name))
    assert {
        f"/usr/share/licenses/{name}/LICENSE-MIT",
        f"/usr/share/licenses/{name}/LICENSE-Apache-2.0",
    } <= members
    assert not [m for m in members if "__pycache__" in m or m.endswith(".pyc")]


def test_memlog_tools_pkginfo_has_version_and_depends_on_python_and_systemd(
    builds: tuple[Build, Build], cfg: config.Config
) -> None:
    """.PKGINFO: pkgver VERSION-RELEASE, depends python (cbor2, zstandard) and systemd, MIT OR
    Apache-2.0."""
    first, _ = builds
    info = _meta(first.package(cfg.packages.tools), ".PKGINFO")
    assert info["pkgver"] == [f"{cfg.memlog.version}-{cfg.memlog.release}"]
    assert info["depend"] == ["python", "python-cbor2", "python-zstandard", "systemd"]
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


def test_srcinfo_beside_each_pkgbuild_describes_the_package_built(
    builds: tuple[Build, Build], cfg: config.Config
) -> None:
    """out/arch/PACKAGE/.SRCINFO has the built package's name, version, depends and licence."""
    first, _ = builds
    for name in (cfg.packages.dkms, cfg.packages.tools):
        srcinfo = _srcinfo(first.out / "arch" / name / ".SRCINFO")
        pkginfo = _meta(first.package(name), ".PKGINFO")
        assert srcinfo["pkgname"] == pkginfo["pkgname"] == [name]
        assert [f"{srcinfo['pkgver'][0]}-{srcinfo['pkgrel'][0]}"] == pkginfo["pkgver"]
        assert srcinfo["depends"] == pkginfo["depend"]
        assert srcinfo["license"] == pkginfo["license"]


def test_pacman_installs_memlog_tools_and_memlog_dkms_into_a_scratch_root(
    root: Path, cfg: config.Config
) -> None:
    """pacman -Q in the scratch root lists the packages at kernel.yaml's VERSION-RELEASE."""
    version = f"{cfg.memlog.version}-{cfg.memlog.release}"
    assert arch.query(root, "-Q").splitlines() == [
        f"libmemlog {version}",
        f"{cfg.packages.dkms} {version}",
        f"{cfg.packages.tools} {version}",
    ]


def test_pacman_qkk_finds_no_altered_file(root: Path, cfg: config.Config) -> None:
    """pacman -Qkk: every installed file has its package's type, mode, owner, size, mtime, sums."""
    names = [cfg.packages.dkms, cfg.packages.tools, "libmemlog"]
    summary = arch.check_installed_files(root, names)
    lines = summary.splitlines()
    assert len(lines) == 3 and all(line.endswith(" 0 altered files") for line in lines), summary


def _owner(root: Path, path: str) -> str | None:
    return arch.owners(root, [path]).get(path)


def test_pacman_qo_names_memlog_tools_as_owner_of_the_memlog_command(
    root: Path, cfg: config.Config
) -> None:
    """/usr/bin/memlog is in the scratch root, owned by memlog-tools."""
    assert _owner(root, "/usr/bin/memlog") == cfg.packages.tools


def test_pacman_qo_names_memlog_tools_as_owner_of_the_library(
    root: Path, cfg: config.Config
) -> None:
    """/usr/lib/memlog-tools/memlog/__init__.py, cli.py and agents/claude_agent_sdk.py are owned
    by memlog-tools."""
    name = cfg.packages.tools
    for module in ("__init__.py", "cli.py", "agents/claude_agent_sdk.py"):
        assert _owner(root, f"/usr/lib/{name}/memlog/{module}") == name


def test_pacman_qo_names_memlog_tools_as_owner_of_the_record_format_documentation(
    root: Path, cfg: config.Config
) -> None:
    """/usr/share/doc/memlog-tools/record-format.md is memlog-tools'."""
    name = cfg.packages.tools
    assert _owner(root, f"/usr/share/doc/{name}/record-format.md") == name


def test_pacman_qo_names_memlog_tools_as_owner_of_the_udev_rule(
    root: Path, cfg: config.Config
) -> None:
    """/usr/lib/udev/rules.d/60-memlog.rules is owned by memlog-tools."""
    assert _owner(root, "/usr/lib/udev/rules.d/60-memlog.rules") == cfg.packages.tools


def test_pacman_qo_names_memlog_tools_as_owner_of_every_system_file(
    root: Path, cfg: config.Config
) -> None:
    """Each of the four system files, at system_files.INSTALLED_PATHS, is memlog-tools'."""
    for path in INSTALLED_PATHS.values():
        assert _owner(root, path) == cfg.packages.tools, path


def test_pacman_qo_names_memlog_tools_as_owner_of_the_man_page(
    root: Path, cfg: config.Config
) -> None:
    """/usr/share/man/man1/memlog.1.gz (makepkg compresses man pages) is memlog-tools'."""
    assert _owner(root, "/usr/share/man/man1/memlog.1.gz") == cfg.packages.tools


def test_pacman_qo_names_memlog_dkms_as_owner_of_dkms_conf(root: Path, cfg: config.Config) -> None:
    """/usr/src/memlog-VERSION/dkms.conf is owned by memlog-dkms."""
    path = f"/usr/src/memlog-{cfg.memlog.version}/dkms.conf"
    assert _owner(root, path) == cfg.packages.dkms


def test_pacman_qo_names_libmemlog_as_owner_of_the_library_headers_and_pc_file(
    root: Path,
) -> None:
    """libmemlog.so.0 in /usr/lib (Arch's libdir), both headers and memlog.pc: libmemlog's."""
    paths = ["/usr/lib/libmemlog.so.0", "/usr/include/memlog/memlog.h",
             "/usr/include/memlog/uapi/linux/memlog.h", "/usr/lib/pkgconfig/memlog.pc"]  # fmt: skip
    for path in paths:
        assert _owner(root, path) == "libmemlog", path


def test_libmemlog_pkginfo_is_x86_64_provides_its_soname_and_depends_on_glibc(
    builds: tuple[Build, Build],
) -> None:
    """.PKGINFO: arch x86_64, provides libmemlog.so, depends glibc."""
    first, _ = builds
    info = _meta(first.package("libmemlog"), ".PKGINFO")
    assert info["arch"] == ["x86_64"]
    assert info["depend"] == ["glibc"]
    assert "libmemlog.so" in info["provides"][0]
