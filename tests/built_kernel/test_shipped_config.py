"""The shipped kernel.yaml's configuration has what servers, memlog and its checks need.

The test suite compiles its own small debug kernel, not the shipped one: this
resolves the shipped kernel.yaml's configuration (its base and fragments
through the tree's merge_config.sh and ``make olddefconfig``, seconds, no
compile) so that a fragment that drops what the main job's checks need, or
what Debian servers and cloud machines boot from, fails here first.

The same for config base ``debian`` (Debian's own kernel configuration of the
same version, with the fragments the README gives it): the configuration is
fetched from Debian's archive (a 0.5 MB package) and resolved, never compiled
here (all of Debian's modules would take hours on two cores).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from wintermute.config import KERNEL_YAML
from wintermute.kernel import kconfig, source
from wintermute.kernel.build import resolved_config

BUILT_IN_OR_MODULE = ("y", "m")
# option -> the values that will do, and why it is needed
REQUIRED = {
    # memlog and its functional suite, stress runs and benchmark
    "CONFIG_MEMLOG": (("m",), "memlog in the tree, as a module"),
    "CONFIG_USER_NS": (("y",), "user namespaces: memlog's namespace tests, rootless containers"),
    "CONFIG_USERFAULTFD": (("y",), "the stalled-writer tests and stress run"),
    "CONFIG_MEMCG": (("y",), "memlog charges its rings to memory cgroups"),
    "CONFIG_BPF_SYSCALL": (("y",), "systemd's BPF-based device and IP filtering"),
    "CONFIG_FTRACE": (("y",), "memlog's tracepoint, read through tracefs"),
    "CONFIG_MODULE_SIG_ALL": (("y",), "modules signed at install time"),
    "CONFIG_MODULE_SIG_SHA512": (("y",), "SHA-512 signatures"),
    # Debian's default LSM
    "CONFIG_SECURITY_APPARMOR": (("y",), "AppArmor, Debian's default LSM"),
    # disks
    "CONFIG_BLK_DEV_NVME": (BUILT_IN_OR_MODULE, "NVMe disks"),
    "CONFIG_SCSI_VIRTIO": (BUILT_IN_OR_MODULE, "virtio-scsi disks of cloud VMs"),
    "CONFIG_VIRTIO_BLK": (BUILT_IN_OR_MODULE, "virtio disks (the project's VM)"),
    "CONFIG_SATA_AHCI": (BUILT_IN_OR_MODULE, "SATA disks"),
    "CONFIG_MEGARAID_SAS": (BUILT_IN_OR_MODULE, "Broadcom MegaRAID host adapters"),
    "CONFIG_SCSI_MPT3SAS": (BUILT_IN_OR_MODULE, "Broadcom/LSI SAS host adapters"),
    "CONFIG_SCSI_SMARTPQI": (BUILT_IN_OR_MODULE, "Microchip SmartPQI host adapters"),
    # LUKS, LVM, software RAID
    "CONFIG_BLK_DEV_DM": (BUILT_IN_OR_MODULE, "device mapper (LVM, LUKS)"),
    "CONFIG_DM_CRYPT": (BUILT_IN_OR_MODULE, "dm-crypt (LUKS)"),
    "CONFIG_CRYPTO_XTS": (BUILT_IN_OR_MODULE, "AES-XTS, LUKS2's default cipher mode"),
    "CONFIG_CRYPTO_USER_API_SKCIPHER": (BUILT_IN_OR_MODULE, "cryptsetup's keyslot decryption"),
    "CONFIG_DM_SNAPSHOT": (BUILT_IN_OR_MODULE, "LVM snapshots"),
    "CONFIG_BLK_DEV_MD": (BUILT_IN_OR_MODULE, "MD software RAID"),
    "CONFIG_MD_RAID1": (BUILT_IN_OR_MODULE, "RAID 1"),
    "CONFIG_MD_RAID456": (BUILT_IN_OR_MODULE, "RAID 5 and 6"),
    # file systems
    "CONFIG_EXT4_FS": (("y",), "ext4 (built in: the VM's root has no initramfs module for it)"),
    "CONFIG_XFS_FS": (BUILT_IN_OR_MODULE, "XFS"),
    "CONFIG_BTRFS_FS": (BUILT_IN_OR_MODULE, "btrfs"),
}


@pytest.fixture(scope="module")
def shipped() -> dict[str, str]:
    """The shipped kernel.yaml's configuration, as its tree's kconfig resolves it."""
    return resolved_config(KERNEL_YAML)


@pytest.mark.parametrize("option", sorted(REQUIRED))
def test_shipped_config_has(shipped: dict[str, str], option: str) -> None:
    """The shipped kernel has each option servers, memlog and its checks need."""
    allowed, why = REQUIRED[option]
    assert shipped.get(option, "n") in allowed, f"{option}={shipped.get(option, 'n')}: {why}"


def test_shipped_config_boots_apparmor_before_selinux(shipped: dict[str, str]) -> None:
    """AppArmor comes first of the major LSMs in CONFIG_LSM: it is the one enabled at boot."""
    order = shipped["CONFIG_LSM"].strip('"').split(",")
    assert "apparmor" in order
    assert "selinux" not in order or order.index("apparmor") < order.index("selinux"), order


# what the README's kernel section gives config base debian
DEBIAN_BASE_FRAGMENTS = ["wintermute.config", "memlog.config"]


@pytest.fixture(scope="module")
def debian_based(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The shipped kernel.yaml on config base debian, resolved by its tree's kconfig."""
    data = yaml.safe_load(KERNEL_YAML.read_text())
    data["kernel"]["config"] = {"base": "debian", "fragments": DEBIAN_BASE_FRAGMENTS}
    desc = tmp_path_factory.mktemp("debian-base")
    (desc / "kernel.yaml").write_text(yaml.safe_dump(data))
    for sub in ("config", "patches"):
        (desc / sub).symlink_to(KERNEL_YAML.parent / sub)
    return resolved_config(desc / "kernel.yaml")


