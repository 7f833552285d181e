"""Facts about installing a second kernel and its headers where memlog-dkms is installed."""

from __future__ import annotations

from typing import Any


def test_installing_a_kernels_headers_makes_dkms_build_memlog_for_it(
    second_kernel: Any, cfg: Any
) -> None:
    """Once apt-get installed the second kernel's headers, DKMS has memlog installed for it."""
    status = second_kernel.dkms_status_before_boot
    assert status.startswith(f"memlog/{cfg.memlog.version}, {second_kernel.release},"), status
    assert status.endswith("installed"), status


def test_the_guest_boots_into_the_second_kernel(final_host: Any, second_kernel: Any) -> None:
    """The guest runs the newly installed kernel."""
    assert final_host.check_output("uname -r") == second_kernel.release


def test_dkms_keeps_memlog_for_the_first_kernel(final_host: Any, guest: Any, cfg: Any) -> None:
    """The first kernel's memlog.ko stays installed beside the new one."""
    status = final_host.check_output(f"dkms status -m memlog -k {guest.stock_release}")
    assert status.endswith("installed"), status
