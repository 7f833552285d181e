"""The version kernel.yaml ships is the one the driver, the library and the packages report.

kernel.yaml's memlog.version is the source of truth for packaging; the driver
and the library carry it as a constant of their own (a module and a library
must report a version without the toolkit), so this test holds them equal.
"""

from __future__ import annotations

import re
import tomllib

import memlog
from wintermute import config
from wintermute.paths import DRIVER_DIR, REPO


def test_driver_version_is_kernel_yaml_version() -> None:
    """MEMLOG_DRIVER_VERSION (MODULE_VERSION and the load line) equals kernel.yaml's version."""
    source = (DRIVER_DIR / "memlog_main.c").read_text()
    match = re.search(r'#define MEMLOG_DRIVER_VERSION\s+"([^"]+)"', source)
    assert match and match[1] == config.load().memlog.version


def test_library_version_is_kernel_yaml_version() -> None:
    """memlog.__version__ equals kernel.yaml's version."""
    assert memlog.__version__ == config.load().memlog.version


def test_python_project_takes_its_version_from_the_library() -> None:
    """pyproject.toml does not write the version again: it reads memlog.__version__."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert "version" in project["project"]["dynamic"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "memlog.__version__"}
