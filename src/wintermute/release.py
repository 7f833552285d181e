"""A release of the repository: its source tarball, signed, and its notes (``invoke release``).

:func:`make_release` writes into ``out/release/``, for kernel.yaml's
``memlog.version`` V:

- ``wintermute-V.tar.gz``: ``git archive`` of HEAD under ``wintermute-V/``,
  with :data:`~wintermute.reproducible.DATE_FILE` added at its top (the
  package inputs' date in this clone), so that a build from the unpacked tree
  needs neither git nor ``SOURCE_DATE_EPOCH``.  The same commit gives the same
  bytes: git stamps every member with the commit's time and normalises modes,
  and ``gzip -n`` stores no name and no time;
- ``wintermute-V.tar.gz.asc``: its detached signature by the archive key of
  the release directory (:mod:`wintermute.repository.keys`), checked with
  ``gpgv`` against the public key, exported beside it as :data:`PUBLIC_KEY`;
- ``wintermute-V.md``: README.md's ``## Changes`` entry for V, then the
  subjects of the commits since the previous release tag ``v*``.

Everything is made under a temporary name first, so a failed run leaves no
half-written file.  Releases are made from a git clone; with uncommitted
changes only when asked (``allow_dirty``): the tarball is HEAD's either way.
"""

from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from wintermute import config
from wintermute.errors import InfraError, UserError
from wintermute.paths import REPO, out_dir
from wintermute.repository import keys
from wintermute.reproducible import DATE_FILE, source_date_epoch
from wintermute.run import capture, run, say

LOG = "release.log"
PUBLIC_KEY = "wintermute-release-key.pgp"
# git reads no user's or system's configuration that would change the archive's
# bytes (core.autocrlf, tar.umask; the repository's own are overridden with -c).
GIT_ENV = {"GIT_CONFIG_GLOBAL": "/dev/null", "GIT_CONFIG_NOSYSTEM": "1"}
SHOWN_CHANGES = 5  # uncommitted paths named in the refusal


@dataclass(frozen=True)
class Release:
    """What :func:`make_release` wrote, and the key that signed it."""

    tarball: Path
    signature: Path
    public_key: Path
    notes: Path
    fingerprint: str
    key_origin: str

    @property
    def files(self) -> tuple[Path, ...]:
        return (self.tarball, self.signature, self.public_key, self.notes)


def make_release(
    dest: Path | None = None, *, root: Path = REPO, allow_dirty: bool = False
) -> Release:
    """Release HEAD of the clone ``root`` into ``dest`` (default: ``out/release``)."""
    dest = dest or out_dir() / "release"
    _require_clone(root)
    changed = uncommitted(root)
    if changed and not allow_dirty:
        shown = ", ".join(changed[:SHOWN_CHANGES])
        more = f" and {len(changed) - SHOWN_CHANGES} more" if len(changed) > SHOWN_CHANGES else ""
        raise UserError(
            f"uncommitted changes in {root} ({shown}{more}): commit them, or pass --allow-dirty "
            "to release HEAD without them"
        )
    if changed:
        say(f"releasing HEAD of {root}: its {len(changed)} uncommitted changes are not in it")
    cfg = config.load(root / "wintermute-kernel" / "kernel.yaml")
    version = cfg.memlog.version
    name = f"wintermute-{version}"
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".release.", dir=dest) as tmp:
        stage = Path(tmp)
        tarball = archive(root, name, source_date_epoch(root=root), stage)
        notes = stage / f"{name}.md"
        notes.write_text(release_notes(root, version))
        with keys.archive_key(dest, configured=cfg.repository.signing_key) as key:
            public_key = key.export_public(stage / PUBLIC_KEY)
            signature = sign(tarball, key, public_key)
            signer = (key.fingerprint, key.origin)
        made = [public_key, tarball, signature, notes]
        for path in made:
            path.chmod(0o644)
            path.replace(dest / path.name)
    return Release(*(dest / p.name for p in (tarball, signature, public_key, notes)), *signer)


def _require_clone(root: Path) -> None:
    if not (root / ".git").exists():
        raise UserError(
            f"releases are made from a git clone, and {root} has no .git (an unpacked release "
            "cannot make another)"
        )
    try:
        capture(["git", "rev-parse", "--verify", "-q", "HEAD^{commit}"], cwd=root)
    except InfraError:
        raise UserError(f"{root} has no commit yet: commit what the release holds") from None


