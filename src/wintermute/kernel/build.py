"""``invoke build-kernel``: the linux-wintermute kernel, packaged for Debian and Arch.

The steps, each with a progress line and its log under ``out/logs/``:

1. Check what costs nothing first: the fragments, patches and config base
   kernel.yaml names exist, the tools are installed.
2. The source (:mod:`.source`): fetched once, its checksum checked.
3. The tree (:mod:`.tree`): extracted and patched once, then brought up to
   date with this repository (driver, UAPI header, wiring, release, key).
4. The configuration (:mod:`.kconfig`) and the release check (:mod:`.kbuild`).
5. The compile, through ccache (:func:`kbuild.compile_tree`).
6. The Debian packages (:mod:`wintermute.packaging.kernel_debian`), then the
   Arch ones (:mod:`wintermute.packaging.kernel_arch`), checked by pacman in a
   scratch root.

Packages are collected in a staging directory and moved to ``out/kernel/``
only when every step succeeded: a failed build leaves no package there (the
previous build's are removed when a build starts).  How long each step took
goes to ``out/kernel-build-timings.json``.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from wintermute import config
from wintermute.errors import UserError
from wintermute.kernel import kbuild, kconfig, source, tree
from wintermute.packaging import arch, kernel_arch, kernel_debian
from wintermute.packaging import render as rendering
from wintermute.packaging.reproducible import source_date_epoch
from wintermute.paths import out_dir
from wintermute.run import elapsed, say

TARGETS = ("debian", "arch")
TIMINGS_FILE = "kernel-build-timings.json"
TOOLS = ("make", "gcc", "bc", "bison", "flex", "openssl", "patch", "tar", "xz", "ccache",
         "dpkg-buildpackage", "lintian")  # fmt: skip


@dataclass
class Timings:
    """Seconds per step, written to ``out/kernel-build-timings.json`` after each."""

    path: Path
    steps: dict[str, float] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        started = time.monotonic()
        yield
        self.steps[name] = round(time.monotonic() - started, 1)
        self.path.write_text(json.dumps({"steps": self.steps, **self.notes}, indent=1) + "\n")


@dataclass(frozen=True)
class KernelBuild:
    release: str
    tree: Path
    packages: dict[str, list[Path]]  # target -> its package files in out/kernel/<target>/


def check_targets(targets: Sequence[str]) -> tuple[str, ...]:
    unknown = [t for t in targets if t not in TARGETS]
    if unknown or not targets:
        raise UserError(
            f"unknown target {', '.join(unknown) or '(none)'}: choose from {', '.join(TARGETS)}"
        )
    return tuple(t for t in TARGETS if t in targets)


def check_inputs(kernel: config.Kernel) -> list[Path]:
    """What kernel.yaml names must exist; the patch files, in order."""
    kconfig.fragment_paths(kernel.fragments, kernel.directory)
    kconfig.check_base(kernel.config_base, kernel.directory)
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        raise UserError(f"missing {', '.join(missing)}; run scripts/setup-host first")
    return tree.patch_paths(kernel.patches, kernel.directory)


def context(cfg: config.Config, release: str, version: str, label: str) -> dict[str, object]:
    """The templates' context: kernel.yaml's values and the built kernel's names."""
    return {
        **rendering.context(cfg),
        "kernel_release": release,
        "kernel_version": version,
        "kernel_deb_version": f"{version}-{cfg.kernel.release}",
        "kernel_source": label,
    }


def build_kernel(targets: Sequence[str] = TARGETS, kernel_yaml: Path | None = None) -> KernelBuild:
    """Build the kernel kernel.yaml describes and package it for ``targets``."""
    targets = check_targets(targets)
    cfg = config.load(kernel_yaml)
    kernel = cfg.kernel
    dest = out_dir() / "kernel"
    if dest.exists():
        shutil.rmtree(dest)
    patches = check_inputs(kernel)
    if "arch" in targets:
        arch.check_build_user()
    epoch = source_date_epoch()
    timings = Timings(out_dir() / TIMINGS_FILE)
    started = time.monotonic()
    with tree.locked():
        with timings.step("source"):
            src = source.resolve(kernel.source)
        with timings.step("tree"):
            if isinstance(src, Path):
                work, label = tree.local_tree(src, patches), str(src)
            else:
                work, label = tree.extracted_tree(src, patches), src.label
            key = kbuild.signing_key(kernel)
            changed = tree.sync(
                work, version=cfg.memlog.version, release=kernel.release, signing_key=key
            )
        if changed:
            more = f" and {len(changed) - 4} more" if len(changed) > 4 else ""
            say(f"updated in the tree: {', '.join(changed[:4])}{more}")
        env = kbuild.make_env(kernel, epoch)
        with timings.step("config"):
            if kconfig.configure(work, kernel, env):
                say(f"new .config in {work}")
            release, version = kbuild.check_release(work, kernel, env)
        with timings.step("compile"):
            stats = kbuild.compile_tree(work, env, f"Linux {release}")
        say(f"compiled Linux {release}; {stats}")
        timings.notes["compile_ccache"] = str(stats)
        ctx = context(cfg, release, version, label)
        staging = Path(tempfile.mkdtemp(prefix=".kernel.", dir=dest.parent))
        staging.chmod(0o755)  # mkdtemp's 0700 would hide the packages from other users
        try:
            packages: dict[str, list[Path]] = {}
            with timings.step("debian packages"):
                packages["debian"] = kernel_debian.build(ctx, work, env, staging / "debian")
            if "arch" in targets and isinstance(src, Path):
                say(
                    "the Arch packages need a tarball source; kernel.source.tree gets Debian's only"
                )
            elif "arch" in targets:
                with timings.step("arch packages"), tempfile.TemporaryDirectory() as tmp:
                    top = tree.tarball_top(work)
                    pkg_dir = kernel_arch.render(
                        ctx, src, top, work / ".config", cfg.memlog.version, patches, Path(tmp)
                    )
                    packages["arch"], arch_stats = kernel_arch.build(
                        pkg_dir, ctx, epoch, key, src.path.name, staging / "arch"
                    )
                    timings.notes["arch_ccache"] = str(arch_stats)
                    kernel_arch.verify_in_scratch_root(packages["arch"], kernel.package, release)
            staging.rename(dest)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    timings.steps["total"] = round(time.monotonic() - started, 1)
    timings.path.write_text(json.dumps({"steps": timings.steps, **timings.notes}, indent=1) + "\n")
    say(f"Linux {release} packaged in {elapsed(time.monotonic() - started)}: {dest}")
    moved = {t: [dest / p.parent.name / p.name for p in paths] for t, paths in packages.items()}
    return KernelBuild(release, work, moved)
