"""The system integration files memlog-tools owns, and where each one is installed.

Both packaging targets install exactly these, from one rendering, so the
group, the udev rule, the sysctl setting and the module autoload are the same
whichever way memlog ships.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2

from wintermute.packaging.render import render_group

# rendered file name -> installed path (systemd's vendor directories under /usr/lib)
INSTALLED_PATHS: dict[str, str] = {
    "sysusers.conf": "/usr/lib/sysusers.d/memlog.conf",
    "udev.rules": "/usr/lib/udev/rules.d/60-memlog.rules",
    "sysctl.conf": "/usr/lib/sysctl.d/60-memlog.conf",
    "modules-load.conf": "/usr/lib/modules-load.d/memlog.conf",
}


def render(env: jinja2.Environment, ctx: dict[str, Any], dest: Path) -> None:
    render_group(env, ctx, "system", dest)
