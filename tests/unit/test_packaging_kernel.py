"""The kernel's packaging as rendered: Debian's debian/ and Arch's PKGBUILD, before a build."""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from wintermute import config
from wintermute.kernel.build import PreparedTree, context
from wintermute.kernel.kbuild import compiler_of
from wintermute.kernel.names import kernel_names
from wintermute.kernel.source import DebianPackage, Tarball
from wintermute.packaging import kernel_arch, kernel_debian

STAMP = 1796817600  # 2026-12-09 12:00:00 UTC
CFG = config.load()
NAMES = kernel_names(CFG.kernel, "7.2.13", STAMP)
RELEASE = NAMES.release


@pytest.fixture
def ctx(tmp_path: Path) -> dict[str, Any]:
    prepared = PreparedTree(
        source=tmp_path / "linux",
        tree=tmp_path / "linux",
        label="linux-source-7.2 7.2.13-1 (sid)",
        names=NAMES,
        epoch=STAMP,
        env={"SOURCE_DATE_EPOCH": str(STAMP)},
        patches=[],
        memlog_series=[],
        base_config=None,
    )
    return context(CFG, prepared, {"cc": "gcc-12", "package": "gcc-12"})


def test_debian_maintainer_scripts_take_the_packages_names(
    ctx: dict[str, Any], tmp_path: Path
) -> None:
    debian = kernel_debian.render(ctx, tmp_path).debian
    names = {p.name for p in debian.iterdir()}
    for script in ("preinst", "postinst", "prerm", "postrm"):
        assert f"linux-image-{RELEASE}.{script}" in names
    assert f"linux-headers-{RELEASE}.postinst" in names
    assert not [n for n in names if n.startswith(("image.", "headers."))]


def _stanzas(control: str) -> dict[str, dict[str, str]]:
    """debian/control's binary packages: name -> field -> value (first lines only)."""
    found = {}
    for block in control.split("\n\n")[1:]:
        fields = dict(
            line.split(": ", 1) for line in block.splitlines() if ": " in line and line[0] != " "
        )
        found[fields["Package"]] = fields
    return found


def test_debian_control_has_the_build_s_packages_and_its_metapackages(
    ctx: dict[str, Any], tmp_path: Path
) -> None:
    """linux-image/-headers-<release>, and linux-image/-headers-wintermute depending on them."""
    packages = _stanzas((kernel_debian.render(ctx, tmp_path).debian / "control").read_text())
    assert set(packages) == set(NAMES.debian_packages)
    assert packages[NAMES.image]["Recommends"] == ctx["packages"]["tools"]
    assert "linux-base (>= 4.3~)" in packages[NAMES.image]["Depends"]
    image_meta = packages["linux-image-wintermute"]["Depends"]
    assert image_meta.startswith(f"{NAMES.image} (= ${{binary:Version}})")
    headers_meta = packages["linux-headers-wintermute"]["Depends"]
    assert f"{NAMES.headers} (= ${{binary:Version}})" in headers_meta
    # as Debian's linux-headers-amd64: not tied to the image's version, which a
    # build that reuses the headers moves on without them
    assert "linux-image-wintermute" not in headers_meta


def test_debian_headers_and_their_metapackage_are_left_out_by_the_noheaders_profile(
    ctx: dict[str, Any], tmp_path: Path
) -> None:
    """The profile a build uses when it reuses the last build's headers: dpkg leaves out
    the headers' stanzas and the rules install nothing into them."""
    debian = kernel_debian.render(ctx, tmp_path).debian
    packages = _stanzas((debian / "control").read_text())
    profile = f"<!{kernel_debian.NOHEADERS_PROFILE}>"
    assert packages[NAMES.headers].get("Build-Profiles") == profile
    assert packages[NAMES.headers_meta].get("Build-Profiles") == profile
    assert "Build-Profiles" not in packages[NAMES.image]
    assert "Build-Profiles" not in packages[NAMES.image_meta]
    listed = subprocess.run(
        ["dh_listpackages"], cwd=tmp_path, capture_output=True, text=True, check=True,
        env={**os.environ, "DEB_BUILD_PROFILES": kernel_debian.NOHEADERS_PROFILE},
    ).stdout.split()  # fmt: skip
    assert sorted(listed) == sorted([NAMES.image, NAMES.image_meta])
    rules = (debian / "rules").read_text()
    guarded = rules.split(f"ifeq ($(filter {kernel_debian.NOHEADERS_PROFILE},")[1]
    assert "install-extmod-build" in guarded.split("endif")[0]


