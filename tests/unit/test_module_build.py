"""Warnings are read from build logs and fail a build; the host's headers are found."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from wintermute import module_build
from wintermute.errors import InfraError, UserError
from wintermute.module_build import BuildResult, parse_warnings, require_clean

SAMPLE_LOG = """\
$ make -C /lib/modules/6.1.0-56-amd64/build -j2 W=1 M=/out/build/x/src modules
make[1]: warning: -j2 forced in submake: resetting jobserver mode.
  CC [M]  /out/build/x/src/memlog_main.o
/out/build/x/src/memlog_main.c: In function 'memlog_read':
/out/build/x/src/memlog_main.c:120:9: warning: unused variable 'n' [-Wunused-variable]
  120 |     int n;
      |         ^
/out/build/x/src/memlog_main.c:120:9: warning: unused variable 'n' [-Wunused-variable]
cc1: warning: command-line option '-Wfoo' is valid for C++ but not for C
/out/build/x/src/memlog_ring.o: warning: objtool: memlog_push()+0x3a: call without frame pointer
ld: warning: creating DT_TEXTREL in a PIE
  MODPOST /out/build/x/src/Module.symvers
WARNING: Module.symvers is missing.
WARNING: modpost: "kfree" [/out/build/x/src/memlog.ko] undefined!
WARNING: modpost: suppressed 39 unresolved symbol warnings because there were too many)
WARNING: modpost: memlog: section mismatch in reference: memlog_init+0x1 (section: .text)
  LD [M]  /out/build/x/src/memlog.ko
"""


def test_compiler_objtool_and_linker_warnings_are_found() -> None:
    """gcc (file:line:col and cc1), objtool and ld warnings, each listed once."""
    found = parse_warnings(SAMPLE_LOG, compile_only=True)
    assert found == [
        "/out/build/x/src/memlog_main.c:120:9: unused variable 'n' [-Wunused-variable]",
        "cc1: command-line option '-Wfoo' is valid for C++ but not for C",
        "/out/build/x/src/memlog_ring.o: objtool: memlog_push()+0x3a: call without frame pointer",
        "ld: creating DT_TEXTREL in a PIE",
        "modpost: memlog: section mismatch in reference: memlog_init+0x1 (section: .text)",
    ]


def test_make_notes_are_not_warnings() -> None:
    """make's own jobserver note is not the driver's warning."""
    assert not any("jobserver" in w for w in parse_warnings(SAMPLE_LOG))


def test_unresolved_symbols_count_only_against_a_full_tree() -> None:
    """Without Module.symvers, modpost's 'undefined!' is expected; with it, a warning."""
    compile_only = parse_warnings(SAMPLE_LOG, compile_only=True)
    full = parse_warnings(SAMPLE_LOG, compile_only=False)
    assert not any("undefined!" in w for w in compile_only)
    assert 'modpost: "kfree" [/out/build/x/src/memlog.ko] undefined!' in full


def test_a_clean_log_has_no_warnings() -> None:
    """A log of a clean build yields an empty list."""
    log = "  CC [M]  memlog_main.o\n  LD [M]  memlog.o\n  LD [M]  memlog.ko\n"
    assert parse_warnings(log) == []


def test_require_clean_passes_a_clean_build(tmp_path: Path) -> None:
    """No warnings: the result comes back unchanged."""
    result = BuildResult("6.1-in-tree", tmp_path / "memlog.o", tmp_path / "build.log")
    assert require_clean(result) is result


def test_require_clean_lists_every_warning_and_the_log(tmp_path: Path) -> None:
    """Any warning fails the build; the error names the label, the log and each warning."""
    log = tmp_path / "build-7.2-out-of-tree.log"
    warnings = ["a.c:1:1: unused variable 'x'", "b.c:2:2: unused function 'y'"]
    result = BuildResult("7.2-out-of-tree", tmp_path / "memlog.ko", log, warnings)
    with pytest.raises(InfraError) as excinfo:
        require_clean(result)
    message = str(excinfo.value)
    assert message.splitlines()[0].startswith("7.2-out-of-tree: 2 warning(s)")
    assert str(log) in message
    assert all(w in message for w in warnings)


def _headers(modules: Path, *releases: str) -> None:
    for release in releases:
        build = modules / release / "build"
        build.mkdir(parents=True)
        (build / "Makefile").write_text("# headers\n")


def test_newest_headers_compares_releases_numerically(tmp_path: Path) -> None:
    """6.1.0-56-amd64 is newer than 6.1.0-9-amd64; directories without headers do not count."""
    _headers(tmp_path, "6.1.0-9-amd64", "6.1.0-56-amd64")
    (tmp_path / "6.1.0-99-amd64").mkdir()  # modules only, no build/
    assert module_build.newest_headers(tmp_path) == "6.1.0-56-amd64"


def test_no_headers_is_a_user_error_saying_what_to_install(tmp_path: Path) -> None:
    """No linux-headers installed: 'install linux-headers-amd64'."""
    with pytest.raises(UserError, match="install linux-headers-amd64"):
        module_build.newest_headers(tmp_path)


def test_headers_of_an_unknown_release_are_a_user_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Asking for a release whose headers are missing names the package to install."""
    monkeypatch.setattr(module_build, "MODULES", tmp_path)
    with pytest.raises(UserError, match=re.escape("linux-headers-9.9.9-1-amd64")):
        module_build.build_for_host_headers("9.9.9-1-amd64")
