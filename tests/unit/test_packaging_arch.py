"""The rendered Arch PKGBUILDs: kernel.yaml's values, every source listed, clean shell.

What makepkg and the build enforce themselves (checksums, the install script's
existence, where each file is installed: pacman -Qo in a scratch root) is not
tested again here; see tests/packaging/test_arch_packages.py.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from wintermute import config
from wintermute.errors import UserError
from wintermute.packaging import arch
from wintermute.packaging.render import context, environment


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


# Source the PKGBUILD in a clean bash, as makepkg does; print one variable NUL-separated.
_PRINT = r"""
source ./PKGBUILD || exit 1
declare -n v="$1"
if (( ${#v[@]} )); then printf '%s\0' "${v[@]}"; fi
"""


def _values(rendered: Path, name: str, variable: str) -> list[str]:
    """``variable``'s values in the PKGBUILD of package ``name`` (empty if unset)."""
    out = subprocess.run(
        ["bash", "--noprofile", "--norc", "-c", _PRINT, "bash", variable],
        cwd=rendered / name, capture_output=True, text=True, check=True,
        env={"PATH": "/usr/bin:/bin", "LC_ALL": "C"},
    ).stdout  # fmt: skip
    return out.split("\0")[:-1]


def test_rendering_makes_one_directory_per_package(rendered: Path, cfg: config.Config) -> None:
    """out/render/arch holds memlog-dkms/, memlog-tools/ and libmemlog/, nothing else."""
    assert sorted(p.name for p in rendered.iterdir()) == sorted([*_packages(cfg), "libmemlog"])


def test_pkgbuilds_carry_name_version_and_release_from_kernel_yaml(
    rendered: Path, cfg: config.Config
) -> None:
    """pkgname, pkgver and pkgrel are kernel.yaml's package names, version and release."""
    for name in _packages(cfg):
        assert _values(rendered, name, "pkgname") == [name]
        assert _values(rendered, name, "pkgver") == [cfg.memlog.version]
        assert _values(rendered, name, "pkgrel") == [str(cfg.memlog.release)]


def test_pkgbuilds_name_the_maintainer_from_kernel_yaml(rendered: Path, cfg: config.Config) -> None:
    """Each PKGBUILD starts with a '# Maintainer:' line carrying kernel.yaml's maintainer."""
    for name in _packages(cfg):
        first = (rendered / name / "PKGBUILD").read_text().splitlines()[0]
        assert first == f"# Maintainer: {cfg.maintainer}"


def test_both_packages_are_architecture_independent(rendered: Path, cfg: config.Config) -> None:
    """arch=('any'): DKMS compiles on the target, and the library is pure Python."""
    for name in _packages(cfg):
        assert _values(rendered, name, "arch") == ["any"]


def test_memlog_dkms_depends_on_dkms_and_memlog_tools(rendered: Path, cfg: config.Config) -> None:
    """memlog-dkms depends on dkms and on kernel.yaml's tools package, under GPL-2.0-only."""
    assert _values(rendered, cfg.packages.dkms, "depends") == ["dkms", cfg.packages.tools]
    assert _values(rendered, cfg.packages.dkms, "license") == ["GPL-2.0-only"]


def test_memlog_dkms_has_no_build_function(rendered: Path, cfg: config.Config) -> None:
    """The module is not compiled by makepkg: DKMS builds it on the target through its hooks."""
    functions = subprocess.run(
        ["bash", "--norc", "-c", "source ./PKGBUILD && declare -F | cut -d' ' -f3"],
        cwd=rendered / cfg.packages.dkms, capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    assert functions == ["package"]


def test_memlog_tools_depends_on_python_and_systemd(rendered: Path, cfg: config.Config) -> None:
    """memlog-tools needs python, cbor2 and zstandard for the command, systemd's hooks for its
    system files."""
    assert _values(rendered, cfg.packages.tools, "depends") == [
        "python",
        "python-cbor2",
        "python-zstandard",
        "systemd",
    ]
    assert _values(rendered, cfg.packages.tools, "license") == ["MIT OR Apache-2.0"]


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
    assert '-Dm755 "$srcdir/memlog" "$pkgdir/usr/bin/memlog"' in text


def test_every_file_beside_the_pkgbuild_is_a_source_or_the_install_script(
    rendered: Path, cfg: config.Config
) -> None:
    """Nothing in a package directory is left out of source=() (but the install script)."""
    for name in _packages(cfg):
        files = {p.name for p in (rendered / name).iterdir()} - {"PKGBUILD"}
        files -= set(_values(rendered, name, "install"))
        assert files == set(_values(rendered, name, "source"))


def test_memlog_tools_install_script_is_named_in_the_pkgbuild(
    rendered: Path, cfg: config.Config
) -> None:
    """install= names memlog-tools.install (makepkg stops if that file is missing)."""
    name = cfg.packages.tools
    assert _values(rendered, name, "install") == [f"{name}.install"]


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


def test_a_missing_build_user_stops_the_build_with_one_line_naming_setup_host(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """No build user: a one-line UserError says to run scripts/setup-host (nothing is created)."""
    monkeypatch.setattr(arch, "BUILD_USER", "wintermute-no-such-user")
    with pytest.raises(UserError) as raised:
        arch.check_build_user()
    message = str(raised.value)
    assert "\n" not in message
    assert "wintermute-no-such-user" in message and "scripts/setup-host" in message
