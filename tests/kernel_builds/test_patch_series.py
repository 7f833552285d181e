"""memlog's patch series against the newest supported kernel: it applies, every patch is
checkpatch --strict clean, and the tree builds (W=1, no warning) at every patch."""

from __future__ import annotations

import pytest

from wintermute.upstream import check, series

pytestmark = pytest.mark.build


@pytest.fixture(scope="module")
def checked(tmp_path_factory: pytest.TempPathFactory) -> list[check.PatchCheck]:
    """The series written (git am checks that it applies to its base) and each patch checked."""
    tree, base = check.newest_base()
    written = series.write_series(base, tmp_path_factory.mktemp("series") / "patches")
    return check.check(tree, base, written)


def test_series_has_a_patch_for_the_driver_its_documentation_and_its_selftest(
    checked: list[check.PatchCheck],
) -> None:
    """One mail per patch of series.yaml; the driver first, built at every patch from it on."""
    assert len(checked) == len(series.load().patches)
    assert all("drivers/char/memlog" in c.built for c in checked)
    assert "tools/testing/selftests/memlog" in checked[-1].built


@pytest.mark.parametrize("number", range(len(series.load().patches)))
def test_patch_is_checkpatch_strict_clean_in_the_newest_tree(
    checked: list[check.PatchCheck], number: int
) -> None:
    """scripts/checkpatch.pl --strict of the newest tree: no error, warning or check."""
    assert checked[number].checkpatch == []


@pytest.mark.parametrize("number", range(len(series.load().patches)))
def test_tree_as_of_patch_builds_with_w1_and_no_warning(
    checked: list[check.PatchCheck], number: int
) -> None:
    """The patches up to this one applied to the tree's own files: W=1, not one warning."""
    assert checked[number].warnings == []
