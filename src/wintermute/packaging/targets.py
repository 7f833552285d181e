"""Every rendering target, in order, and rendering them all into ``out/render``.

:func:`render` writes the whole result into ``out/render`` (never into the
source tree) atomically, and leaves it untouched when nothing changed.  This
sits above the formats it lists (:mod:`.arch`, :mod:`.debian`, :mod:`.dkms`,
:mod:`.system_files`), which never import it.
"""

from __future__ import annotations

import filecmp
import shutil
import tempfile
from pathlib import Path

from wintermute.config import Config
from wintermute.config import load as load_config
from wintermute.packaging import arch, debian, dkms, system_files
from wintermute.packaging.render import Renderer, context, environment
from wintermute.paths import out_dir
from wintermute.run import say

RENDERERS: list[tuple[str, Renderer]] = [
    ("system", system_files.render),
    ("dkms", dkms.render),
    ("debian", debian.render),
    ("arch", arch.render),
]


def render_into(dest: Path, cfg: Config | None = None) -> None:
    """Render every target into the empty directory ``dest``."""
    cfg = cfg or load_config()
    env = environment()
    ctx = context(cfg)
    for name, renderer in RENDERERS:
        renderer(env, ctx, dest / name)


def _same_tree(a: Path, b: Path) -> bool:
    cmp = filecmp.dircmp(a, b)
    if cmp.left_only or cmp.right_only or cmp.funny_files:
        return False
    _, mismatch, errors = filecmp.cmpfiles(a, b, cmp.common_files, shallow=False)
    if mismatch or errors:
        return False
    for name in cmp.common_files:
        if (a / name).stat().st_mode != (b / name).stat().st_mode:
            return False
    return all(_same_tree(a / d, b / d) for d in cmp.common_dirs)


def render(dest: Path | None = None, cfg: Config | None = None) -> Path:
    """Render into ``dest`` (default ``out/render``); unchanged inputs change nothing.

    The configuration is validated first, so a bad kernel.yaml leaves no
    output behind; the new tree replaces the old one only when it differs.
    """
    cfg = cfg or load_config()
    dest = dest or out_dir() / "render"
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".render.", dir=dest.parent))
    try:
        render_into(tmp, cfg)
        if dest.exists() and _same_tree(tmp, dest):
            say(f"rendered templates unchanged in {dest}")
            return dest
        old = dest.with_name(dest.name + ".old")
        if old.exists():
            shutil.rmtree(old)
        if dest.exists():
            dest.rename(old)
        tmp.rename(dest)
        shutil.rmtree(old, ignore_errors=True)
        say(f"rendered templates into {dest}")
        return dest
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
