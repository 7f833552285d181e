"""``invoke build-kernel``: the linux-wintermute kernel, packaged for Debian and Arch.

The steps, each with a progress line and its log under ``out/logs/``:

1. Check what costs nothing first: the fragments, patches and config base
   kernel.yaml names exist, the tools are installed (and, when kernel.yaml is
   loaded, that a Debian source's series can be packaged).
2. The source (:mod:`.source`): fetched once, its checksum checked.
3. The tree (:mod:`.tree`): extracted and patched once (a local tree: copied
   into the cache), checked to have what the packaging needs, then brought up
   to date with this repository (memlog's patch series, the release).  The
   build is named (:mod:`.names`) from its stamp (:mod:`.stamp`), and its
   module signing key placed (a fresh one unless kernel.yaml names one,
   removed from the tree when the build ends).
4. The configuration (:mod:`.kconfig`) and the release check (:mod:`.kbuild`).
5. The compile, through ccache (:func:`kbuild.compile_tree`): ``debian/rules
   build``, rendered first, runs ``make all``; ``make.env`` beside the tree
   keeps its environment for a make by hand.
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
import os
import shlex
import shutil
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from wintermute import config
from wintermute.errors import UserError
from wintermute.kernel import kbuild, kconfig, source, tree
from wintermute.kernel.names import KernelNames, kernel_names
from wintermute.kernel.stamp import abi_stamp, build_stamp
from wintermute.packaging import arch, kernel_arch, kernel_debian
from wintermute.packaging import render as rendering
from wintermute.paths import out_dir
from wintermute.run import elapsed, say

TARGETS = ("debian", "arch")
TIMINGS_FILE = "kernel-build-timings.json"
TOOLS = ("make", "gcc", "bc", "bison", "flex", "openssl", "patch", "tar", "xz", "ccache", "git",
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
    names: KernelNames
    tree: Path
    packages: dict[str, list[Path]]  # target -> its package files in out/kernel/<target>/

    @property
    def release(self) -> str:
        return self.names.release


@dataclass(frozen=True)
class PreparedTree:
    """A tree brought up to date with the repository, and what names its build."""

    source: source.Tarball | Path
    tree: Path
    label: str  # where the source came from, for the changelog and messages
    names: KernelNames
    epoch: int  # the build stamp: the packages' date (the changelog's, SOURCE_DATE_EPOCH)
    env: dict[str, str]  # every make run's environment additions (the ABI stamp's time)
    patches: list[Path]  # kernel.yaml's, applied when the tree was extracted
    memlog_series: list[Path]  # memlog's patch series, applied after them (no cover letter)
    base_config: Path | None  # the config base's file when fetched (base: debian)


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


def description_files(cfg: config.Config, patches: Sequence[Path]) -> list[Path]:
    """kernel.yaml and the files it names: inputs of the build stamp."""
    kernel = cfg.kernel
    base = kconfig.check_base(kernel.config_base, kernel.directory)
    return [
        cfg.source,
        *kconfig.fragment_paths(kernel.fragments, kernel.directory),
        *patches,
        *([base] if base else []),
    ]


def prepare(cfg: config.Config, patches: list[Path]) -> PreparedTree:
    """The source fetched, the tree extracted (or copied) and synced, the build named.

    Call with :func:`tree.locked` held.
    """
    kernel = cfg.kernel
    src = source.resolve(kernel.source)
    if isinstance(src, Path):
        work, label = tree.local_tree(src, patches), str(src)
    else:
        work, label = tree.extracted_tree(src, patches), src.label
    kbuild.check_packageable(work)
    base_config = None
    if kernel.config_base == kconfig.DEBIAN_BASE:
        assert kernel.source.debian_package and kernel.source.suite  # config.load checked
        base_config = source.debian_config(kernel.source.debian_package, kernel.source.suite)
    files = [*description_files(cfg, patches), *([base_config] if base_config else [])]
    epoch = build_stamp(src, files)
    # A fresh key per build: no other build's kernel trusts this one's modules,
    # so the release (and the kernel's timestamp) changes with every input.
    persistent = kernel.signing_key is not None or kernel.signing_key_uri is not None
    abi = abi_stamp(src, files) if persistent else epoch
    env = kbuild.make_env(kernel, abi)
    names = kernel_names(kernel, kbuild.kernel_version(work, env), epoch, abi)
    memlog_series = tree.write_series(work, cfg)
    changed = tree.sync(work, memlog_series=memlog_series, localversion=names.localversion)
    if changed:
        more = f" and {len(changed) - 4} more" if len(changed) > 4 else ""
        say(f"updated in the tree: {', '.join(changed[:4])}{more}")
    return PreparedTree(src, work, label, names, epoch, env, patches, memlog_series, base_config)


def resolved_config(kernel_yaml: Path | None = None) -> dict[str, str]:
    """The configuration kernel.yaml asks for, resolved by the tree's kconfig: no compile.

    Seconds once the source is cached; ``.config`` is not touched.
    """
    cfg = config.load(kernel_yaml)
    patches = check_inputs(cfg.kernel)
    with tree.locked():
        prepared = prepare(cfg, patches)
        return kconfig.parse(
            kconfig.resolve(prepared.tree, cfg.kernel, prepared.env, prepared.base_config)
        )


MAKE_ENV = "make.env"


def write_make_env(work: Path, env: dict[str, str]) -> Path:
    """``make.env`` beside the tree: the build's make environment, for make by hand.

    ``. make.env; make all`` in the tree finds what the build left (another
    KBUILD_BUILD_TIMESTAMP would relink vmlinux).
    """
    path = work.parent / MAKE_ENV
    lines = [f"# the make environment of the last build of {work}\n"]
    lines += [f"export {name}={shlex.quote(value)}\n" for name, value in sorted(env.items())]
    tmp = path.with_name(f".{MAKE_ENV}.tmp")
    tmp.write_text("".join(lines))
    os.replace(tmp, path)
    return path


def context(
    cfg: config.Config, prepared: PreparedTree, compiler: dict[str, str]
) -> dict[str, object]:
    """The templates' context: kernel.yaml's values and the built kernel's names."""
    return {
        **rendering.context(cfg),
        "source_date_epoch": prepared.epoch,
        "copyright_year": time.gmtime(prepared.epoch).tm_year,
        "names": asdict(prepared.names),
        "kernel_version": prepared.names.kernel_version,
        "kernel_source": prepared.label,
        "compiler": compiler,
    }


