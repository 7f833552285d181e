"""Install the built Debian packages on a booted VM the way a user would.

The ``.deb`` files are served from a local flat APT repository (made with
``apt-ftparchive``) copied into the guest, which has no other network: its
only APT source is that repository.  ``apt-get install memlog-dkms`` then pulls
``memlog-tools`` and has DKMS build the module in the guest against the
guest's own kernel headers; the VM is rebooted so the checks see what a user
sees after a reboot.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from wintermute.paths import log_dir, out_dir
from wintermute.run import capture, say

GUEST_REPO = "/srv/memlog-apt"
APT = "DEBIAN_FRONTEND=noninteractive apt-get -y -q"


def apt_repository(debs: list[Path], dest: Path) -> Path:
    """A flat APT repository (``deb [trusted=yes] file:DIR ./``) holding ``debs``."""
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    for deb in debs:
        shutil.copy2(deb, dest / deb.name)
    (dest / "Packages").write_text(capture(["apt-ftparchive", "packages", "."], cwd=dest))
    (dest / "Release").write_text(capture(["apt-ftparchive", "release", "."], cwd=dest))
    return dest


@contextlib.contextmanager
def installed_vm() -> Iterator[Any]:
    """Build the packages, boot the VM, apt-get install memlog-dkms, reboot; yield the VM."""
    from ci import rootfs, vm
    from wintermute.packaging import debian

    debs = [p for p in debian.build() if p.suffix == ".deb"]
    repo = apt_repository(debs, out_dir() / "apt-repo")
    image = rootfs.ensure_image()
    log = log_dir() / "vm-install.log"
    with vm.boot(image) as guest:
        guest.put(repo, GUEST_REPO)
        sources = "/etc/apt/sources.list.d"
        guest.run(
            f"rm -f /etc/apt/sources.list {sources}/*.list {sources}/*.sources && "
            f"echo 'deb [trusted=yes] file:{GUEST_REPO} ./' > {sources}/memlog.list",
            log=log,
        )
        say(f"installing memlog-dkms in the guest with apt-get (log: {log})")
        guest.run(f"{APT} update && {APT} install memlog-dkms", timeout=1200, log=log)
        guest.reboot()  # says so, and how long it took
        yield guest
