"""Build memlog.ko: out of tree against headers or a prepared tree, or in tree.

Every build runs with ``W=1``; its compiler warnings are collected from the
log, and :func:`require_clean` turns any into an error.
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from wintermute.driver_source import stage_driver_source
from wintermute.errors import InfraError, UserError
from wintermute.paths import log_dir, out_dir
from wintermute.run import run

MODULES = Path("/lib/modules")
_WARNING = re.compile(r"^(?P<where>[^\s:]+:\d+(?::\d+)?): warning: (?P<what>.*)$", re.M)
_MODPOST_WARNING = re.compile(r"^WARNING: modpost: (?P<what>.*)$", re.M)


@dataclass(frozen=True)
class BuildResult:
    label: str
    ko: Path
    log: Path
    warnings: list[str] = field(default_factory=list)


def parse_warnings(log_text: str, *, ignore_modpost: bool = False) -> list[str]:
    """Compiler (and, unless ignored, modpost) warnings found in a build log."""
    found = [f"{m['where']}: {m['what']}" for m in _WARNING.finditer(log_text)]
    if not ignore_modpost:
        found += [f"modpost: {m['what']}" for m in _MODPOST_WARNING.finditer(log_text)]
    return found


def require_clean(result: BuildResult) -> BuildResult:
    if result.warnings:
        listed = "; ".join(result.warnings[:5])
        raise InfraError(
            f"{result.label}: {len(result.warnings)} warning(s): {listed}; see {result.log}"
        )
    return result


def newest_headers() -> str:
    """The release of the newest installed linux-headers (the host's own kernel has none)."""
    releases = sorted(
        (d.name for d in MODULES.glob("*") if (d / "build" / "Makefile").exists()),
        key=lambda r: [int(x) if x.isdigit() else x for x in re.split(r"[.-]", r)],
    )
    if not releases:
        raise UserError("no kernel headers installed: apt-get install linux-headers-amd64")
    return releases[-1]


def _make(kdir: Path, args: list[str], label: str) -> Path:
    log = log_dir() / f"build-{label}.log"
    log.unlink(missing_ok=True)
    jobs = str(os.cpu_count() or 1)
    run(["make", "-C", kdir, f"-j{jobs}", "W=1", *args], log=log, step=f"building memlog ({label})")
    return log


def build_out_of_tree(kdir: Path, *, label: str) -> BuildResult:
    """Stage the source under out/build/<label>/src and build it with ``make M=``."""
    src = out_dir() / "build" / label / "src"
    if src.exists():
        shutil.rmtree(src)
    stage_driver_source(src)
    compile_only = not (kdir / "Module.symvers").exists()
    args = [f"M={src}", "modules"] + (["KBUILD_MODPOST_WARN=1"] if compile_only else [])
    log = _make(kdir, args, label)
    ko = src / "memlog.ko"
    if not ko.exists():
        raise InfraError(f"{label}: the build made no memlog.ko; see {log}")
    text = log.read_text(errors="replace")
    return BuildResult(label, ko, log, parse_warnings(text, ignore_modpost=compile_only))


def build_for_host_headers(release: str | None = None) -> BuildResult:
    """Build against /lib/modules/<release>/build (default: the newest installed headers)."""
    release = release or newest_headers()
    kdir = MODULES / release / "build"
    if not (kdir / "Makefile").exists():
        raise UserError(f"no headers for {release}: apt-get install linux-headers-{release}")
    return build_out_of_tree(kdir, label=f"headers-{release}")


def fill_scratch(series: str) -> Path:
    """Put the current driver source where the cached tree's memlog links point."""
    from wintermute.kernel_trees import in_tree_scratch

    driver = in_tree_scratch(series) / "driver"
    if driver.exists():
        shutil.rmtree(driver)
    return stage_driver_source(driver)


def build_in_tree(series: str) -> BuildResult:
    """Compile memlog as part of the prepared ``series`` tree (CONFIG_MEMLOG=m, W=1)."""
    from wintermute.kernel_trees import prepared_tree

    tree = prepared_tree(series)
    driver = fill_scratch(series)
    label = f"{series}-in-tree"
    log = _make(tree, ["KBUILD_MODPOST_WARN=1", "drivers/char/memlog/"], label)
    objects = sorted(driver.glob("*.o"))
    if not any(o.name == "memlog.o" for o in objects):
        raise InfraError(f"{label}: drivers/char/memlog/memlog.o was not built; see {log}")
    return BuildResult(
        label, driver / "memlog.o", log, parse_warnings(log.read_text(errors="replace"))
    )
