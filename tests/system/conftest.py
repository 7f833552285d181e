"""The installed system, checked with pytest-testinfra over ssh into the VM.

The guest: packages built from ``tests/system/kernel.yaml`` (every system value
differs from the driver's and the default kernel.yaml's, so a template or rule
that ignores kernel.yaml fails here), published in a signed APT repository
that the guest adds as a user would (the keyring package, the ``.sources``
file), ``apt-get install memlog-dkms``, then a reboot (see
``ci/package_verify.py``).  ``invoke vm-verify`` hands over a guest of its own
(built from the default kernel.yaml) through ``ci.pytest_support.AttachedGuest``.

The facts of ``test_installed_system.py`` are checked twice: on the image's
stock kernel, and after a second kernel (with its headers) was installed and
booted.  Then the lifecycle scenarios run, in this order: package upgrade,
removal and purge, ``invoke dkms-install``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import testinfra

from ci import rootfs
from ci.pytest_support import attached_guest, live_output, order_by_phase, setup_step

VM_KERNEL_YAML = Path(__file__).with_name("kernel.yaml")
KERNELS = ("stock-kernel", "second-kernel")
# The second kernel comes from bookworm-backports: on a guest of another suite
# ($WINTERMUTE_GUEST_SUITE) its phases are deselected (pytest reports them as
# deselected, not as passed).
NEEDS_SECOND_KERNEL = ("test_kernel_upgrade.py",)


def _on_host_suite() -> bool:
    """Asked at each session's hooks, not at import: invoke verify runs pytest.main
    once per suite in one process, and a conftest is imported only once."""
    return rootfs.guest_suite() == rootfs.HOST_SUITE


def _needs_second_kernel(item: pytest.Item) -> bool:
    callspec = getattr(item, "callspec", None)
    kernel = callspec.params.get("booted_kernel") if callspec is not None else None
    return item.path.name in NEEDS_SECOND_KERNEL or kernel == "second-kernel"


# run order of the files; within a file, the order it is written in
PHASES = (
    "test_installed_system.py[stock-kernel]",
    "test_kernel_upgrade.py",
    "test_installed_system.py[second-kernel]",
    "test_signed_repository.py",
    "test_agent_episodes.py",
    "test_claude_code_cli.py",
    "test_libmemlog.py",
    "test_package_upgrade.py",
    "test_package_removal.py",
    "test_dkms_install_task.py",
    "test_guest_health.py",
)


@pytest.fixture(scope="session")
def guest(pytestconfig: pytest.Config) -> Iterator[Any]:
    """The booted guest with the packages installed and rebooted (ci.package_verify.Guest)."""
    attached = attached_guest(pytestconfig)
    with contextlib.ExitStack() as stack:
        if attached is not None:
            found = attached
        else:
            from ci import package_verify

            with setup_step(pytestconfig):  # building, booting, installing: show progress
                found = stack.enter_context(package_verify.installed_guest(VM_KERNEL_YAML))
        found.timings.start_checks()
        yield found
        found.timings.end_checks()


@pytest.fixture(scope="session")
def cfg(guest: Any) -> Any:
    """The kernel.yaml the guest's packages were built from."""
    return guest.cfg


@pytest.fixture(scope="session")
def second_kernel(guest: Any, pytestconfig: pytest.Config) -> Any:
    """The second kernel installed (DKMS builds memlog for it) and booted."""
    from ci import kernel_upgrade

    with live_output(pytestconfig):
        return kernel_upgrade.install_and_boot(guest)


@pytest.fixture(scope="session", params=KERNELS)
def booted_kernel(request: pytest.FixtureRequest) -> str:
    """Which kernel the guest runs: its stock one, then the second one."""
    if request.param == "second-kernel":
        request.getfixturevalue("second_kernel")
    return str(request.param)


def _testinfra_host(guest: Any) -> Any:
    return testinfra.get_host("ssh://wintermute-vm", ssh_config=str(guest.vm.ssh_config))


@pytest.fixture(scope="session")
def host(guest: Any, booted_kernel: str) -> Any:
    """testinfra's host for the guest, on each kernel in turn."""
    return _testinfra_host(guest)


@pytest.fixture(scope="session")
def final_host(guest: Any, request: pytest.FixtureRequest) -> Any:
    """testinfra's host for the lifecycle scenarios, which run once, on the second kernel.

    (On a guest of another suite than bookworm, on its stock kernel.)
    """
    if _on_host_suite():
        request.getfixturevalue("second_kernel")
    return _testinfra_host(guest)


def _phase(item: pytest.Item) -> int:
    name = item.path.name
    param = getattr(item, "callspec", None)
    kernel = param.params.get("booted_kernel") if param is not None else None
    key = f"{name}[{kernel}]" if kernel else name
    return PHASES.index(key) if key in PHASES else len(PHASES)


def _mine(items: list[pytest.Item]) -> list[pytest.Item]:
    return [item for item in items if "/tests/system/" in str(item.path)]


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark the tier vm before `-m` selects (pytest's own hook runs after tryfirst ones).

    On a guest of another suite, deselect what needs bookworm-backports' kernel.
    """
    for item in _mine(items):
        item.add_marker("vm")
    if not _on_host_suite():
        dropped = [item for item in _mine(items) if _needs_second_kernel(item)]
        if dropped:
            config.hook.pytest_deselected(items=dropped)
            items[:] = [item for item in items if item not in dropped]


@pytest.hookimpl(trylast=True)
def pytest_collection_finish(session: pytest.Session) -> None:
    """Order what was selected by phase (trylast: after every selection)."""
    order_by_phase(session, "system", _phase)