def test_debian_rendering_digest_ignores_only_the_changelog(
    ctx: dict[str, Any], tmp_path: Path
) -> None:
    """A new version (the changelog) keeps the headers' digest; another template does not."""
    first = kernel_debian.render(ctx, tmp_path)
    later = {**ctx, "names": {**ctx["names"], "deb_version": "7.2.13-20261209120001.1"},
             "source_date_epoch": STAMP + 1}  # fmt: skip
    again = kernel_debian.render(later, tmp_path)
    assert "20261209120001" in (again.debian / "changelog").read_text()
    assert again.digest == first.digest
    other = kernel_debian.render({**ctx, "compiler": {"cc": "gcc-14", "package": "gcc-14"}},
                                 tmp_path)  # fmt: skip
    assert other.digest != first.digest


def test_debian_headers_depend_on_the_kernel_s_own_compiler(
    ctx: dict[str, Any], tmp_path: Path
) -> None:
    """The headers name gcc-12 (the kernel's), in Depends and in the Makefile rules sets."""
    debian = kernel_debian.render(ctx, tmp_path).debian
    packages = _stanzas((debian / "control").read_text())
    assert packages[NAMES.headers]["Depends"].startswith("gcc-12, make,")
    rules = (debian / "rules").read_text()
    assert "$$(CROSS_COMPILE)gcc-12/" in rules and "HOSTCC\\t= gcc-12/" in rules


@pytest.mark.parametrize(
    ("lines", "cc"),
    [
        ("CONFIG_CC_IS_GCC=y\nCONFIG_GCC_VERSION=120200\n", "gcc-12"),
        ("CONFIG_CC_IS_GCC=y\nCONFIG_GCC_VERSION=140201\n", "gcc-14"),
        ("CONFIG_GCC_VERSION=0\nCONFIG_CLANG_VERSION=190107\n", "clang-19"),
    ],
)
def test_compiler_is_read_from_the_kernel_configuration(
    tmp_path: Path, lines: str, cc: str
) -> None:
    """CONFIG_GCC_VERSION 120200 is gcc-12: the command and the Debian package."""
    path = tmp_path / "config"
    path.write_text(lines)
    assert compiler_of(path) == {"cc": cc, "package": cc}


def test_debian_image_scripts_use_linux_base_as_debian_s_kernels_do(
    ctx: dict[str, Any], tmp_path: Path
) -> None:
    """linux-update-symlinks on install/upgrade/removal, linux-check-removal before removal."""
    debian = kernel_debian.render(ctx, tmp_path).debian
    script = {
        s: (debian / f"{NAMES.image}.{s}").read_text() for s in ("postinst", "prerm", "postrm")
    }
    assert 'linux-update-symlinks "$change" "$version" "$image_path"' in script["postinst"]
    assert 'linux-check-removal "$version"' in script["prerm"]
    assert 'linux-update-symlinks remove "$version" "$image_path"' in script["postrm"]
    assert 'rmdir /lib/modules/"$version"' in script["postrm"]


def test_debian_rules_is_executable_and_never_cleans_the_tree(
    ctx: dict[str, Any], tmp_path: Path
) -> None:
    rules = kernel_debian.render(ctx, tmp_path).debian / "rules"
    assert rules.stat().st_mode & 0o111
    text = rules.read_text()
    assert "override_dh_auto_clean:\n\n" in text  # an empty override: the objects stay
    assert "INSTALL_MOD_STRIP=1" in text


