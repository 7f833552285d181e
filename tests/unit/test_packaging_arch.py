"""The rendered Arch PKGBUILDs: kernel.yaml's values, honest checksums, a true .SRCINFO."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

import pytest

from wintermute import config
from wintermute.packaging import arch
from wintermute.packaging.render import context, environment
from wintermute.packaging.system_files import INSTALLED_PATHS

# files in a package directory that are not sources (no checksum)
NOT_SOURCES = {"PKGBUILD", ".SRCINFO"}


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dest = tmp_path_factory.mktemp("render") / "arch"
    arch.render(environment(), context(config.load()), dest)
    return dest


@pytest.fixture(scope="module")
def cfg() -> config.Config:
    return config.load()


def _packages(cfg: config.Config) -> tuple[str, str]:
    return cfg.packages.dkms, cfg.packages.tools


def _values(rendered: Path, name: str) -> dict[str, list[str]]:
    return arch.pkgbuild_values(rendered / name)


def _srcinfo(text: str) -> dict[str, list[str]]:
    """The pkgbase section of a .SRCINFO as name -> values."""
    section = text.split("\n\n")[0].splitlines()
    values: dict[str, list[str]] = {}
    for line in section[1:]:
        name, _, value = line.strip().partition(" = ")
        values.setdefault(name, []).append(value)
    return values


def test_rendering_makes_one_directory_per_package(rendered: Path, cfg: config.Config) -> None:
    """out/render/arch holds memlog-dkms/ and memlog-tools/, nothing else."""
    assert sorted(p.name for p in rendered.iterdir()) == sorted(_packages(cfg))


def test_pkgbuilds_carry_name_version_and_release_from_kernel_yaml(
    rendered: Path, cfg: config.Config
) -> None:
    """pkgname, pkgver and pkgrel are kernel.yaml's package names, version and release."""
    for name in _packages(cfg):
        values = _values(rendered, name)
        assert values["pkgname"] == [name]
        assert values["pkgver"] == [cfg.memlog.version]
        assert values["pkgrel"] == [str(cfg.memlog.release)]


def test_pkgbuilds_name_the_maintainer_from_kernel_yaml(rendered: Path, cfg: config.Config) -> None:
    """Each PKGBUILD starts with a '# Maintainer:' line carrying kernel.yaml's maintainer."""
    for name in _packages(cfg):
        first = (rendered / name / "PKGBUILD").read_text().splitlines()[0]
        assert first == f"# Maintainer: {cfg.maintainer}"


def test_both_packages_are_architecture_independent(rendered: Path, cfg: config.Config) -> None:
    """arch=('any'): DKMS compiles on the target, and the library is pure Python."""
    for name in _packages(cfg):
        assert _values(rendered, name)["arch"] == ["any"]


def test_memlog_dkms_depends_on_dkms_and_memlog_tools(rendered: Path, cfg: config.Config) -> None:
    """memlog-dkms depends on dkms and on kernel.yaml's tools package, under GPL-2.0-only."""
    values = _values(rendered, cfg.packages.dkms)
    assert values["depends"] == ["dkms", cfg.packages.tools]
    assert values["license"] == ["GPL-2.0-only"]


