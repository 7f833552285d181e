"""Fixtures for the functional suite, which runs inside the VM as root.

The host collects these modules too (to list and report them) but never runs
them: nothing here touches the device at import time.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from guestlib import ensure_users, load_module, module_loaded, reset_device


@pytest.fixture(scope="session", autouse=True)
def guest() -> None:
    """Users alice and bob (in the memlog group), carol (not), and the module loaded."""
    ensure_users()
    load_module()


@pytest.fixture(autouse=True)
def clean_device(guest: None) -> Iterator[None]:
    load_module()
    reset_device()
    yield
    if module_loaded():
        reset_device()
