"""The VM's Debian root filesystem image (bookworm or trixie), built once and cached.

mmdebstrap builds the tree of a suite (:data:`SUITES`; ``WINTERMUTE_GUEST_SUITE``
chooses for the DKMS tier, bookworm by default) from ``ci/rootfs/packages.txt`` and
``ci/rootfs/sources/<suite>.list`` (never the host's own APT sources), the files of
``ci/rootfs/overlay/`` are laid over it, and ``mkfs.ext4 -d`` turns it into the
one partition of a raw disk image (an MBR label written by ``sfdisk``, the file
system at 1 MiB as a partitioning tool leaves it) without mounting anything.
The guest boots Debian's stock kernel and initrd, copied out of the tree beside
the image, with QEMU's ``-kernel``.  GRUB is in the image but not yet on the
disk: a scenario that boots through a boot loader runs ``grub-install`` in its
guest first, as Debian's installer does (``ci/built_kernel.py``).

The cache entry is keyed by every input, the suite among them, including the
candidate version of ``linux-image-amd64`` (for bookworm the host's, so the
guest kernel always matches the linux-headers the host builds memlog against;
for trixie that of a private index of trixie: such a guest runs only the
tiers where the guest builds memlog itself, with DKMS).  Runs never write to the image: each boot
goes through its own copy-on-write overlay (see ``ci/qemu.py``).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from wintermute.errors import InfraError, UserError
from wintermute.paths import CI_DIR, atomic_dir, cache_dir
from wintermute.run import capture, run

ROOTFS_DIR = CI_DIR / "rootfs"
PACKAGES_FILE = ROOTFS_DIR / "packages.txt"
SOURCES_DIR = ROOTFS_DIR / "sources"
OVERLAY_DIR = ROOTFS_DIR / "overlay"
# the suites a guest can run; the host's own (bookworm) is the default
SUITES = ("bookworm", "trixie")
HOST_SUITE = "bookworm"
SUITE_ENV = "WINTERMUTE_GUEST_SUITE"
IMAGE_SIZE = "4G"  # the root file system's; sparse; the tree is about 900 MB
# Where the partition starts: 1 MiB, as fdisk and Debian's installer align it,
# leaving GRUB's core image room between the MBR and the file system.
PARTITION_START_SECTOR = 2048
SECTOR = 512
# The disk's MBR label: one bootable Linux partition, a fixed disk id (reproducible).
PARTITION_TABLE = (
    f"label: dos\nlabel-id: 0x77696e74\nstart={PARTITION_START_SECTOR}, type=83, bootable\n"
)
# Bump when the build steps below change in a way the inputs do not show.
RECIPE = "6"
# Documentation is never read in the VM; leaving it out makes the image smaller.
DPKG_EXCLUDES = ("/usr/share/man/*", "/usr/share/info/*", "/usr/share/doc/*")
UNITS_ENABLED = (
    "systemd-networkd.service",
    "wintermute-ssh-key.service",
    "ssh.service",
    "serial-getty@ttyS0.service",
)
# Not needed in a throw-away test VM, and slow under TCG.
UNITS_MASKED = (
    "systemd-networkd-wait-online.service",
    "apt-daily.timer",
    "apt-daily-upgrade.timer",
    "e2scrub_all.timer",
    "e2scrub_reap.service",
    "fstrim.timer",
    "man-db.timer",
    "dpkg-db-backup.timer",
    "systemd-timesyncd.service",
    # QEMU runs with -nodefaults: no screen, so no getty on tty1-6 (ttyS0 has one)
    "getty@tty1.service",
    "getty-static.service",
)
# Entries of other keys are removed once nobody has used them for this long
# (a run started just before the inputs changed may still be about to boot one).
PRUNE_AFTER_SECONDS = 3600
LAST_USED = "last-used"
DPKG_STATUS = "dpkg-status"


@dataclass(frozen=True)
class Image:
    """A built root filesystem image and the kernel it boots."""

    path: Path
    kernel: Path
    initrd: Path
    kernel_release: str
    key: str


def guest_suite() -> str:
    """The suite the guest runs: ``$WINTERMUTE_GUEST_SUITE``, else bookworm."""
    suite = os.environ.get(SUITE_ENV, HOST_SUITE)
    if suite not in SUITES:
        raise UserError(f"{SUITE_ENV}={suite!r}: the VM image can be one of {', '.join(SUITES)}")
    return suite


def sources_file(suite: str) -> Path:
    return SOURCES_DIR / f"{suite}.list"


def packages() -> list[str]:
    lines = PACKAGES_FILE.read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def kernel_candidate(suite: str = HOST_SUITE) -> str:
    """The version of linux-image-amd64 the guest of ``suite`` gets.

    For the host's suite, what apt would install here (so the host has its
    headers); for another, what a private index of that suite offers.
    """
    if suite != HOST_SUITE:
        from wintermute import kernel_trees

        kernel_trees.refresh_index(suite)
        found = kernel_trees.policy_candidate(suite, "linux-image-amd64")
        if not found:
            raise InfraError(f"the {suite} index has no linux-image-amd64; see out/logs")
        return found
    for line in capture(["apt-cache", "policy", "linux-image-amd64"]).splitlines():
        key, _, value = line.strip().partition(":")
        if key == "Candidate" and value.strip() not in ("", "(none)"):
            return value.strip()
    raise UserError("apt knows no linux-image-amd64: run apt-get update (or scripts/setup-host)")


def _overlay_files() -> list[Path]:
    return sorted(p for p in OVERLAY_DIR.rglob("*") if p.is_file())


def _guest_mode(path: Path) -> int:
    """0755 or 0644: git keeps only the executable bit, so nothing else may count."""
    return 0o755 if path.stat().st_mode & 0o100 else 0o644


def cache_key(kernel_version: str, suite: str = HOST_SUITE) -> str:
    """A hash of every input of the image."""
    h = hashlib.sha256()
    h.update(f"recipe {RECIPE}\nsuite {suite}\nkernel {kernel_version}\n".encode())
    h.update(f"enabled {UNITS_ENABLED}\nmasked {UNITS_MASKED}\n".encode())
    h.update(f"excludes {DPKG_EXCLUDES}\n".encode())
    h.update(f"disk {PARTITION_TABLE}".encode())
    h.update(PACKAGES_FILE.read_bytes())
    h.update(sources_file(suite).read_bytes())
    for path in _overlay_files():
        rel = path.relative_to(OVERLAY_DIR).as_posix()
        h.update(f"{rel} {_guest_mode(path):o}\n".encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


def _customize(root: Path) -> None:
    """Lay the overlay over the tree and set up services (no chroot needed)."""
    for src in _overlay_files():
        dest = root / src.relative_to(OVERLAY_DIR)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dest)
        dest.chmod(_guest_mode(src))
    run(["systemctl", f"--root={root}", "enable", *UNITS_ENABLED], log="rootfs.log")
    run(["systemctl", f"--root={root}", "mask", *UNITS_MASKED], log="rootfs.log")
    (root / "etc" / "machine-id").write_text("")  # a fresh one each boot


def _mmdebstrap_argv(root: Path, suite: str = HOST_SUITE) -> list[str]:
    return [
        "mmdebstrap",
        "--mode=root",
        "--variant=apt",
        *(f"--dpkgopt=path-exclude={pattern}" for pattern in DPKG_EXCLUDES),
        f"--include={','.join(packages())}",
        suite,
        str(root),
        str(sources_file(suite)),
    ]


def _package_versions(root: Path) -> dict[str, str]:
    out = capture(
        ["dpkg-query", f"--admindir={root}/var/lib/dpkg", "-W", "-f", "${Package}\t${Version}\n"]
    )
    return dict(line.split("\t", 1) for line in out.splitlines() if "\t" in line)


def _build(entry: Path, key: str, kernel_version: str, suite: str = HOST_SUITE) -> None:
    started = time.monotonic()
    root = entry / "root"
    run(
        _mmdebstrap_argv(root, suite),
        log="rootfs.log",
        step=f"building the VM root filesystem ({suite}, linux-image-amd64 {kernel_version}; "
        "a few minutes)",
    )
    _customize(root)
    kernels = sorted((root / "boot").glob("vmlinuz-*"))
    if len(kernels) != 1:
        raise InfraError(f"expected one kernel in the image, found {[k.name for k in kernels]}")
    release = kernels[0].name.removeprefix("vmlinuz-")
    initrd = root / "boot" / f"initrd.img-{release}"
    if not initrd.exists():
        raise InfraError(f"initramfs-tools made no {initrd.name}; see out/logs/rootfs.log")
    shutil.copyfile(kernels[0], entry / "vmlinuz")
    shutil.copyfile(initrd, entry / "initrd.img")
    versions = _package_versions(root)
    # what is installed, for resolving what a later install in the guest needs
    shutil.copyfile(root / "var" / "lib" / "dpkg" / "status", entry / DPKG_STATUS)
    _make_disk(root, entry / "image.raw")
    shutil.rmtree(root)
    meta = {
        "key": key,
        "suite": suite,
        "kernel_release": release,
        "linux_image_amd64": kernel_version,
        "build_seconds": round(time.monotonic() - started, 1),
        "packages": {name: versions.get(name, "") for name in packages()},
        "installed": versions,
    }
    (entry / "meta.json").write_text(json.dumps(meta, indent=1, sort_keys=True) + "\n")


def _make_disk(root: Path, disk: Path) -> None:
    """A raw disk: an MBR label and one ext4 partition holding ``root``, nothing mounted."""
    offset = PARTITION_START_SECTOR * SECTOR
    with disk.open("wb") as fh:  # sparse: the partition's size plus what lies before it
        fh.truncate(offset + _bytes(IMAGE_SIZE))
    run(["sfdisk", "-q", disk], log="rootfs.log", input=PARTITION_TABLE.encode())
    run(
        ["mkfs.ext4", "-q", "-L", "wintermute-root", "-E", f"offset={offset}", "-d", root, disk,
         IMAGE_SIZE],
        log="rootfs.log",
        step="making the disk image (MBR label, ext4 root partition)",
    )  # fmt: skip


def _bytes(size: str) -> int:
    """``4G`` as bytes (mkfs.ext4's binary units)."""
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    return int(size[:-1]) * units[size[-1]] if size[-1] in units else int(size)


def _suite_of(entry: Path) -> str:
    try:
        return str(json.loads((entry / "meta.json").read_text()).get("suite", HOST_SUITE))
    except (OSError, ValueError):
        return ""


def _prune(keep: Path, suite: str = HOST_SUITE) -> None:
    """Remove unfinished builds (we hold the lock) and entries of ``suite`` unused for a while.

    Another suite's image is left alone: it is not an older version of this one.
    """
    now = time.time()
    for old in keep.parent.iterdir():
        if old == keep or not old.is_dir():
            continue
        if old.name.startswith("."):
            shutil.rmtree(old, ignore_errors=True)  # an interrupted build
            continue
        if _suite_of(old) not in ("", suite):
            continue
        stamp = old / LAST_USED
        used = stamp.stat().st_mtime if stamp.exists() else old.stat().st_mtime
        if now - used > PRUNE_AFTER_SECONDS:
            shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def _build_lock(base: Path) -> Iterator[None]:
    """One build at a time per cache: a second caller waits, then reuses the result."""
    base.mkdir(parents=True, exist_ok=True)
    with (base / ".lock").open("w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def ensure_host_headers(release: str) -> None:
    """The host builds memlog for the guest: it needs linux-headers-<release>.

    scripts/setup-host installs them; a test never installs anything here.
    """
    if (Path("/lib/modules") / release / "build" / "Makefile").exists():
        return
    raise UserError(
        f"linux-headers-{release} (the guest kernel's) is not installed here: "
        "run scripts/setup-host"
    )


def dpkg_status(image: Image) -> Path:
    """The image's /var/lib/dpkg/status, kept beside it."""
    return image.path.parent / DPKG_STATUS


def entry_dir(key: str) -> Path:
    return cache_dir() / "rootfs" / key


def ensure_image(suite: str = HOST_SUITE) -> Image:
    """The cached image of ``suite``, built first if there is none.

    Only the host's suite gets its kernel's headers checked on the host: the
    tiers that build memlog on the host for the guest (functional, bench,
    stress) run on it; another suite's guest builds memlog itself (DKMS).
    """
    kernel_version = kernel_candidate(suite)
    key = cache_key(kernel_version, suite)
    entry = entry_dir(key)
    with _build_lock(entry.parent):
        if not (entry / "meta.json").exists():
            if os.geteuid() != 0:
                raise UserError("building the VM image needs root (mmdebstrap --mode=root)")
            with atomic_dir(entry) as tmp:
                _build(tmp, key, kernel_version, suite)
        (entry / LAST_USED).touch()
        _prune(entry, suite)
    meta = json.loads((entry / "meta.json").read_text())
    image = Image(
        path=entry / "image.raw",
        kernel=entry / "vmlinuz",
        initrd=entry / "initrd.img",
        kernel_release=meta["kernel_release"],
        key=key,
    )
    if suite == HOST_SUITE:
        ensure_host_headers(image.kernel_release)
    return image


def guest_kernel_release() -> str:
    """The guest kernel's release (e.g. 6.1.0-56-amd64); builds the image if needed."""
    return ensure_image().kernel_release
