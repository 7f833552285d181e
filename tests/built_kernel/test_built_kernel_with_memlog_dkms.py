"""Facts about installing memlog-dkms on the built kernel, which already carries memlog.

DKMS must skip the kernel (``BUILD_EXCLUSIVE_CONFIG="!CONFIG_MEMLOG"``) and
say so, and the headers package must let an external module build against
``/lib/modules/$(uname -r)/build``.
"""

from __future__ import annotations

from typing import Any

import pytest

HELLO_C = r"""
#include <linux/module.h>
static int __init hello_init(void) { return 0; }
static void __exit hello_exit(void) { }
module_init(hello_init);
module_exit(hello_exit);
MODULE_LICENSE("GPL");
"""


@pytest.fixture(scope="module")
def dkms_installed(host: Any, guest: Any, cfg: Any) -> str:
    """apt-get install memlog-dkms; what dkms status says of the built kernel."""
    guest.apt(f"install {cfg.packages.dkms}")
    return host.check_output(f"dkms status -m memlog -k {guest.release}")


def test_memlog_dkms_installs_on_the_built_kernel(dkms_installed: str, host: Any, cfg: Any) -> None:
    assert host.package(cfg.packages.dkms).is_installed


def test_dkms_status_shows_memlog_skipped_for_the_built_kernel(
    dkms_installed: str, guest: Any
) -> None:
    """dkms status names the kernel and does not claim memlog is installed for it."""
    assert dkms_installed, "dkms status says nothing of memlog for the built kernel"
    assert guest.release in dkms_installed and "installed" not in dkms_installed, dkms_installed


def test_no_dkms_copy_of_memlog_shadows_the_in_tree_one(dkms_installed: str, host: Any) -> None:
    """No updates/dkms/memlog.ko; modinfo still finds the kernel package's module."""
    release = host.check_output("uname -r")
    assert not host.file(f"/lib/modules/{release}/updates/dkms/memlog.ko").exists
    assert "/kernel/drivers/char/memlog/" in host.check_output("modinfo -n memlog")


def test_external_module_builds_against_the_headers_package(host: Any) -> None:
    """A module builds out of tree against /lib/modules/$(uname -r)/build."""
    host.check_output("rm -rf /tmp/hello && mkdir /tmp/hello")
    host.check_output(f"cat > /tmp/hello/hello.c <<'EOF'\n{HELLO_C}\nEOF")
    host.check_output("echo 'obj-m := hello.o' > /tmp/hello/Kbuild")
    result = host.run("make -C /lib/modules/$(uname -r)/build M=/tmp/hello modules")
    assert result.rc == 0, result.stdout + result.stderr
    assert host.file("/tmp/hello/hello.ko").is_file
