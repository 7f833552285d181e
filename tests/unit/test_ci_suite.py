"""ci/suite.py: the test suite's two lanes, their gate, their merged report and exit code."""

from __future__ import annotations

import os
import threading
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from ci import suite


def test_the_other_lane_runs_every_tier_but_the_kernel_lane_s() -> None:
    assert suite.OTHER_LANE.args == ("tests", "--ignore=tests/built_kernel")
    assert suite.KERNEL_LANE.args == ("tests/built_kernel",)


class FakeItem:
    def __init__(self, name: str, vm: bool) -> None:
        self.name, self.vm = name, vm

    def get_closest_marker(self, name: str) -> object | None:
        return object() if name == "vm" and self.vm else None


def test_the_vm_tests_come_last_each_group_in_its_order() -> None:
    """The host tiers run while the kernel compiles; the stock kernel's guests after."""
    items = [FakeItem("functional-1", True), FakeItem("unit-1", False),
             FakeItem("system-1", True), FakeItem("unit-2", False)]  # fmt: skip
    suite.vm_last(items)
    assert [item.name for item in items] == ["unit-1", "unit-2", "functional-1", "system-1"]


def test_the_first_failing_lane_gives_the_exit_code() -> None:
    assert suite.exit_code([0, 0]) == 0
    assert suite.exit_code([0, 1]) == 1
    assert suite.exit_code([2, 1]) == 2


def _report(path: Path, name: str, cases: int) -> None:
    suite_el = ET.Element("testsuite", name=name, tests=str(cases))
    for i in range(cases):
        ET.SubElement(suite_el, "testcase", classname=name, name=f"t{i}", time="1.5")
    root = ET.Element("testsuites")
    root.append(suite_el)
    ET.ElementTree(root).write(path)


def test_the_lanes_reports_merge_into_one(tmp_path: Path) -> None:
    _report(tmp_path / "a.xml", "kernel", 2)
    _report(tmp_path / "b.xml", "other", 3)
    suite.merge_junit([tmp_path / "a.xml", tmp_path / "b.xml", tmp_path / "gone.xml"],
                      tmp_path / "junit.xml")  # fmt: skip
    root = ET.parse(tmp_path / "junit.xml").getroot()
    assert [s.get("name") for s in root] == ["kernel", "other"]
    assert len(list(root.iter("testcase"))) == 5


def test_the_kernel_lane_opens_the_gate_only_under_the_runner(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(suite.KERNEL_BUILT_ENV, raising=False)
    suite.open_gate()
    assert list(tmp_path.iterdir()) == []
    monkeypatch.setenv(suite.KERNEL_BUILT_ENV, str(tmp_path / "gate"))
    suite.open_gate()
    assert (tmp_path / "gate").exists()


def test_the_vm_tiers_wait_at_the_gate_after_making_the_image(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ci import rootfs

    events: list[str] = []
    monkeypatch.setattr(rootfs, "ensure_image", lambda: events.append("image"))
    gate = tmp_path / "gate"

    def open_later() -> None:
        time.sleep(0.3)
        events.append("gate")
        gate.touch()

    opener = threading.Thread(target=open_later)
    opener.start()
    suite.pass_vm_gate(gate, poll_seconds=0.05)
    events.append("passed")
    opener.join()
    assert events == ["image", "gate", "passed"]


TEST_FILE = """
import os, pathlib, time

def test_{name}():
    gate = os.environ.get("{env}")
    if gate:
        time.sleep(0.5)
        pathlib.Path(gate).touch()
    assert {passes}
"""


def _tier(repo: Path, name: str, env: str, passes: bool) -> None:
    tier = repo / "tests" / name
    tier.mkdir(parents=True)
    (tier / f"test_{name}.py").write_text(TEST_FILE.format(name=name, env=env, passes=passes))


@pytest.mark.parametrize("kernel_passes", [True, False])
def test_both_lanes_run_and_report_together(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kernel_passes: bool
) -> None:
    """Two real pytest sessions: the kernel lane's output printed, one report, its verdict."""
    repo = tmp_path / "repo"
    _tier(repo, "slow", suite.KERNEL_BUILT_ENV, kernel_passes)
    _tier(repo, "quick", suite.GATE_ENV, True)
    (repo / "pytest.ini").write_text("[pytest]\n")
    monkeypatch.setenv("WINTERMUTE_OUT", str(tmp_path / "out"))
    before = os.environ.get(suite.GATE_ENV)  # set when this test runs under the runner
    lanes = (
        suite.Lane("kernel", ("tests/slow",), "k.xml"),
        suite.Lane("other", ("tests", "--ignore=tests/slow"), "o.xml"),
    )
    code = suite.run(repo, lanes)
    assert code == (0 if kernel_passes else 1)
    root = ET.parse(tmp_path / "out" / "junit.xml").getroot()
    names = sorted(case.get("name") for case in root.iter("testcase"))
    assert names == ["test_quick", "test_slow"]
    log = (tmp_path / "out" / "logs" / "suite-kernel-lane.log").read_text()
    assert ("1 passed" if kernel_passes else "1 failed") in log
    assert (tmp_path / "out" / ".suite-vm-gate").exists()
    assert os.environ.get(suite.GATE_ENV) == before
