"""Arch: the split PKGBUILD linux-wintermute + linux-wintermute-headers, built by makepkg.

In the style of Arch's own ``linux`` PKGBUILD (``templates/arch/kernel/``):
prepare/build/package from sources with sha256sums (the kernel tarball, or
Debian's ``linux-source-X.Y`` package by its archive URL, the ``config`` the
Debian build made, kernel.yaml's patches, then memlog's patch series, which
``prepare()`` applies as it applies the others),
``vmlinuz`` and ``pkgbase`` under ``/usr/lib/modules/<release>/``, modules
installed with depmod left to pacman's hook, the headers in ``build/`` there.
Its names never clash with the stock kernel's: it installs beside it.

makepkg runs as :data:`arch.BUILD_USER` in a private mount namespace (see
:mod:`wintermute.packaging.arch`), with the same ccache directory the Debian
build filled bind-mounted in, the same ccache settings and the same
``KBUILD_BUILD_*``: the kernel is compiled once, and the Arch build's compile
is mostly cache hits.  It also gets the module signing key, so both
distributions' packages are signed by the same key.

The kernel needs a tarball source: a local tree (``kernel.source.tree``)
gets the Debian packages only.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from wintermute.errors import InfraError
from wintermute.kernel import kbuild
from wintermute.kernel.kconfig import fragment_paths, requests
from wintermute.kernel.names import KernelNames
from wintermute.kernel.source import Tarball, sha256_of
from wintermute.kernel.tree import LOCALVERSION_FILES, SIGNING_KEY, copy_private
from wintermute.packaging import arch
from wintermute.packaging import render as rendering
from wintermute.paths import out_dir
from wintermute.run import run, say

TEMPLATE = "arch/kernel/PKGBUILD.j2"
LOG = "kernel-arch.log"
KEY = "signing_key.pem"
CCACHE = "ccache"


def _bash_quote(text: str) -> str:
    """``text`` as one bash word: $'...' with tabs and quotes escaped."""
    escaped = text.replace("\\", "\\\\").replace("'", "\\'").replace("\t", "\\t")
    return f"$'{escaped}'"


def render(ctx: dict[str, Any], tarball: Tarball, srcname: str, config: Path,
           patches: list[Path], memlog_series: list[Path], dest: Path) -> Path:  # fmt: skip
    """The PKGBUILD and its sources in ``dest/<pkgbase>/``; returns that directory.

    ``patches`` (kernel.yaml's) and ``memlog_series`` (named ``memlog-NNNN-...`` there,
    so that they cannot clash with kernel.yaml's) are applied in that order.
    """
    pkg_dir = dest / ctx["names"]["pkgbase"]
    pkg_dir.mkdir(parents=True)
    sources = []

    def add(src: Path, name: str, sha256: str | None = None, url: str | None = None) -> None:
        target = pkg_dir / name
        try:
            os.link(src, target)  # the kernel source: 150 MB, on the same file system
        except OSError:
            shutil.copyfile(src, target)
        if os.geteuid() == 0:  # root's: older builds chowned the cache's file to makepkg's user
            os.chown(target, 0, 0)
        target.chmod(0o644)
        source = f"{name}::{url}" if url else name
        sources.append({"name": name, "source": source, "sha256": sha256 or sha256_of(target)})

    if tarball.deb is not None:  # Debian's linux-source-X.Y: prepare() takes the tarball out
        deb = tarball.deb
        add(deb.path, deb.path.name, deb.sha256, deb.url)
        kernel_source = {"deb": deb.path.name, "member": deb.member}
    else:
        add(tarball.path, tarball.path.name, tarball.sha256, tarball.url)
        kernel_source = {"deb": None, "member": None}
    add(config, "config")
    for patch in patches:
        add(patch, patch.name)
    for patch in memlog_series:
        add(patch, f"memlog-{patch.name}")
    ctx = {
        **ctx,
        "arch": {
            "srcname": srcname,
            "sources": sources,
            "kernel_source": kernel_source,
            "localversion_files": LOCALVERSION_FILES,
            "signing_key": str(SIGNING_KEY),
            "config_requests": config_requests(ctx),
        },
    }
    text = rendering.environment().get_template(TEMPLATE).render(ctx)
    (pkg_dir / "PKGBUILD").write_text(text, encoding="utf-8")
    return pkg_dir


def config_requests(ctx: dict[str, Any]) -> list[str]:
    """kernel.yaml's fragments' requests as bash words, ``CONFIG_X=value`` (``=n``: not set)."""
    kernel = ctx["kernel"]
    fragments = fragment_paths(kernel["fragments"], Path(kernel["directory"]))
    return [_bash_quote(f"{r.option}={r.value}") for r in requests(fragments)]


def build(pkg_dir: Path, ctx: dict[str, Any], epoch: int, key: Path,
          dest: Path) -> tuple[list[Path], kbuild.CcacheStats]:  # fmt: skip
    """makepkg the PKGBUILD in ``pkg_dir`` into ``dest``; the two packages, ccache's statistics.

    ``dest/<pkgbase>/`` gets what is published: the PKGBUILD, makepkg's
    .SRCINFO and every source makepkg cannot download (a source with a URL,
    the kernel's tarball or Debian package, is left out).
    """
    arch.check_build_user()
    user = arch.BUILD_USER
    build_root = out_dir() / "build" / "arch-kernel"
    if build_root.exists():
        shutil.rmtree(build_root)
    build_root.mkdir(parents=True)
    shutil.copytree(pkg_dir, build_root / pkg_dir.name, copy_function=_link_or_copy)
    shutil.copyfile(
        rendering.TEMPLATES / "arch" / arch.MAKEPKG_CONF, build_root / arch.MAKEPKG_CONF
    )
    for sub in ("pkgdest", "home", "work", CCACHE):
        (build_root / sub).mkdir()
    copy_private(key, build_root / KEY)  # the build user's for the build, deleted after it
    ccache = kbuild.ccache_dir()
    ccache.mkdir(parents=True, exist_ok=True)
    # The build user gets the directories, the key and ccache; the other files
    # stay root's, read-only for it (0644, whatever the umask made them): the
    # kernel source is a hard link to the cache's.
    dirs = [build_root]
    for path in build_root.rglob("*"):
        if path.is_dir():
            dirs.append(path)
        elif path != build_root / KEY:
            path.chmod(0o644)
    run(["chown", f"{user}:", *dirs, build_root / KEY], log=LOG)
    run(["chown", "-R", f"{user}:", ccache], log=LOG)
    mount = arch.BUILD_MOUNT
    env = {
        **arch.makepkg_env(epoch, ctx["maintainer"]),
        "PATH": f"{kbuild.CCACHE_MASQUERADE}:{kbuild.SYSTEM_PATH}",
        **kbuild.ccache_env(mount / CCACHE),
        **kbuild.LOCALE_ENV,
        "MAKEFLAGS": kbuild.jobs(),
        "WINTERMUTE_SIGNING_KEY": str(mount / KEY),
    }
    binds = {CCACHE: ccache}
    package = pkg_dir.name
    try:
        srcinfo = arch.write_srcinfo(build_root, package, env)
        kbuild.zero_ccache(kbuild.ccache_env(ccache))
        arch.makepkg(
            build_root, package, env, binds=binds, log=LOG, heartbeat=60,
            step=f"makepkg {package} (the compile reuses the Debian build's ccache)",
        )  # fmt: skip
    finally:
        (build_root / KEY).unlink(missing_ok=True)
        # a failed makepkg leaves its srcdir, and the key its prepare() placed there
        for left in build_root.glob(f"work/*/src/*/{SIGNING_KEY}"):
            left.unlink()
    stats = kbuild.ccache_stats(kbuild.ccache_env(ccache))
    say(f"Arch build {stats}")
    dest.mkdir(parents=True, exist_ok=True)
    published = dest / package
    published.mkdir()
    downloaded = set(downloadable(pkg_dir))
    for path in sorted(pkg_dir.iterdir()):
        if path.name not in downloaded:
            shutil.copyfile(path, published / path.name)
    shutil.copyfile(srcinfo, published / ".SRCINFO")
    results = []
    for path in sorted((build_root / "pkgdest").glob(f"*{arch.PKGEXT}")):
        shutil.copyfile(path, dest / path.name)
        results.append(dest / path.name)
    if len(results) != 2:
        raise InfraError(f"makepkg made {[p.name for p in results]}, not 2 packages; see {LOG}")
    shutil.rmtree(build_root / "work", ignore_errors=True)
    return results, stats


def downloadable(pkg_dir: Path) -> list[str]:
    """The files of ``pkg_dir``'s PKGBUILD's sources that have a URL (``name::url``)."""
    return [word.split("::", 1)[0] for word in source_words(pkg_dir / "PKGBUILD")
            if "::" in word]  # fmt: skip


def source_words(pkgbuild: Path) -> list[str]:
    """The words of the PKGBUILD's ``source=(`` array, one per line as the template writes it."""
    lines = pkgbuild.read_text().splitlines()
    try:
        start = lines.index("source=(") + 1
        end = lines.index(")", start)
    except ValueError:
        raise InfraError(f"{pkgbuild}: no source=( ... ) array, one source a line") from None
    return [line.strip().strip("'\"") for line in lines[start:end] if line.strip()]


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def expected_owners(names: KernelNames) -> dict[str, str]:
    """What the two packages must install -> the package that owns it."""
    pkgbase, headers = names.arch_packages
    modules = f"/usr/lib/modules/{names.release}"
    return {
        f"{modules}/vmlinuz": pkgbase,
        f"{modules}/pkgbase": pkgbase,
        f"{modules}/kernel/drivers/char/memlog/memlog.ko": pkgbase,
        f"{modules}/modules.order": pkgbase,
        f"{modules}/build/Makefile": headers,
        f"{modules}/build/.config": headers,
        f"{modules}/build/Module.symvers": headers,
        f"{modules}/build/scripts/sign-file": headers,
        f"{modules}/build/include/uapi/linux/memlog.h": headers,
    }


def verify_in_scratch_root(packages: list[Path], names: KernelNames) -> None:
    """pacman -U both into a scratch root: -Qkk finds nothing altered, -Qo the right owners."""
    with tempfile.TemporaryDirectory(prefix="wintermute-arch-kernel-root-") as tmp:
        root = arch.install_into_scratch_root(packages, Path(tmp))
        arch.check_installed_files(root, list(names.arch_packages))
        arch.check_owners(root, expected_owners(names))
    say("pacman installed the kernel packages into a scratch root: -Qkk and -Qo agree")
