"""The oldest-kernel bound as DKMS 3.0.10 reads it: a release regex for BUILD_EXCLUSIVE_KERNEL."""

from __future__ import annotations

import re
import subprocess

import pytest

from wintermute.errors import UserError
from wintermute.kernel_release import releases_from

RELEASES = {
    "4.19.0-27-amd64": False,
    "5.15.0-1-generic": False,
    "6.0.12": False,
    "6.1.0-28-amd64": True,
    "6.9.1": True,
    "6.10.0": True,
    "6.12.95+deb12-cloud-amd64": True,
    "7.0.0": True,
    "7.2.13-wintermute": True,
    "10.0.1": True,
    "16.1.0": True,
}


@pytest.mark.parametrize(("release", "matches"), sorted(RELEASES.items()))
def test_releases_from_6_1_matches_6_1_and_newer_in_bash(release: str, matches: bool) -> None:
    """bash's =~, as DKMS uses it, accepts the release exactly when it is 6.1 or newer."""
    proc = subprocess.run(
        ["bash", "-c", "[[ $1 =~ $2 ]]", "bash", release, releases_from("6.1")], check=False
    )
    assert (proc.returncode == 0) is matches


@pytest.mark.parametrize("series", ["0.0", "6.1", "6.9", "6.10", "9.99", "10.0", "19.109"])
def test_releases_from_draws_the_line_at_the_series(series: str) -> None:
    """For any series: that series and every later minor or major match, every earlier does not."""
    major, minor = map(int, series.split("."))
    regex = re.compile(releases_from(series))
    for mj in range(max(0, major - 1), major + 12):
        for mn in range(0, 130):
            assert bool(regex.search(f"{mj}.{mn}.0")) is ((mj, mn) >= (major, minor)), (mj, mn)


def test_releases_from_refuses_what_is_not_a_series() -> None:
    with pytest.raises(UserError, match="not a kernel series"):
        releases_from("6")
