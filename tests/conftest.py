"""Test tiers and the bridge that runs tests/functional inside the QEMU guest.

Tiers: ``tests/unit`` (fast, host only); ``tests/kernel_builds`` and
``tests/packaging`` (real kernel and package builds, marker ``build``);
``tests/functional`` (marker ``vm``: the driver's semantics, run inside the
guest against the freshly built module); ``tests/system`` (marker ``vm``:
testinfra on a guest where the packages were installed).

On the host, every collected test under ``tests/functional`` is replaced by a
:class:`GuestTest` with the same node id.  The first one to run boots the VM
and runs all selected functional tests there in one guest pytest session;
each ``GuestTest`` then reports its own test's guest outcome, failure text
included.  Deselecting them (``-m "not vm"``) boots nothing.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from ci import suite
from ci.pytest_support import live_output

FUNCTIONAL_DIR = Path(__file__).parent / "functional"


class GuestTestFailure(Exception):
    """A functional test failed inside the guest; the message is its guest report."""


class GuestTest(pytest.Item):
    """Stands for one functional test on the host; its result comes from the guest run."""

    def runtest(self) -> None:
        with live_output(self.config):
            result = _guest_run(self.session).result(self.nodeid)
        if result.outcome == "skipped":
            pytest.skip(result.longrepr)
        if result.outcome != "passed":
            raise GuestTestFailure(result.longrepr)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, GuestTestFailure):
            return f"(ran in the guest)\n{excinfo.value}"
        return str(excinfo.value)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None, f"{self.name} [guest]"


_GUEST_RUN_KEY = pytest.StashKey[Any]()


def _guest_run(session: pytest.Session) -> Any:
    run = session.stash.get(_GUEST_RUN_KEY, None)
    if run is None:
        from ci.guest_suite import GuestSuiteRun

        nodeids = [item.nodeid for item in session.items if isinstance(item, GuestTest)]
        run = GuestSuiteRun(nodeids)
        session.stash[_GUEST_RUN_KEY] = run
    return run


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for index, item in enumerate(items):
        if FUNCTIONAL_DIR in item.path.parents and not isinstance(item, GuestTest):
            guest = GuestTest.from_parent(item.parent, name=item.name)
            guest.add_marker("vm")
            items[index] = guest
        elif "/tests/kernel_builds/" in str(item.path):
            item.add_marker("build")


@pytest.hookimpl(trylast=True)
def pytest_collection_finish(session: pytest.Session) -> None:
    """In the suite runner's other lane: the host tiers first, the VM tiers after them."""
    if os.environ.get(suite.GATE_ENV):
        suite.vm_last(session.items)


_GATE_PASSED_KEY = pytest.StashKey[bool]()


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Before the first VM test of the suite runner's other lane (ci/suite.py): make the
    VM image, then wait until the kernel lane's compile is over."""
    gate = os.environ.get(suite.GATE_ENV)
    if not gate or item.get_closest_marker("vm") is None:
        return
    if item.session.stash.get(_GATE_PASSED_KEY, False):
        return
    item.session.stash[_GATE_PASSED_KEY] = True
    with live_output(item.config):
        suite.pass_vm_gate(Path(gate))
