"""Facts about the packages `invoke build-kernel` makes from the default kernel.yaml.

Debian: linux-image-<release> and linux-headers-<release>, and their
metapackages.  Arch: the split package linux-wintermute(-<flavour>) and its
-headers.  Every name is the build's (:mod:`wintermute.kernel.names`).  The Arch packages are
also installed by pacman into a scratch root by the build itself
(``kernel_arch.verify_in_scratch_root``); these checks read the package files.
"""

from __future__ import annotations

import calendar
import os
import re
import shutil
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

from wintermute import config
from wintermute.kernel import source
from wintermute.kernel.build import KernelBuild
from wintermute.packaging import arch

RELEASE = re.compile(r"^\d+\.\d+\.\d+(-rc\d+)?-(?P<stamp>\d{14})-wintermute(-[a-z0-9]+)?$")


def _deb(build: KernelBuild, prefix: str) -> Path:
    """The .deb of linux-image-<release> (prefix linux-image), or of a whole package name."""
    names = (f"{prefix}-{build.release}", prefix)
    [path] = [p for p in build.packages["debian"] if p.name.split("_")[0] in names]
    return path


def _pkg(build: KernelBuild, name: str) -> Path:
    names = build.names
    want = f"{name}-{names.pkgver}-{names.pkgrel}-x86_64.pkg.tar.zst"
    [path] = [p for p in build.packages["arch"] if p.name == want]
    return path


def _deb_files(deb: Path) -> list[str]:
    out = subprocess.run(["dpkg-deb", "-c", deb], capture_output=True, text=True, check=True).stdout
    return [line.split(None, 5)[5].removeprefix(".").split(" -> ")[0] for line in out.splitlines()]


def _deb_field(deb: Path, field: str) -> str:
    return subprocess.run(
        ["dpkg-deb", "-f", deb, field], capture_output=True, text=True, check=True
    ).stdout.strip()


def _pkg_files(pkg: Path) -> list[str]:
    out = subprocess.run(["bsdtar", "-tf", pkg], capture_output=True, text=True, check=True).stdout
    return ["/" + line.rstrip("/") for line in out.splitlines() if not line.startswith(".")]


def _extract(archive: Path, member: str, dest: Path) -> Path:
    """One file of a .deb or .pkg.tar.zst, extracted under ``dest``."""
    dest.mkdir(parents=True, exist_ok=True)
    if archive.suffix == ".deb":
        subprocess.run(["dpkg-deb", "-x", archive, dest], check=True)
    else:
        subprocess.run(["bsdtar", "-xf", archive, "-C", dest, member.lstrip("/")], check=True)
    return dest / member.lstrip("/")


def test_release_is_the_version_stamp_and_flavour(
    kernel_build: KernelBuild, cfg: config.Config
) -> None:
    """The release is X.Y.Z-<stamp>-wintermute[-flavour]: no '+', no -dirty, no -g<hash>."""
    match = RELEASE.match(kernel_build.release)
    assert match, kernel_build.release
    assert match["stamp"] == kernel_build.names.stamp
    assert kernel_build.release.endswith(f"-{kernel_build.names.suffix}")
    assert (cfg.kernel.flavour or "") in kernel_build.names.suffix


def test_debian_packages_are_the_build_s_and_its_metapackages_at_one_version(
    kernel_build: KernelBuild,
) -> None:
    """Four .debs, all at the build's version (a fresh key: nothing reused); the metapackages
    depend on this build exactly, the headers' not on the image's (which a driver-only
    rebuild moves on without the headers)."""
    names = kernel_build.names
    debs = [p for p in kernel_build.packages["debian"] if p.suffix == ".deb"]
    assert sorted(p.name.split("_")[0] for p in debs) == sorted(names.debian_packages)
    assert {_deb_field(p, "Version") for p in debs} == {names.deb_version}
    exact = f"(= {names.deb_version})"
    assert f"{names.image} {exact}" in _deb_field(_deb(kernel_build, names.image_meta), "Depends")
    headers_meta = _deb_field(_deb(kernel_build, names.headers_meta), "Depends")
    assert f"{names.headers} {exact}" in headers_meta
    assert names.image_meta not in headers_meta


def test_debian_headers_depend_on_the_compiler_their_makefile_calls(
    kernel_build: KernelBuild, tmp_path: Path
) -> None:
    """The headers' Makefile calls gcc-NN, the kernel's compiler, and the package needs it."""
    headers = _deb(kernel_build, "linux-headers")
    depends = _deb_field(headers, "Depends")
    makefile = _extract(
        headers, f"/usr/src/{kernel_build.names.headers}/Makefile", tmp_path
    ).read_text()
    [cc] = re.findall(r"^CC\t\t= \$\(CROSS_COMPILE\)(\S+)$", makefile, re.MULTILINE)
    assert re.fullmatch(r"gcc-\d+", cc), cc
    assert depends.startswith(f"{cc}, "), depends


