"""``invoke bench-kernel``: how much build-kernel costs next to the plain make it wraps.

Measured side by side in one run, on the cached tree of the last build:

1. the plain incremental ``make all`` after touching ``memlog_main.c`` in the
   tree (what a kernel developer would run by hand);
2. the edit-to-.deb loop: ``memlog_main.c`` edited in a scratch copy of this
   repository (a comment appended), then ``invoke build-kernel --target
   debian`` there, from the edit to a new linux-image .deb (sync, config
   check, make, dpkg-buildpackage, lintian).

The target: (2) within 2x of (1).  The report also carries the steps of the
last full ``build-kernel`` (``out/kernel-build-timings.json``: its compile,
and the Arch build's compile from the ccache the Debian build filled).
Reports: ``out/bench/kernel-build.json`` and ``.md``; nothing here passes or
fails on a time (these machines are noisy).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from wintermute import config
from wintermute.errors import InfraError, UserError
from wintermute.kernel import kbuild, tree
from wintermute.kernel.build import TIMINGS_FILE
from wintermute.paths import REPO, log_dir, out_dir
from wintermute.reproducible import source_date_epoch
from wintermute.run import run, say

LOG = "bench-kernel.log"
TARGET_RATIO = 2.0
# What the scratch copy of the repository needs to run build-kernel.
COPIED = ("drivers", "include", "src", "templates", "wintermute-kernel", "ci", "tasks.py",
          "pyproject.toml", "README.md")  # fmt: skip


def _timed(cmd: list[str], *, cwd: Path, env: dict[str, str], step: str) -> float:
    started = time.monotonic()
    run(cmd, cwd=cwd, env=env, log=LOG, step=step, heartbeat=60)
    return time.monotonic() - started


def _scratch_repo(dest: Path) -> Path:
    """A copy of what build-kernel reads, with the repository's git history for the date."""
    for name in COPIED:
        src = REPO / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(src, dest / name)
    return dest


def measure() -> dict[str, Any]:
    """Run the two measurements; return the report's data."""
    cfg = config.load()
    kernel = cfg.kernel
    cached = [p for p in tree.build_root().glob("*/linux") if (p.parent / tree.READY).is_file()]
    if kernel.source.tree is not None:
        cached = [kernel.source.tree]
    if len(cached) != 1 or not (cached[0] / "vmlinux").is_file():
        raise UserError("no built kernel tree in the cache: run invoke build-kernel first")
    work = cached[0]
    epoch = source_date_epoch()
    env = kbuild.make_env(kernel, epoch)
    main_c = work / "drivers" / "char" / "memlog" / "memlog_main.c"
    results: dict[str, Any] = {"tree": str(work), "cpus": os.cpu_count()}
    with tree.locked(), kbuild.signing_key(kernel) as key:
        # builds take their key out of the tree when they end: the plain make needs one
        tree.install_key(work, key)
        try:
            results["make_noop_seconds"] = _timed(
                ["make", kbuild.jobs(), "all"], cwd=work, env=env,
                step="plain make, nothing changed but the key",
            )  # fmt: skip
            main_c.touch()
            results["make_incremental_seconds"] = _timed(
                ["make", kbuild.jobs(), "all"], cwd=work, env=env,
                step="plain make after touching memlog_main.c",
            )  # fmt: skip
        finally:
            tree.remove_key(work)
    with tempfile.TemporaryDirectory(prefix="wintermute-bench-") as tmp:
        repo = _scratch_repo(Path(tmp) / "repo")
        edited = repo / "drivers" / "char" / "memlog" / "memlog_main.c"
        edited.write_text(edited.read_text() + f"/* bench-kernel edit {time.time_ns()} */\n")
        loop_env = {
            "WINTERMUTE_OUT": str(Path(tmp) / "out"),
            "SOURCE_DATE_EPOCH": str(epoch),  # the copy has no git history
        }
        results["edit_to_deb_seconds"] = _timed(
            [sys.executable, "-m", "invoke", "build-kernel", "--target", "debian"],
            cwd=repo, env=loop_env, step="edited memlog_main.c: build-kernel --target debian",
        )  # fmt: skip
        debs = sorted((Path(tmp) / "out" / "kernel" / "debian").glob("linux-image-*.deb"))
        if not debs:
            raise InfraError(f"the edit-to-.deb loop made no linux-image .deb; see {LOG}")
    # the tree now holds the edited file: put the repository's back (one more recompile later)
    with tree.locked():
        tree.copy_driver(work, cfg.memlog.version)
    results["edit_to_deb_ratio"] = round(
        results["edit_to_deb_seconds"] / results["make_incremental_seconds"], 2
    )
    last = out_dir() / TIMINGS_FILE
    if last.is_file():
        results["last_build_kernel"] = json.loads(last.read_text())
    for key, value in list(results.items()):
        if key.endswith("_seconds"):
            results[key] = round(value, 1)
    return results


def report(results: dict[str, Any]) -> Path:
    """Write out/bench/kernel-build.json and .md; return the .md."""
    dest = out_dir() / "bench"
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "kernel-build.json").write_text(json.dumps(results, indent=1) + "\n")
    ratio = results["edit_to_deb_ratio"]
    lines = [
        "# build-kernel next to the plain make it wraps",
        "",
        f"Measured side by side in one run on {results['cpus']} CPUs, tree {results['tree']}.",
        "",
        "| what | seconds |",
        "|---|---|",
        f"| plain `make all`, nothing changed | {results['make_noop_seconds']} |",
        "| plain `make all` after touching memlog_main.c "
        f"| {results['make_incremental_seconds']} |",
        f"| edit memlog_main.c -> `invoke build-kernel --target debian` -> new linux-image .deb "
        f"| {results['edit_to_deb_seconds']} |",
        "",
        f"Edit-to-.deb / plain incremental make: **{ratio}x** (target: within {TARGET_RATIO}x; "
        f"{'met' if ratio <= TARGET_RATIO else 'NOT met'}).",
    ]
    last = results.get("last_build_kernel")
    if last:
        steps = last.get("steps", {})
        lines += ["", "## The last full `invoke build-kernel` (out/kernel-build-timings.json)", ""]
        lines += ["| step | seconds |", "|---|---|"]
        lines += [f"| {name} | {secs} |" for name, secs in steps.items()]
        for key in ("compile_ccache", "arch_ccache"):
            if key in last:
                lines.append(f"\n{key.replace('_', ' ')}: {last[key]}")
        if "compile" in steps and "arch packages" in steps and steps["compile"]:
            share = steps["arch packages"] / steps["compile"]
            lines.append(
                f"\nArch build (makepkg from the tarball, through the Debian build's ccache) / "
                f"the Debian build's compile: {share:.2f} (target: under 0.25 of a first, "
                "cold compile; see compile_ccache for how cold that compile was)."
            )
    path = dest / "kernel-build.md"
    path.write_text("\n".join(lines) + "\n")
    say(f"report: {path} (log: {log_dir() / LOG})")
    return path


def bench() -> Path:
    return report(measure())
