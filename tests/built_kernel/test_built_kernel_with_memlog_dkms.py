"""Facts about installing memlog-dkms on the built kernel, which already carries memlog.

DKMS must skip the kernel (``BUILD_EXCLUSIVE_CONFIG="!CONFIG_MEMLOG"``) and
say so (Debian 12's DKMS 3.0.10 says it while installing; its ``dkms status``
lists memlog as added only, with no line for the kernel), and the headers
package must let an external module build against
``/lib/modules/$(uname -r)/build``.
"""

from __future__ import annotations

from dataclasses import dataclass
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


@dataclass(frozen=True)
class DkmsInstall:
    apt_output: str  # what apt-get install memlog-dkms printed (DKMS's messages among it)
    status: str  # dkms status -m memlog -k <built release>, afterwards


@pytest.fixture(scope="module")
def dkms_installed(host: Any, guest: Any, cfg: Any) -> DkmsInstall:
    """apt-get install memlog-dkms on the built kernel."""
    output = guest.apt(f"install {cfg.packages.dkms} 2>&1")  # DKMS's errors go to stderr
    return DkmsInstall(output, host.check_output(f"dkms status -m memlog -k {guest.release}"))


def test_memlog_dkms_installs_on_the_built_kernel(
    dkms_installed: DkmsInstall, host: Any, cfg: Any
) -> None:
    assert host.package(cfg.packages.dkms).is_installed


def test_dkms_says_build_exclusive_skips_the_built_kernel(
    dkms_installed: DkmsInstall, guest: Any
) -> None:
    """Installing memlog-dkms, DKMS says its BUILD_EXCLUSIVE directive excludes this kernel."""
    out = dkms_installed.apt_output
    assert f"memlog/{guest.cfg.memlog.version}/{guest.release}/" in out, out[-2000:]
    assert "includes a BUILD_EXCLUSIVE directive which does not match this kernel" in out


def test_dkms_status_shows_memlog_added_but_not_built_for_the_built_kernel(
    dkms_installed: DkmsInstall, guest: Any
) -> None:
    """dkms status (Debian 12's DKMS 3.0.10): only "added", no built or installed line."""
    status = dkms_installed.status
    assert status == f"memlog/{guest.cfg.memlog.version}: added", status


def test_no_dkms_copy_of_memlog_shadows_the_in_tree_one(
    dkms_installed: DkmsInstall, host: Any
) -> None:
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
