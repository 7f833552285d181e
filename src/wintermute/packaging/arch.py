"""Arch Linux: PKGBUILDs for memlog-dkms, memlog-tools and libmemlog, built with the real makepkg.

``render`` writes one directory per package under ``out/render/arch/``: the
PKGBUILD (from ``templates/arch/<package>/PKGBUILD.j2``, with the sources'
sha256sums) and its local source files.

``build`` runs ``makepkg`` as the unprivileged user :data:`BUILD_USER`
(makepkg refuses root; ``scripts/setup-host`` creates the user, the build only
checks that it exists), writes each ``.SRCINFO`` with makepkg's own
``--printsrcinfo``, and puts the ``.pkg.tar.zst`` files in ``out/arch/``.
``--nodeps``: the packages' dependencies (dkms, python, systemd, meson,
libabigail) are Arch packages, absent on the Debian build machine.
memlog-dkms and memlog-tools compile nothing; libmemlog is compiled by
Debian's gcc and meson, its ``arch-meson`` being ``templates/arch/arch-meson``
(put on makepkg's PATH), and its tarball is made from what git knows of
``libmemlog/`` and the UAPI header.  It then installs both packages with the real
``pacman`` into a scratch root under a temporary directory and checks them
there with ``pacman -Qkk`` and ``pacman -Qo`` (:func:`verify_in_scratch_root`).

Reproducible: same inputs and ``SOURCE_DATE_EPOCH``, same package bytes,
wherever ``out/`` is.  makepkg writes its build paths (``builddir``,
``startdir``) into ``.BUILDINFO``, so the build tree under ``out/build/arch``
is bind-mounted at the fixed :data:`BUILD_MOUNT` in a private mount namespace
(the way Arch's own rebuilders always build in ``/build``); makepkg runs with a
cleared environment, a fixed umask and ``templates/arch/makepkg.conf``
instead of the machine's.
"""

from __future__ import annotations

import hashlib
import os
import pwd
import re
import shlex
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2

from wintermute.config import Config
from wintermute.config import load as load_config
from wintermute.errors import InfraError, UserError
from wintermute.packaging import render as rendering
from wintermute.packaging import userspace
from wintermute.packaging.debian import upstream_files
from wintermute.packaging.dkms import render as render_dkms
from wintermute.packaging.system_files import INSTALLED_PATHS
from wintermute.paths import REPO, log_dir, out_dir
from wintermute.reproducible import source_date_epoch, tarball
from wintermute.run import capture, run, say

BUILD_USER = "wintermute-build"
LIBRARY = "libmemlog"
# What libmemlog's tarball holds, of the repository
LIBRARY_PATHS = ("libmemlog/", "include/uapi/linux/memlog.h")
PKGEXT = ".pkg.tar.zst"
MAKEPKG_CONF = "makepkg.conf"
# Where makepkg sees out/build/arch (see the module docstring).
BUILD_MOUNT = Path("/run/wintermute-arch-build")
TOOLS = ("makepkg", "fakeroot", "bsdtar", "zstd", "unshare", "runuser", "shellcheck", "pacman")
LOG = "arch-build.log"


@dataclass(frozen=True)
class Source:
    name: str  # file name in the PKGBUILD's directory
    path: str  # where package() installs it
    mode: str
    sha256: str


def _add(srcdir: Path, src: Path, name: str, path: str, mode: str = "644") -> Source:
    target = srcdir / name
    if target.exists():
        raise InfraError(f"two sources of {srcdir.name} are both named {name}; rename one")
    shutil.copyfile(src, target)
    target.chmod(0o755 if mode == "755" else 0o644)
    return Source(name, path, mode, hashlib.sha256(target.read_bytes()).hexdigest())


def _write_pkgbuild(env: jinja2.Environment, ctx: dict[str, Any], template_dir: str, dest: Path,
                    files: list[Source]) -> None:  # fmt: skip
    template = env.get_template(f"arch/{template_dir}/PKGBUILD.j2")
    (dest / "PKGBUILD").write_text(template.render({**ctx, "files": files}), encoding="utf-8")


def _render_file(env: jinja2.Environment, ctx: dict[str, Any], template: str, target: Path) -> Path:
    target.write_text(env.get_template(f"arch/{template}").render(ctx), encoding="utf-8")
    return target


def _render_dkms(env: jinja2.Environment, ctx: dict[str, Any], dest: Path, tmp: Path) -> None:
    tree = tmp / "dkms"
    render_dkms(env, ctx, tree)
    files = [
        _add(dest, src, src.name, src.relative_to(tree).as_posix())
        for src in sorted(p for p in tree.rglob("*") if p.is_file())
    ]
    _write_pkgbuild(env, ctx, "memlog-dkms", dest, files)


