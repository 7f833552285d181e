"""Build memlog.ko: out of tree against headers or a prepared tree, or in tree.

Every build runs with ``W=1`` and ``LC_ALL=C``; its warnings (compiler,
objtool, linker, modpost) are collected from the log, and :func:`require_clean`
turns any into an error.  Logs: ``out/logs/build-<label>.log``; outputs:
``out/build/<label>/``.
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from wintermute import kernel_trees
from wintermute.driver_source import stage_driver_source
from wintermute.errors import InfraError, UserError
from wintermute.paths import log_dir, out_dir
from wintermute.run import run

MODULES = Path("/lib/modules")
# "file.c:12:3: warning: ...", "cc1: warning: ...", "x.o: warning: objtool: ...",
# "ld: warning: ..."; make's own notes (jobserver) are not the driver's.
_WARNING = re.compile(r"^(?P<where>\S+?): warning: (?P<what>.*)$", re.M)
_MAKE = re.compile(r"^make(\[\d+\])?$")
_MODPOST_WARNING = re.compile(r"^WARNING: modpost: (?P<what>.*)$", re.M)
# Without Module.symvers (a prepared source tree) modpost cannot resolve any symbol.
_UNRESOLVED = re.compile(r"undefined!$|^suppressed \d+ unresolved symbol warnings")
BUILD_ENV = {"LC_ALL": "C"}


@dataclass(frozen=True)
class BuildResult:
    label: str
    ko: Path  # memlog.ko; memlog.o for in-tree builds, which stop before modpost
    log: Path
    warnings: list[str] = field(default_factory=list)


def parse_warnings(log_text: str, *, compile_only: bool = False) -> list[str]:
    """The warnings in a build log, each once, in order.

    ``compile_only``: the tree has no Module.symvers, so modpost's unresolved
    symbol warnings are expected and dropped (its other warnings are kept).
    """
    found = [
        f"{m['where']}: {m['what']}"
        for m in _WARNING.finditer(log_text)
        if not _MAKE.match(m["where"])
    ]
    for m in _MODPOST_WARNING.finditer(log_text):
        if not (compile_only and _UNRESOLVED.search(m["what"])):
            found.append(f"modpost: {m['what']}")
    return list(dict.fromkeys(found))


def require_clean(result: BuildResult) -> BuildResult:
    """Return ``result``, or raise InfraError listing its warnings."""
    if result.warnings:
        listed = "\n".join(f"  {w}" for w in result.warnings)
        raise InfraError(
            f"{result.label}: {len(result.warnings)} warning(s) with W=1; see {result.log}\n"
            f"{listed}"
        )
    return result


def _release_key(release: str) -> list[tuple[int, str]]:
    return [(int(x), "") if x.isdigit() else (-1, x) for x in re.split(r"[.+~-]", release)]


def newest_headers(modules: Path = MODULES) -> str:
    """The release of the newest installed linux-headers-*-amd64 (not ``uname -r``:
    the host runs a sandbox kernel that has none)."""
    releases = [d.name for d in modules.glob("*-amd64") if (d / "build" / "Makefile").exists()]
    if not releases:
        raise UserError("no kernel headers installed: apt-get install linux-headers-amd64")
    return max(releases, key=_release_key)


def _make(kdir: Path, args: list[str], label: str) -> Path:
    log = log_dir() / f"build-{label}.log"
    log.unlink(missing_ok=True)
    run(
        ["make", "-C", kdir, f"-j{os.cpu_count() or 1}", "W=1", *args],
        log=log,
        env=BUILD_ENV,
        step=f"building memlog ({label})",
    )
    return log


def build_out_of_tree(kdir: Path, *, label: str) -> BuildResult:
    """Stage the source under out/build/<label>/src and build it with ``make -C kdir M=``."""
    src = out_dir() / "build" / label / "src"
    if src.exists():
        shutil.rmtree(src)
    stage_driver_source(src)
    compile_only = not (kdir / "Module.symvers").exists()
    args = [f"M={src}", "modules"] + (["KBUILD_MODPOST_WARN=1"] if compile_only else [])
    log = _make(kdir, args, label)
    ko = src / "memlog.ko"
    if not ko.is_file():
        raise InfraError(f"{label}: the build made no memlog.ko; see {log}")
    text = log.read_text(errors="replace")
    return BuildResult(label, ko, log, parse_warnings(text, compile_only=compile_only))


def build_for_host_headers(release: str | None = None) -> BuildResult:
    """Build against /lib/modules/<release>/build (default: the newest installed headers)."""
    release = release or newest_headers()
    kdir = MODULES / release / "build"
    if not (kdir / "Makefile").exists():
        raise UserError(f"no headers for {release}: apt-get install linux-headers-{release}")
    return build_out_of_tree(kdir, label=f"headers-{release}")


def build_in_tree(series: str) -> BuildResult:
    """Compile drivers/char/memlog in the prepared ``series`` tree (CONFIG_MEMLOG=m, W=1).

    The objects are copied to out/build/<series>-in-tree/; memlog.o exists only
    if the Kconfig and Makefile wiring selected the driver.
    """
    label = f"{series}-in-tree"
    dest = out_dir() / "build" / label
    with kernel_trees.in_tree_driver(series) as (tree, driver):
        log = _make(tree, ["KBUILD_MODPOST_WARN=1", "drivers/char/memlog/"], label)
        if not (driver / "memlog.o").is_file():
            raise InfraError(f"{label}: drivers/char/memlog/memlog.o was not built; see {log}")
        if dest.exists():
            shutil.rmtree(dest)
        dest.mkdir(parents=True)
        for obj in sorted(driver.glob("*.o")):
            shutil.copyfile(obj, dest / obj.name)
    text = log.read_text(errors="replace")
    return BuildResult(label, dest / "memlog.o", log, parse_warnings(text, compile_only=True))
