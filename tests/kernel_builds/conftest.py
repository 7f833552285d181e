"""The build tier: fetch and prepare every kernel tree once, showing progress."""

from __future__ import annotations

import pytest

from ci.pytest_support import live_output
from wintermute import kernel_trees


@pytest.fixture(scope="session", autouse=True)
def prepared_trees(pytestconfig: pytest.Config) -> None:
    """Download, extract and prepare the trees of series.yaml (cached), progress visible."""

    with live_output(pytestconfig):
        for series in kernel_trees.SERIES:
            kernel_trees.prepared_tree(series)
