"""Render ``templates/`` with the values of ``kernel.yaml``.

Templates are grouped by target (``system``, ``dkms``, ``debian``, ``arch``);
a file ending in ``.j2`` is rendered (the suffix dropped), any other file is
copied as it is, and the executable bit is kept.  Rendering is strict: an
undefined value is an error, not an empty string.

:func:`render` writes the whole result into ``out/render`` (never into the
source tree) atomically, and leaves it untouched when nothing changed.
"""

from __future__ import annotations

import filecmp
import shutil
import stat
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jinja2

from wintermute.config import Config
from wintermute.config import load as load_config
from wintermute.kernel_release import releases_from as dkms_releases_from
from wintermute.packaging.reproducible import source_date_epoch
from wintermute.paths import REPO, out_dir
from wintermute.run import say

TEMPLATES = REPO / "templates"

Renderer = Callable[[jinja2.Environment, dict[str, Any], Path], None]


def environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
    )


def context(cfg: Config) -> dict[str, Any]:
    """Everything a template may use: kernel.yaml's values plus a few derived names."""
    data = cfg.as_dict()
    m = cfg.memlog
    data["module_name"] = "memlog"
    data["full_version"] = f"{m.version}-{m.release}"
    data["dkms_src_dir"] = f"/usr/src/memlog-{m.version}"
    data["min_kernel_regex"] = dkms_releases_from(m.min_kernel)
    epoch = source_date_epoch()
    data["source_date_epoch"] = epoch
    data["copyright_year"] = time.gmtime(epoch).tm_year
    data["maintainer_name"] = cfg.maintainer.split("<")[0].strip()
    return data


def render_group(env: jinja2.Environment, ctx: dict[str, Any], group: str, dest: Path) -> None:
    """Render every file of ``templates/<group>`` into ``dest``, keeping relative paths."""
    src_root = TEMPLATES / group
    for src in sorted(p for p in src_root.rglob("*") if p.is_file()):
        rel = src.relative_to(src_root)
        target = dest / (rel.with_suffix("") if rel.suffix == ".j2" else rel)
        target.parent.mkdir(parents=True, exist_ok=True)
        if src.suffix == ".j2":
            template = env.get_template(f"{group}/{rel.as_posix()}")
            target.write_text(template.render(ctx), encoding="utf-8")
        else:
            shutil.copyfile(src, target)
        mode = 0o755 if src.stat().st_mode & stat.S_IXUSR else 0o644
        target.chmod(mode)


def _renderers() -> list[tuple[str, Renderer]]:
    from wintermute.packaging import targets

    return targets.RENDERERS


def render_into(dest: Path, cfg: Config | None = None) -> None:
    """Render every target into the empty directory ``dest``."""
    cfg = cfg or load_config()
    env = environment()
    ctx = context(cfg)
    for name, renderer in _renderers():
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
