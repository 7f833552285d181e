"""Facts about the signed APT repository the guest installed memlog from.

The guest added it as the README tells a user to: ``apt-get install`` of the
published ``<name>-archive-keyring.deb``, then the published ``<suite>.sources``
copied into ``/etc/apt/sources.list.d/`` (ci.package_verify.Guest.add_signed_repo).
Signature checking is apt's default (no ``trusted=yes`` anywhere); the same
packages signed by another key are refused.
"""

from __future__ import annotations

import shlex
from typing import Any

import pytest

from ci.package_verify import GUEST_OTHER_KEY, GUEST_SIGNED, GUEST_SOURCES
from wintermute.repository import apt

OTHER_SOURCES = "/etc/apt/sources.list.d/other-key.sources"


def _keyring(cfg: Any) -> str:
    return f"/usr/share/keyrings/{apt.keyring_name(cfg)}.pgp"


def test_the_keyring_package_installs_the_archive_key_under_usr_share_keyrings(
    final_host: Any, cfg: Any
) -> None:
    """dpkg says the keyring package owns the key file, and the file is the published key."""
    keyring = _keyring(cfg)
    owner = final_host.check_output(f"dpkg-query -S {keyring}")
    assert owner == f"{apt.keyring_name(cfg)}: {keyring}"
    served = final_host.check_output(f"sha256sum < {GUEST_SIGNED}/{apt.keyring_name(cfg)}.pgp")
    assert final_host.check_output(f"sha256sum < {keyring}") == served


def test_the_sources_file_is_deb822_with_signed_by_the_keyring_and_no_trust_override(
    final_host: Any, cfg: Any
) -> None:
    """The installed .sources names the keyring; nothing lets apt skip its signature.

    (The second kernel's flat repository, /srv/apt/kernel, is trusted=yes: it
    is Debian's packages copied in, not this project's repository.)
    """
    text = final_host.file(GUEST_SOURCES).content_string
    fields = dict(
        line.split(": ", 1) for line in text.splitlines() if line and not line.startswith("#")
    )
    assert fields["Types"] == "deb"
    assert fields["Signed-By"] == _keyring(cfg)
    assert fields["Suites"] == final_host.check_output(". /etc/os-release; echo $VERSION_CODENAME")
    assert "trusted" not in text.lower()
    listed = final_host.run("grep -rli trusted /etc/apt/sources.list.d/ /etc/apt/apt.conf.d/")
    assert GUEST_SOURCES not in listed.stdout
    for path in listed.stdout.split():
        assert GUEST_SIGNED not in final_host.file(path).content_string, path
    insecure = final_host.run("apt-config dump | grep -i -e AllowInsecure -e AllowUnauthenticated")
    assert '"true"' not in insecure.stdout.lower(), insecure.stdout


def test_apt_installed_memlog_dkms_from_the_signed_repository(final_host: Any, cfg: Any) -> None:
    """apt-cache policy shows the installed memlog-dkms coming from the repository's origin."""
    policy = final_host.check_output(f"apt-cache policy {cfg.packages.dkms}")
    assert f"file:{GUEST_SIGNED}" in policy or f"file://{GUEST_SIGNED}" in policy
    assert f"o={cfg.repository.name}" in final_host.check_output("apt-cache policy")


def test_the_inrelease_signature_verifies_with_gpgv_against_the_keyring_alone(
    final_host: Any, cfg: Any
) -> None:
    """gpgv with only the packaged keyring accepts what apt fetched (SHA-512 signature)."""
    suite = final_host.check_output(". /etc/os-release; echo $VERSION_CODENAME")
    inrelease = f"{GUEST_SIGNED}/dists/{suite}/InRelease"
    verified = final_host.run(f"gpgv --keyring {_keyring(cfg)} {inrelease}")
    assert verified.rc == 0, verified.stderr
    assert "Hash: SHA512" in final_host.file(inrelease).content_string


@pytest.fixture
def other_key_update(final_host: Any, guest: Any, cfg: Any) -> Any:
    """apt-get update with a source of the same packages, signed by another key."""
    guest.vm.put(guest.signed["other-key"], GUEST_OTHER_KEY)
    suite = final_host.check_output(". /etc/os-release; echo $VERSION_CODENAME")
    sources = (
        f"Types: deb\nURIs: file://{GUEST_OTHER_KEY}\nSuites: {suite}\n"
        f"Components: main\nSigned-By: {_keyring(cfg)}\n"
    )
    final_host.check_output(f"printf %s {shlex.quote(sources)} > {OTHER_SOURCES}")
    try:
        yield final_host.run("apt-get update")
    finally:
        final_host.run(f"rm -rf {OTHER_SOURCES} {GUEST_OTHER_KEY}")
        final_host.run("apt-get update")


def test_apt_refuses_the_same_packages_signed_by_another_key(other_key_update: Any) -> None:
    """apt-get update fails on the other-key source: its signature is not the keyring's.

    bookworm's apt (gpgv) says NO_PUBKEY; trixie's (sqv) says "Missing key";
    both then call the repository not signed.
    """
    out = other_key_update.stdout + other_key_update.stderr
    assert other_key_update.rc != 0, out
    assert "NO_PUBKEY" in out or "Missing key" in out, out
    assert f"The repository 'file:{GUEST_OTHER_KEY}" in out and "is not signed" in out, out
    assert f"file:{GUEST_OTHER_KEY}" in out  # apt names the refused source
