"""The shipped kernel.yaml's configuration has what servers, memlog and its checks need.

The test suite compiles its own small debug kernel, not the shipped one: this
resolves the shipped kernel.yaml's configuration (its base and fragments
through the tree's merge_config.sh and ``make olddefconfig``, seconds, no
compile) so that a fragment that drops what the main job's checks need, or
what Debian servers and cloud machines boot from, fails here first.
"""

from __future__ import annotations

import pytest

from wintermute.config import KERNEL_YAML
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
