"""Running kbuild: the environment every kernel build gets, ccache, the signing key, the release.

- Reproducible: ``KBUILD_BUILD_TIMESTAMP`` from ``SOURCE_DATE_EPOCH`` (the
  last commit of the package inputs, :mod:`wintermute.reproducible`),
  ``KBUILD_BUILD_USER`` and ``KBUILD_BUILD_HOST`` from kernel.yaml,
  ``KBUILD_BUILD_VERSION`` (uname -v's ``#N``) the packaging revision,
  ``LOCALVERSION=`` (nothing added to the release), UTC, the C locale, and
  the distribution's ``PATH`` (:data:`SYSTEM_PATH`).
- ccache through Debian's ``PATH`` masquerade (``/usr/lib/ccache`` first in
  ``PATH``, so kbuild's plain ``gcc`` is ccache's), its directory
  ``cache/ccache``; paths are hashed relative (``base_dir=/``,
  ``hash_dir=false``), so a tree elsewhere (the Arch build's) hits the same
  entries.  :class:`CcacheStats` reads the hit rate for the log.
- The module signing key: kernel.yaml's ``kernel.signing_key`` (a file, or a
  PKCS#11 URI that kbuild's extract-cert and sign-file use as it is, through
  OpenSSL's pkcs11 provider), or a fresh one for each build (as kbuild does
  for a new tree and Arch's makepkg for each build), made in a private
  temporary directory with umask 077 and destroyed when the build ends: never
  in the cache, a package, a log or ``out/``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from wintermute.config import Kernel
from wintermute.errors import UserError
from wintermute.paths import cache_dir, log_dir
from wintermute.reproducible import rfc2822
from wintermute.run import capture, run, say

CCACHE_MASQUERADE = "/usr/lib/ccache"
# The distribution's tools only: kbuild records the toolchains it finds in
# .config (a rustc in a user's ~/.cargo/bin changes CONFIG_RUSTC_VERSION), so
# a caller's PATH would make the Debian and Arch builds configure differently.
SYSTEM_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"
# ccache hashes these four (they change the compiler's messages): every build
# sets them alike, or the Arch build's cleared environment would miss every
# entry the Debian build made.
LOCALE_ENV = dict.fromkeys(("LANG", "LC_ALL", "LC_CTYPE", "LC_MESSAGES"), "C.UTF-8")
LOG = "kernel-build.log"
# openssl req's configuration for the per-cache key, as certs/Makefile makes its own.
X509_GENKEY = """\
[ req ]
default_bits = 4096
distinguished_name = req_distinguished_name
prompt = no
string_mask = utf8only
x509_extensions = myexts

[ req_distinguished_name ]
O = linux-wintermute
CN = linux-wintermute module signing key ({host})

