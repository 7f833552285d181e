"""The linux-wintermute kernel from ``invoke build-kernel``: its packages, and a VM booted on it.

``kernel_build`` builds the kernel once per session into ``out/kernel/``
(the tree, downloads and ccache are cached, so a second session is
incremental), from ``tests/built_kernel/kernel.yaml`` (a small kernel for the
VM; see there), or from the file ``WINTERMUTE_BUILT_KERNEL_YAML`` names:
``invoke vm-verify --kernel built`` names the shipped kernel.yaml.  ``guest`` installs the built
linux-image and linux-headers with memlog-tools in the VM with apt-get and
boots that kernel (``ci/built_kernel.py``); the tests then check the guest
with testinfra.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import testinfra

from ci.pytest_support import live_output, order_by_phase, setup_step
from wintermute import config
from wintermute.kernel.build import KernelBuild, build_kernel
from wintermute.paths import out_dir

DESCRIPTION = Path(__file__).with_name("kernel.yaml")

# run order of the files
PHASES = (
    "test_shipped_config.py",
    "test_kernel_packages.py",
    "test_bad_input.py",
    "test_built_kernel_system.py",
)


@pytest.fixture(scope="session")
def description() -> Path:
    """The kernel.yaml the kernel and the memlog packages are built from."""
    return Path(os.environ.get("WINTERMUTE_BUILT_KERNEL_YAML") or DESCRIPTION)


@pytest.fixture(scope="session")
def kernel_build(pytestconfig: pytest.Config, description: Path) -> KernelBuild:
    """linux-wintermute built and packaged for Debian and Arch (progress shown).

    Under the suite runner (ci/suite.py), the other lane's VM tiers may start now."""
    from ci import suite

    with setup_step(pytestconfig):
        built = build_kernel(kernel_yaml=description)
    suite.open_gate()
    return built


@pytest.fixture(scope="session")
def cfg(description: Path) -> config.Config:
    return config.load(description)


@pytest.fixture(scope="module")
def memlog_debs(pytestconfig: pytest.Config, description: Path) -> list[Path]:
    """memlog-tools and memlog-dkms, built from the same description."""
    from ci import package_verify

    with setup_step(pytestconfig):
        return package_verify.build_debs(description, out_dir() / "vm-built-kernel" / "memlog")


@pytest.fixture(scope="module")
def guest(
    pytestconfig: pytest.Config, kernel_build: KernelBuild, memlog_debs: list[Path], cfg: Any
) -> Iterator[Any]:
    """The VM running the built kernel, installed with apt-get (ci.built_kernel.KernelGuest)."""
    from ci import built_kernel

    debs = [p for p in kernel_build.packages["debian"] if p.suffix == ".deb"]
    with contextlib.ExitStack() as stack:
        with setup_step(pytestconfig):
            found = stack.enter_context(
                built_kernel.installed_guest(kernel_build.names, debs, memlog_debs, cfg)
            )
        found.timings.start_checks()
        yield found
        found.timings.end_checks()


@pytest.fixture(scope="module")
def functional_results(pytestconfig: pytest.Config, guest: Any) -> dict[str, Any]:
    """tests/functional run in the guest against the in-tree module, the driver alone.

    After the installed facts (the suite sets the sysctls back to the driver's
    defaults).  memlog-tools' udev rule is masked while it runs, as udev
    documents (a link to /dev/null in /etc/udev/rules.d): on every load of
    the module it would set the package's group, mode and ring size, where the
    suite checks the driver's own.
    """
    from ci import guest_suite
    from wintermute.packaging.system_files import installed_paths

    module = f"/lib/modules/{guest.release}/kernel/drivers/char/memlog/memlog.ko"
    rule = Path(installed_paths("debian", guest.cfg.packages.tools)["udev.rules"]).name
    mask = f"/etc/udev/rules.d/{rule}"
    guest.vm.run(f"ln -s /dev/null {mask} && udevadm control --reload", log=guest.log)
    try:
        with live_output(pytestconfig), guest.timings.step("functional suite"):
            return guest_suite.run_on(
                guest.vm,
                ["tests/functional"],
                ko=None,
                module=module,
                name="vm-built-kernel-functional",
            )
    finally:
        guest.vm.run(f"rm -f {mask} && udevadm control --reload", log=guest.log)


@pytest.fixture(scope="module")
def host(guest: Any) -> Any:
    """testinfra's host for the guest on the built kernel (memlog-tools installed with it)."""
    return testinfra.get_host("ssh://wintermute-vm", ssh_config=str(guest.vm.ssh_config))


def _mine(items: list[pytest.Item]) -> list[pytest.Item]:
    return [item for item in items if "/tests/built_kernel/" in str(item.path)]


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark the tier before `-m` selects: the VM checks vm, the package checks build."""
    for item in _mine(items):
        item.add_marker("vm" if "built_kernel_" in item.path.name else "build")


@pytest.hookimpl(trylast=True)
def pytest_collection_finish(session: pytest.Session) -> None:
    """Order what was selected by phase (trylast: after every selection)."""
    order_by_phase(session, "built_kernel", _phase)


def _phase(item: pytest.Item) -> int:
    name = item.path.name
    return PHASES.index(name) if name in PHASES else len(PHASES)