def _render_tools(env: jinja2.Environment, ctx: dict[str, Any], dest: Path, tmp: Path) -> None:
    name = ctx["packages"]["tools"]
    files: list[Source] = []
    lib = tmp / "lib"
    userspace.copy_library(lib)
    for module in userspace.library_modules():
        # a flat source name (agents/__init__.py: agents.__init__.py) beside the PKGBUILD
        source = ".".join(module.parts)
        files.append(_add(dest, lib / module, source, f"/usr/lib/{name}/memlog/{module}"))
    launcher = _render_file(env, ctx, "memlog-tools/memlog.j2", tmp / "memlog")
    files.append(_add(dest, launcher, "memlog", "/usr/bin/memlog", "755"))
    system = tmp / "system"
    rendering.render_group(env, ctx, "system", system)
    for file_name, installed in INSTALLED_PATHS.items():
        files.append(_add(dest, system / file_name, file_name, installed))
    rendering.render_group(env, ctx, "doc", tmp / "doc")
    files.append(_add(dest, tmp / "doc" / "memlog.1", "memlog.1", "/usr/share/man/man1/memlog.1"))
    for doc in userspace.DOCS:
        files.append(_add(dest, doc, doc.name, f"/usr/share/doc/{name}/{doc.name}"))
    mit = _render_file(env, ctx, "memlog-tools/LICENSE-MIT.j2", tmp / "LICENSE-MIT")
    apache = rendering.TEMPLATES / "arch" / "memlog-tools" / "LICENSE-Apache-2.0"
    for licence in (mit, apache):
        files.append(
            _add(dest, licence, licence.name, f"/usr/share/licenses/{name}/{licence.name}")
        )
    # the install script is no source (no checksum): makepkg takes it from beside the PKGBUILD
    _render_file(env, ctx, "memlog-tools/memlog-tools.install.j2", dest / f"{name}.install")
    _write_pkgbuild(env, ctx, "memlog-tools", dest, files)


def _render_library(env: jinja2.Environment, ctx: dict[str, Any], dest: Path, tmp: Path) -> None:
    """libmemlog: a tarball of its sources and the UAPI header, built by meson in the PKGBUILD."""
    top = f"libmemlog-{ctx['memlog']['version']}"
    members = [p for p in upstream_files() if p.startswith(LIBRARY_PATHS)]
    archive = tarball(REPO, members, tmp / f"{top}.tar.xz", top=top,
                      epoch=ctx["source_date_epoch"], log=LOG)  # fmt: skip
    files = [_add(dest, archive, archive.name, "")]
    mit = _render_file(env, ctx, "memlog-tools/LICENSE-MIT.j2", tmp / "LICENSE-MIT")
    apache = rendering.TEMPLATES / "arch" / "memlog-tools" / "LICENSE-Apache-2.0"
    files += [_add(dest, licence, licence.name, "") for licence in (mit, apache)]
    template = env.get_template("arch/libmemlog/PKGBUILD.j2")
    (dest / "PKGBUILD").write_text(template.render({**ctx, "files": files, "tarball_top": top}),
                                   encoding="utf-8")  # fmt: skip


