"""Facts about a machine that apt-get installed the built linux-wintermute kernel and booted it.

The driver's functional suite runs first, on the module as the kernel package
alone gives it; then memlog-tools is installed and the guest rebooted, and the
facts every memlog installation shares (``tests/system/installed_facts.py``,
the same code as on the DKMS path) are checked, with those of the kernel.
"""

from __future__ import annotations

from typing import Any

from tests.system.installed_facts import *  # noqa: F403  (collected here too)


def test_functional_suite_passes_against_the_in_tree_module(functional_results: Any) -> None:
    """tests/functional, run in the guest on the built kernel, passes: every test, none skipped."""
    assert functional_results, "no functional test ran"
    failed = {
        nodeid: r.longrepr for nodeid, r in functional_results.items() if r.outcome != "passed"
    }
    assert not failed, "\n\n".join(f"{k}:\n{v}" for k, v in failed.items())


def test_guest_runs_the_built_release(host: Any, guest: Any) -> None:
    """uname -r is the release build-kernel made."""
    assert host.check_output("uname -r") == guest.release


def test_kernel_is_not_tainted(host: Any) -> None:
    """/proc/sys/kernel/tainted is 0: no unsigned, out-of-tree or forced module, no warning."""
    assert host.file("/proc/sys/kernel/tainted").content_string.strip() == "0"


def test_kernel_log_has_no_critical_alert_or_emergency_message(host: Any) -> None:
    assert host.check_output("dmesg --level=crit,alert,emerg") == ""


def test_memlog_is_the_in_tree_module_from_the_kernel_package(host: Any, guest: Any) -> None:
    """modinfo resolves memlog under kernel/drivers/char/memlog/, a file of linux-image."""
    path = host.check_output("modinfo -n memlog")
    assert path == f"/lib/modules/{guest.release}/kernel/drivers/char/memlog/memlog.ko"
    owner = host.check_output(f"dpkg -S {path}").split(":")[0]
    assert owner == f"linux-image-{guest.release}"


def test_memlog_module_is_signed_with_sha512(host: Any) -> None:
    """modinfo shows the module's signer and its sha512 signature."""
    assert host.check_output("modinfo -F signer memlog")
    assert host.check_output("modinfo -F sig_hashalgo memlog") == "sha512"


def test_initramfs_was_made_by_the_kernel_package_hooks(host: Any, guest: Any) -> None:
    """/boot/initrd.img-<release> exists, made by initramfs-tools' hook (no package owns it)."""
    initrd = f"/boot/initrd.img-{guest.release}"
    assert host.file(initrd).is_file
    assert host.run(f"dpkg -S {initrd}").rc != 0