def test_memlog_dkms_has_no_build_function(rendered: Path, cfg: config.Config) -> None:
    """The module is not compiled by makepkg: DKMS builds it on the target through its hooks."""
    functions = subprocess.run(
        ["bash", "--norc", "-c", "source ./PKGBUILD && declare -F | cut -d' ' -f3"],
        cwd=rendered / cfg.packages.dkms, capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    assert functions == ["package"]


def test_memlog_dkms_installs_dkms_conf_and_sources_under_usr_src(
    rendered: Path, cfg: config.Config
) -> None:
    """package() puts dkms.conf and the driver source in /usr/src/memlog-$pkgver."""
    text = (rendered / cfg.packages.dkms / "PKGBUILD").read_text()
    assert 'dest="$pkgdir/usr/src/memlog-$pkgver"' in text
    assert '"$dest/dkms.conf"' in text and '"$dest/include/uapi/linux/memlog.h"' in text
    dkms_conf = (rendered / cfg.packages.dkms / "dkms.conf").read_text()
    assert f'PACKAGE_VERSION="{cfg.memlog.version}"' in dkms_conf


def test_memlog_tools_depends_on_python_and_systemd(rendered: Path, cfg: config.Config) -> None:
    """memlog-tools needs python for the command and systemd's hooks for its system files."""
    values = _values(rendered, cfg.packages.tools)
    assert values["depends"] == ["python", "systemd"]
    assert values["license"] == ["MIT OR Apache-2.0"]


def test_memlog_tools_installs_system_files_at_their_installed_paths(
    rendered: Path, cfg: config.Config
) -> None:
    """The four system files go where system_files.INSTALLED_PATHS says."""
    text = (rendered / cfg.packages.tools / "PKGBUILD").read_text()
    for name, installed in INSTALLED_PATHS.items():
        assert f'"$srcdir/{name}" "$pkgdir{installed}"' in text


def test_memlog_tools_installs_both_licence_texts(rendered: Path, cfg: config.Config) -> None:
    """LICENSE-MIT (with its copyright line) and LICENSE-Apache-2.0 go to /usr/share/licenses."""
    name = cfg.packages.tools
    text = (rendered / name / "PKGBUILD").read_text()
    for licence in ("LICENSE-MIT", "LICENSE-Apache-2.0"):
        assert f'"$pkgdir/usr/share/licenses/{name}/{licence}"' in text
    mit = (rendered / name / "LICENSE-MIT").read_text()
    assert "Copyright (c) " in mit and cfg.maintainer.split(" <")[0] in mit


def test_memlog_launcher_uses_the_private_library_directory(
    rendered: Path, cfg: config.Config
) -> None:
    """/usr/bin/memlog puts /usr/lib/memlog-tools first on sys.path, where the library goes."""
    name = cfg.packages.tools
    launcher = (rendered / name / "memlog").read_text()
    assert launcher.startswith("#!/usr/bin/python3\n")
    assert f'sys.path.insert(0, "/usr/lib/{name}")' in launcher
    assert "sys.dont_write_bytecode = True" in launcher
    compile(launcher, "memlog", "exec")
    text = (rendered / name / "PKGBUILD").read_text()
    assert f'"$srcdir/cli.py" "$pkgdir/usr/lib/{name}/memlog/cli.py"' in text
    assert '-Dm755 "$srcdir/memlog" "$pkgdir/usr/bin/memlog"' in text


def test_sha256sums_match_the_source_files(rendered: Path, cfg: config.Config) -> None:
    """Every source has its file's sha256 (no SKIP), in the same order."""
    for name in _packages(cfg):
        values = _values(rendered, name)
        assert len(values["source"]) == len(values["sha256sums"])
        for source, digest in zip(values["source"], values["sha256sums"], strict=True):
            assert hashlib.sha256((rendered / name / source).read_bytes()).hexdigest() == digest


def test_every_file_beside_the_pkgbuild_is_a_source_or_the_install_script(
    rendered: Path, cfg: config.Config
) -> None:
    """Nothing in a package directory is left out of source=() (but the install script)."""
    for name in _packages(cfg):
        values = _values(rendered, name)
        files = {p.name for p in (rendered / name).iterdir()} - NOT_SOURCES
        files -= set(values.get("install", []))
        assert files == set(values["source"])


def test_memlog_tools_install_script_is_named_in_the_pkgbuild(
    rendered: Path, cfg: config.Config
) -> None:
    """install= names memlog-tools.install, which sits beside the PKGBUILD."""
    name = cfg.packages.tools
    assert _values(rendered, name)["install"] == [f"{name}.install"]
    assert (rendered / name / f"{name}.install").is_file()


def test_srcinfo_agrees_with_the_pkgbuild(rendered: Path, cfg: config.Config) -> None:
    """Every .SRCINFO value is the PKGBUILD's value, and it names the package."""
    for name in _packages(cfg):
        text = (rendered / name / ".SRCINFO").read_text()
        assert text.startswith(f"pkgbase = {name}\n") and text.endswith(f"\npkgname = {name}\n")
        values = _values(rendered, name)
        for key, listed in _srcinfo(text).items():
            assert listed == values[key], key
        for key in ("pkgver", "pkgrel", "depends", "license", "source", "sha256sums"):
            assert key in _srcinfo(text)


def test_srcinfo_squeezes_whitespace_like_makepkg(tmp_path: Path) -> None:
    """Runs of whitespace in a value become one space and the ends are trimmed, as in makepkg."""
    (tmp_path / "PKGBUILD").write_text(
        "pkgname=x\npkgver=1\npkgrel=1\npkgdesc='  a\tb   c '\narch=('any')\n"
        "depends=('p>=1' 'q')\nsource=('f')\nsha256sums=('00')\n"
    )
    assert arch.srcinfo(tmp_path) == (
        "pkgbase = x\n\tpkgdesc = a b c\n\tpkgver = 1\n\tpkgrel = 1\n\tarch = any\n"
        "\tdepends = p>=1\n\tdepends = q\n\tsource = f\n\tsha256sums = 00\n\npkgname = x\n"
    )


def test_pkgbuilds_and_install_script_pass_shellcheck(rendered: Path, cfg: config.Config) -> None:
    """shellcheck -s bash finds nothing in the rendered PKGBUILDs and the install script."""
    if shutil.which("shellcheck") is None:
        pytest.fail("shellcheck is not installed; run scripts/setup-host")
    files = [rendered / name / "PKGBUILD" for name in _packages(cfg)]
    files.append(rendered / cfg.packages.tools / f"{cfg.packages.tools}.install")
    proc = subprocess.run(
        ["shellcheck", "-s", "bash", *map(str, files)], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stdout


def test_makepkg_conf_passes_shellcheck() -> None:
    """The pinned makepkg.conf the builds use is valid bash."""
    conf = arch.rendering.TEMPLATES / "arch" / arch.MAKEPKG_CONF
    proc = subprocess.run(
        ["shellcheck", "-s", "bash", str(conf)], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stdout
