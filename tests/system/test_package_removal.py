"""Facts about removing and purging the packages (after the upgrade, on the second kernel).

Purging removes every file the packages installed or DKMS built, and keeps
the group: Debian never deletes a system group, since files elsewhere may
still belong to it (README.Debian says so).
"""

from __future__ import annotations

from typing import Any

from wintermute.packaging.system_files import installed_paths

APT = "DEBIAN_FRONTEND=noninteractive apt-get -y -q"


def test_removing_memlog_dkms_removes_the_module_from_dkms(final_host: Any, cfg: Any) -> None:
    """After `apt-get remove memlog-dkms`, dkms no longer lists memlog."""
    final_host.check_output(f"{APT} remove {cfg.packages.dkms}")
    assert final_host.check_output("dkms status -m memlog") == ""


def test_removing_memlog_dkms_removes_the_module_from_lib_modules(final_host: Any) -> None:
    """After removal, no memlog.ko is left under /lib/modules, for any kernel."""
    assert final_host.check_output("find /lib/modules -name 'memlog.ko*'") == ""


def test_removing_memlog_dkms_removes_its_source_and_dkms_state(final_host: Any) -> None:
    """Neither /usr/src/memlog-* nor /var/lib/dkms/memlog is left behind."""
    assert (
        final_host.check_output("ls -d /usr/src/memlog-* /var/lib/dkms/memlog 2>/dev/null || true")
        == ""
    )


def test_purging_memlog_tools_removes_its_files(final_host: Any, cfg: Any) -> None:
    """After `apt-get purge memlog-tools`, its command, library and system files are gone."""
    final_host.check_output(f"{APT} purge {cfg.packages.tools} {cfg.packages.dkms}")
    paths = [
        *installed_paths("debian", cfg.packages.tools).values(),
        "/usr/bin/memlog",
        "/usr/lib/python3/dist-packages/memlog",
        f"/usr/share/doc/{cfg.packages.tools}",
    ]
    for path in paths:
        assert not final_host.file(path).exists, path


def test_purging_leaves_no_trace_in_dpkgs_database(final_host: Any, cfg: Any) -> None:
    """dpkg knows neither package any more (not even as config-files)."""
    for package in (cfg.packages.tools, cfg.packages.dkms):
        result = final_host.run(f"dpkg-query -W -f '${{Status}}' {package}")
        assert result.rc != 0 or "not-installed" in result.stdout, result.stdout


def test_purging_keeps_the_group(final_host: Any, cfg: Any) -> None:
    """The group stays after purge, as Debian keeps every system group (see README.Debian)."""
    assert final_host.group(cfg.memlog.system.group).exists
