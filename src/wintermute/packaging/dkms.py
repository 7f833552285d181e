"""The DKMS source tree: the staged driver source plus a rendered ``dkms.conf``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2

from wintermute.packaging.render import render_group


def render(env: jinja2.Environment, ctx: dict[str, Any], dest: Path) -> None:
    render_group(env, ctx, "dkms", dest)
