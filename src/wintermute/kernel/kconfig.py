"""The kernel configuration: a base plus fragments, merged by the kernel's own tools, checked.

The base is ``defconfig`` or ``tinyconfig`` (kbuild's own targets),
``running`` (the running kernel's configuration,
from ``/proc/config.gz`` or ``/boot/config-$(uname -r)``), ``debian`` (the
configuration of Debian's own amd64 kernel of the same source version, which
the pipeline fetches: :func:`wintermute.kernel.source.debian_config`), or a
file under ``wintermute-kernel/``.  The fragments (``wintermute-kernel/config/*.config``)
are merged onto it in order by ``scripts/kconfig/merge_config.sh -m`` and the
result completed by ``make olddefconfig``.

A tree extracted from a tarball changes only where the build syncs it, so its
configuration is made again only when what it is made from changed (the base,
the fragments, the PKCS#11 URI, memlog's Kconfig, the compiler, the tree's
source: :func:`inputs_digest`, kept beside the tree with ``.config``'s own
digest): the edit loop does not pay for olddefconfig.

merge_config.sh only warns when a requested value did not make it into the
final configuration (an unmet dependency, a misspelt option); here that is an
error naming the option (:func:`unmet`).  The new configuration is made in a
scratch file and replaces ``.config`` only when it differs, so an unchanged
configuration leaves make nothing to redo.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from wintermute.config import Kernel
from wintermute.errors import InfraError, UserError
from wintermute.paths import REPO, log_dir
from wintermute.run import capture, run

LOG = "kernel-config.log"
SCRATCH = ".config.wintermute"
# kernel.yaml's PKCS#11 signing key, as a fragment merged after the others
TOKEN_FRAGMENT = "signing-key-uri.config"
# kbuild's own configuration targets a base may name, the running kernel's, and
# Debian's kernel of the same version (kernel.source.debian only)
MAKE_BASES = ("defconfig", "tinyconfig")
DEBIAN_BASE = "debian"
BASES = (*MAKE_BASES, DEBIAN_BASE, "running")

# Beside the tree: the digest of what made its .config, and .config's own
CONFIG_INPUTS = "config.inputs"
# Kconfig files the build writes into the tree (tree.sync)
SYNCED_KCONFIG = ("drivers/char/Kconfig", "drivers/char/memlog/Kconfig")

_SET = re.compile(r"^(CONFIG_[A-Za-z0-9_]+)=(.*)$")
_UNSET = re.compile(r"^# (CONFIG_[A-Za-z0-9_]+) is not set$")


@dataclass(frozen=True)
class Request:
    option: str
    value: str  # as .config writes it: y, m, "text", 42; "n" for "is not set"
    fragment: str


def parse(text: str) -> dict[str, str]:
    """A .config's or fragment's options -> values ("n" for ``# CONFIG_X is not set``)."""
    values = {}
    for line in text.splitlines():
        if match := _SET.match(line):
            values[match[1]] = match[2]
        elif match := _UNSET.match(line):
            values[match[1]] = "n"
    return values


def requests(fragments: Sequence[Path]) -> list[Request]:
    """What the fragments ask for, the last fragment winning as in merge_config.sh."""
    found: dict[str, Request] = {}
    for fragment in fragments:
        for option, value in parse(fragment.read_text()).items():
            found[option] = Request(option, value, fragment.name)
    return list(found.values())


def unmet(wanted: Sequence[Request], final: dict[str, str]) -> list[str]:
    """Each request the final configuration does not honour, as a phrase naming it.

    An option absent from the final configuration honours "n" and "" (there is
    nothing it could be set to); any other value it does not.
    """
    problems = []
    for req in wanted:
        actual = final.get(req.option)
        if actual == req.value or (actual is None and req.value in ("n", '""')):
            continue
        shown = "is not set" if req.value == "n" else f"={req.value}"
        got = (
            "absent (unknown, or its dependencies unmet)"
            if actual is None
            else ("not set" if actual == "n" else actual)
        )
        problems.append(f"{req.option}{shown} (from {req.fragment}) became {got}")
    return problems


def _shown(path: Path) -> str:
    return str(path.relative_to(REPO) if path.is_relative_to(REPO) else path)


def fragment_paths(names: Sequence[str], directory: Path) -> list[Path]:
    """The fragments' files: ``config/NAME`` beside kernel.yaml (``directory``)."""
    paths = [directory / "config" / name for name in names]
    missing = [p.name for p in paths if not p.is_file()]
    if missing:
        raise UserError(
            f"kernel.yaml kernel.config.fragments names {', '.join(missing)}, "
            f"not in {_shown(directory / 'config')}/"
        )
    return paths


def running_config() -> bytes:
    """The running kernel's configuration."""
    proc = Path("/proc/config.gz")
    if proc.is_file():
        return gzip.decompress(proc.read_bytes())
    release = capture(["uname", "-r"]).strip()
    boot = Path("/boot") / f"config-{release}"
    if boot.is_file():
        return boot.read_bytes()
    raise UserError(
        f"config base 'running': neither /proc/config.gz nor {boot} exists on this machine"
    )


def check_base(base: str, directory: Path) -> Path | None:
    """The file a config base names (None: defconfig, debian, running); UserError if unknown."""
    if base in BASES:
        return None
    path = (directory / base).resolve()
    if not path.is_relative_to(directory) or not path.is_file():
        raise UserError(
            f"unknown config base {base!r} (kernel.yaml kernel.config.base): use "
            f"{', '.join(BASES[:-1])} or {BASES[-1]}, or name a file under {_shown(directory)}/"
        )
    return path


def write_base(
    tree: Path, base: str, directory: Path, scratch: Path, env: dict[str, str],
    fetched: Path | None = None,
) -> None:  # fmt: skip
    """The base configuration into ``scratch`` (``fetched``: the ``debian`` base's file)."""
    path = check_base(base, directory)
    if base == DEBIAN_BASE:
        if fetched is None:
            raise InfraError("config base 'debian' without Debian's configuration fetched")
        scratch.write_bytes(fetched.read_bytes())
    elif path is not None:
        scratch.write_bytes(path.read_bytes())
    elif base in MAKE_BASES:
        run(["make", base], cwd=tree, env=env, log=LOG, step=f"make {base}")
    else:
        scratch.write_bytes(running_config())


def resolve(tree: Path, kernel: Kernel, env: dict[str, str], fetched: Path | None = None) -> str:
    """The configuration ``kernel`` asks for, as ``tree`` resolves it: no compile, seconds.

    The base and the fragments are merged in a scratch file by merge_config.sh
    and completed by ``make olddefconfig``; ``.config`` is not touched.
    ``fetched``: the base's file when the pipeline fetched it (``debian``).
    UserError naming each requested value that did not stick.
    """
    base, fragment_names = kernel.config_base, kernel.fragments
    fragments = fragment_paths(fragment_names, kernel.directory)
    scratch = tree / SCRATCH
    scratch.unlink(missing_ok=True)
    if kernel.signing_key_uri is not None:
        # the token's key instead of the file wintermute.config names, merged last
        token = tree / TOKEN_FRAGMENT
        token.write_text(f'CONFIG_MODULE_SIG_KEY="{kernel.signing_key_uri}"\n')
        fragments.append(token)
    make_env = {**env, "KCONFIG_CONFIG": SCRATCH}
    try:
        write_base(tree, base, kernel.directory, scratch, make_env, fetched)
        run(
            ["scripts/kconfig/merge_config.sh", "-m", SCRATCH, *fragments],
            cwd=tree,
            env=make_env,
            log=LOG,
            step=f"merging {', '.join(fragment_names)} onto {base}",
        )
        run(["make", "olddefconfig"], cwd=tree, env=make_env, log=LOG)
        text = scratch.read_text()
        wanted = requests(fragments)  # the token's fragment too, while it exists
    finally:
        scratch.unlink(missing_ok=True)
        (tree / f"{SCRATCH}.old").unlink(missing_ok=True)
        (tree / TOKEN_FRAGMENT).unlink(missing_ok=True)
    problems = unmet(wanted, parse(text))
    if problems:
        with (log_dir() / LOG).open("a") as log:
            log.writelines(f"E: {problem}\n" for problem in problems)
        raise UserError(
            f"kernel config: {problems[0]}"
            + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else "")
            + f"; see {log_dir() / LOG}"
        )
    return text


