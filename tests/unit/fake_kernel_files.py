"""The kernel files memlog's patch series changes, small and in the kernel's own layouts.

Just enough of each (drivers/char/Kconfig and Makefile, ioctl-number.rst,
the kernel sysctl list, MAINTAINERS, the selftests Makefile) for the series'
edits to find their places, as in Linux 7.2.
"""

from __future__ import annotations

from pathlib import Path

KCONFIG = 'menu "Character devices"\n\nconfig TTY\n\tbool "tty"\n\nendmenu\n'
MAKEFILE = "obj-y += mem.o\n"
IOCTL_NUMBERS = """\
Ioctl Numbers
=============

====  =====  ========================================================= ================================================================
Code  Seq#    Include File                                             Comments
  (hex)
====  =====  ========================================================= ================================================================
0x00  00-1F  linux/fs.h                                                conflict!
0xB6  all    linux/fpga-dfl.h
0xC0  00-0F  linux/usb/iowarrior.h
0xCA  00-0F  uapi/misc/cxl.h                                           Dead since 6.15
0xCB  00-1F                                                            CBM serial IEC bus in development:
                                                                       <mailto:michael.klein@puffin.lb.shuttle.de>
0xF3  00-3F  drivers/usb/misc/sisusbvga/sisusb.h                       sisfb (in development)
====  =====  ========================================================= ================================================================
"""  # noqa: E501
SYSCTL_KERNEL = """\
===================================
Documentation for /proc/sys/kernel/
===================================

.. See scripts/check-sysctl-docs to keep this up to date

acct
====

Accounting, in three numbers.

kptr_restrict
=============

Whether kernel pointers are hidden.

modprobe
========

The path to the usermode helper.
"""
MAINTAINERS = "List of maintainers\n===================\n\nMaintainers List\n----------------\n"
MAINTAINERS += "".join(
    f"\n{title}\nM:\tSomeone <someone@example.org>\nS:\tMaintained\nF:\t{path}\n"
    for title, path in [
        ("3C59X NETWORK DRIVER", "drivers/net/ethernet/3com/3c59x.c"),
        ("ACPI", "drivers/acpi/"),
        ("BLOCK LAYER", "block/"),
        ("CHAR and MISC DRIVERS", "drivers/char/"),
        ("DMA MAPPING HELPERS", "kernel/dma/"),
        ("KERNEL SELFTEST FRAMEWORK", "tools/testing/selftests/"),
        ("MEMBARRIER SUPPORT", "kernel/sched/membarrier.c"),
        ("MEMORY MANAGEMENT", "mm/"),
        ("NETWORKING DRIVERS", "drivers/net/"),
        ("SCHEDULER", "kernel/sched/"),
        ("ZSWAP COMPRESSED SWAP CACHING", "mm/zswap.c"),
    ]
)
SELFTESTS_MAKEFILE = """\
# SPDX-License-Identifier: GPL-2.0
TARGETS += lsm
TARGETS += membarrier
TARGETS += memfd
TARGETS += mount

all:
"""
BASE = {
    "drivers/char/Kconfig": KCONFIG,
    "drivers/char/Makefile": MAKEFILE,
    "Documentation/userspace-api/ioctl/ioctl-number.rst": IOCTL_NUMBERS,
    "Documentation/admin-guide/sysctl/kernel.rst": SYSCTL_KERNEL,
    "MAINTAINERS": MAINTAINERS,
    "tools/testing/selftests/Makefile": SELFTESTS_MAKEFILE,
}


def write_base(root: Path) -> Path:
    """The files above under ``root``, a fake kernel tree's top; returns ``root``."""
    for path, text in BASE.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(text)
    return root
