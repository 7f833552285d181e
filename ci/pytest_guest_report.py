"""pytest plugin loaded inside the guest: writes every test's result to a JSON file.

The host collects the same test modules and relays these results under the
same node ids (see ``ci/guest_suite.py`` and ``tests/conftest.py``), so a
report on the host reads as if the tests had run there.  Standard library only:
the guest runs Debian's python3-pytest.
"""

from __future__ import annotations

import json
import os
from typing import Any

RESULTS_ENV = "WINTERMUTE_GUEST_RESULTS"

_results: dict[str, dict[str, Any]] = {}


def pytest_runtest_logreport(report: Any) -> None:
    entry = _results.setdefault(
        report.nodeid,
        {"outcome": "passed", "when": "call", "longrepr": "", "duration": 0.0, "called": False},
    )
    entry["duration"] += report.duration
    if report.when == "call":
        entry["called"] = True  # the test body ran: only then can it have passed
    if report.skipped and entry["outcome"] == "passed":
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        entry.update(outcome="skipped", when=report.when, longrepr=reason)
    elif report.failed and entry["outcome"] != "failed":
        entry.update(outcome="failed", when=report.when, longrepr=report.longreprtext)
    sections = "".join(f"\n--- {name} ---\n{text}" for name, text in report.sections)
    if report.failed and sections:
        entry["longrepr"] += sections


def pytest_sessionfinish(session: Any, exitstatus: int) -> None:
    path = os.environ.get(RESULTS_ENV)
    if not path:
        return
    tmp = f"{path}.tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump({"exitstatus": int(exitstatus), "tests": _results}, fh, indent=1)
    os.replace(tmp, path)