def inputs_digest(tree: Path, kernel: Kernel, fetched: Path | None = None) -> str:
    """A digest of everything :func:`resolve` reads that can change between builds of
    a tree extracted from a tarball (whose identity is its ``.ready`` file)."""
    digest = hashlib.sha256()

    def add(label: str, data: bytes) -> None:
        digest.update(f"{label}\0{len(data)}\0".encode())
        digest.update(data)

    add("tree", (tree.parent / ".ready").read_bytes())
    add("base", kernel.config_base.encode())
    path = check_base(kernel.config_base, kernel.directory)
    if kernel.config_base == DEBIAN_BASE and fetched is not None:
        add("base file", fetched.read_bytes())
    elif path is not None:
        add("base file", path.read_bytes())
    elif kernel.config_base == "running":
        add("base file", running_config())
    for fragment in fragment_paths(kernel.fragments, kernel.directory):
        add(f"fragment {fragment.name}", fragment.read_bytes())
    add("uri", (kernel.signing_key_uri or "").encode())
    for rel in SYNCED_KCONFIG:
        add(rel, (tree / rel).read_bytes())
    add("compiler", capture(["gcc", "--version"]).encode())
    return digest.hexdigest()


def _file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def configure(
    tree: Path, kernel: Kernel, env: dict[str, str], fetched: Path | None = None,
    *, reuse: bool = False,
) -> bool:  # fmt: skip
    """Make ``tree/.config`` as :func:`resolve` gives it; True if it changed.

    ``reuse``: keep ``.config`` without resolving it again when neither it nor
    its inputs (:func:`inputs_digest`) changed since it was made (trees
    extracted from a tarball only).  On a UserError ``.config`` is left as it
    was; an unchanged configuration keeps its file (and time), so make has
    nothing to redo.
    """
    final = tree / ".config"
    state = tree.parent / CONFIG_INPUTS
    inputs = inputs_digest(tree, kernel, fetched) if reuse else None
    made = f"{inputs} {_file_digest(final)}\n" if inputs and final.is_file() else None
    if made and state.is_file() and state.read_text() == made:
        return False
    state.unlink(missing_ok=True)
    text = resolve(tree, kernel, env, fetched)
    changed = not (final.is_file() and final.read_text() == text)
    if changed:
        scratch = tree / SCRATCH
        scratch.write_text(text)
        os.replace(scratch, final)
    if inputs:
        state.write_text(f"{inputs} {_file_digest(final)}\n")
    return changed
