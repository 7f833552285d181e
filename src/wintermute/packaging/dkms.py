"""The DKMS source tree: the staged driver source plus a rendered ``dkms.conf``.

This one tree is what every package installs under ``/usr/src/memlog-VERSION``
and what ``invoke dkms-install`` copies there.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2

from wintermute.driver_source import stage_driver_source
from wintermute.packaging.render import render_group


def render(env: jinja2.Environment, ctx: dict[str, Any], dest: Path) -> None:
    stage_driver_source(dest, version=ctx["memlog"]["version"])
    render_group(env, ctx, "dkms", dest)
