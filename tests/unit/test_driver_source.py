"""The staged driver source: the one layout out-of-tree builds and DKMS take."""

from __future__ import annotations

from pathlib import Path

from wintermute.driver_source import driver_files, stage_driver_source
from wintermute.paths import DRIVER_DIR, UAPI_HEADER

SOURCES = ["Kbuild", "Kconfig", "Makefile", "memlog_main.c", "memlog_ring.h"]
ARTEFACTS = [
    "memlog.o",
    "memlog.ko",
    "memlog.mod",
    "memlog.mod.c",
    ".memlog.o.cmd",
    ".memlog.ko.cmd",
    "modules.order",
    "Module.symvers",
    "memlog_main.c~",
]


def _listing(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def _fake_driver(tmp_path: Path) -> tuple[Path, Path]:
    driver = tmp_path / "memlog"
    driver.mkdir()
    for name in SOURCES + ARTEFACTS:
        (driver / name).write_text(f"{name}\n")
    header = tmp_path / "memlog.h"
    header.write_text("/* uapi */\n")
    return driver, header


def test_staged_layout_is_sources_plus_uapi_header(tmp_path: Path) -> None:
    """DIR/{Kbuild,Kconfig,Makefile,*.c,*.h}, the UAPI header and memlog_version.h, no more."""
    driver, header = _fake_driver(tmp_path)
    staged = stage_driver_source(tmp_path / "out", driver_dir=driver, uapi_header=header)
    expected = [*SOURCES, "include/uapi/linux/memlog.h", "memlog_version.h"]
    assert sorted(_listing(staged)) == sorted(expected)


def test_staging_copies_no_build_artefacts(tmp_path: Path) -> None:
    """*.o, *.ko, *.mod.c, .*.cmd, modules.order and Module.symvers stay behind."""
    driver, header = _fake_driver(tmp_path)
    staged = stage_driver_source(tmp_path / "out", driver_dir=driver, uapi_header=header)
    assert not set(_listing(staged)) & set(ARTEFACTS)


def test_staging_is_deterministic(tmp_path: Path) -> None:
    """Staging twice gives the same files with the same bytes."""
    first = _listing(stage_driver_source(tmp_path / "a"))
    second = _listing(stage_driver_source(tmp_path / "b"))
    assert first == second


def test_real_driver_is_staged_byte_for_byte(tmp_path: Path) -> None:
    """Every driver file and the UAPI header arrive unchanged."""
    staged = _listing(stage_driver_source(tmp_path / "src"))
    for path in driver_files():
        assert staged[path.name] == path.read_bytes()
    assert staged["include/uapi/linux/memlog.h"] == UAPI_HEADER.read_bytes()
    assert {"Kbuild", "Kconfig", "Makefile"} <= set(staged)


def test_driver_files_are_sorted_by_name() -> None:
    """The file list does not depend on the directory's order."""
    names = [p.name for p in driver_files()]
    assert names == sorted(names)
    assert all(p.parent == DRIVER_DIR for p in driver_files())