def uncommitted(root: Path) -> list[str]:
    """The paths ``git status`` lists in ``root``: changed, staged or untracked (not ignored)."""
    out = capture(["git", "status", "--porcelain", "-z", "--untracked-files=all", "--no-renames"],
                  cwd=root)  # fmt: skip
    return [entry[3:] for entry in out.split("\0") if len(entry) > 3]


def archive(root: Path, name: str, epoch: int, dest_dir: Path) -> Path:
    """``dest_dir/NAME.tar.gz``: HEAD under ``NAME/``, with :data:`DATE_FILE` holding ``epoch``."""
    date_file = dest_dir / DATE_FILE
    date_file.write_text(f"{epoch}\n")
    tar = dest_dir / f"{name}.tar"
    run(["git", "-c", "tar.umask=0022", "-c", "core.autocrlf=false", "archive", "--format=tar",
         f"--prefix={name}/", f"--add-file={date_file}", "-o", tar, "HEAD"],
        log=LOG, cwd=root, env=GIT_ENV,
        step=f"making {name}.tar.gz from HEAD of {root}")  # fmt: skip
    run(["gzip", "-n", "-9", tar], log=LOG)
    date_file.unlink()
    return tar.with_name(f"{tar.name}.gz")


def sign(data: Path, key: keys.ArchiveKey, public_key: Path) -> Path:
    """``data.asc``, an armored detached signature by ``key``, checked with ``gpgv``."""
    signature = data.with_name(f"{data.name}.asc")
    run(["gpg", "--batch", "--no-tty", "--pinentry-mode", "loopback", "--passphrase", "",
         "--yes", "--local-user", key.fingerprint, "--detach-sign", "--armor",
         "--output", signature, data], log=LOG, env=key.env())  # fmt: skip
    try:  # as a user checks it: against the exported key alone
        capture(["gpgv", "--homedir", data.parent, "--keyring", public_key.resolve(),
                 signature, data])  # fmt: skip
    except InfraError as exc:
        raise InfraError(f"the signature of {data.name} does not verify: {exc}") from None
    return signature


def release_notes(root: Path, version: str) -> str:
    """The notes of ``version``: its Changes entry (HEAD's README.md), then the commits."""
    readme = capture(["git", "show", "HEAD:README.md"], cwd=root)
    entry = changes_entry(readme, version)
    previous = previous_tag(root, version)
    log = capture(["git", "log", "--no-merges", "--abbrev=12", "--format=- %s (%h)",
                   f"{previous}..HEAD" if previous else "HEAD"], cwd=root, env=GIT_ENV)  # fmt: skip
    changes = entry or (
        f"README.md's Changes has no entry for {version}: no incompatible change of the device."
    )
    since = f"since {previous}" if previous else "(all: no earlier release tag v*)"
    commits = log or "(none)\n"
    return f"# wintermute {version}\n\n## Changes\n\n{changes}\n\n## Commits {since}\n\n{commits}"


def changes_entry(readme: str, version: str) -> str | None:
    """The lines of README.md's ``- **VERSION**`` entry under ``## Changes``, unindented.

    The entry ends where a line starts in the first column (the next entry,
    or the next section).  None when the section has no entry for ``version``.
    """
    section = re.search(r"^## Changes\n(.*?)(?=^## |\Z)", readme, re.MULTILINE | re.DOTALL)
    if section is None:
        return None
    entry = re.search(
        rf"^- \*\*{re.escape(version)}\*\*([^\n]*)\n(.*?)(?=^\S|\Z)",
        section.group(1),
        re.MULTILINE | re.DOTALL,
    )
    if entry is None:
        return None
    head, body = entry.group(1).strip(), entry.group(2).rstrip().splitlines()
    lines = [head] if head else []
    return "\n".join([*lines, *(line.removeprefix("  ") for line in body)])


def previous_tag(root: Path, version: str) -> str | None:
    """The nearest release tag ``v*`` before HEAD (``vVERSION`` itself excluded), if any."""
    current = f"v{version}"
    tags = capture(["git", "tag", "--list", "v*", "--merged", "HEAD"], cwd=root).split()
    if not [tag for tag in tags if tag != current]:
        return None
    return capture(["git", "describe", "--tags", "--abbrev=0", "--match", "v*",
                    "--exclude", current, "HEAD"], cwd=root).strip()  # fmt: skip