def test_packages_and_their_directories_are_readable_by_everyone(
    kernel_build: KernelBuild,
) -> None:
    """What lands in out/kernel/ can be served (apt's _apt user, a web server): 0644 files,
    0755 directories (the signing key's umask 077 is the key's alone)."""
    top = kernel_build.packages["debian"][0].parent.parent
    for path in [top, *top.rglob("*")]:
        mode = path.stat().st_mode & 0o777
        assert mode == (0o755 if path.is_dir() else 0o644), f"{path}: {mode:o}"


def test_no_private_key_in_any_package_or_under_out(kernel_build: KernelBuild) -> None:
    """The module signing key was destroyed after signing: no package, log or file has it."""
    from wintermute.paths import out_dir

    found = []
    with tempfile.TemporaryDirectory() as tmp:
        for package in kernel_build.packages["debian"] + kernel_build.packages["arch"]:
            if package.suffix == ".deb" or package.name.endswith(".pkg.tar.zst"):
                dest = Path(tmp) / package.name
                dest.mkdir()
                extract = ["dpkg-deb", "-x"] if package.suffix == ".deb" else ["bsdtar", "-xf"]
                args = [package, dest] if package.suffix == ".deb" else [package, "-C", dest]
                subprocess.run([*extract, *args], check=True)
        # the cached tree's objects are gigabytes: its top and certs/, where a key would be
        tree = kernel_build.tree
        for where in (Path(tmp), out_dir(), *tree.glob("*.pem"), tree / "certs"):
            result = subprocess.run(
                ["grep", "-rlI", "--exclude-dir=vm", "-e", "-----BEGIN " + "PRIVATE KEY", where],
                capture_output=True, text=True,
            )  # fmt: skip
            found += result.stdout.splitlines()
    assert not found, found


def test_debian_image_ships_vmlinuz_system_map_config_and_modules(
    kernel_build: KernelBuild,
) -> None:
    """linux-image-<release> has /boot's three files and the modules under /lib/modules."""
    rel = kernel_build.release
    files = _deb_files(_deb(kernel_build, "linux-image"))
    boot = [f"/boot/{name}-{rel}" for name in ("vmlinuz", "System.map", "config")]
    modules = [f"/lib/modules/{rel}/{name}" for name in ("modules.order", "modules.builtin")]
    for path in boot + modules:
        assert path in files, path


def test_debian_image_carries_memlog_in_tree_under_kernel_drivers_char(
    kernel_build: KernelBuild,
) -> None:
    """memlog.ko is in the image package, where an in-tree module goes (not updates/dkms)."""
    files = _deb_files(_deb(kernel_build, "linux-image"))
    assert f"/lib/modules/{kernel_build.release}/kernel/drivers/char/memlog/memlog.ko" in files


def test_debian_image_leaves_the_build_link_to_the_headers(kernel_build: KernelBuild) -> None:
    """The image does not ship /lib/modules/<release>/build; the headers package does."""
    rel = kernel_build.release
    assert f"/lib/modules/{rel}/build" not in _deb_files(_deb(kernel_build, "linux-image"))
    assert f"/lib/modules/{rel}/build" in _deb_files(_deb(kernel_build, "linux-headers"))


def test_memlog_module_in_the_image_is_signed_with_sha512(
    kernel_build: KernelBuild, tmp_path: Path
) -> None:
    """modinfo shows a signer and sha512 on the packaged memlog.ko."""
    member = f"/lib/modules/{kernel_build.release}/kernel/drivers/char/memlog/memlog.ko"
    ko = _extract(_deb(kernel_build, "linux-image"), member, tmp_path)
    signer = subprocess.run(
        ["modinfo", "-F", "signer", ko], capture_output=True, text=True, check=True
    )
    sig_hash = subprocess.run(
        ["modinfo", "-F", "sig_hashalgo", ko], capture_output=True, text=True, check=True
    )
    assert signer.stdout.strip(), "memlog.ko carries no signature"
    assert sig_hash.stdout.strip() == "sha512"


def test_debian_image_recommends_memlog_tools(
    kernel_build: KernelBuild, cfg: config.Config
) -> None:
    assert cfg.packages.tools in _deb_field(_deb(kernel_build, "linux-image"), "Recommends")