def render(env: jinja2.Environment, ctx: dict[str, Any], dest: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        for package, renderer in ((ctx["packages"]["dkms"], _render_dkms),
                                  (ctx["packages"]["tools"], _render_tools),
                                  (LIBRARY, _render_library)):  # fmt: skip
            pkg_dir = dest / package
            pkg_dir.mkdir(parents=True)
            work = Path(tmp) / package
            work.mkdir()
            renderer(env, ctx, pkg_dir, work)


# --- building


def check_build_user() -> str:
    """The unprivileged user makepkg runs as (it refuses root); scripts/setup-host creates it."""
    try:
        pwd.getpwnam(BUILD_USER)
    except KeyError:
        raise UserError(
            f"the Arch build user {BUILD_USER} does not exist; "
            "run scripts/setup-host (as root) to create it"
        ) from None
    return BUILD_USER


def _check_host() -> None:
    if os.geteuid() != 0:
        raise UserError(
            "building the Arch packages needs root: it runs makepkg as the build user in a "
            "private mount namespace and pacman on a scratch root; run it as root (sudo)"
        )
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        raise UserError(f"missing {', '.join(missing)}; run scripts/setup-host first")
    check_build_user()


def _in_build_tree(
    build_root: Path,
    workdir: str,
    cmd: list[str],
    env: dict[str, str],
    binds: dict[str, Path] | None = None,
) -> list[str]:
    """``cmd`` as the build user, with a cleared environment, in ``BUILD_MOUNT/workdir``.

    A private mount namespace, with a /run of its own, shows ``build_root`` at
    ``BUILD_MOUNT`` to this one command; the build user needs no access to the
    path of ``out/``, and the host's /run is left alone.  ``binds`` shows more
    directories inside it: ``{"ccache": DIR}`` is DIR at ``BUILD_MOUNT/ccache``
    (an existing directory of ``build_root``).
    """
    # The namespace gets a /run of its own, so the mount point is made there,
    # never on the host.
    extra = "".join(
        f'mount --bind -- {shlex.quote(str(src))} "$2"/{shlex.quote(sub)} && '
        for sub, src in sorted((binds or {}).items())
    )
    script = (
        'mount -t tmpfs -o mode=0755 wintermute-run /run && mkdir -- "$2" && '
        f'mount --bind -- "$1" "$2" && {extra}cd -- "$2/$3" && umask 022 && shift 3 && exec "$@"'
    )
    assignments = [f"{k}={v}" for k, v in sorted(env.items())]
    return [
        "unshare", "--mount", "--propagation", "private", "--",
        "sh", "-c", script, "sh", str(build_root), str(BUILD_MOUNT), workdir,
        "runuser", "-u", BUILD_USER, "--", "env", "-i", *assignments, *cmd,
    ]  # fmt: skip


def makepkg_env(epoch: int, packager: str) -> dict[str, str]:
    """makepkg's whole environment: every path under BUILD_MOUNT, nothing from the caller."""
    return {
        # bin/: arch-meson, which Debian lacks (templates/arch/arch-meson)
        "PATH": f"{BUILD_MOUNT / 'bin'}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin"
        ":/bin",
        "HOME": str(BUILD_MOUNT / "home"),
        "SOURCE_DATE_EPOCH": str(epoch),
        "PACKAGER": packager,
        "BUILDDIR": str(BUILD_MOUNT / "work"),
        "PKGDEST": str(BUILD_MOUNT / "pkgdest"),
        "LC_ALL": "C.UTF-8",
        "TZ": "UTC",
    }


_MAKEPKG = ["makepkg", "--config", str(BUILD_MOUNT / MAKEPKG_CONF)]


def _lay_out_build_tree(packages: list[Path]) -> Path:
    """out/build/arch: a copy of each package directory, makepkg.conf, owned by the build user."""
    build_root = out_dir() / "build" / "arch"
    if build_root.exists():
        shutil.rmtree(build_root)
    for src in packages:
        shutil.copytree(src, build_root / src.name)
    shutil.copyfile(rendering.TEMPLATES / "arch" / MAKEPKG_CONF, build_root / MAKEPKG_CONF)
    for sub in ("pkgdest", "home", "work", "bin"):
        (build_root / sub).mkdir()
    shutil.copy(rendering.TEMPLATES / "arch" / "arch-meson", build_root / "bin" / "arch-meson")
    run(["chown", "-R", f"{BUILD_USER}:", build_root], log=LOG)
    return build_root


def write_srcinfo(build_root: Path, package: str, env: dict[str, str]) -> Path:
    """``build_root/package/.SRCINFO``: what makepkg --printsrcinfo prints, as the build user."""
    to_file = ["sh", "-c", 'exec "$@" >.SRCINFO', "sh", *_MAKEPKG, "--printsrcinfo"]
    run(_in_build_tree(build_root, package, to_file, env), log=LOG)
    path = build_root / package / ".SRCINFO"
    # The AUR names a package's git repository after its pkgbase: the directory
    # published as out/arch/PACKAGE must build PACKAGE.
    first = path.read_text(encoding="utf-8").partition("\n")[0]
    if first != f"pkgbase = {package}":
        raise InfraError(
            f"{path} begins {first!r}, not 'pkgbase = {package}': "
            f"the PKGBUILD in {package}/ must have pkgname={package}"
        )
    return path


def makepkg(
    build_root: Path,
    package: str,
    env: dict[str, str],
    *,
    binds: dict[str, Path] | None = None,
    log: str = LOG,
    step: str | None = None,
    heartbeat: float | None = None,
    flags: tuple[str, ...] = ("--clean", "--cleanbuild", "--force"),
) -> None:
    """makepkg ``package`` in ``build_root`` as the build user (see :func:`_in_build_tree`).

    ``flags``: makepkg's, besides ``--nodeps --noconfirm`` (``--nobuild``: up to prepare()).
    """
    flags = ("--nodeps", "--noconfirm", *flags)
    run(
        _in_build_tree(build_root, package, [*_MAKEPKG, *flags], env, binds),
        log=log,
        step=step or f"makepkg {package}",
        heartbeat=heartbeat,
    )


def _publish(src: Path, srcinfo: Path, pkg_out: Path) -> None:
    """The AUR-ready directory: PKGBUILD, makepkg's .SRCINFO and the install script."""
    pkg_out.mkdir()
    for path in sorted(src.iterdir()):
        if path.name == "PKGBUILD" or path.suffix == ".install":
            shutil.copyfile(path, pkg_out / path.name)
    shutil.copyfile(srcinfo, pkg_out / ".SRCINFO")


def _collect(build_root: Path, dest: Path, expected: int) -> list[Path]:
    results = []
    for path in sorted((build_root / "pkgdest").glob(f"*{PKGEXT}")):
        shutil.copyfile(path, dest / path.name)  # a copy, so the caller owns it
        results.append(dest / path.name)
    if len(results) != expected:
        raise InfraError(f"makepkg made {len(results)} packages for {expected} PKGBUILDs")
    return results


def build(render_dir: Path) -> list[Path]:
    """Build every Arch package into out/arch/, check it with pacman; return the package files."""
    _check_host()
    cfg = load_config()
    packages = sorted(p for p in (render_dir / "arch").iterdir() if p.is_dir())
    build_root = _lay_out_build_tree(packages)
    env = makepkg_env(source_date_epoch(), cfg.maintainer)
    dest = out_dir() / "arch"
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir()
    for src in packages:
        srcinfo = write_srcinfo(build_root, src.name, env)
        makepkg(build_root, src.name, env)
        _publish(src, srcinfo, dest / src.name)
    results = _collect(build_root, dest, len(packages))
    say(f"built {', '.join(p.name for p in results)} in {dest}")
    verify_in_scratch_root(results, cfg)
    return results


# --- installing into a scratch root
#
# The real pacman installs the built packages into ROOT = SCRATCH/root, where
# SCRATCH is a temporary directory, and every path pacman uses points into
# SCRATCH: the configuration (templates/arch/pacman.conf, not /etc/pacman.conf),
# the database and the log file (which --root alone already moves into ROOT),
# and the package cache, the GnuPG directory and the hook directory (which
# --root alone leaves at the machine's /var/cache/pacman/pkg, /etc/pacman.d/gnupg
# and /etc/pacman.d/hooks).  Nothing outside SCRATCH and out/logs changes.

PACMAN_CONF = "pacman.conf"
PACMAN_LOG = "arch-pacman.log"


def _pacman(root: Path, *args: str | os.PathLike[str]) -> list[str]:
    """pacman on the scratch ``root``, with SCRATCH's configuration and empty hook directory."""
    scratch = root.parent
    return [
        "pacman",
        "--config", str(scratch / PACMAN_CONF),
        "--root", str(root),
        "--dbpath", str(root / "var/lib/pacman"),
        "--cachedir", str(root / "var/cache/pacman/pkg"),
        "--gpgdir", str(root / "etc/pacman.d/gnupg"),
        "--logfile", str(root / "var/log/pacman.log"),
        "--hookdir", str(scratch / "hooks"),
        *map(os.fspath, args),
    ]  # fmt: skip


def install_into_scratch_root(packages: list[Path], scratch: Path) -> Path:
    """Install ``packages`` with pacman into ``scratch/root``; return that root.

    ``scratch`` is an empty directory the caller owns and removes; nothing
    outside it changes.
    """
    root = scratch / "root"
    for sub in ("var/lib/pacman", "var/cache/pacman/pkg", "var/log"):
        (root / sub).mkdir(parents=True)
    (scratch / "hooks").mkdir()
    shutil.copyfile(rendering.TEMPLATES / "arch" / PACMAN_CONF, scratch / PACMAN_CONF)
    # -dd: the packages depend on dkms, python and systemd, Arch packages that
    # cannot be installed on this Debian machine; skip every dependency check.
    # --noscriptlet: pacman would run memlog-tools' post_install chrooted into
    # ROOT, which has no /bin/sh (it fails with "call to execv failed").
    # --hookdir (an empty directory) keeps the machine's /etc/pacman.d/hooks
    # out; ROOT/usr/share/libalpm/hooks, which pacman always reads, is empty.
    # Not exercised therefore: the install script, and what the hooks of the
    # systemd and dkms packages do on a real Arch system (create the group from
    # sysusers.d, reload udev, apply sysctl.d, build the module with DKMS).
    run(
        _pacman(root, "-U", "--noconfirm", "-dd", "--noscriptlet", *packages),
        log=PACMAN_LOG,
        step="pacman -U into a scratch root",
    )
    return root


def query(root: Path, *args: str) -> str:
    """A read-only pacman query on ``root``: its stdout; the command and output are logged."""
    cmd = _pacman(root, *args)
    with (log_dir() / PACMAN_LOG).open("a", encoding="utf-8") as log:
        log.write(f"$ {shlex.join(cmd)}\n")
        log.flush()
        try:
            out = capture(cmd)
        except InfraError as exc:
            log.write(f"# {exc}\n")
            raise
        log.write(out)
    return out


_QKK_WARNING = re.compile(r"warning: (.+\(.+\))$", re.MULTILINE)


def check_installed_files(root: Path, names: list[str]) -> str:
    """pacman -Qkk: each file of ``names`` has its mtree's type, mode, owner, size, mtime, sums.

    Returns pacman's summary ("NAME: N total files, 0 altered files" each); an
    altered file fails the command, and the error lists pacman's reasons.
    """
    try:
        return query(root, "-Qkk", *names)
    except InfraError as exc:
        reasons = _QKK_WARNING.findall(str(exc))
        if not reasons:
            raise
        raise InfraError(
            f"pacman -Qkk: installed files differ from their package: {'; '.join(reasons)}; "
            f"see {log_dir() / PACMAN_LOG}"
        ) from exc


_OWNED = re.compile(r"(?P<path>.+?)/? is owned by (?P<package>\S+) \S+")


def owners(root: Path, paths: list[str]) -> dict[str, str]:
    """pacman -Qo: ``paths`` (absolute, as seen inside ``root``) -> the package owning each.

    A path missing from ``root`` is left out; pacman fails on one that is there
    but owned by no package.
    """
    present = [path for path in paths if (root / path.lstrip("/")).exists()]
    if not present:
        return {}
    out = query(root, "-Qo", *(f"{root}{path}" for path in present))
    found = {}
    for line in out.splitlines():
        if match := _OWNED.fullmatch(line):
            found[match["path"].removeprefix(str(root))] = match["package"]
    return found


def expected_owners(cfg: Config) -> dict[str, str]:
    """What the packages must install -> the package that owns it."""
    tools = cfg.packages.tools
    return {
        "/usr/bin/memlog": tools,
        f"/usr/lib/{tools}/memlog/__init__.py": tools,
        f"/usr/lib/{tools}/memlog/cli.py": tools,
        **dict.fromkeys(INSTALLED_PATHS.values(), tools),
        "/usr/share/man/man1/memlog.1.gz": tools,  # makepkg's zipman compresses it
        f"/usr/src/memlog-{cfg.memlog.version}/dkms.conf": cfg.packages.dkms,
        "/usr/lib/libmemlog.so.0": LIBRARY,
        "/usr/lib/libmemlog.so": LIBRARY,
        "/usr/lib/pkgconfig/memlog.pc": LIBRARY,
        "/usr/include/memlog/memlog.h": LIBRARY,
        "/usr/include/memlog/uapi/linux/memlog.h": LIBRARY,
        "/usr/share/man/man3/memlog_open.3.gz": LIBRARY,
        f"/usr/share/doc/{LIBRARY}/examples/memlog-c-tail.c": LIBRARY,
    }


def check_owners(root: Path, expected: dict[str, str]) -> None:
    """Each path in ``expected`` is in ``root``, owned by the package it names."""
    found = owners(root, list(expected))
    wrong = [
        f"{path} is owned by {found[path]}, not {package}"
        if path in found
        else f"{path} is missing (expected from {package})"
        for path, package in expected.items()
        if found.get(path) != package
    ]
    if wrong:
        raise InfraError(
            f"after pacman -U into a scratch root: {'; '.join(wrong)}; see {log_dir() / PACMAN_LOG}"
        )


def verify_in_scratch_root(packages: list[Path], cfg: Config) -> None:
    """Install ``packages`` into a scratch root in a temporary directory; check them there."""
    with tempfile.TemporaryDirectory(prefix="wintermute-arch-root-") as tmp:
        root = install_into_scratch_root(packages, Path(tmp))
        check_installed_files(root, [cfg.packages.dkms, cfg.packages.tools, LIBRARY])
        check_owners(root, expected_owners(cfg))
    say(
        "pacman installed them into a scratch root: -Qkk finds no altered file, "
        "-Qo names the expected owner of each path"
    )
