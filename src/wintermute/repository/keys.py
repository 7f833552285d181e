"""The OpenPGP key that signs a package repository (APT's InRelease, pacman's .sig).

One key per repository directory, made the first time that directory is
published to and kept afterwards, so users who trusted it keep trusting the
repository.  The private part lives in a GnuPG home under :func:`keys_dir`
(mode 0700, never under ``out/`` and never in a package); the repository gets
only the public key.  A key given by the user is used instead when present:
``WINTERMUTE_ARCHIVE_KEY`` (a file holding an exported secret key, armored or
not), else kernel.yaml's ``repository.signing_key``.

Every signature, the key's own bindings included, uses SHA-512: apt's sqv
(Debian 13) refuses SHA-1 and pacman's gpgme follows the key's preferences.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from wintermute.errors import InfraError, UserError
from wintermute.paths import atomic_dir
from wintermute.run import capture, run

ENV_KEY = "WINTERMUTE_ARCHIVE_KEY"
ENV_KEYS_DIR = "WINTERMUTE_KEYS"
LOG = "archive-key.log"
# gpg.conf of every home made here: SHA-512 for data and for the key's own
# certifications, and preferences that say so to whoever encrypts or verifies.
GPG_CONF = """\
personal-digest-preferences SHA512 SHA384 SHA256
cert-digest-algo SHA512
default-preference-list SHA512 SHA384 SHA256 AES256 AES192 AES ZLIB BZIP2 ZIP Uncompressed
"""


@dataclass(frozen=True)
class ArchiveKey:
    """A signing key ready for gpg, reprepro and repo-add (``GNUPGHOME`` = ``home``)."""

    home: Path
    fingerprint: str
    origin: str  # where it came from, for messages: "made for DIR", "$WINTERMUTE_ARCHIVE_KEY", ...

    def env(self) -> dict[str, str]:
        return {"GNUPGHOME": str(self.home)}

    def export_public(self, dest: Path) -> Path:
        """Write the public key as a binary keyring (``Signed-By``, ``pacman-key --add``)."""
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".{dest.name}.tmp")
        tmp.unlink(missing_ok=True)
        run(_gpg(self.home, ["--export", "--export-options", "export-minimal",
                             "--output", str(tmp), self.fingerprint]), log=LOG)  # fmt: skip
        if not tmp.is_file() or tmp.stat().st_size == 0:  # gpg exports nothing, exit 0
            raise InfraError(f"gpg exported no public key {self.fingerprint} from {self.home}")
        tmp.chmod(0o644)
        tmp.replace(dest)
        return dest


def keys_dir() -> Path:
    """Where made keys are kept: ``$WINTERMUTE_KEYS``, else ``$XDG_DATA_HOME/wintermute/keys``.

    Not the cache: a cache may be wiped, and a repository whose key changes
    is refused by every machine that trusted it.
    """
    env = os.environ.get(ENV_KEYS_DIR)
    if env:
        return Path(env)
    base = Path(os.environ.get("XDG_DATA_HOME", Path.home() / ".local" / "share"))
    return base / "wintermute" / "keys"


def home_for(repository: Path) -> Path:
    """The GnuPG home holding the key made for ``repository`` (one per resolved path)."""
    resolved = str(repository.resolve())
    # a short name: gpg-agent's socket lives in the home, and a socket path
    # longer than 107 bytes fails ("No agent running")
    return keys_dir() / hashlib.sha256(resolved.encode()).hexdigest()[:16]


@contextlib.contextmanager
def archive_key(
    repository: Path, *, configured: Path | None = None, uid: str = "Wintermute archive"
) -> Iterator[ArchiveKey]:
    """The key that signs ``repository``, for the ``with`` block.

    A given key (``$WINTERMUTE_ARCHIVE_KEY``, else ``configured``) is imported
    into a private temporary home that is deleted afterwards; otherwise the
    key made for ``repository`` is used, and made first if there is none.
    """
    given = os.environ.get(ENV_KEY)
    source, origin = (Path(given), f"${ENV_KEY}") if given else (configured, "kernel.yaml")
    if source is not None:
        if not source.is_file():
            raise UserError(f"the archive signing key {source} ({origin}) is not a file")
        with _private_dir() as home:
            _write_conf(home)
            run(_gpg(home, ["--import", str(source)]), log=LOG)
            key = ArchiveKey(home, _secret_fingerprint(home, str(source)), f"{source} ({origin})")
            try:
                yield key
            finally:
                _stop_agent(home)
        return
    home = home_for(repository)
    if not (home / "fingerprint").is_file():
        _make(home, uid, repository)
    key = ArchiveKey(home, (home / "fingerprint").read_text().strip(), f"made for {repository}")
    try:
        yield key
    finally:
        _stop_agent(home)


def _make(home: Path, uid: str, repository: Path) -> None:
    """A new ed25519 signing key in ``home``, written atomically (all or nothing)."""
    old = os.umask(0o077)
    try:
        home.parent.mkdir(parents=True, exist_ok=True)
        with atomic_dir(home) as tmp:
            tmp.chmod(0o700)
            _write_conf(tmp)
            run(
                _gpg(tmp, ["--quick-generate-key", f"{uid} for {repository.resolve()}",
                           "ed25519", "sign", "never"]),
                log=LOG,
                step=f"making the archive signing key for {repository} (kept in {home})",
            )  # fmt: skip
            fingerprint = _secret_fingerprint(tmp, "the new key")
            (tmp / "fingerprint").write_text(fingerprint + "\n")
            # the directory it signs, for whoever looks into keys_dir()
            (tmp / "repository").write_text(f"{repository.resolve()}\n")
            _stop_agent(tmp)
    finally:
        os.umask(old)


@contextlib.contextmanager
def _private_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="wintermute-key."))  # mode 0700
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _write_conf(home: Path) -> None:
    (home / "gpg.conf").write_text(GPG_CONF)
    # no passphrase to ask for: the agent must never try a pinentry
    (home / "gpg-agent.conf").write_text("allow-loopback-pinentry\n")


def _gpg(home: Path, args: list[str]) -> list[str]:
    return ["gpg", "--homedir", str(home), "--batch", "--no-tty", "--pinentry-mode", "loopback",
            "--passphrase", "", *args]  # fmt: skip


def _secret_fingerprint(home: Path, what: str) -> str:
    out = capture(_gpg(home, ["--with-colons", "--list-secret-keys"]))
    fingerprints = []
    expect = False
    for line in out.splitlines():
        fields = line.split(":")
        if fields[0] == "sec":
            expect = True
        elif fields[0] == "fpr" and expect:
            fingerprints.append(fields[9])
            expect = False
    if len(fingerprints) != 1:
        raise UserError(f"{what} must hold exactly one secret key, found {len(fingerprints)}")
    return fingerprints[0]


def _stop_agent(home: Path) -> None:
    """Stop the gpg-agent gpg started for ``home`` (it would outlive the build)."""
    with contextlib.suppress(Exception):
        run(["gpgconf", "--homedir", str(home), "--kill", "gpg-agent"], log=LOG)
