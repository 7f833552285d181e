"""``invoke dkms-install``: install memlog on this machine as a DKMS module, as a user would.

Idempotent: the driver source goes to ``/usr/src/memlog-VERSION`` (replaced,
and the DKMS registration redone, only if it changed), then ``dkms add``,
``build`` and ``install`` for every installed kernel that has headers, then the
system files (group, udev rule, sysctl.d, modules-load.d).  If the running
kernel cannot load modules (as on these build machines: a sandbox kernel
without /lib/modules) it says so in one line; the builds still happen.
"""

from __future__ import annotations

import filecmp
import os
import platform
import shutil
import subprocess
from pathlib import Path

from wintermute.config import Config
from wintermute.config import load as load_config
from wintermute.errors import UserError
from wintermute.packaging import render as rendering
from wintermute.packaging.system_files import INSTALLED_PATHS
from wintermute.run import capture, run, say

MODULES = Path("/lib/modules")
LOG = "dkms-install.log"


def kernels_with_headers() -> list[str]:
    """Releases under /lib/modules that have a ``build`` directory (headers)."""
    if not MODULES.is_dir():
        return []
    return sorted(d.name for d in MODULES.iterdir() if (d / "build" / "Makefile").exists())


def _same_dir(a: Path, b: Path) -> bool:
    if not b.is_dir():
        return False
    cmp = filecmp.dircmp(a, b)
    if cmp.left_only or cmp.right_only or cmp.diff_files or cmp.funny_files:
        return False
    return all(_same_dir(a / d, b / d) for d in cmp.common_dirs)


def _status(cfg: Config, release: str) -> str:
    out = capture(["dkms", "status", "-m", "memlog", "-v", cfg.memlog.version, "-k", release])
    return out.strip()


def install_source(cfg: Config, rendered: Path) -> Path:
    """Put the DKMS source tree in /usr/src; re-register it with DKMS if it changed."""
    version = cfg.memlog.version
    dest = Path(f"/usr/src/memlog-{version}")
    source = rendered / "dkms"
    if _same_dir(source, dest):
        return dest
    if capture(["dkms", "status", "-m", "memlog", "-v", version]).strip():
        run(
            ["dkms", "remove", f"memlog/{version}", "--all"],
            log=LOG,
            step="source changed: dkms remove",
        )
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(source, dest)
    run(["dkms", "add", f"memlog/{version}"], log=LOG, step=f"dkms add memlog/{version}")
    return dest


def install_module(cfg: Config, release: str) -> None:
    version = cfg.memlog.version
    if _status(cfg, release).endswith("installed"):
        say(f"memlog/{version} already installed for {release}")
        return
    spec = ["-m", "memlog", "-v", version, "-k", release]
    run(["dkms", "build", *spec], log=LOG, step=f"dkms build memlog/{version} for {release}")
    run(["dkms", "install", *spec], log=LOG, step=f"dkms install memlog/{version} for {release}")


def install_system_files(cfg: Config, rendered: Path) -> None:
    for name, target in INSTALLED_PATHS.items():
        src = rendered / "system" / name
        dest = Path(target)
        if dest.exists() and filecmp.cmp(src, dest, shallow=False):
            continue
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dest)
        dest.chmod(0o644)
    group = cfg.memlog.system.group
    if subprocess.run(["getent", "group", group], capture_output=True, check=False).returncode:
        if shutil.which("systemd-sysusers"):
            run(["systemd-sysusers", INSTALLED_PATHS["sysusers.conf"]], log=LOG)
        else:
            run(["groupadd", "--system", group], log=LOG)
        say(f"created the system group {group}")
    if Path("/run/udev/control").exists():
        run(["udevadm", "control", "--reload-rules"], log=LOG)


def load_now() -> None:
    release = platform.release()
    if not (MODULES / release).is_dir() or not Path("/proc/modules").exists():
        say(
            f"the running kernel ({release}) cannot load modules here; memlog is installed "
            "for the kernels above and loads when one of them boots"
        )
        return
    run(["modprobe", "memlog"], log=LOG, step="modprobe memlog")


def dkms_install() -> list[str]:
    """Install memlog through DKMS for every kernel with headers; return those releases."""
    if os.geteuid() != 0:
        raise UserError("dkms-install writes to /usr/src and /lib/modules: run it as root")
    if not shutil.which("dkms"):
        raise UserError("dkms is not installed: apt-get install dkms (or run scripts/setup-host)")
    cfg = load_config()
    releases = kernels_with_headers()
    if not releases:
        raise UserError("no kernel headers under /lib/modules: apt-get install linux-headers-amd64")
    rendered = rendering.render()
    install_source(cfg, rendered)
    for release in releases:
        install_module(cfg, release)
    install_system_files(cfg, rendered)
    say(f"memlog/{cfg.memlog.version} is installed by DKMS for: {', '.join(releases)}")
    load_now()
    return releases
