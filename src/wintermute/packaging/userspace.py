"""The userspace files every package ships, laid out under a root directory."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import jinja2

from wintermute.packaging.render import render_group
from wintermute.packaging.system_files import INSTALLED_PATHS
from wintermute.paths import REPO

LIBRARY = REPO / "src" / "memlog"


def copy_library(dest: Path) -> None:
    """The memlog Python package's modules (no caches)."""
    dest.mkdir(parents=True, exist_ok=True)
    for src in sorted(LIBRARY.glob("*.py")):
        shutil.copyfile(src, dest / src.name)
        (dest / src.name).chmod(0o644)


def install_system_files(
    env: jinja2.Environment, ctx: dict[str, Any], root: Path, tmp: Path
) -> None:
    """Render the system files and put each at its installed path under ``root``."""
    render_group(env, ctx, "system", tmp)
    for name, installed in INSTALLED_PATHS.items():
        target = root / installed.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(tmp / name, target)
        target.chmod(0o644)


def install_man_page(env: jinja2.Environment, ctx: dict[str, Any], root: Path) -> None:
    render_group(env, ctx, "doc", root / "usr" / "share" / "man" / "man1")