def test_debian_image_runs_depmod_and_the_kernel_hooks_in_postinst(
    kernel_build: KernelBuild, tmp_path: Path
) -> None:
    """postinst: depmod, linux-update-symlinks, run-parts --exit-on-error /etc/kernel/postinst.d."""
    subprocess.run(["dpkg-deb", "-e", _deb(kernel_build, "linux-image"), tmp_path], check=True)
    postinst = (tmp_path / "postinst").read_text()
    assert "depmod" in postinst and "linux-update-symlinks" in postinst
    assert "linux-check-removal" in (tmp_path / "prerm").read_text()
    assert "run-parts --report --exit-on-error" in postinst and "/etc/kernel/postinst.d" in postinst
    for script in ("preinst", "prerm", "postrm"):
        assert f"/etc/kernel/{script}.d" in (tmp_path / script).read_text()


def test_debian_headers_have_config_sign_file_and_module_symvers(kernel_build: KernelBuild) -> None:
    """What DKMS needs: .config, scripts/sign-file, Module.symvers, the UAPI header."""
    base = f"/usr/src/linux-headers-{kernel_build.release}"
    files = _deb_files(_deb(kernel_build, "linux-headers"))
    for path in (".config", "scripts/sign-file", "Module.symvers", "Makefile",
                 "include/uapi/linux/memlog.h", "include/config/auto.conf"):  # fmt: skip
        assert f"{base}/{path}" in files, path


def test_debian_headers_postinst_runs_the_header_hooks(
    kernel_build: KernelBuild, tmp_path: Path
) -> None:
    """DKMS builds for the kernel when its headers are installed (/etc/kernel/header_postinst.d)."""
    subprocess.run(["dpkg-deb", "-e", _deb(kernel_build, "linux-headers"), tmp_path], check=True)
    assert "/etc/kernel/header_postinst.d" in (tmp_path / "postinst").read_text()


