"""Arch Linux: PKGBUILDs for memlog-dkms and memlog-tools, built with the real makepkg.

``render`` writes one directory per package under ``out/render/arch/``: the
PKGBUILD (from ``templates/arch/<package>/PKGBUILD.j2``, with the sources'
sha256sums) and its local source files.  ``build`` runs ``makepkg`` as an
unprivileged user (makepkg refuses root), writes ``.SRCINFO`` beside each
PKGBUILD, and puts the ``.pkg.tar.zst`` files in ``out/arch/``.  ``--nodeps``:
the packages' dependencies are Arch packages, absent on the build machine.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2

from wintermute.errors import InfraError
from wintermute.packaging import render as rendering
from wintermute.packaging import userspace
from wintermute.packaging.dkms import render as render_dkms
from wintermute.packaging.reproducible import source_date_epoch
from wintermute.packaging.system_files import INSTALLED_PATHS
from wintermute.paths import out_dir
from wintermute.run import capture, run, say

BUILD_USER = "wintermute-build"
PKGEXT = ".pkg.tar.zst"


@dataclass(frozen=True)
class Source:
    name: str  # file name in the PKGBUILD's directory
    path: str  # where package() installs it
    mode: str
    sha256: str


def _add(srcdir: Path, src: Path, name: str, path: str, mode: str = "644") -> Source:
    target = srcdir / name
    if target.exists():
        raise InfraError(f"two Arch sources are both named {name}")
    shutil.copyfile(src, target)
    target.chmod(0o755 if mode == "755" else 0o644)
    return Source(name, path, mode, hashlib.sha256(target.read_bytes()).hexdigest())


def _write_pkgbuild(env: jinja2.Environment, ctx: dict[str, Any], package: str, dest: Path,
                    files: list[Source]) -> None:  # fmt: skip
    template = env.get_template(f"arch/{package}/PKGBUILD.j2")
    (dest / "PKGBUILD").write_text(template.render({**ctx, "files": files}))


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
    launcher = tmp / "memlog"
    launcher.write_text(env.get_template("arch/memlog-tools/memlog.j2").render(ctx))
    files.append(_add(dest, launcher, "memlog", "/usr/bin/memlog", "755"))
    system = tmp / "system"
    rendering.render_group(env, ctx, "system", system)
    for file_name, installed in INSTALLED_PATHS.items():
        files.append(_add(dest, system / file_name, file_name, installed))
    rendering.render_group(env, ctx, "doc", tmp / "doc")
    files.append(_add(dest, tmp / "doc" / "memlog.1", "memlog.1", "/usr/share/man/man1/memlog.1"))
    licence = rendering.TEMPLATES / "arch" / "memlog-tools" / "LICENSE-MIT"
    files.append(_add(dest, licence, "LICENSE-MIT", f"/usr/share/licenses/{name}/LICENSE-MIT"))
    _write_pkgbuild(env, ctx, "memlog-tools", dest, files)


def render(env: jinja2.Environment, ctx: dict[str, Any], dest: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        for package, renderer in ((ctx["packages"]["dkms"], _render_dkms),
                                  (ctx["packages"]["tools"], _render_tools)):  # fmt: skip
            pkg_dir = dest / package
            pkg_dir.mkdir(parents=True)
            work = Path(tmp) / package
            work.mkdir()
            renderer(env, ctx, pkg_dir, work)


def ensure_build_user() -> str:
    """The unprivileged user makepkg runs as (it refuses root)."""
    if subprocess.run(["id", BUILD_USER], capture_output=True, check=False).returncode:
        run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", BUILD_USER],
            log="arch-build.log",
        )
    return BUILD_USER


def _as_build_user(cmd: list[str], env: dict[str, str]) -> list[str]:
    assignments = [f"{k}={v}" for k, v in sorted(env.items())]
    return ["runuser", "-u", BUILD_USER, "--", "env", *assignments, *cmd]


def config_maintainer() -> str:
    from wintermute.config import load

    return load().maintainer


def build(render_dir: Path | None = None) -> list[Path]:
    """Build every Arch package into out/arch/; return the package files."""
    render_dir = render_dir or rendering.render()
    ensure_build_user()
    build_root = out_dir() / "build" / "arch"
    if build_root.exists():
        shutil.rmtree(build_root)
    pkgdest = build_root / "pkgdest"
    pkgdest.mkdir(parents=True)
    dest = out_dir() / "arch"
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir()
    env = {
        "SOURCE_DATE_EPOCH": str(source_date_epoch()),
        "PKGDEST": str(pkgdest),
        "PKGEXT": PKGEXT,
        "BUILDDIR": str(build_root / "work"),
        "PACKAGER": config_maintainer(),
        "LC_ALL": "C.UTF-8",
        "TZ": "UTC",
        "HOME": str(build_root),
    }
    packages = sorted(p for p in (render_dir / "arch").iterdir() if p.is_dir())
    for src in packages:
        work = build_root / src.name
        shutil.copytree(src, work)
    run(["chown", "-R", f"{BUILD_USER}:", build_root], log="arch-build.log")
    for src in packages:
        work = build_root / src.name
        srcinfo = capture(_as_build_user(["makepkg", "--printsrcinfo"], env), cwd=work)
        run(
            _as_build_user(["makepkg", "--nodeps", "--clean", "--cleanbuild", "--force"], env),
            cwd=work,
            log="arch-build.log",
            step=f"makepkg {src.name}",
        )
        pkg_out = dest / src.name
        pkg_out.mkdir()
        shutil.copyfile(work / "PKGBUILD", pkg_out / "PKGBUILD")
        (pkg_out / ".SRCINFO").write_text(srcinfo)
    results = []
    for path in sorted(pkgdest.glob(f"*{PKGEXT}")):
        results.append(Path(shutil.move(path, dest / path.name)))
    if len(results) != len(packages):
        raise InfraError(f"makepkg made {len(results)} packages for {len(packages)} PKGBUILDs")
    say(f"built {', '.join(p.name for p in results)} in {dest}")
    return results
