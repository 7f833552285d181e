"""Every name and version of a kernel build comes from one function, and later builds sort above."""

from __future__ import annotations

import dataclasses
import subprocess
from pathlib import Path

import pytest

from wintermute import config
from wintermute.errors import UserError
from wintermute.kernel.names import kernel_names

STAMP = 1796817600  # 2026-12-09 12:00:00 UTC
KERNEL = config.load().kernel


def _deb_lt(a: str, b: str) -> bool:
    return subprocess.run(["dpkg", "--compare-versions", a, "lt", b]).returncode == 0


def _vercmp(a: str, b: str) -> int:
    out = subprocess.run(["vercmp", a, b], capture_output=True, text=True, check=True).stdout
    return int(out)


def test_names_of_a_build_read_as_debian_and_arch_name_kernels() -> None:
    """Release, Debian packages and version, Arch pkgbase/pkgver/pkgrel from one call."""
    names = kernel_names(KERNEL, "7.2.13", STAMP)
    assert names.release == "7.2.13-20261209120000-wintermute"
    assert names.image == f"linux-image-{names.release}"
    assert names.headers == f"linux-headers-{names.release}"
    assert (names.image_meta, names.headers_meta) == (
        "linux-image-wintermute",
        "linux-headers-wintermute",
    )
    assert names.deb_version == f"7.2.13-20261209120000.{KERNEL.release}"
    assert (names.pkgbase, names.pkgver, names.pkgrel) == (
        "linux-wintermute",
        "7.2.13",
        f"20261209120000.{KERNEL.release}",
    )
    assert names.localversion == ("-20261209120000", "-wintermute")


def test_flavour_gets_packages_and_a_module_directory_of_its_own() -> None:
    """The debug kernel and the shipped one never share a package name or a release."""
    debug = kernel_names(dataclasses.replace(KERNEL, flavour="debug"), "7.2.13", STAMP)
    plain = kernel_names(KERNEL, "7.2.13", STAMP)
    assert debug.release == "7.2.13-20261209120000-wintermute-debug"
    assert set(debug.debian_packages).isdisjoint(plain.debian_packages)
    assert set(debug.arch_packages).isdisjoint(plain.arch_packages)
    assert debug.image_meta == "linux-image-wintermute-debug"


def test_a_later_build_sorts_above_on_both_distributions() -> None:
    """A newer stamp (any changed input) gives a newer version for dpkg and for pacman."""
    first = kernel_names(KERNEL, "7.2.13", STAMP)
    second = kernel_names(KERNEL, "7.2.13", STAMP + 1)
    assert first.release != second.release
    assert _deb_lt(first.deb_version, second.deb_version)
    assert _vercmp(f"{first.pkgver}-{first.pkgrel}", f"{second.pkgver}-{second.pkgrel}") < 0


def test_a_newer_kernel_sorts_above_even_with_an_older_stamp() -> None:
    """7.2.14 is newer than 7.2.13 whatever their stamps."""
    old = kernel_names(KERNEL, "7.2.13", STAMP)
    new = kernel_names(KERNEL, "7.2.14", STAMP - 86400)
    assert _deb_lt(old.deb_version, new.deb_version)
    assert _vercmp(f"{old.pkgver}-{old.pkgrel}", f"{new.pkgver}-{new.pkgrel}") < 0


def test_a_release_candidate_sorts_below_its_final_release() -> None:
    """7.3.0-rc3 is 7.3.0~rc3 for dpkg and 7.3.0rc3 for pacman: both below 7.3.0."""
    rc = kernel_names(KERNEL, "7.3.0-rc3", STAMP + 1)
    final = kernel_names(KERNEL, "7.3.0", STAMP)
    assert rc.deb_version.startswith("7.3.0~rc3-")
    assert "-" not in rc.pkgver
    assert _deb_lt(rc.deb_version, final.deb_version)
    assert _vercmp(f"{rc.pkgver}-{rc.pkgrel}", f"{final.pkgver}-{final.pkgrel}") < 0


def test_a_kernel_version_with_extra_text_is_refused() -> None:
    """A tree whose Makefile adds EXTRAVERSION text cannot be named: one line says so."""
    with pytest.raises(UserError, match=r"not X\.Y\.Z or X\.Y\.Z-rcN"):
        kernel_names(KERNEL, "7.2.13-custom", STAMP)


def test_names_are_valid_package_names_and_versions(tmp_path: Path) -> None:
    """dpkg accepts every Debian name and the version; makepkg's rules accept pkgver/pkgrel."""
    names = kernel_names(dataclasses.replace(KERNEL, flavour="debug"), "7.3.0-rc3", STAMP)
    for name in names.debian_packages:
        assert subprocess.run(["dpkg", "--validate-pkgname", name]).returncode == 0, name
    assert subprocess.run(["dpkg", "--validate-version", names.deb_version]).returncode == 0
    # makepkg's own checks of pkgver and pkgrel
    lint = Path("/usr/share/makepkg")
    script = (
        f"shopt -s extglob; LIBRARY={lint}; source {lint}/util/message.sh; "
        f"source {lint}/lint_pkgbuild/pkgver.sh; source {lint}/lint_pkgbuild/pkgrel.sh; "
        'check_pkgver "$1" && check_pkgrel "$2"'
    )
    result = subprocess.run(["bash", "-c", script, "-", names.pkgver, names.pkgrel])
    assert result.returncode == 0, (names.pkgver, names.pkgrel)


def test_release_is_named_by_the_abi_stamp_and_the_version_by_the_build_stamp() -> None:
    """A driver-only edit with a persistent key (ABI stamp unchanged, build stamp newer):
    the same release and module directory, a version that sorts above."""
    first = kernel_names(KERNEL, "7.2.13", STAMP, STAMP)
    edited = kernel_names(KERNEL, "7.2.13", STAMP + 60, STAMP)
    assert edited.release == first.release == "7.2.13-20261209120000-wintermute"
    assert edited.localversion == first.localversion
    assert edited.image == first.image
    assert _deb_lt(first.deb_version, edited.deb_version)
    assert _vercmp(f"{first.pkgver}-{first.pkgrel}", f"{edited.pkgver}-{edited.pkgrel}") < 0


def test_abi_stamp_defaults_to_the_build_stamp_and_never_exceeds_it() -> None:
    """Without an ABI stamp (a fresh key per build) every build has its own release."""
    assert kernel_names(KERNEL, "7.2.13", STAMP).release.startswith("7.2.13-20261209120000-")
    later = kernel_names(KERNEL, "7.2.13", STAMP, STAMP + 60)
    assert later.abi_stamp == later.stamp
