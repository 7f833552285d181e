"""The version kernel.yaml ships is the one the driver, the library and the packages report.

kernel.yaml's memlog.version is the source of truth.  The driver gets it from
the build (memlog_version.h, written where its source is staged).  The
library still carries a copy (pyproject.toml reads memlog.__version__), which
this test holds equal.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import memlog
from wintermute import config
from wintermute.driver_source import VERSION_HEADER, stage_driver_source
from wintermute.paths import DRIVER_DIR, REPO


def test_driver_source_writes_no_version_of_its_own() -> None:
    """MEMLOG_DRIVER_VERSION is defined nowhere in the repository's driver: the build writes it."""
    for path in DRIVER_DIR.iterdir():
        if path.suffix in (".c", ".h"):
            assert not re.search(r"#define\s+MEMLOG_DRIVER_VERSION", path.read_text()), path
    assert not (DRIVER_DIR / VERSION_HEADER).exists()


def test_staged_driver_gets_kernel_yaml_version(tmp_path: Path) -> None:
    """The staged memlog_version.h holds kernel.yaml's version (MODULE_VERSION, load line)."""
    header = (stage_driver_source(tmp_path / "src") / VERSION_HEADER).read_text()
    assert f'#define MEMLOG_DRIVER_VERSION\t"{config.load().memlog.version}"\n' in header


def test_staged_driver_gets_the_version_it_is_given(tmp_path: Path) -> None:
    """An upgrade's packages (another version) stage a driver that reports that version."""
    header = (stage_driver_source(tmp_path / "src", version="9.8.7") / VERSION_HEADER).read_text()
    assert '"9.8.7"' in header


def test_library_version_is_kernel_yaml_version() -> None:
    """memlog.__version__ equals kernel.yaml's version."""
    assert memlog.__version__ == config.load().memlog.version


def test_python_project_takes_its_version_from_the_library() -> None:
    """pyproject.toml does not write the version again: it reads memlog.__version__."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert "version" in project["project"]["dynamic"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "memlog.__version__"}


def test_libmemlog_and_the_rust_crate_have_kernel_yaml_s_version() -> None:
    """libmemlog/meson.build's project version and rust/memlog/Cargo.toml's are kernel.yaml's."""
    version = config.load().memlog.version
    meson = (REPO / "libmemlog" / "meson.build").read_text()
    assert re.search(r"^  version: '([^']+)',$", meson, re.M)[1] == version  # type: ignore[index]
    cargo = tomllib.loads((REPO / "rust" / "memlog" / "Cargo.toml").read_text())
    assert cargo["package"]["version"] == version
