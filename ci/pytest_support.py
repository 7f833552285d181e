"""Small pytest helpers shared by the test tiers that drive builds and VMs."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

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
