"""The kernel-upgrade scenario: a second kernel and its headers installed with memlog-dkms in place.

The packages come from bookworm-backports (``package_verify.SECOND_KERNEL``),
served from a local repository.  Installing the headers makes DKMS build
memlog for the new kernel (its ``/etc/kernel/header_postinst.d`` hook); the
guest is then booted into that kernel.  This tier boots kernels with QEMU's
``-kernel`` (GRUB is in the image but only the built-kernel tier installs it
on the disk), so the new kernel and initrd are copied out of the guest and
handed to a new QEMU on the same disk.

Debian 12's own QEMU 7.2 crashes (two vCPUs) or hangs (one) booting Debian's
6.12 kernel under TCG; scripts/setup-host installs QEMU 10 from
bookworm-backports, which boots it with the same vCPUs as the first kernel.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wintermute.errors import InfraError
from wintermute.run import say

_IMAGE = re.compile(r"^linux-image-(?P<release>[0-9][^_]*)_")


@dataclass(frozen=True)
class SecondKernel:
    release: str
    dkms_status_before_boot: str


def release_of(debs: list[Path]) -> str:
    """The release of the one versioned linux-image package among ``debs``."""
    found = [m.group("release") for deb in debs if (m := _IMAGE.match(deb.name))]
    if len(found) != 1:
        raise InfraError(f"expected one linux-image-<release> package, got {found}")
    return found[0]


def install_and_boot(guest: Any) -> SecondKernel:
    """apt-get install the second kernel and its headers, then boot it; checked, not assumed."""
    vm = guest.vm
    release = release_of(guest.second_kernel_debs)
    say(f"installing kernel {release} and its headers in the guest (log: {guest.log})")
    with guest.timings.step("kernel upgrade: apt-get install (DKMS build included)"):
        guest.enable_repo("kernel")
        guest.apt("install linux-image-cloud-amd64 linux-headers-cloud-amd64")
    status = vm.run(f"dkms status -m memlog -k {release}", log=guest.log).stdout.strip()
    kernel = vm.run_dir / f"vmlinuz-{release}"
    initrd = vm.run_dir / f"initrd.img-{release}"
    vm.get(f"/boot/vmlinuz-{release}", kernel)
    vm.get(f"/boot/initrd.img-{release}", initrd)
    with guest.timings.step("boot the second kernel"):
        vm.restart(kernel, initrd)
    running = vm.run("uname -r", log=guest.log).stdout.strip()
    if running != release:
        raise InfraError(f"the guest runs {running}, not {release}; console: {vm.console_log}")
    return SecondKernel(release, status)