@pytest.mark.parametrize(
    ("signing_key", "jobs"),
    [
        ('"pkcs11:token=t;object=k?pin-source=file:/run/pin"', "-j1"),
        ('"certs/signing_key.pem"', ""),
    ],
    ids=["token", "file"],
)
def test_debian_rules_sign_modules_one_at_a_time_only_from_a_pkcs11_token(
    ctx: dict[str, Any], tmp_path: Path, signing_key: str, jobs: str
) -> None:
    """Concurrent sign-file runs on one token fail now and then; a key file signs in parallel."""
    rules = kernel_debian.render(ctx, tmp_path).debian / "rules"
    (tmp_path / ".config").write_text(f"CONFIG_MODULE_SIG_KEY={signing_key}\n")
    shown = subprocess.run(
        ["make", "-s", "-f", rules, "--eval", "show-jobs: ; @echo '$(SIGN_JOBS)'", "show-jobs"],
        cwd=tmp_path, capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert shown.stdout.strip() == jobs
    assert "$(KMAKE) $(SIGN_JOBS) modules_install " in rules.read_text()


def test_debian_changelog_version_is_the_kernel_version_and_revision(
    ctx: dict[str, Any], tmp_path: Path
) -> None:
    debian = kernel_debian.render(ctx, tmp_path).debian
    version = subprocess.run(
        ["dpkg-parsechangelog", "-l", debian / "changelog", "-S", "Version"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    assert version == NAMES.deb_version == "7.2.13-20261209120000.1"


def test_maintainer_scripts_pass_shellcheck(ctx: dict[str, Any], tmp_path: Path) -> None:
    debian = kernel_debian.render(ctx, tmp_path).debian
    scripts = sorted(p for p in debian.iterdir() if p.name.endswith(("inst", "rm")))
    result = subprocess.run(["shellcheck", "-s", "sh", *scripts], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


def _pkgbuild(ctx: dict[str, Any], tmp_path: Path) -> Path:
    tarball = tmp_path / "linux-source-7.2.tar.xz"
    tarball.write_bytes(b"a tarball")
    config_file = tmp_path / "dot-config"
    config_file.write_text("CONFIG_MEMLOG=m\n")
    src = Tarball(tarball, hashlib.sha256(b"a tarball").hexdigest(), "test")
    series = tmp_path / "0001-char-add-memlog-per-uid-in-memory-record-rings.patch"
    series.write_text("--- /dev/null\n+++ b/drivers/char/memlog/Kconfig\n")
    return kernel_arch.render(
        ctx, src, "linux-source-7.2", config_file, [], [series], tmp_path / "r"
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
    assert f"pkgbase={NAMES.pkgbase}\npkgver={NAMES.pkgver}\npkgrel={NAMES.pkgrel}\n" in text
    assert "provides=" not in text and "conflicts=" not in text


def test_pkgbuild_parses_in_bash(ctx: dict[str, Any], tmp_path: Path) -> None:
    pkgbuild = _pkgbuild(ctx, tmp_path) / "PKGBUILD"
    result = subprocess.run(["bash", "-n", pkgbuild], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_pkgbuild_checks_the_options_kernel_yaml_asks_for_not_the_whole_config(
    ctx: dict[str, Any], tmp_path: Path
) -> None:
    """prepare() holds every fragment's request (CONFIG_MEMLOG=m...), not a cmp of .config."""
    text = (_pkgbuild(ctx, tmp_path) / "PKGBUILD").read_text()
    assert "  $'CONFIG_MEMLOG=m'\n" in text
    assert "  $'CONFIG_MODULE_SIG_ALL=y'\n" in text
    assert "cmp -s ../config .config" not in text


def test_pkgbuild_makes_its_own_signing_key_when_none_is_given(
    ctx: dict[str, Any], tmp_path: Path
) -> None:
    """Without WINTERMUTE_SIGNING_KEY prepare() makes a private key; packaging removes it."""
    text = (_pkgbuild(ctx, tmp_path) / "PKGBUILD").read_text()
    assert "umask 077 && openssl req" in text
    assert "rm -f certs/wintermute-signing-key.pem" in text


def test_pkgbuild_downloads_a_tarball_that_has_a_url(ctx: dict[str, Any], tmp_path: Path) -> None:
    """A kernel.org tarball is listed as name::URL, so the PKGBUILD fetches it itself."""
    tarball = tmp_path / "linux-7.2.13.tar.xz"
    tarball.write_bytes(b"a tarball")
    url = "https://cdn.kernel.org/pub/linux/kernel/v7.x/linux-7.2.13.tar.xz"
    src = Tarball(tarball, hashlib.sha256(b"a tarball").hexdigest(), url, url=url)
    config_file = tmp_path / "dot-config"
    config_file.write_text("CONFIG_MEMLOG=m\n")
    pkg_dir = kernel_arch.render(ctx, src, "linux-7.2.13", config_file, [], [], tmp_path / "r")
    assert f"  linux-7.2.13.tar.xz::{url}\n" in (pkg_dir / "PKGBUILD").read_text()


def _debian_source(tmp_path: Path) -> Tarball:
    """A linux-source-7.2 .deb made with dpkg-deb, holding a tarball of a tiny tree."""
    tree = tmp_path / "linux-source-7.2"
    tree.mkdir()
    (tree / "Makefile").write_text("# a kernel tree\n")
    pkg = tmp_path / "pkg"
    (pkg / "usr" / "src").mkdir(parents=True)
    tarball = pkg / "usr" / "src" / "linux-source-7.2.tar.xz"
    subprocess.run(["tar", "-C", tmp_path, "-cJf", tarball, tree.name], check=True)
    (pkg / "DEBIAN").mkdir()
    (pkg / "DEBIAN" / "control").write_text(
        "Package: linux-source-7.2\nVersion: 7.2.13-1\nArchitecture: all\n"
        "Maintainer: Debian Kernel Team <debian-kernel@lists.debian.org>\nDescription: test\n"
    )
    deb = tmp_path / "linux-source-7.2_7.2.13-1_all.deb"
    subprocess.run(["dpkg-deb", "-Zxz", "--root-owner-group", "-b", pkg, deb],
                   check=True, capture_output=True)  # fmt: skip
    url = "https://deb.debian.org/debian/pool/main/l/linux/linux-source-7.2_7.2.13-1_all.deb"
    member = "./usr/src/linux-source-7.2.tar.xz"
    return Tarball(
        tarball, hashlib.sha256(tarball.read_bytes()).hexdigest(), "linux-source-7.2",
        deb=DebianPackage(deb, hashlib.sha256(deb.read_bytes()).hexdigest(), url, member),
    )  # fmt: skip


def _debian_pkgbuild(ctx: dict[str, Any], tmp_path: Path) -> tuple[Tarball, Path]:
    """The PKGBUILD rendered for :func:`_debian_source`; the source and its directory."""
    src = _debian_source(tmp_path)
    config_file = tmp_path / "dot-config"
    config_file.write_text("CONFIG_MEMLOG=m\n")
    pkg_dir = kernel_arch.render(ctx, src, "linux-source-7.2", config_file, [], [],
                                 tmp_path / "r")  # fmt: skip
    return src, pkg_dir


def test_pkgbuild_downloads_debians_linux_source_package_from_the_archive(
    ctx: dict[str, Any], tmp_path: Path
) -> None:
    """A Debian source: the .deb is name::URL in Debian's pool, not extracted by makepkg."""
    src, pkg_dir = _debian_pkgbuild(ctx, tmp_path)
    text = (pkg_dir / "PKGBUILD").read_text()
    assert src.deb is not None
    assert f"  {src.deb.path.name}::{src.deb.url}\n" in text
    assert f"'{src.deb.sha256}'" in text
    assert f"noextract=({src.deb.path.name})" in text
    assert kernel_arch.downloadable(pkg_dir) == [src.deb.path.name]


def test_pkgbuild_prepare_takes_the_tree_out_of_the_debian_package(
    ctx: dict[str, Any], tmp_path: Path
) -> None:
    """prepare()'s first lines, run in a srcdir holding the .deb, unpack the tree."""
    src, pkg_dir = _debian_pkgbuild(ctx, tmp_path)
    lines = (pkg_dir / "PKGBUILD").read_text().split("prepare() {\n", 1)[1].splitlines()
    extract = "\n".join(lines[: lines.index('  cd "$_srcname"')])
    srcdir = tmp_path / "srcdir"
    srcdir.mkdir()
    assert src.deb is not None
    os.symlink(src.deb.path, srcdir / src.deb.path.name)  # as makepkg links sources in
    script = f"set -euo pipefail\n_srcname=linux-source-7.2\n{extract}\n"
    result = subprocess.run(["bash", "-c", script], cwd=srcdir, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert (srcdir / "linux-source-7.2" / "Makefile").read_text() == "# a kernel tree\n"


def test_downloadable_sources_are_read_from_the_source_array_quotes_and_all(
    tmp_path: Path,
) -> None:
    (tmp_path / "PKGBUILD").write_text(
        "pkgbase=x\nsource=(\n  'a.deb::https://example.invalid/a.deb'\n  config\n)\n"
        "sha256sums=(\n  'abc'\n)\n"
    )
    assert kernel_arch.downloadable(tmp_path) == ["a.deb"]


def test_a_pkgbuild_without_a_source_array_a_line_is_named_in_the_error(tmp_path: Path) -> None:
    from wintermute.errors import InfraError

    (tmp_path / "PKGBUILD").write_text("source=(a::https://example.invalid/a)\n")
    with pytest.raises(InfraError, match=r"no source=\( \.\.\. \) array"):
        kernel_arch.downloadable(tmp_path)


def _kept(tmp_path: Path, digest: str, names: list[str]) -> Path:
    """A tree whose last build kept ``names``' packages, made from ``digest``."""
    tree = tmp_path / "entry" / "linux"
    tree.mkdir(parents=True)
    kernel_debian._keep_headers(tree, [_deb_file(tmp_path, n) for n in names], digest)
    return tree


def _deb_file(tmp_path: Path, name: str) -> Path:
    path = tmp_path / f"{name}_7.2.13-20261209120000.1_amd64.deb"
    path.write_bytes(b"!<arch>\n" + name.encode())
    return path


def test_the_last_build_s_headers_are_reused_only_when_made_from_the_same_inputs(
    tmp_path: Path,
) -> None:
    """Same digest and the same package names: reused; another digest or release: rebuilt."""
    names = {"headers": NAMES.headers, "headers_meta": NAMES.headers_meta}
    tree = _kept(tmp_path, "d1", [NAMES.headers, NAMES.headers_meta])
    reused = kernel_debian._reusable_headers(tree, names, "d1")
    assert sorted(p.name.split("_")[0] for p in reused) == sorted(names.values())
    assert kernel_debian._reusable_headers(tree, names, "d2") == []
    other = {**names, "headers": "linux-headers-7.2.13-20261209120001-wintermute"}
    assert kernel_debian._reusable_headers(tree, other, "d1") == []


def test_headers_digest_follows_the_config_symvers_and_uapi_header(
    ctx: dict[str, Any], tmp_path: Path
) -> None:
    """Each file the headers are made from, changed, changes the digest."""
    tree = tmp_path / "linux"
    tree.mkdir()
    rendered = kernel_debian.render(ctx, tree)
    for rel in kernel_debian.HEADERS_TREE_INPUTS:
        (tree / rel).parent.mkdir(parents=True, exist_ok=True)
        (tree / rel).write_text(f"{rel}\n")
    first = kernel_debian.headers_digest(tree, rendered)
    assert kernel_debian.headers_digest(tree, rendered) == first
    for rel in (".config", "Module.symvers", "include/uapi/linux/memlog.h"):
        (tree / rel).write_text("changed\n")
        assert kernel_debian.headers_digest(tree, rendered) != first, rel
        (tree / rel).write_text(f"{rel}\n")


def test_pkgbuild_applies_memlog_s_patch_series_after_kernel_yaml_s_patches(
    ctx: dict[str, Any], tmp_path: Path
) -> None:
    """memlog goes in as its patch series (sources memlog-NNNN-*.patch, applied by prepare()'s
    patch loop after kernel.yaml's): no driver file is copied in beside them."""
    tarball = tmp_path / "linux-7.2.13.tar.xz"
    tarball.write_bytes(b"a tarball")
    config_file = tmp_path / "dot-config"
    config_file.write_text("CONFIG_MEMLOG=m\n")
    own = tmp_path / "own" / "0001-fix.patch"
    own.parent.mkdir()
    own.write_text("--- a/Makefile\n+++ b/Makefile\n")
    series = tmp_path / "0001-char-add-memlog.patch"
    series.write_text("--- /dev/null\n+++ b/drivers/char/memlog/Kconfig\n")
    src = Tarball(tarball, hashlib.sha256(b"a tarball").hexdigest(), "test")
    pkg_dir = kernel_arch.render(ctx, src, "linux-7.2.13", config_file, [own], [series],
                                 tmp_path / "r")  # fmt: skip
    text = (pkg_dir / "PKGBUILD").read_text()
    assert text.index("  0001-fix.patch\n") < text.index("  memlog-0001-char-add-memlog.patch\n")
    assert (pkg_dir / "memlog-0001-char-add-memlog.patch").read_text() == series.read_text()
    assert sorted(p.name for p in pkg_dir.iterdir()) == sorted(
        ["PKGBUILD", "config", "linux-7.2.13.tar.xz", "0001-fix.patch",
         "memlog-0001-char-add-memlog.patch"]
    )  # fmt: skip
    assert "memlog_main.c" not in text and "install -Dm644 -t drivers/char/memlog" not in text
