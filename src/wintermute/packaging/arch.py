"""Arch Linux: PKGBUILDs for memlog-dkms and memlog-tools, built with the real makepkg.

``render`` writes one directory per package under ``out/render/arch/``: the
PKGBUILD (from ``templates/arch/<package>/PKGBUILD.j2``, with the sources'
sha256sums), its local source files and its ``.SRCINFO``.

``build`` runs ``makepkg`` as an unprivileged user (makepkg refuses root),
checks that makepkg's own ``--printsrcinfo`` matches the rendered
``.SRCINFO``, and puts the ``.pkg.tar.zst`` files in ``out/arch/``.
``--nodeps``: the packages' dependencies (dkms, python, systemd) are Arch
packages, absent on the Debian build machine; nothing is compiled, so nothing
from them is needed to build.

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
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2

from wintermute.errors import InfraError, UserError
from wintermute.packaging import render as rendering
from wintermute.packaging import userspace
from wintermute.packaging.dkms import render as render_dkms
from wintermute.packaging.reproducible import source_date_epoch
from wintermute.packaging.system_files import INSTALLED_PATHS
from wintermute.paths import out_dir
from wintermute.run import capture, run, say

BUILD_USER = "wintermute-build"
PKGEXT = ".pkg.tar.zst"
MAKEPKG_CONF = "makepkg.conf"
# Where makepkg sees out/build/arch (see the module docstring).
BUILD_MOUNT = Path("/run/wintermute-arch-build")
TOOLS = ("makepkg", "fakeroot", "bsdtar", "zstd", "unshare", "runuser", "shellcheck")
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
    for src in sorted(lib.iterdir()):
        files.append(_add(dest, src, src.name, f"/usr/lib/{name}/memlog/{src.name}"))
    launcher = _render_file(env, ctx, "memlog-tools/memlog.j2", tmp / "memlog")
    files.append(_add(dest, launcher, "memlog", "/usr/bin/memlog", "755"))
    system = tmp / "system"
    rendering.render_group(env, ctx, "system", system)
    for file_name, installed in INSTALLED_PATHS.items():
        files.append(_add(dest, system / file_name, file_name, installed))
    rendering.render_group(env, ctx, "doc", tmp / "doc")
    files.append(_add(dest, tmp / "doc" / "memlog.1", "memlog.1", "/usr/share/man/man1/memlog.1"))
    mit = _render_file(env, ctx, "memlog-tools/LICENSE-MIT.j2", tmp / "LICENSE-MIT")
    apache = rendering.TEMPLATES / "arch" / "memlog-tools" / "LICENSE-Apache-2.0"
    for licence in (mit, apache):
        files.append(
            _add(dest, licence, licence.name, f"/usr/share/licenses/{name}/{licence.name}")
        )
    # the install script is no source (no checksum): makepkg takes it from beside the PKGBUILD
    _render_file(env, ctx, "memlog-tools/memlog-tools.install.j2", dest / f"{name}.install")
    _write_pkgbuild(env, ctx, "memlog-tools", dest, files)


# --- .SRCINFO, as makepkg --printsrcinfo writes it (libmakepkg/srcinfo.sh) for a
# single-package, arch=('any') PKGBUILD; build() checks the two agree.

_SRCINFO_SCALARS = ("pkgdesc", "pkgver", "pkgrel", "epoch", "url", "install", "changelog")
_SRCINFO_ARRAYS = (
    "arch", "groups", "license", "checkdepends", "makedepends", "depends", "optdepends",
    "provides", "conflicts", "replaces", "noextract", "options", "backup", "source",
    "validpgpkeys", "cksums", "md5sums", "sha1sums", "sha224sums", "sha256sums",
    "sha384sums", "sha512sums", "b2sums",
)  # fmt: skip
_WHITESPACE = re.compile(r"[ \t\n\r\f\v]+")  # srcinfo.sh squeezes [[:space:]] runs
# Source the PKGBUILD in a clean bash and print NAME, COUNT, VALUES... NUL-separated.
_DUMP = r"""
source ./PKGBUILD || exit 1
for name in "$@"; do
	declare -p "$name" >/dev/null 2>&1 || continue
	declare -n ref="$name"
	printf '%s\0%s\0' "$name" "${#ref[@]}"
	if (( ${#ref[@]} )); then printf '%s\0' "${ref[@]}"; fi
	unset -n ref
done
"""


def pkgbuild_values(pkg_dir: Path) -> dict[str, list[str]]:
    """The PKGBUILD's variables, read by sourcing it with bash (as makepkg does)."""
    names = ("pkgname", "pkgbase", *_SRCINFO_SCALARS, *_SRCINFO_ARRAYS)
    out = subprocess.run(
        ["bash", "--noprofile", "--norc", "-c", _DUMP, "bash", *names],
        cwd=pkg_dir, capture_output=True, check=False, env={"PATH": "/usr/bin:/bin", "LC_ALL": "C"},
    )  # fmt: skip
    if out.returncode:
        raise InfraError(
            f"bash cannot source {pkg_dir / 'PKGBUILD'}: {out.stderr.decode().strip()}"
        )
    fields = out.stdout.decode().split("\0")
    values: dict[str, list[str]] = {}
    i = 0
    while i + 1 < len(fields):
        name, count = fields[i], int(fields[i + 1])
        values[name] = fields[i + 2 : i + 2 + count]
        i += 2 + count
    return values


def srcinfo(pkg_dir: Path) -> str:
    """The ``.SRCINFO`` of the PKGBUILD in ``pkg_dir``, byte for byte as makepkg prints it."""
    values = pkgbuild_values(pkg_dir)
    [pkgname] = values["pkgname"]
    if values.get("arch") != ["any"]:
        raise InfraError(f"{pkg_dir.name}: only arch=('any') PKGBUILDs are supported here")
    lines = [f"pkgbase = {values.get('pkgbase', [pkgname])[0]}"]
    for name in (*_SRCINFO_SCALARS, *_SRCINFO_ARRAYS):
        for value in values.get(name, []):
            lines.append(f"\t{name} = {_WHITESPACE.sub(' ', value).strip(' ')}")
    lines += ["", f"pkgname = {pkgname}"]
    return "\n".join(lines) + "\n"


def render(env: jinja2.Environment, ctx: dict[str, Any], dest: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        for package, renderer in ((ctx["packages"]["dkms"], _render_dkms),
                                  (ctx["packages"]["tools"], _render_tools)):  # fmt: skip
            pkg_dir = dest / package
            pkg_dir.mkdir(parents=True)
            work = Path(tmp) / package
            work.mkdir()
            renderer(env, ctx, pkg_dir, work)
            (pkg_dir / ".SRCINFO").write_text(srcinfo(pkg_dir), encoding="utf-8")


# --- building


def ensure_build_user() -> str:
    """The unprivileged system user makepkg runs as (it refuses root); created if missing."""
    if subprocess.run(["id", BUILD_USER], capture_output=True, check=False).returncode:
        run(
            ["useradd", "--system", "--no-create-home", "--home-dir", "/nonexistent",
             "--shell", "/usr/sbin/nologin", BUILD_USER],
            log=LOG,
        )  # fmt: skip
    return BUILD_USER


def _check_host() -> None:
    if os.geteuid() != 0:
        raise UserError(
            "building the Arch packages needs root: it creates the build user and runs makepkg "
            "as that user in a private mount namespace; run it as root (sudo)"
        )
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        raise UserError(f"missing {', '.join(missing)}; run scripts/setup-host first")


def _in_build_tree(
    build_root: Path, workdir: str, cmd: list[str], env: dict[str, str]
) -> list[str]:
    """``cmd`` as the build user, with a cleared environment, in ``BUILD_MOUNT/workdir``.

    A private mount namespace shows ``build_root`` at ``BUILD_MOUNT`` to this one
    command; the build user needs no access to the path of ``out/``.
    """
    script = 'mount --bind -- "$1" "$2" && cd -- "$2/$3" && umask 022 && shift 3 && exec "$@"'
    assignments = [f"{k}={v}" for k, v in sorted(env.items())]
    return [
        "unshare", "--mount", "--propagation", "private", "--",
        "sh", "-c", script, "sh", str(build_root), str(BUILD_MOUNT), workdir,
        "runuser", "-u", BUILD_USER, "--", "env", "-i", *assignments, *cmd,
    ]  # fmt: skip


def makepkg_env(epoch: int, packager: str) -> dict[str, str]:
    """makepkg's whole environment: every path under BUILD_MOUNT, nothing from the caller."""
    return {
        "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "HOME": str(BUILD_MOUNT / "home"),
        "SOURCE_DATE_EPOCH": str(epoch),
        "PACKAGER": packager,
        "BUILDDIR": str(BUILD_MOUNT / "work"),
        "PKGDEST": str(BUILD_MOUNT / "pkgdest"),
        "LC_ALL": "C.UTF-8",
        "TZ": "UTC",
    }


_MAKEPKG = ["makepkg", "--config", str(BUILD_MOUNT / MAKEPKG_CONF)]


def makepkg_printsrcinfo(build_root: Path, package: str, env: dict[str, str]) -> str:
    """makepkg's own .SRCINFO for ``build_root/package`` (a tree :func:`build` laid out)."""
    return capture(_in_build_tree(build_root, package, [*_MAKEPKG, "--printsrcinfo"], env))


def _config_maintainer() -> str:
    from wintermute.config import load

    return load().maintainer


def build(render_dir: Path | None = None) -> list[Path]:
    """Build every Arch package into out/arch/; return the package files."""
    _check_host()
    render_dir = render_dir or rendering.render()
    arch_dir = render_dir / "arch"
    ensure_build_user()
    BUILD_MOUNT.mkdir(mode=0o755, exist_ok=True)
    build_root = out_dir() / "build" / "arch"
    if build_root.exists():
        shutil.rmtree(build_root)
    packages = sorted(p for p in arch_dir.iterdir() if p.is_dir())
    for src in packages:
        shutil.copytree(src, build_root / src.name)
    shutil.copyfile(rendering.TEMPLATES / "arch" / MAKEPKG_CONF, build_root / MAKEPKG_CONF)
    for sub in ("pkgdest", "home", "work"):
        (build_root / sub).mkdir()
    run(["chown", "-R", f"{BUILD_USER}:", build_root], log=LOG)
    env = makepkg_env(source_date_epoch(), _config_maintainer())
    dest = out_dir() / "arch"
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir()
    for src in packages:
        printed = makepkg_printsrcinfo(build_root, src.name, env)
        if printed != (src / ".SRCINFO").read_text(encoding="utf-8"):
            raise InfraError(
                f"the rendered {src / '.SRCINFO'} differs from makepkg --printsrcinfo:\n{printed}"
            )
        run(
            _in_build_tree(
                build_root, src.name,
                [*_MAKEPKG, "--nodeps", "--clean", "--cleanbuild", "--force", "--noconfirm"],
                env,
            ),
            log=LOG,
            step=f"makepkg {src.name}",
        )  # fmt: skip
        # the AUR-ready directory: PKGBUILD, .SRCINFO and the install script
        pkg_out = dest / src.name
        pkg_out.mkdir()
        for path in sorted(src.iterdir()):
            if path.name in ("PKGBUILD", ".SRCINFO") or path.suffix == ".install":
                shutil.copyfile(path, pkg_out / path.name)
    results = []
    for path in sorted((build_root / "pkgdest").glob(f"*{PKGEXT}")):
        shutil.copyfile(path, dest / path.name)  # a copy, so the caller owns it
        results.append(dest / path.name)
    if len(results) != len(packages):
        raise InfraError(f"makepkg made {len(results)} packages for {len(packages)} PKGBUILDs")
    say(f"built {', '.join(p.name for p in results)} in {dest}")
    return results