[ myexts ]
basicConstraints=critical,CA:FALSE
keyUsage=digitalSignature
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid
"""


def ccache_dir() -> Path:
    return cache_dir() / "ccache"


def timestamp(epoch: int) -> str:
    """KBUILD_BUILD_TIMESTAMP: SOURCE_DATE_EPOCH as ``date -Ru`` (and the PKGBUILD) prints it."""
    return rfc2822(epoch)


def ccache_env(directory: Path) -> dict[str, str]:
    return {
        "CCACHE_DIR": str(directory),
        "CCACHE_BASEDIR": "/",
        "CCACHE_NOHASHDIR": "true",
        "CCACHE_SLOPPINESS": "include_file_ctime,include_file_mtime,time_macros",
        "CCACHE_COMPILERCHECK": "content",
        "CCACHE_MAXSIZE": "6G",
    }


def stamp_env(kernel: Kernel, epoch: int) -> dict[str, str]:
    """What makes two builds of the same inputs identical."""
    return {
        "KBUILD_BUILD_TIMESTAMP": timestamp(epoch),
        # uname -v's "#N": kbuild counts the builds of a tree unless told
        "KBUILD_BUILD_VERSION": str(kernel.release),
        "KBUILD_BUILD_USER": kernel.build_user,
        "KBUILD_BUILD_HOST": kernel.build_host,
        "SOURCE_DATE_EPOCH": str(epoch),
        "LOCALVERSION": "",
        "TZ": "UTC",
        **LOCALE_ENV,
    }


def make_env(kernel: Kernel, epoch: int) -> dict[str, str]:
    """The environment additions of every make run on the tree."""
    if not Path(CCACHE_MASQUERADE, "gcc").exists():
        raise UserError(
            f"ccache is not installed ({CCACHE_MASQUERADE}/gcc); run scripts/setup-host"
        )
    return {
        "PATH": f"{CCACHE_MASQUERADE}:{SYSTEM_PATH}",
        **ccache_env(ccache_dir()),
        **stamp_env(kernel, epoch),
    }


def jobs() -> str:
    return f"-j{os.cpu_count() or 1}"


# --- ccache statistics -----------------------------------------------------------


@dataclass(frozen=True)
class CcacheStats:
    hits: int
    misses: int

    @property
    def rate(self) -> float:
        total = self.hits + self.misses
        return self.hits / total if total else 0.0

    def __str__(self) -> str:
        return f"ccache: {self.hits} hits, {self.misses} misses ({self.rate:.0%} hit rate)"


def zero_ccache(env: dict[str, str]) -> None:
    capture(["ccache", "--zero-stats"], env=env)


def ccache_stats(env: dict[str, str]) -> CcacheStats:
    """Hits and misses since the last :func:`zero_ccache`."""
    values: dict[str, int] = {}
    for line in capture(["ccache", "--print-stats"], env=env).splitlines():
        key, _, value = line.partition("\t")
        if value.strip().isdigit():
            values[key] = int(value)
    hits = values.get("direct_cache_hit", 0) + values.get("preprocessed_cache_hit", 0)
    return CcacheStats(hits, values.get("cache_miss", 0))


# --- the module signing key ------------------------------------------------------


@contextlib.contextmanager
def private_umask() -> Iterator[None]:
    """Files created meanwhile (by this process and its children) are private from the start."""
    old = os.umask(0o077)
    try:
        yield
    finally:
        os.umask(old)


def remove_legacy_key() -> None:
    """Earlier versions kept one key per cache: it goes."""
    legacy = cache_dir() / "kernel-signing"
    if legacy.exists():
        say(f"removing the module signing key earlier builds kept ({legacy})")
        shutil.rmtree(legacy)


@contextlib.contextmanager
def signing_key(kernel: Kernel) -> Iterator[Path | str]:
    """kernel.yaml's signing key (a file or a PKCS#11 URI), or a fresh one, destroyed when
    the ``with`` block ends."""
    remove_legacy_key()
    if kernel.signing_key_uri is not None:
        yield kernel.signing_key_uri
        return
    if kernel.signing_key is not None:
        if not kernel.signing_key.is_file():
            raise UserError(f"{kernel.signing_key}: no such file (kernel.yaml kernel.signing_key)")
        yield kernel.signing_key
        return
    # mkdtemp's directory is 0700; the key is made 0600 under umask 077, which
    # ends with it: the build's own files (packages, logs) get the usual modes.
    with tempfile.TemporaryDirectory(prefix="wintermute-signing-") as tmp:
        key = Path(tmp) / "signing_key.pem"
        with private_umask():
            (Path(tmp) / "x509.genkey").write_text(X509_GENKEY.format(host=os.uname().nodename))
            run(
                ["openssl", "req", "-new", "-nodes", "-utf8", "-sha512", "-days", "36500",
                 "-batch", "-x509", "-config", Path(tmp) / "x509.genkey", "-outform", "PEM",
                 "-out", key, "-keyout", key],
                log=LOG,
                step="making this build's module signing key (destroyed after the build)",
            )  # fmt: skip
        yield key


# --- the release -----------------------------------------------------------------


def kernel_version(tree: Path, env: dict[str, str]) -> str:
    """``make kernelversion``: 7.2.13, 7.3.0-rc3."""
    return capture(["make", "-s", "kernelversion"], cwd=tree, env=env).strip()


def check_release(tree: Path, wanted: str, env: dict[str, str]) -> None:
    """UserError unless the configured tree's release is ``wanted`` (nothing added to it)."""
    actual = capture(["make", "-s", "kernelrelease"], cwd=tree, env=env).strip()
    if actual != wanted:
        raise UserError(
            f"the tree's release is {actual}, not {wanted}: remove other localversion* files "
            "and CONFIG_LOCALVERSION from the tree and the config base"
        )


def compiler_of(config: Path) -> dict[str, str]:
    """The compiler a configured tree was built with, as the headers must name it.

    ``cc``: the versioned command (``gcc-12``: Debian's ``gcc`` is only a link,
    gcc-14 on Debian 13); ``package``: the Debian package that has it.
    """
    values = dict(
        line.split("=", 1) for line in config.read_text().splitlines() if line.startswith("CONFIG_")
    )
    for option, name in (("CONFIG_GCC_VERSION", "gcc"), ("CONFIG_CLANG_VERSION", "clang")):
        version = values.get(option, "0")
        if version.isdigit() and int(version) > 0:
            versioned = f"{name}-{int(version) // 10000}"
            return {"cc": versioned, "package": versioned}
    raise UserError(f"{config}: neither CONFIG_GCC_VERSION nor CONFIG_CLANG_VERSION is set")


def check_packageable(tree: Path) -> None:
    """The packaging needs install-extmod-build and make run-command (Linux 6.x since 2023)."""
    script = tree / "scripts" / "package" / "install-extmod-build"
    if not script.is_file() or "run-command:" not in (tree / "Makefile").read_text():
        raise UserError(
            f"{tree} has no scripts/package/install-extmod-build or make run-command, which "
            "the kernel packages are made with: use a newer kernel (6.12 or later)"
        )


def compile_tree(
    tree: Path, env: dict[str, str], label: str, command: Sequence[str] | None = None
) -> CcacheStats:
    """``make all`` (the image, the modules, sign-file), through ccache; its statistics.

    ``command``: what runs it instead (the packaging's build step).
    """
    zero_ccache(env)
    run(
        list(command) if command else ["make", jobs(), "all"],
        cwd=tree,
        env=env,
        log=LOG,
        step=f"compiling {label}",
        heartbeat=60,
    )
    stats = ccache_stats(env)
    with (log_dir() / LOG).open("a") as fh:
        fh.write(f"# {stats}\n")
    return stats
