"""Every name and version of a linux-wintermute build, from kernel.yaml and the build's inputs.

One function, :func:`kernel_names`, read by the Debian and Arch packaging, the
build and the tests.  What goes in:

- the kernel's own version (``make kernelversion``: ``7.2.13``, ``7.3.0-rc3``);
- the **build stamp**: the time of the newest input of the build
  (:func:`wintermute.kernel.stamp.build_stamp`: the kernel source's own date,
  the commit time of the repository's inputs or, for an edited file, its
  modification time), written ``YYYYMMDDhhmmss`` in UTC.  Any changed input
  (a new Debian revision of the source, a config fragment, a patch, the
  driver, a template) makes it newer, so it sorts above every earlier build;
- the **ABI stamp**: the same without the driver's C sources and the
  packaging (:func:`wintermute.kernel.stamp.abi_stamp`).  It names the
  release when kernel.yaml names a persistent signing key; with the default,
  a fresh key per build, the release takes the build stamp (each build's
  modules are signed by a key no other build's kernel trusts);
- kernel.yaml's ``kernel.package``, ``kernel.release`` (the packaging
  revision) and ``kernel.flavour``.

What comes out, for ``linux-wintermute`` 7.2.13, stamp 20261206153012,
revision 1, flavour ``debug`` (and the ABI stamp the same):

======================  =============================================
kernel release          ``7.2.13-20261206153012-wintermute-debug``
                        (``uname -r``; the module directory; the ABI
                        stamp's time)
Debian version          ``7.2.13-20261206153012.1`` (an rc:
                        ``7.3.0~rc3-...``, below the final release)
Debian packages         ``linux-image-<release>``,
                        ``linux-headers-<release>``, and the
                        metapackages ``linux-image-wintermute-debug``
                        and ``linux-headers-wintermute-debug``
Arch pkgbase            ``linux-wintermute-debug`` (and ``-headers``)
Arch pkgver, pkgrel     ``7.2.13``, ``20261206153012.1`` (an rc:
                        ``7.3.0rc3``, which vercmp sorts below 7.3.0)
======================  =============================================

The release changes whenever the module ABI can (and, with fresh keys, with
every build), so two builds with different module ABIs never share a module
directory and a new Debian build installs beside the running one; the
metapackages move ``apt-get upgrade`` to it, and ``apt-get autoremove``
removes the builds no metapackage depends on any more, as with Debian's own
kernels.  A build that changed only the driver's C sources (or the
packaging), with a persistent key, keeps the release and gets a newer
version: its linux-image upgrades in place, and its modules load into the
running kernel of the same release, which trusts their key.  On Arch,
pacman replaces the older build (one pkgbase).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

from wintermute.config import Kernel
from wintermute.errors import UserError

# make kernelversion: X.Y.Z, optionally -rcN
_VERSION = re.compile(r"^(?P<base>\d+\.\d+\.\d+)(?:-(?P<rc>rc\d+))?$")


@dataclass(frozen=True)
class KernelNames:
    kernel_version: str  # make kernelversion: 7.2.13, 7.3.0-rc3
    stamp: str  # the build stamp, YYYYMMDDhhmmss (UTC)
    abi_stamp: str  # the ABI stamp, YYYYMMDDhhmmss (UTC): the release's
    release: str  # uname -r, the module directory's name
    suffix: str  # wintermute, wintermute-debug: the release's end, the metapackages'
    localversion: tuple[str, str]  # the two localversion files' contents
    deb_version: str  # every Debian package's version
    image: str
    headers: str
    image_meta: str
    headers_meta: str
    pkgbase: str  # Arch
    pkgver: str
    pkgrel: str

    @property
    def debian_packages(self) -> tuple[str, ...]:
        return (self.image, self.headers, self.image_meta, self.headers_meta)

    @property
    def arch_packages(self) -> tuple[str, ...]:
        return (self.pkgbase, f"{self.pkgbase}-headers")


def stamp_text(epoch: int) -> str:
    """The build stamp as it appears in names: ``YYYYMMDDhhmmss``, UTC."""
    return time.strftime("%Y%m%d%H%M%S", time.gmtime(epoch))


def kernel_names(
    kernel: Kernel, kernel_version: str, stamp: int, abi_stamp: int | None = None
) -> KernelNames:
    """The names and versions of the build of ``kernel`` at ``kernel_version``, ``stamp``.

    ``abi_stamp`` (at most ``stamp``; default ``stamp``) names the release.
    """
    match = _VERSION.match(kernel_version)
    if not match:
        raise UserError(
            f"the kernel tree's version {kernel_version!r} is not X.Y.Z or X.Y.Z-rcN: "
            "remove EXTRAVERSION from its Makefile"
        )
    base, rc = match["base"], match["rc"]
    when = stamp_text(stamp)
    abi = stamp_text(stamp if abi_stamp is None else min(abi_stamp, stamp))
    flavour = f"-{kernel.flavour}" if kernel.flavour else ""
    suffix = f"{kernel.package.removeprefix('linux-')}{flavour}"
    release = f"{kernel_version}-{abi}-{suffix}"
    deb_upstream = f"{base}~{rc}" if rc else base
    return KernelNames(
        kernel_version=kernel_version,
        stamp=when,
        abi_stamp=abi,
        release=release,
        suffix=suffix,
        localversion=(f"-{abi}", f"-{suffix}"),
        deb_version=f"{deb_upstream}-{when}.{kernel.release}",
        image=f"linux-image-{release}",
        headers=f"linux-headers-{release}",
        image_meta=f"linux-image-{suffix}",
        headers_meta=f"linux-headers-{suffix}",
        pkgbase=f"{kernel.package}{flavour}",
        pkgver=f"{base}{rc}" if rc else base,
        pkgrel=f"{when}.{kernel.release}",
    )
