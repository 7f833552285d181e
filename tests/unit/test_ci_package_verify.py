"""The VM tier's preparation without a VM: upgrade descriptions, timings, package choice."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from ci import guest_debs, kernel_upgrade, package_verify
from wintermute import config
from wintermute.errors import InfraError

VM_KERNEL_YAML = Path(__file__).parents[1] / "system" / "kernel.yaml"


@pytest.mark.parametrize(
    ("version", "following"), [("0.1.0", "0.1.1"), ("1.9", "1.10"), ("2", "3")]
)
def test_the_upgrade_version_is_one_step_newer(version: str, following: str) -> None:
    """The last component of the version goes up by one."""
    assert package_verify.next_version(version) == following


def test_the_upgrade_description_differs_only_in_the_version(tmp_path: Path) -> None:
    """kernel.yaml for the upgrade: the same description with the next version, and valid."""
    dest = package_verify.upgrade_description(VM_KERNEL_YAML, tmp_path / "upgrade.yaml")
    before = yaml.safe_load(VM_KERNEL_YAML.read_text())
    after = yaml.safe_load(dest.read_text())
    assert after["memlog"].pop("version") == "0.2.1"
    before["memlog"].pop("version")
    assert after == before
    assert config.load(dest).memlog.version == "0.2.1"


def test_the_vm_tiers_description_differs_from_every_default() -> None:
    """tests/system/kernel.yaml shares no system value with kernel.yaml or the driver."""
    vm = config.load(VM_KERNEL_YAML).memlog.system
    default = config.load().memlog.system
    assert vm.group != default.group
    assert vm.device_mode not in (default.device_mode, "0600")  # 0600: the driver's node
    assert vm.ring_size not in (default.ring_size, 4 << 20)  # 4 MiB: the driver's default


def test_timings_count_each_step_once(tmp_path: Path) -> None:
    """An "of which" step is a part of the one before it, not added to the total."""
    timings = package_verify.Timings(tmp_path / "t.json", accelerator="tcg")
    timings.add("apt-get install", 90.0)
    timings.add("of which DKMS's make", 30.0)
    timings.add("reboot", 50.0)
    data = json.loads((tmp_path / "t.json").read_text())
    assert data["total_seconds"] == 140.0
    assert [s["step"] for s in data["steps"]] == [
        "apt-get install",
        "of which DKMS's make",
        "reboot",
    ]


def test_timings_split_the_checks_around_the_scenarios_steps(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Time in the checks between two named steps is a "checks" step; nothing counts twice."""
    clock = iter([100.0, 110.0, 150.0, 155.0, 160.0])  # start, step in/out, end
    monkeypatch.setattr(package_verify.time, "monotonic", lambda: next(clock))
    timings = package_verify.Timings(tmp_path / "t.json")
    timings.start_checks()  # 100
    with timings.step("kernel upgrade"):  # 110 .. 150
        pass
    timings.end_checks()  # 155
    data = json.loads((tmp_path / "t.json").read_text())
    assert [(s["step"], s["seconds"]) for s in data["steps"]] == [
        ("checks", 10.0),
        ("kernel upgrade", 40.0),
        ("checks", 5.0),
    ]
    assert data["total_seconds"] == 55.0


def test_the_second_kernels_release_comes_from_its_image_package() -> None:
    """The versioned linux-image package names the release; metapackages do not count."""
    debs = [
        Path("linux-image-cloud-amd64_6.12.95-1~bpo12+1_amd64.deb"),
        Path("linux-image-6.12.95+deb12-cloud-amd64_6.12.95-1~bpo12+1_amd64.deb"),
        Path("linux-headers-6.12.95+deb12-cloud-amd64_6.12.95-1~bpo12+1_amd64.deb"),
    ]
    assert kernel_upgrade.release_of(debs) == "6.12.95+deb12-cloud-amd64"


def test_two_kernel_images_among_the_fetched_packages_are_an_error() -> None:
    """Two versioned images (an upgraded flavour crept in) stop the scenario."""
    debs = [
        Path("linux-image-6.12.95+deb12-amd64_6.12.95-1~bpo12+1_amd64.deb"),
        Path("linux-image-6.12.95+deb12-cloud-amd64_6.12.95-1~bpo12+1_amd64.deb"),
    ]
    with pytest.raises(InfraError, match="expected one"):
        kernel_upgrade.release_of(debs)


def test_later_suites_are_pinned_below_installed_packages(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """bookworm-backports gets priority 90: nothing installed is upgraded from it."""
    monkeypatch.setenv("WINTERMUTE_CACHE", str(tmp_path))
    base = guest_debs._configure(("bookworm", "bookworm-backports"))
    sources = (base / "sources.list").read_text().splitlines()
    assert [line.split()[2] for line in sources] == ["bookworm", "bookworm-backports"]
    prefs = (base / "preferences").read_text()
    assert "Pin: release n=bookworm-backports\nPin-Priority: 90" in prefs
    assert "n=bookworm\n" not in prefs
