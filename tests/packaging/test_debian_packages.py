"""The Debian packages: built with dpkg-buildpackage, lintian-clean, reproducible, complete."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import pytest

from wintermute import config
from wintermute.packaging import debian
from wintermute.packaging.system_files import INSTALLED_PATHS
from wintermute.paths import log_dir, out_dir

pytestmark = pytest.mark.build


def _digests(paths: list[Path]) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in paths if p.suffix == ".deb"}


@pytest.fixture(scope="module")
def builds() -> tuple[dict[str, str], list[Path]]:
    """Two builds from the same inputs: the first one's digests, the second one's files."""
    first = _digests(debian.build())
    second = debian.build()
    return first, second


def _deb(builds: tuple[dict[str, str], list[Path]], package: str) -> Path:
    [deb] = [p for p in builds[1] if p.name.startswith(f"{package}_") and p.suffix == ".deb"]
    return deb


def _contents(deb: Path) -> set[str]:
    out = subprocess.run(["dpkg-deb", "--fsys-tarfile", str(deb)], capture_output=True, check=True)
    names = subprocess.run(["tar", "-t"], input=out.stdout, capture_output=True, check=True)
    return {line.lstrip(".") for line in names.stdout.decode().splitlines()}


def test_both_binary_packages_are_built(builds: tuple[dict[str, str], list[Path]]) -> None:
    """memlog-tools and memlog-dkms .debs land in out/debian/."""
    cfg = config.load()
    names = {p.name.split("_")[0] for p in builds[1] if p.suffix == ".deb"}
    assert names == {cfg.packages.tools, cfg.packages.dkms}
    assert all(p.parent == out_dir() / "debian" for p in builds[1])


def test_debs_are_byte_identical_when_built_twice(
    builds: tuple[dict[str, str], list[Path]],
) -> None:
    """The same inputs and SOURCE_DATE_EPOCH give the same .deb bytes."""
    assert builds[0] == _digests(builds[1])


def test_lintian_reports_no_errors_or_warnings(builds: object) -> None:
    """lintian on the .changes: no E: and no W: tag (each either fixed or overridden)."""
    text = (log_dir() / "lintian.log").read_text()
    last_run = text[text.rindex("$ lintian") :]
    tags = [line for line in last_run.splitlines() if line[:2] in ("E:", "W:")]
    assert tags == []


def test_memlog_tools_ships_the_command_library_and_system_files(
    builds: tuple[dict[str, str], list[Path]],
) -> None:
    """memlog-tools holds /usr/bin/memlog, the library and the four system files."""
    files = _contents(_deb(builds, config.load().packages.tools))
    expected = {"/usr/bin/memlog", "/usr/lib/python3/dist-packages/memlog/cli.py"}
    assert expected | set(INSTALLED_PATHS.values()) <= files


def test_memlog_dkms_ships_the_driver_source_and_dkms_conf(
    builds: tuple[dict[str, str], list[Path]],
) -> None:
    """memlog-dkms holds /usr/src/memlog-VERSION with dkms.conf, Kbuild, sources and header."""
    cfg = config.load()
    src = f"/usr/src/memlog-{cfg.memlog.version}"
    files = _contents(_deb(builds, cfg.packages.dkms))
    for name in ("dkms.conf", "Kbuild", "memlog_main.c", "include/uapi/linux/memlog.h"):
        assert f"{src}/{name}" in files


def test_memlog_dkms_builds_the_module_on_install(
    builds: tuple[dict[str, str], list[Path]],
) -> None:
    """memlog-dkms's postinst hands the module to DKMS (dh_dkms)."""
    deb = _deb(builds, config.load().packages.dkms)
    postinst = subprocess.run(
        ["dpkg-deb", "--info", str(deb), "postinst"], capture_output=True, text=True, check=True
    ).stdout
    assert "dkms" in postinst and "memlog" in postinst


def test_rendered_maintainer_scripts_pass_shellcheck(builds: object) -> None:
    """Every maintainer script rendered from templates/debian passes shellcheck."""
    tree = next((out_dir() / "render" / "debian").iterdir()) / "debian"
    scripts = [
        p for p in tree.iterdir() if p.suffix in (".postinst", ".postrm", ".preinst", ".prerm")
    ]
    assert scripts
    proc = subprocess.run(
        ["shellcheck", "-s", "sh", *map(str, scripts)], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout
