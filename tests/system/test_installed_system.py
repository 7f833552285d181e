"""Facts about a machine where `apt-get install memlog-dkms` ran and which then rebooted.

Each is checked on the guest's stock kernel and again on a second kernel
installed afterwards (``[stock-kernel]``, ``[second-kernel]``).  The values
come from the kernel.yaml the packages were built from (``cfg``).

The facts every installation shares are in ``installed_facts.py``; the ones
here are DKMS's own.
"""

from __future__ import annotations

from typing import Any

from tests.system.installed_facts import *  # noqa: F403  (collected here too)


def test_dkms_reports_memlog_installed_for_the_running_kernel(host: Any, cfg: Any) -> None:
    """dkms status says memlog is installed for the running kernel."""
    release = host.check_output("uname -r")
    status = host.check_output(f"dkms status -m memlog -v {cfg.memlog.version} -k {release}")
    assert status.endswith("installed"), status


def test_loaded_module_is_the_one_dkms_built(host: Any) -> None:
    """modinfo resolves memlog to DKMS's copy under the running kernel's modules."""
    path = host.check_output("modinfo -n memlog")
    release = host.check_output("uname -r")
    assert path.startswith(f"/lib/modules/{release}/updates/dkms/memlog.ko"), path
