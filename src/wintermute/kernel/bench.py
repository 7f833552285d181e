"""``invoke bench-kernel``: how much build-kernel costs next to the plain make it wraps.

Measured side by side in one run, on the cached tree of the kernel kernel.yaml
describes, with a persistent signing key (kernel.yaml's, or one made for the
run and named in a copy of the description: the edit loop keeps the release
only with a persistent key, see :mod:`wintermute.kernel.names`):

1. a first ``invoke build-kernel --target debian`` in a scratch copy of this
   repository (with that key: it relinks vmlinux once, and builds all four
   packages);
2. the edit-to-.deb loop: ``memlog_main.c`` edited in the copy (a comment
   appended), then ``invoke build-kernel --target debian`` there again, from
   the edit to a new linux-image .deb (sync, config check, make, the image
   packages, lintian; the headers reused);
3. the plain incremental ``make all`` in the tree after touching
   ``memlog_main.c``, in the environment the build used (``make.env``): what
   a kernel developer would run by hand.

The target: (2) within 2x of (3).  The report also carries each build's steps
(``kernel-build-timings.json``) and the last full ``build-kernel`` of this
checkout.  Reports: ``out/bench/kernel-build.json`` and ``.md``; nothing here
passes or fails on a time (these machines are noisy).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from wintermute import config
from wintermute.errors import InfraError
from wintermute.kernel import kbuild, kconfig, tree
from wintermute.kernel.build import MAKE_ENV, TIMINGS_FILE
from wintermute.paths import REPO, log_dir, out_dir
from wintermute.reproducible import source_date_epoch
from wintermute.run import run, say

LOG = "bench-kernel.log"
TARGET_RATIO = 2.0
# What the scratch copy of the repository needs to run build-kernel.
COPIED = ("drivers", "include", "Documentation", "tools", "src", "templates", "wintermute-kernel",
          "ci", "tasks.py", "pyproject.toml", "README.md")  # fmt: skip


def _timed(cmd: list[str], *, cwd: Path, env: dict[str, str], step: str) -> float:
    started = time.monotonic()
    run(cmd, cwd=cwd, env=env, log=LOG, step=step, heartbeat=60)
    return time.monotonic() - started


def scratch_repo(dest: Path) -> Path:
    """A copy of what build-kernel reads (without git: dated by SOURCE_DATE_EPOCH and the
    files' times, which the copy keeps): edits there leave this checkout alone."""
    for name in COPIED:
        src = REPO / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(src, dest / name)
    return dest


def keyed_description(cfg: config.Config, dest: Path, key: Path | str) -> Path:
    """kernel.yaml itself if it names a signing key; else a copy in ``dest`` (with the
    fragments, patches and base it names) naming ``key``, made for the run."""
    kernel = cfg.kernel
    if kernel.signing_key is not None or kernel.signing_key_uri is not None:
        return cfg.source
    dest.mkdir(parents=True)
    named = [*(f"config/{f}" for f in kernel.fragments), *(f"patches/{p}" for p in kernel.patches)]
    if kconfig.check_base(kernel.config_base, kernel.directory) is not None:
        named.append(kernel.config_base)
    for rel in named:
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(kernel.directory / rel, dest / rel)
    data = yaml.safe_load(cfg.source.read_text())
    data["kernel"]["signing_key"] = str(key)
    (dest / "kernel.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    return dest / "kernel.yaml"


def _make_env(work: Path) -> dict[str, str]:
    """The environment the last build ran make in (its ``make.env``)."""
    env = {}
    for line in (work.parent / MAKE_ENV).read_text().splitlines():
        if line.startswith("export "):
            name, _, value = line.removeprefix("export ").partition("=")
            env[name] = shlex.split(value)[0] if value else ""
    return env


def _packages(out: Path) -> dict[str, list[str]]:
    """The Debian packages of the build in ``out``: all, and those it built (its .changes')."""
    debian = out / "kernel" / "debian"
    every = sorted(p.name for p in debian.glob("*.deb"))
    changes = "".join(p.read_text() for p in debian.glob("*.changes"))
    return {"all": every, "built": [name for name in every if name in changes]}


def _steps(out: Path) -> dict[str, Any]:
    path = out / TIMINGS_FILE
    return json.loads(path.read_text()) if path.is_file() else {}


def measure() -> dict[str, Any]:
    """Run the measurements; return the report's data."""
    cfg = config.load()
    results: dict[str, Any] = {"cpus": os.cpu_count()}
    # kernel.yaml's key, or kbuild's fresh one, kept for the whole run (both builds)
    with (
        tempfile.TemporaryDirectory(prefix="wintermute-bench-") as tmp,
        kbuild.signing_key(cfg.kernel) as run_key,
    ):
        description = keyed_description(cfg, Path(tmp) / "description", run_key)
        keyed = config.load(description)
        assert isinstance(keyed.kernel.signing_key, Path) or keyed.kernel.signing_key_uri
        repo = scratch_repo(Path(tmp) / "repo")
        out = Path(tmp) / "out"
        loop_env = {
            "WINTERMUTE_KERNEL_YAML": str(description),
            "WINTERMUTE_OUT": str(out),
            "SOURCE_DATE_EPOCH": str(source_date_epoch()),  # the copy has no git history
        }
        build = [sys.executable, "-m", "invoke", "build-kernel", "--target", "debian"]
        results["first_build_seconds"] = _timed(
            build, cwd=repo, env=loop_env, step="build-kernel --target debian with the key"
        )
        results["first_build"] = _steps(out)
        first = _packages(out)
        edited = repo / "drivers" / "char" / "memlog" / "memlog_main.c"
        edited.write_text(edited.read_text() + f"/* bench-kernel edit {time.time_ns()} */\n")
        results["edit_to_deb_seconds"] = _timed(
            build, cwd=repo, env=loop_env,
            step="edited memlog_main.c: build-kernel --target debian",
        )  # fmt: skip
        results["edit_loop"] = _steps(out)
        loop = _packages(out)
        releases = {n.split("_")[0] for n in first["built"] if re.match(r"linux-image-\d", n)}
        image = [n for n in loop["built"] if n.split("_")[0] in releases]
        if not image:
            raise InfraError(
                f"the edit loop built no linux-image of the first build's release: {loop}; "
                f"see {LOG}"
            )
        results["release_kept"] = image[0].split("_")[0]
        results["headers_reused"] = sorted(n for n in loop["all"] if n not in loop["built"])
        made = [p for p in tree.build_root().glob(f"*/{tree.TREE}")
                if (p.parent / MAKE_ENV).is_file()]  # fmt: skip
        work = max(made, key=lambda p: (p.parent / MAKE_ENV).stat().st_mtime)
        results["tree"] = str(work)
        env = _make_env(work)
        main_c = work / "drivers" / "char" / "memlog" / "memlog_main.c"
        with tree.locked(), kbuild.signing_key(keyed.kernel) as key:
            tree.install_key(work, key)  # builds take it out of the tree when they end
            try:
                results["make_noop_seconds"] = _timed(
                    ["make", kbuild.jobs(), "all"], cwd=work, env=env,
                    step="plain make, nothing changed",
                )  # fmt: skip
                main_c.touch()
                results["make_incremental_seconds"] = _timed(
                    ["make", kbuild.jobs(), "all"], cwd=work, env=env,
                    step="plain make after touching memlog_main.c",
                )  # fmt: skip
            finally:
                tree.remove_key(work)
            # the tree holds the edited file: the repository's goes back (one more
            # recompile in the next build)
            tree.apply_series(work, tree.write_series(work, cfg))
    results["edit_to_deb_ratio"] = round(
        results["edit_to_deb_seconds"] / results["make_incremental_seconds"], 2
    )
    last = out_dir() / TIMINGS_FILE
    if last.is_file():
        results["last_build_kernel"] = json.loads(last.read_text())
    for name, value in list(results.items()):
        if name.endswith("_seconds"):
            results[name] = round(value, 1)
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
        f"| first `invoke build-kernel --target debian` with the key "
        f"| {results['first_build_seconds']} |",
        f"| plain `make all`, nothing changed | {results['make_noop_seconds']} |",
        "| plain `make all` after touching memlog_main.c "
        f"| {results['make_incremental_seconds']} |",
        f"| edit memlog_main.c -> `invoke build-kernel --target debian` -> new linux-image .deb "
        f"| {results['edit_to_deb_seconds']} |",
        "",
        f"Edit-to-.deb / plain incremental make: **{ratio}x** (target: within {TARGET_RATIO}x; "
        f"{'met' if ratio <= TARGET_RATIO else 'NOT met'}).",
        "",
        f"The edit loop kept the release ({results['release_kept']}) and reused "
        f"{', '.join(results['headers_reused']) or 'no headers package'}.",
    ]
    for name, title in (("first_build", "The first build"), ("edit_loop", "The edit loop")):
        steps = results.get(name, {}).get("steps", {})
        if steps:
            lines += ["", f"## {title}'s steps", "", "| step | seconds |", "|---|---|"]
            lines += [f"| {step} | {secs} |" for step, secs in steps.items()]
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