def build_kernel(
    targets: Sequence[str] = TARGETS, kernel_yaml: Path | None = None, dest: Path | None = None
) -> KernelBuild:
    """Build the kernel kernel.yaml describes; package it for ``targets`` into ``dest``.

    ``dest`` (default ``out/kernel``) is replaced: it holds only this build's packages.
    """
    targets = check_targets(targets)
    cfg = config.load(kernel_yaml)
    kernel = cfg.kernel
    dest = dest or out_dir() / "kernel"
    if dest.exists():
        shutil.rmtree(dest)
    patches = check_inputs(kernel)
    if "arch" in targets:
        arch.check_build_user()
        if kernel.signing_key_uri is not None:
            raise UserError(
                "the Arch packages cannot be signed with a PKCS#11 key yet (makepkg runs as "
                "the build user, without the token): build with --target debian, or name a "
                "key file in kernel.yaml kernel.signing_key"
            )
    timings = Timings(out_dir() / TIMINGS_FILE)
    started = time.monotonic()
    with tree.locked():
        with timings.step("source and tree"):
            prepared = prepare(cfg, patches)
        work, env, names = prepared.tree, prepared.env, prepared.names
        with kbuild.signing_key(kernel) as key:
            try:
                tree.install_key(work, key)
                with timings.step("config"):
                    reuse = not isinstance(prepared.source, Path)  # a local tree: always
                    if kconfig.configure(work, kernel, env, prepared.base_config, reuse=reuse):
                        say(f"new .config in {work}")
                    kbuild.check_release(work, names.release, env)
                write_make_env(work, env)
                ctx = context(cfg, prepared, kbuild.compiler_of(work / ".config"))
                rendered = kernel_debian.render(ctx, work)  # its build step is the compile
                with timings.step("compile"):
                    stats = kbuild.compile_tree(
                        work, env, f"Linux {names.release}", kernel_debian.BUILD_COMMAND
                    )
                say(f"compiled Linux {names.release}; {stats}")
                timings.notes["compile_ccache"] = str(stats)
                packages = _package(ctx, prepared, rendered, targets, key, timings, dest)
            finally:
                tree.remove_key(work)
    timings.steps["total"] = round(time.monotonic() - started, 1)
    timings.path.write_text(json.dumps({"steps": timings.steps, **timings.notes}, indent=1) + "\n")
    say(f"Linux {names.release} packaged in {elapsed(time.monotonic() - started)}: {dest}")
    moved = {t: [dest / p.parent.name / p.name for p in paths] for t, paths in packages.items()}
    return KernelBuild(names, work, moved)


def _package(ctx: dict[str, Any], prepared: PreparedTree, rendered: kernel_debian.Rendered,
             targets: Sequence[str], key: Path | str, timings: Timings,
             dest: Path) -> dict[str, list[Path]]:  # fmt: skip
    """The packages of ``targets``, collected in a staging directory, then moved to ``dest``."""
    staging = Path(tempfile.mkdtemp(prefix=".kernel.", dir=dest.parent))
    staging.chmod(0o755)  # mkdtemp's 0700 would hide the packages from other users
    src, work, names = prepared.source, prepared.tree, prepared.names
    try:
        packages: dict[str, list[Path]] = {}
        with timings.step("debian packages"):
            packages["debian"] = kernel_debian.build(
                ctx, work, prepared.env, staging / "debian", rendered
            )
        if "arch" in targets and isinstance(src, Path):
            say("the Arch packages need a tarball source; kernel.source.tree gets Debian's only")
        elif "arch" in targets:
            with timings.step("arch packages"), tempfile.TemporaryDirectory() as tmp:
                top = tree.tarball_top(work)
                pkg_dir = kernel_arch.render(
                    ctx, src, top, work / ".config", prepared.patches, prepared.memlog_series,
                    Path(tmp),
                )  # fmt: skip
                epoch = int(prepared.env["SOURCE_DATE_EPOCH"])
                assert isinstance(key, Path)  # a PKCS#11 URI is refused for Arch up front
                packages["arch"], arch_stats = kernel_arch.build(
                    pkg_dir, ctx, epoch, key, staging / "arch"
                )
                timings.notes["arch_ccache"] = str(arch_stats)
                kernel_arch.verify_in_scratch_root(packages["arch"], names)
        staging.rename(dest)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return packages