def test_lintian_finds_no_error_in_the_debian_packages(kernel_build: KernelBuild) -> None:
    [changes] = [p for p in kernel_build.packages["debian"] if p.suffix == ".changes"]
    result = subprocess.run(
        ["lintian", "--fail-on", "error", changes], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_arch_kernel_package_has_vmlinuz_and_pkgbase_beside_its_modules(
    kernel_build: KernelBuild, cfg: config.Config
) -> None:
    """vmlinuz and pkgbase under /usr/lib/modules/<release>/, memlog.ko in-tree there too."""
    modules = f"/usr/lib/modules/{kernel_build.release}"
    files = _pkg_files(_pkg(kernel_build, kernel_build.names.pkgbase))
    for path in ("vmlinuz", "pkgbase", "kernel/drivers/char/memlog/memlog.ko", "modules.order"):
        assert f"{modules}/{path}" in files, path
    assert not any(path.startswith("/boot") for path in files)


def test_arch_headers_package_has_the_build_directory(
    kernel_build: KernelBuild, cfg: config.Config
) -> None:
    build = f"/usr/lib/modules/{kernel_build.release}/build"
    files = _pkg_files(_pkg(kernel_build, f"{kernel_build.names.pkgbase}-headers"))
    for path in (".config", "Makefile", "Module.symvers", "scripts/sign-file"):
        assert f"{build}/{path}" in files, path


def test_arch_package_installs_beside_the_stock_kernel(
    kernel_build: KernelBuild, cfg: config.Config, tmp_path: Path
) -> None:
    """No provides or conflicts with linux: pacman keeps the stock kernel installed."""
    pkgbase = kernel_build.names.pkgbase
    pkginfo = _extract(_pkg(kernel_build, pkgbase), ".PKGINFO", tmp_path).read_text()
    assert not re.search(r"^(provides|conflicts|replaces) = linux\b", pkginfo, re.MULTILINE), (
        pkginfo
    )
    assert f"pkgbase = {pkgbase}" in pkginfo


def test_arch_srcinfo_is_what_makepkg_prints_for_the_published_pkgbuild(
    kernel_build: KernelBuild, cfg: config.Config
) -> None:
    """out/kernel/arch/<pkgbase>/.SRCINFO is makepkg --printsrcinfo of the PKGBUILD beside it."""
    published = kernel_build.packages["arch"][0].parent / kernel_build.names.pkgbase
    # a directory the build user can reach (pytest's tmp_path is private to root)
    with tempfile.TemporaryDirectory(prefix="wintermute-srcinfo-") as tmp:
        work = Path(tmp)
        work.chmod(0o755)
        (work / "PKGBUILD").write_bytes((published / "PKGBUILD").read_bytes())
        subprocess.run(["chown", "-R", f"{arch.BUILD_USER}:", work], check=True)
        printed = subprocess.run(
            ["runuser", "-u", arch.BUILD_USER, "--", "makepkg", "--printsrcinfo"],
            cwd=work, capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
    assert (published / ".SRCINFO").read_text() == printed


def _sources(published: Path) -> list[tuple[str, str, str]]:
    """(file name, URL or "", sha256) of each source, from makepkg's .SRCINFO."""
    fields: dict[str, list[str]] = {"source": [], "sha256sums": []}
    for line in (published / ".SRCINFO").read_text().splitlines():
        key, _, value = line.strip().partition(" = ")
        if key in fields:
            fields[key].append(value)
    assert len(fields["source"]) == len(fields["sha256sums"])
    found = []
    for value, sha in zip(fields["source"], fields["sha256sums"], strict=True):
        name, _, url = value.partition("::")
        found.append((name if url else Path(value).name, url, sha))
    return found


def _cached_source(name: str, sha256: str) -> Path:
    """The cache's copy of a downloaded source: what the build used, by name and sha256."""
    found = [p for p in source.sources_dir().rglob(name) if source.sha256_of(p) == sha256]
    assert found, f"no {name} with sha256 {sha256} under {source.sources_dir()}"
    return found[0]


def test_published_pkgbuild_lists_every_source_it_does_not_ship_by_a_url_that_serves_it(
    kernel_build: KernelBuild,
) -> None:
    """out/kernel/arch/<pkgbase>/ has every source except those with a URL, and each URL
    answers with the length of the file the build used (an HTTP HEAD: the kernel source
    is 150 MB)."""
    published = kernel_build.packages["arch"][0].parent / kernel_build.names.pkgbase
    sources = _sources(published)
    for name, url, _ in sources:
        assert (published / name).is_file() != bool(url), (name, url)
    for name, url, sha256 in sources:
        if url:
            size = _cached_source(name, sha256).stat().st_size
            request = urllib.request.Request(url, method="HEAD")
            with urllib.request.urlopen(request, timeout=60) as response:
                assert int(response.headers["Content-Length"]) == size, url


def test_published_pkgbuild_prepares_from_its_own_files_with_a_key_of_its_own(
    kernel_build: KernelBuild, cfg: config.Config
) -> None:
    """makepkg --nobuild on out/kernel/arch/<pkgbase>/ plus what it would download (the
    cache's copy put beside it, as makepkg takes a source it finds there), no key given:
    prepare() unpacks the tree, applies memlog, keeps kernel.yaml's options and makes a
    private signing key."""
    from wintermute.kernel.tree import SIGNING_KEY, tarball_top
    from wintermute.packaging import render

    pkgbase = kernel_build.names.pkgbase
    published = kernel_build.packages["arch"][0].parent / pkgbase
    with tempfile.TemporaryDirectory(prefix="wintermute-pkgbuild-") as tmp:
        root = Path(tmp)
        root.chmod(0o755)
        shutil.copytree(published, root / pkgbase)
        shutil.copyfile(render.TEMPLATES / "arch" / arch.MAKEPKG_CONF, root / arch.MAKEPKG_CONF)
        for sub in ("pkgdest", "home", "work"):
            (root / sub).mkdir()
        subprocess.run(["chown", "-R", f"{arch.BUILD_USER}:", root], check=True)
        for name, url, sha256 in _sources(published):
            if url:  # a link, root's and read-only, so the cache's file keeps its owner
                os.link(_cached_source(name, sha256), root / pkgbase / name)
        epoch = calendar.timegm(time.strptime(kernel_build.names.stamp, "%Y%m%d%H%M%S"))
        env = arch.makepkg_env(epoch, cfg.maintainer)
        arch.makepkg(root, pkgbase, env, flags=("--nobuild",), log="kernel-arch-prepare.log")
        srcdir = root / "work" / pkgbase / "src" / tarball_top(kernel_build.tree)
        key = srcdir / SIGNING_KEY
        assert key.stat().st_mode & 0o777 == 0o600
        assert "-----BEGIN " + "PRIVATE KEY-----" in key.read_text()
        assert (srcdir / "drivers" / "char" / "memlog" / "memlog_main.c").is_file()
        assert "CONFIG_MEMLOG=m\n" in (srcdir / ".config").read_text()


def test_arch_and_debian_vmlinuz_are_byte_identical(
    kernel_build: KernelBuild, cfg: config.Config, tmp_path: Path
) -> None:
    """Built in two trees by two users, the same inputs give the same vmlinuz (reproducible)."""
    rel = kernel_build.release
    debian = _extract(_deb(kernel_build, "linux-image"), f"/boot/vmlinuz-{rel}", tmp_path / "deb")
    arch_vmlinuz = _extract(
        _pkg(kernel_build, kernel_build.names.pkgbase),
        f"/usr/lib/modules/{rel}/vmlinuz",
        tmp_path / "arch",
    )
    assert debian.read_bytes() == arch_vmlinuz.read_bytes()