@pytest.fixture(scope="module")
def debians_own() -> dict[str, str]:
    """The configuration of Debian's kernel of the shipped source's version, as Debian has it."""
    src = yaml.safe_load(KERNEL_YAML.read_text())["kernel"]["source"]["debian"]
    return kconfig.parse(source.debian_config(src["package"], src["suite"]).read_text())


def test_debian_base_keeps_debians_modules(
    debian_based: dict[str, str], debians_own: dict[str, str]
) -> None:
    """Thousands of modules, as in Debian's kernel; at most a handful lost to this toolchain
    (Rust drivers: Debian builds with a rustc this machine does not have)."""
    modules = [option for option, value in debians_own.items() if value == "m"]
    lost = [option for option in modules if debian_based.get(option) != "m"]
    assert len(modules) > 3000
    assert len(lost) <= 5, lost


def test_debian_base_builds_memlog_and_signs_with_this_builds_key(
    debian_based: dict[str, str],
) -> None:
    """memlog is a module; modules are signed by the build's key, not Debian's, and no option
    names a file of Debian's packaging tree (debian/certs/...), which a build here lacks."""
    assert debian_based["CONFIG_MEMLOG"] == "m"
    assert debian_based["CONFIG_MODULE_SIG_ALL"] == "y"
    assert debian_based["CONFIG_MODULE_SIG_KEY"] == '"certs/wintermute-signing-key.pem"'
    assert [o for o, v in debian_based.items() if '"debian/' in v] == []


@pytest.mark.parametrize("option", sorted(REQUIRED))
def test_debian_base_has(debian_based: dict[str, str], option: str) -> None:
    """Each option servers, memlog and its checks need, built in or as a module (Debian's
    kernels load ext4 from their initramfs)."""
    _, why = REQUIRED[option]
    value = debian_based.get(option, "n")
    assert value in BUILT_IN_OR_MODULE, f"{option}={value}: {why}"


def test_pkcs11_signing_key_uri_becomes_the_configs_module_signing_key(
    tmp_path: Path,
) -> None:
    """kernel.yaml's PKCS#11 URI is what kbuild signs with: CONFIG_MODULE_SIG_KEY, merged
    after the fragments (which name the file a fresh key would be in)."""
    uri = "pkcs11:token=build;object=modules?pin-source=file:/etc/wintermute/pin"
    data = yaml.safe_load(KERNEL_YAML.read_text())
    data["kernel"]["signing_key"] = uri
    (tmp_path / "kernel.yaml").write_text(yaml.safe_dump(data))
    for sub in ("config", "patches"):
        (tmp_path / sub).symlink_to(KERNEL_YAML.parent / sub)
    assert resolved_config(tmp_path / "kernel.yaml")["CONFIG_MODULE_SIG_KEY"] == f'"{uri}"'
