"""The installed system, checked with pytest-testinfra over ssh into the VM.

A session fixture builds the Debian packages, serves them from a local APT
repository, boots the VM, installs ``memlog-dkms`` with apt-get exactly as a
user would (DKMS builds the module in the guest), reboots, and hands testinfra
a host for the booted guest.  Tests that remove packages run last, in file
order.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import pytest
import testinfra

from ci.pytest_support import live_output
from wintermute import config


@pytest.fixture(scope="session")
def cfg() -> config.Config:
    return config.load()


@pytest.fixture(scope="session")
def installed_vm(pytestconfig: pytest.Config) -> Iterator[Any]:
    from ci import package_verify

    with contextlib.ExitStack() as stack:
        with live_output(pytestconfig):  # building, booting, installing: show progress
            vm = stack.enter_context(package_verify.installed_vm())
        yield vm


@pytest.fixture(scope="session")
def host(installed_vm: Any) -> Any:
    """testinfra's host, for the guest with the packages installed and rebooted."""
    return testinfra.get_host("ssh://wintermute-vm", ssh_config=str(installed_vm.ssh_config))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    mine = [item for item in items if "/tests/system/" in str(item.path)]
    for item in mine:
        item.add_marker("vm")
    removal = [item for item in mine if item.get_closest_marker("removes_packages")]
    for item in removal:
        items.remove(item)
    items.extend(removal)
