"""Debian: one source package ``memlog`` with two binary packages, built with dpkg-buildpackage.

``render`` lays out a complete source tree under ``out/render/debian/``:
``debian/`` from ``templates/debian``, ``dkms/`` (the DKMS tree) and ``root/``
(memlog-tools' files at their installed paths).  ``build`` makes the
reproducible ``.orig.tar.xz``, runs ``dpkg-buildpackage`` and ``lintian``, and
puts the results in ``out/debian/``.
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
from wintermute.packaging.reproducible import rfc2822, source_date_epoch
from wintermute.paths import out_dir
from wintermute.run import run, say

LAUNCHER = """#!/usr/bin/python3
import sys

from memlog.cli import main

sys.exit(main())
"""


def source_dir_name(ctx: dict[str, Any]) -> str:
    return f"memlog-{ctx['memlog']['version']}"


def render(env: jinja2.Environment, ctx: dict[str, Any], dest: Path) -> None:
    ctx = {**ctx, "changelog_date": rfc2822(ctx["source_date_epoch"])}
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
    userspace.copy_library(root / "usr" / "lib" / "python3" / "dist-packages" / "memlog")
    launcher = root / "usr" / "bin" / "memlog"
    launcher.parent.mkdir(parents=True, exist_ok=True)
    launcher.write_text(LAUNCHER)
    launcher.chmod(0o755)
    with tempfile.TemporaryDirectory() as tmp:
        userspace.install_system_files(env, ctx, root, Path(tmp))
    userspace.install_man_page(env, ctx, root)


def _orig_tarball(build: Path, tree: Path, epoch: int) -> Path:
    """The upstream tarball: the tree without debian/, byte-for-byte reproducible."""
    version = tree.name.removeprefix("memlog-")
    tarball = build / f"memlog_{version}.orig.tar.xz"
    run(
        [
            "tar", "--sort=name", f"--mtime=@{epoch}", "--owner=0", "--group=0",
            "--numeric-owner", "--exclude=./debian", "--exclude=debian",
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
    epoch = source_date_epoch()
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
        ["lintian", "--fail-on", "error", "--display-info", "--no-tag-display-limit", changes[0]],
        log="lintian.log",
        step="lintian (errors fail the build)",
    )
    say(f"built {', '.join(p.name for p in results if p.suffix == '.deb')} in {dest}")
    return results
