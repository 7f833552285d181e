"""``invoke dkms-install``: install memlog on this Debian machine from its packages, as users do.

One install path: the Debian packages (built by ``invoke deb``, or the ones
``--debs DIR`` names) are installed with ``apt-get install``; memlog-dkms pulls
memlog-tools.  DKMS then builds and installs the module for every kernel that
has headers, and memlog-tools brings the group, the udev rule, the sysctl.d
and modules-load.d files.  Finally the module is loaded, if this kernel can.

Before anything is built or installed, it refuses where it cannot work: not
root, no apt-get, no headers for the running kernel, or a running kernel
older than the oldest one memlog supports (DKMS would skip it).  Afterwards it
checks that DKMS really installed memlog for the running kernel.  Run again,
it changes nothing: apt-get finds the same versions installed.
"""

from __future__ import annotations

import os
import platform
import re
import shutil
from pathlib import Path

from wintermute.config import Config
from wintermute.config import load as load_config
from wintermute.errors import InfraError, UserError
from wintermute.run import capture, run, say

MODULES = Path("/lib/modules")
LOG = "dkms-install.log"


def _series(release: str) -> tuple[int, int]:
    match = re.match(r"^(\d+)\.(\d+)", release)
    if not match:
        raise UserError(f"cannot read a kernel version from the release {release!r}")
    return int(match.group(1)), int(match.group(2))


def preflight(cfg: Config, release: str, modules: Path = MODULES) -> None:
    """Raise UserError, before anything changes, where installing cannot work."""
    if os.geteuid() != 0:
        raise UserError("dkms-install installs packages: run it as root")
    if not shutil.which("apt-get"):
        raise UserError(
            "dkms-install installs Debian packages with apt-get; on Arch use "
            "invoke arch and pacman -U"
        )
    if not (modules / release / "build" / "Makefile").exists():
        raise UserError(
            f"no kernel headers for the running kernel {release}, so DKMS cannot build "
            f"memlog for it: apt-get install linux-headers-{release}, then run this again "
            "(nothing was installed)"
        )
    oldest = cfg.memlog.min_kernel
    if _series(release) < _series(oldest):
        raise UserError(
            f"the running kernel {release} is older than {oldest}, the oldest memlog "
            "supports (nothing was installed)"
        )


def package_files(cfg: Config, directory: Path) -> list[Path]:
    """The two .deb files of kernel.yaml's version in ``directory``."""
    version = f"{cfg.memlog.version}-{cfg.memlog.release}"
    files = []
    for package in (cfg.packages.tools, cfg.packages.dkms):
        deb = directory / f"{package}_{version}_all.deb"
        if not deb.is_file():
            raise UserError(f"{deb} is missing: build the packages with invoke deb")
        files.append(deb.resolve())
    return files


def installed_version(package: str) -> str | None:
    """The installed version of ``package``, or None (dpkg-query fails for unknown ones)."""
    try:
        out = capture(["dpkg-query", "-W", "-f", "${Status} ${Version}", package])
    except InfraError:
        return None
    parts = out.split()
    return parts[-1] if len(parts) == 4 and parts[2] == "installed" else None


def dkms_status(cfg: Config, release: str) -> str:
    spec = ["-m", "memlog", "-v", cfg.memlog.version, "-k", release]
    return capture(["dkms", "status", *spec]).strip()


def load_module() -> None:
    """modprobe memlog where this kernel can load modules (not in a sandbox kernel)."""
    if not Path("/proc/modules").exists():
        say("this kernel cannot load modules: memlog loads at the next boot")
        return
    run(["modprobe", "memlog"], log=LOG, step="modprobe memlog")
    if shutil.which("udevadm"):
        run(["udevadm", "settle"], log=LOG)


def dkms_install(debs: Path | None = None) -> str:
    """Install memlog-dkms and memlog-tools with apt-get; return the running kernel's release."""
    cfg = load_config()
    release = platform.release()
    preflight(cfg, release)
    if debs is None:
        from wintermute.packaging import debian, targets

        files = [p for p in debian.build(targets.render()) if p.suffix == ".deb"]
    else:
        files = package_files(cfg, debs)
    version = f"{cfg.memlog.version}-{cfg.memlog.release}"
    if installed_version(cfg.packages.dkms) == version:
        say(f"{cfg.packages.dkms} {version} is already installed")
    run(
        ["apt-get", "install", "-y", "-q", *map(str, files)],
        log=LOG,
        env={"DEBIAN_FRONTEND": "noninteractive"},
        step=f"apt-get install {' '.join(f.name for f in files)}",
    )
    status = dkms_status(cfg, release)
    if not status.endswith("installed"):
        make_log = f"/var/lib/dkms/memlog/{cfg.memlog.version}/build/make.log"
        raise InfraError(
            f"DKMS did not install memlog for {release} (dkms status: {status or 'nothing'}); "
            f"see {make_log}"
        )
    load_module()
    say(f"memlog {version} is installed for {release}")
    return release
