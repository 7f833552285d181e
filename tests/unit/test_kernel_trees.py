"""The compile matrix, the private APT configuration, the cache key and the in-tree wiring."""

from __future__ import annotations

import os
import re
import threading
import time
from pathlib import Path

import pytest
import yaml

from wintermute import config, kernel_trees
from wintermute.errors import InfraError, UserError

# The newest series of the matrix, as the tests below fetch it.
NEWEST = config.kernel_matrix()[-1]


@pytest.fixture(autouse=True)
def private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tmp_path / "cache"
    monkeypatch.setenv("WINTERMUTE_CACHE", str(cache))
    monkeypatch.setenv("WINTERMUTE_OUT", str(tmp_path / "out"))
    return cache


def test_matrix_is_series_yaml_oldest_first() -> None:
    """The series, their suites and source packages are series.yaml's, oldest first."""
    rows = yaml.safe_load(config.SERIES_YAML.read_text())["series"]
    assert {r["series"]: r["suite"] for r in rows} == kernel_trees.SERIES
    assert list(kernel_trees.SERIES) == [s.series for s in config.kernel_matrix()]
    for r in rows:
        assert kernel_trees.suite_of(r["series"]) == r["suite"]
        assert kernel_trees.package(r["series"]) == r["source_package"]


def test_unknown_series_is_a_user_error_listing_the_choices() -> None:
    """A series outside the matrix is refused before anything is fetched."""
    choices = ", ".join(s.series for s in config.kernel_matrix())
    with pytest.raises(UserError, match=re.escape(f"choose one of {choices}")):
        kernel_trees.prepared_tree("5.10")


def test_apt_config_reads_only_its_suite(private_cache: Path) -> None:
    """cache/apt/<suite>/sources.list names the one suite; lists and archives beside it."""
    base = kernel_trees.write_apt_config("trixie")
    assert base == private_cache / "apt" / "trixie"
    assert (base / "sources.list").read_text() == "deb http://deb.debian.org/debian trixie main\n"
    assert (base / "lists" / "partial").is_dir()
    assert (base / "cache" / "archives" / "partial").is_dir()


def test_apt_options_never_read_the_system_sources(private_cache: Path) -> None:
    """SourceList, SourceParts, Lists and Cache all point into the private configuration."""
    base = private_cache / "apt" / "sid"
    options = kernel_trees.apt_options("sid")
    values = dict(o.split("=", 1) for o in options if o != "-o")
    assert values["Dir::Etc::SourceList"] == str(base / "sources.list")
    assert values["Dir::Etc::SourceParts"] == "/dev/null"
    assert values["Dir::State::Lists"] == str(base / "lists")
    assert values["Dir::Cache"] == str(base / "cache")


