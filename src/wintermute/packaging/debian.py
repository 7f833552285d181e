"""Debian: one source package ``memlog`` with two binary packages, built with dpkg-buildpackage.

``render`` lays out a complete source tree under ``out/render/debian/memlog-VERSION/``:
``debian/`` from ``templates/debian``, ``dkms/`` (the DKMS tree: staged driver
source and rendered dkms.conf) and ``root/`` (memlog-tools' files at their
installed paths).  ``build`` makes the reproducible ``.orig.tar.xz`` (source
format ``3.0 (quilt)``: the version has a Debian revision), runs
``dpkg-buildpackage``, puts the results in ``out/debian/`` and runs ``lintian``
on the ``.changes`` (log: ``out/logs/lintian.log``; an error fails the build).

Choices, for whoever maintains this next:

* The changelog's date is :func:`reproducible.source_date_epoch`: the commit
  time of the last commit touching the package inputs (or the environment's
  ``SOURCE_DATE_EPOCH``).  dpkg derives ``SOURCE_DATE_EPOCH`` from that date,
  so two builds of the same commit give byte-identical ``.deb`` files.
* The four system files go where :data:`system_files.INSTALLED_PATHS` says
  (systemd's ``/usr/lib`` vendor directories, as in the Arch packages), by
  ``memlog-tools.install``.  dh_installudev is not used: under compat 13 it
  installs into ``/lib/udev/rules.d`` and names the file after the package;
  nor dh_installsysusers: compat 13 does not run it, and its snippet fails
  where systemd-sysusers is missing (postinst falls back to addgroup).
* The library is byte-compiled in postinst and its ``__pycache__`` removed
  in prerm, as dh_python3 would; dh-python is not a build dependency.
* Purge leaves the group (Debian never deletes system groups); README.Debian
  says so.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

import jinja2

from wintermute.errors import InfraError
from wintermute.packaging import render as rendering
from wintermute.packaging import userspace
from wintermute.packaging.dkms import render as render_dkms
from wintermute.packaging.reproducible import rfc2822
from wintermute.packaging.system_files import INSTALLED_PATHS
from wintermute.paths import out_dir
from wintermute.run import capture, run, say

PYTHON_LIBRARY_DIR = "/usr/lib/python3/dist-packages/memlog"
LAUNCHER = """#!/usr/bin/python3
import sys

from memlog.cli import main

sys.exit(main())
"""


def source_dir_name(ctx: dict[str, Any]) -> str:
    return f"memlog-{ctx['memlog']['version']}"


def render(env: jinja2.Environment, ctx: dict[str, Any], dest: Path) -> None:
    ctx = {
        **ctx,
        "changelog_date": rfc2822(ctx["source_date_epoch"]),
        "installed_paths": INSTALLED_PATHS,
        "sysusers_name": Path(INSTALLED_PATHS["sysusers.conf"]).name,
        "python_library_dir": PYTHON_LIBRARY_DIR,
    }
    tree = dest / source_dir_name(ctx)
    rendering.render_group(env, ctx, "debian", tree)
    # per-package debhelper files are named after the packages kernel.yaml names
    names = {"memlog-tools": ctx["packages"]["tools"], "memlog-dkms": ctx["packages"]["dkms"]}
    for path in sorted((tree / "debian").glob("memlog-*.*")):
        package, _, rest = path.name.partition(".")
        if names.get(package, package) != package:
            path.rename(path.with_name(f"{names[package]}.{rest}"))
    render_dkms(env, ctx, tree / "dkms")
    root = tree / "root"
    userspace.copy_library(root / PYTHON_LIBRARY_DIR.lstrip("/"))
    launcher = root / "usr" / "bin" / "memlog"
    launcher.parent.mkdir(parents=True, exist_ok=True)
    launcher.write_text(LAUNCHER)
    launcher.chmod(0o755)
    with tempfile.TemporaryDirectory() as tmp:
        userspace.install_system_files(env, ctx, root, Path(tmp))
    userspace.install_man_page(env, ctx, root)


def _normalise_modes(tree: Path) -> None:
    """Directories 0755, files 0644 or 0755: the umask of whoever rendered does not leak."""
    for path in [tree, *tree.rglob("*")]:
        if path.is_symlink():
            continue
        if path.is_dir() or path.stat().st_mode & 0o100:
            path.chmod(0o755)
        else:
            path.chmod(0o644)


def _orig_tarball(build: Path, tree: Path, epoch: int) -> Path:
    """The upstream tarball: the tree without debian/, byte-for-byte reproducible."""
    version = tree.name.removeprefix("memlog-")
    tarball = build / f"memlog_{version}.orig.tar.xz"
    run(
        [
            "tar", "--sort=name", f"--mtime=@{epoch}", "--owner=0", "--group=0",
            "--numeric-owner", "--mode=u+rw,go=rX", "--exclude=./debian", "--exclude=debian",
            "-C", build, "-cJf", tarball, tree.name,
        ],
        log="debian-build.log",
        env={"XZ_OPT": "-6 -T1"},
    )  # fmt: skip
    return tarball


def build(render_dir: Path | None = None) -> list[Path]:
    """Build the source and binary packages into out/debian/; lintian must find no error."""
    render_dir = render_dir or rendering.render()
    src_tree = next((render_dir / "debian").iterdir())
    build_dir = out_dir() / "build" / "debian"
    if build_dir.exists():
        shutil.rmtree(build_dir)
    build_dir.mkdir(parents=True)
    tree = build_dir / src_tree.name
    shutil.copytree(src_tree, tree, symlinks=True)
    _normalise_modes(tree)
    # The changelog's date, as dpkg derives it: one timestamp for the tarball
    # and the packages, whichever rendering render_dir holds.
    epoch = int(capture(["dpkg-parsechangelog", "-S", "Timestamp"], cwd=tree).strip())
    _orig_tarball(build_dir, tree, epoch)
    run(
        ["dpkg-buildpackage", "-us", "-uc", "--no-check-builddeps"],
        cwd=tree,
        log="debian-build.log",
        env={"SOURCE_DATE_EPOCH": str(epoch), "LC_ALL": "C.UTF-8", "TZ": "UTC"},
        step="building the Debian packages with dpkg-buildpackage",
    )
    dest = out_dir() / "debian"
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir()
    results = []
    for path in sorted(build_dir.iterdir()):
        if path.is_file():
            results.append(Path(shutil.move(path, dest / path.name)))
    changes = [p for p in results if p.suffix == ".changes"]
    if len(changes) != 1:
        raise InfraError(f"dpkg-buildpackage made {len(changes)} .changes files; see the build log")
    run(
        [
            "lintian", "--fail-on", "error", "--display-info", "--show-overrides",
            "--tag-display-limit", "0", changes[0],
        ],
        log="lintian.log",
        step="lintian (errors fail the build)",
    )  # fmt: skip
    say(f"built {', '.join(p.name for p in results if p.suffix == '.deb')} in {dest}")
    return results
