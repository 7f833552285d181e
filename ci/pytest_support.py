"""Small pytest helpers shared by the test tiers that drive builds and VMs."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import pytest


@contextlib.contextmanager
def live_output(config: pytest.Config) -> Iterator[None]:
    """Let a long step's ``==>`` progress lines through pytest's output capture."""
    capman = config.pluginmanager.getplugin("capturemanager")
    if capman is None:
        yield
        return
    with capman.global_and_fixture_disabled():
        yield


@contextlib.contextmanager
def setup_step(config: pytest.Config) -> Iterator[None]:
    """A fixture's build, boot or install: progress shown, and its failure one line.

    A toolkit error there (a bad kernel.yaml, a failed build or boot) stops
    the session with ``E: <its one line>`` and its exit code, where pytest
    would report it again as an error with a traceback for every test that
    needs the fixture.
    """
    from wintermute.errors import WintermuteError

    try:
        with live_output(config):
            yield
    except WintermuteError as exc:
        pytest.exit(f"E: {str(exc).splitlines()[0]}", returncode=exc.exit_code)


def order_by_phase(session: pytest.Session, tier: str, phase: Callable[[pytest.Item], int]) -> None:
    """Run the selected tests under ``tests/<tier>/`` together, ordered by ``phase``.

    Called from a tier's trylast ``pytest_collection_finish``, after every
    selection; the sort is stable (file order within a phase) and the other
    tiers keep their places.
    """
    items = session.items
    mine = [item for item in items if f"/tests/{tier}/" in str(item.path)]
    if not mine:
        return
    first = items.index(mine[0])
    rest = [item for item in items if item not in mine]
    items[:] = rest[:first] + sorted(mine, key=phase) + rest[first:]


class AttachedGuest:
    """A pytest plugin object: hands tests/system a guest booted by ``invoke vm-verify``."""

    def __init__(self, guest: object) -> None:
        self.guest = guest


def attached_guest(config: pytest.Config) -> object | None:
    """The guest an AttachedGuest plugin carries, if one is registered."""
    for plugin in config.pluginmanager.get_plugins():
        if isinstance(plugin, AttachedGuest):
            return plugin.guest
    return None