def _record_runs(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    calls: list[list[str]] = []
    monkeypatch.setattr(kernel_trees, "run", lambda cmd, **kw: calls.append(list(map(str, cmd))))
    return calls


def test_index_is_refreshed_once_then_kept_for_a_day(monkeypatch: pytest.MonkeyPatch) -> None:
    """apt-get update runs when there is no index, not again while it is fresh."""
    calls = _record_runs(monkeypatch)
    kernel_trees.refresh_index("bookworm")
    kernel_trees.refresh_index("bookworm")
    assert [c[-1] for c in calls] == ["update"]
    assert kernel_trees.index_is_fresh("bookworm")


def test_index_older_than_a_day_is_refreshed(monkeypatch: pytest.MonkeyPatch) -> None:
    """A day-old index, or one read from other sources, counts as stale."""
    calls = _record_runs(monkeypatch)
    kernel_trees.refresh_index("sid")
    stamp = kernel_trees.apt_dir("sid") / "updated"
    two_days_ago = time.time() - 2 * 24 * 3600
    os.utime(stamp, (two_days_ago, two_days_ago))
    assert not kernel_trees.index_is_fresh("sid")
    kernel_trees.refresh_index("sid")
    assert len(calls) == 2
    stamp.write_text("deb http://example.invalid/debian sid main\n")
    assert not kernel_trees.index_is_fresh("sid")


def test_forced_refresh_runs_even_with_a_fresh_index(monkeypatch: pytest.MonkeyPatch) -> None:
    """force=True (no tree cached, or a vanished .deb) always updates."""
    calls = _record_runs(monkeypatch)
    kernel_trees.refresh_index("trixie")
    kernel_trees.refresh_index("trixie", force=True)
    assert len(calls) == 2


def test_two_refreshes_at_once_run_apt_get_update_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """The second waits for the first (apt-get would refuse it) and finds the index fresh."""
    calls: list[str] = []

    def slow_update(cmd: list[str], **kw: object) -> None:
        calls.append(str(cmd[-1]))
        time.sleep(0.5)

    monkeypatch.setattr(kernel_trees, "run", slow_update)
    threads = [threading.Thread(target=kernel_trees.refresh_index, args=("sid",)) for _ in "ab"]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert calls == ["update"]


VERSION = f"{NEWEST.series}.13-1"
POLICY = f"""\
{NEWEST.source_package}:
  Installed: (none)
  Candidate: {VERSION}
  Version table:
     {VERSION} 500
"""


def test_candidate_version_is_read_from_apt_cache_policy(monkeypatch: pytest.MonkeyPatch) -> None:
    """The Candidate line gives the package version used in the cache key."""
    monkeypatch.setattr(kernel_trees, "capture", lambda cmd, **kw: POLICY)
    assert kernel_trees.candidate_version(NEWEST.series) == VERSION


def test_missing_candidate_is_an_infra_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """A suite without the package names the suite and the apt log."""
    policy = POLICY.replace(VERSION, "(none)")
    monkeypatch.setattr(kernel_trees, "capture", lambda cmd, **kw: policy)
    suite, package = NEWEST.suite, NEWEST.source_package
    with pytest.raises(InfraError, match=rf"{suite} offers no {package}; see .*apt-{suite}.log"):
        kernel_trees.candidate_version(NEWEST.series)


def test_recipe_hash_covers_compiler_and_driver_kconfig() -> None:
    """8 hex digits, stable for the same inputs, different when gcc or the Kconfig changes."""
    base = kernel_trees.recipe_hash(compiler="gcc 12.2.0", kconfig="config MEMLOG\n")
    assert len(base) == 8 and int(base, 16) >= 0
    assert base == kernel_trees.recipe_hash(compiler="gcc 12.2.0", kconfig="config MEMLOG\n")
    assert base != kernel_trees.recipe_hash(compiler="gcc 14.2.0", kconfig="config MEMLOG\n")
    assert base != kernel_trees.recipe_hash(compiler="gcc 12.2.0", kconfig="config MEMLOG\n\tx\n")


def test_cache_entry_is_named_by_series_version_and_recipe() -> None:
    """cache/kernel-trees/<series>-<package version>-<recipe hash>."""
    assert kernel_trees.entry_name("6.12", "6.12.117-1", "0af8458e") == "6.12-6.12.117-1-0af8458e"


def _fake_tree(entry: Path) -> Path:
    tree = entry / "linux-source-6.1"
    (tree / "drivers" / "char").mkdir(parents=True)
    (tree / "include" / "uapi" / "linux").mkdir(parents=True)
    (tree / "drivers" / "char" / "Kconfig").write_text(
        'menu "Character devices"\n\nconfig TTY\n\tbool\n\nendmenu\n'
    )
    (tree / "drivers" / "char" / "Makefile").write_text("obj-y += mem.o\n")
    return tree


def test_wiring_hooks_memlog_into_drivers_char(tmp_path: Path) -> None:
    """Kconfig sources memlog's before endmenu; the Makefile descends into memlog/."""
    tree = _fake_tree(tmp_path / "entry")
    kernel_trees.wire_in_tree(tree)
    kconfig = (tree / "drivers" / "char" / "Kconfig").read_text()
    assert kconfig.endswith('source "drivers/char/memlog/Kconfig"\n\nendmenu\n')
    makefile = (tree / "drivers" / "char" / "Makefile").read_text()
    assert makefile.splitlines()[-1] == "obj-$(CONFIG_MEMLOG)\t\t+= memlog/"


def test_in_tree_driver_files_live_outside_the_tree(tmp_path: Path) -> None:
    """drivers/char/memlog and include/uapi/linux/memlog.h link, relatively, to the scratch."""
    entry = tmp_path / "entry"
    tree = _fake_tree(entry)
    kernel_trees.wire_in_tree(tree)
    scratch = kernel_trees.stage_scratch(entry)
    link = tree / "drivers" / "char" / "memlog"
    header = tree / "include" / "uapi" / "linux" / "memlog.h"
    assert link.is_symlink() and not os.readlink(link).startswith("/")
    assert link.resolve() == scratch.resolve()
    assert header.is_symlink() and not os.readlink(header).startswith("/")
    assert header.resolve() == (scratch / "include" / "uapi" / "linux" / "memlog.h").resolve()
    assert (link / "Kbuild").is_file() and header.is_file()


def test_scratch_kconfig_never_triggers_syncconfig(tmp_path: Path) -> None:
    """Each refill gives the Kconfig the same old mtime, so kbuild keeps the tree's config."""
    scratch = kernel_trees.stage_scratch(tmp_path)
    (scratch / "memlog.o").write_text("stale")
    scratch = kernel_trees.stage_scratch(tmp_path)
    assert (scratch / "Kconfig").stat().st_mtime == kernel_trees.KCONFIG_MTIME
    assert not (scratch / "memlog.o").exists()


def _cached_entry(series: str, recipe: str) -> Path:
    entry = kernel_trees.trees_dir() / kernel_trees.entry_name(series, f"{series}.13-1", recipe)
    tree = entry / kernel_trees.package(series)
    tree.mkdir(parents=True)
    (entry / kernel_trees.MARKER).write_text(f"{tree.name}\n")
    return tree


def test_entry_without_marker_is_not_a_cached_tree() -> None:
    """An interrupted preparation (no .prepared) is never handed out."""
    tree = _cached_entry(NEWEST.series, "abcd1234")
    assert kernel_trees.cached_tree(NEWEST.series, "abcd1234") == tree
    (tree.parent / kernel_trees.MARKER).unlink()
    assert kernel_trees.cached_tree(NEWEST.series, "abcd1234") is None


def test_offline_uses_the_cached_tree(monkeypatch: pytest.MonkeyPatch) -> None:
    """If the index cannot be refreshed, a prepared tree already cached is used."""
    tree = _cached_entry(NEWEST.series, "abcd1234")
    monkeypatch.setattr(kernel_trees, "current_recipe", lambda: "abcd1234")
    kernel_trees.write_apt_config(NEWEST.suite)  # stale index: a refresh is attempted

    def offline(cmd: list[str], **kw: object) -> None:
        raise InfraError("apt-get update failed with exit 100")

    monkeypatch.setattr(kernel_trees, "run", offline)
    assert kernel_trees.prepared_tree(NEWEST.series) == tree


def test_offline_without_a_cached_tree_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    """No cached tree and no index: the apt error reaches the user."""
    monkeypatch.setattr(kernel_trees, "current_recipe", lambda: "abcd1234")

    def offline(cmd: list[str], **kw: object) -> None:
        raise InfraError("apt-get update failed with exit 100")

    monkeypatch.setattr(kernel_trees, "run", offline)
    with pytest.raises(InfraError, match="apt-get update failed"):
        kernel_trees.prepared_tree(NEWEST.series)


def test_policy_answer_is_kept_until_the_index_is_updated(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """apt-cache policy (0.7 s) asked once per package and index; a new index asks again."""
    calls: list[list[str]] = []

    def capture(cmd: list[str], **kw: object) -> str:
        calls.append(cmd)
        return POLICY

    monkeypatch.setattr(kernel_trees, "capture", capture)
    suite, package = NEWEST.suite, NEWEST.source_package
    kernel_trees.write_apt_config(suite)
    stamp = kernel_trees.apt_dir(suite) / "updated"
    stamp.write_text("x")
    os.utime(stamp, ns=(1, 1))
    assert kernel_trees.policy_candidate(suite, package) == VERSION
    assert kernel_trees.policy_candidate(suite, package) == VERSION
    assert len(calls) == 1
    os.utime(stamp, ns=(2, 2))  # apt-get update ran
    assert kernel_trees.policy_candidate(suite, package) == VERSION
    assert len(calls) == 2
