"""The system integration files memlog-tools owns, and where each one is installed.

Every packaging target installs exactly these, rendered from
``templates/system``, so the group, the udev rule, the sysctl setting, the
module autoload and the user units promoting episodes are the same whichever
way memlog ships.  Only their paths
differ: :data:`INSTALLED_PATHS` is the canonical layout (systemd's vendor
directories under ``/usr/lib``, used by Arch and ``invoke dkms-install``);
Debian's debhelper helpers choose their own (:func:`installed_paths`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2

from wintermute.config import load as load_config
from wintermute.errors import UserError
from wintermute.packaging.render import render_group

# rendered file name -> installed path (systemd's vendor directories under /usr/lib)
INSTALLED_PATHS: dict[str, str] = {
    "sysusers.conf": "/usr/lib/sysusers.d/memlog.conf",
    "udev.rules": "/usr/lib/udev/rules.d/60-memlog.rules",
    "sysctl.conf": "/usr/lib/sysctl.d/60-memlog.conf",
    "modules-load.conf": "/usr/lib/modules-load.d/memlog.conf",
    "memlog-promote.service": "/usr/lib/systemd/user/memlog-promote.service",
    "memlog-promote.timer": "/usr/lib/systemd/user/memlog-promote.timer",
}

# Where debhelper (compat 13, bookworm) puts them; {tools} is the tools package.
DEBIAN_PATHS: dict[str, str] = {
    # dh_installsysusers names the file after the package
    "sysusers.conf": "/usr/lib/sysusers.d/{tools}.conf",
    # dh_installudev --name=memlog: compat 13 still installs into /lib
    "udev.rules": "/lib/udev/rules.d/60-memlog.rules",
    # dh_install, from debian/sysctl.d/ and debian/modules-load.d/
    "sysctl.conf": "/usr/lib/sysctl.d/60-memlog.conf",
    "modules-load.conf": "/usr/lib/modules-load.d/memlog.conf",
    # dh_installsystemduser --name=memlog-promote
    "memlog-promote.service": "/usr/lib/systemd/user/memlog-promote.service",
    "memlog-promote.timer": "/usr/lib/systemd/user/memlog-promote.timer",
}

_BY_DISTRO = {"arch": INSTALLED_PATHS, "debian": DEBIAN_PATHS}


def installed_paths(distro: str, tools_package: str | None = None) -> dict[str, str]:
    """Rendered file name -> the path ``distro``'s memlog-tools installs it at.

    ``tools_package`` is the tools package's name (default: kernel.yaml's).
    """
    if distro not in _BY_DISTRO:
        raise UserError(f"no system file paths for {distro!r}; known: {', '.join(_BY_DISTRO)}")
    if tools_package is None:
        tools_package = load_config().packages.tools
    return {name: path.format(tools=tools_package) for name, path in _BY_DISTRO[distro].items()}


def render(env: jinja2.Environment, ctx: dict[str, Any], dest: Path) -> None:
    render_group(env, ctx, "system", dest)
