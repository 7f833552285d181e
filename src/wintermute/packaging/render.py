"""Render ``templates/`` with the values of ``kernel.yaml``.

Templates are grouped by target (``system``, ``dkms``, ``debian``, ``arch``);
a file ending in ``.j2`` is rendered (the suffix dropped), any other file is
copied as it is, and the executable bit is kept.  Rendering is strict: an
undefined value is an error, not an empty string.

The helpers every format renders with; :func:`wintermute.packaging.targets.render`
renders every target into ``out/render``.
"""

from __future__ import annotations

import shutil
import stat
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jinja2

from wintermute.config import Config
from wintermute.kernel_release import releases_from as dkms_releases_from
from wintermute.paths import REPO
from wintermute.reproducible import source_date_epoch

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
