"""The Debian packages: built by dpkg-buildpackage, lintian-clean, complete, reproducible."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from wintermute import config
from wintermute.dkms_install import kernels_with_headers
from wintermute.driver_source import driver_files
from wintermute.packaging import debian
from wintermute.packaging.system_files import INSTALLED_PATHS
from wintermute.paths import out_dir

pytestmark = pytest.mark.build

SOURCE_SUFFIXES = (".dsc", ".xz")  # the .dsc, .orig.tar.xz and .debian.tar.xz


@dataclass(frozen=True)
class Build:
    out: Path  # the out/ directory it was built in
    files: list[Path]  # what debian.build() returned

    def deb(self, package: str) -> Path:
        [deb] = [p for p in self.files if p.name.startswith(f"{package}_") and p.suffix == ".deb"]
        return deb


@pytest.fixture(scope="module")
def builds(tmp_path_factory: pytest.TempPathFactory) -> tuple[Build, Build]:
    """The same inputs built twice: in out/, then in another out/ directory."""
    first = Build(out_dir(), debian.build())
    with pytest.MonkeyPatch.context() as mp:
        other = tmp_path_factory.mktemp("debian-rebuild") / "out"
        mp.setenv("WINTERMUTE_OUT", str(other))
        second = Build(other, debian.build())
    return first, second


@pytest.fixture(scope="module")
def build(builds: tuple[Build, Build]) -> Build:
    return builds[0]


def _bytes(build: Build, suffixes: tuple[str, ...]) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in build.files if p.suffix in suffixes}


def _listing(deb: Path) -> set[str]:
    """The paths `dpkg-deb -c` lists, without the leading `.`."""
    out = subprocess.run(["dpkg-deb", "-c", str(deb)], capture_output=True, text=True, check=True)
    return {line.split()[5].removeprefix(".").rstrip("/") for line in out.stdout.splitlines()}


def _member(deb: Path, path: str) -> str:
    """One file of the package's data."""
    data = subprocess.run(["dpkg-deb", "--fsys-tarfile", str(deb)], capture_output=True, check=True)
    return subprocess.run(
        ["tar", "-xO", f".{path}"], input=data.stdout, capture_output=True, check=True
    ).stdout.decode()


def _control_file(deb: Path, name: str) -> str:
    return subprocess.run(
        ["dpkg-deb", "--info", str(deb), name], capture_output=True, text=True, check=True
    ).stdout


def _field(deb: Path, name: str) -> str:
    return subprocess.run(
        ["dpkg-deb", "--field", str(deb), name], capture_output=True, text=True, check=True
    ).stdout.strip()


def test_source_and_both_binary_packages_land_in_out_debian(build: Build) -> None:
    """out/debian/ holds memlog-tools and memlog-dkms .debs, the .dsc, tarballs and .changes."""
    cfg = config.load()
    version = f"{cfg.memlog.version}-{cfg.memlog.release}"
    names = {p.name for p in build.files}
    assert {
        f"{cfg.packages.tools}_{version}_all.deb",
        f"{cfg.packages.dkms}_{version}_all.deb",
        f"memlog_{version}.dsc",
        f"memlog_{cfg.memlog.version}.orig.tar.xz",
        f"memlog_{version}.debian.tar.xz",
    } <= names
    assert any(n.endswith(".changes") for n in names) and any(
        n.endswith(".buildinfo") for n in names
    )
    assert all(p.parent == build.out / "debian" for p in build.files)


def test_debs_are_byte_identical_when_built_in_two_directories(
    builds: tuple[Build, Build],
) -> None:
    """The same inputs and SOURCE_DATE_EPOCH give the same .deb bytes wherever out/ is."""
    first, second = (_bytes(b, (".deb",)) for b in builds)
    assert len(first) == 2
    assert first == second


def test_source_package_is_byte_identical_when_built_in_two_directories(
    builds: tuple[Build, Build],
) -> None:
    """The .dsc, .orig.tar.xz and .debian.tar.xz are reproducible too."""
    first, second = (_bytes(b, SOURCE_SUFFIXES) for b in builds)
    assert len(first) == 3
    assert first == second


def test_lintian_reports_no_errors_or_warnings(build: Build) -> None:
    """lintian on the .changes: exit 0, no E: and no W: tag (each fixed or overridden)."""
    text = (build.out / "logs" / "lintian.log").read_text()
    last_run = text[text.rindex("$ lintian") :]
    tags = [line for line in last_run.splitlines() if line[:2] in ("E:", "W:")]
    assert tags == []
    assert "# exit 0 " in last_run


def test_lintian_overrides_are_shown_with_their_reasons(build: Build) -> None:
    """Every override lintian applied is logged (O:) after its reason (N:)."""
    text = (build.out / "logs" / "lintian.log").read_text()
    lines = text[text.rindex("$ lintian") :].splitlines()
    overridden = [i for i, line in enumerate(lines) if line.startswith("O: ")]
    assert all(lines[i - 1].startswith("N: ") for i in overridden)


def test_memlog_tools_ships_the_command_library_and_system_files(build: Build) -> None:
    """memlog-tools holds /usr/bin/memlog, the library and the four system files."""
    files = _listing(build.deb(config.load().packages.tools))
    library = {f"{debian.PYTHON_LIBRARY_DIR}/{name}" for name in ("__init__.py", "cli.py")}
    assert {"/usr/bin/memlog", *library, *INSTALLED_PATHS.values()} <= files
    assert "/usr/share/man/man1/memlog.1.gz" in files


def test_memlog_tools_udev_rule_sets_the_configured_group(build: Build) -> None:
    """The packaged udev rule gives /dev/memlog kernel.yaml's group and mode."""
    system = config.load().memlog.system
    rule = _member(build.deb(config.load().packages.tools), INSTALLED_PATHS["udev.rules"])
    assert f'GROUP="{system.group}", MODE="{system.device_mode}"' in rule


def test_memlog_dkms_ships_the_driver_source_and_dkms_conf(build: Build) -> None:
    """memlog-dkms holds /usr/src/memlog-VERSION/: dkms.conf, every driver file, the UAPI header."""
    cfg = config.load()
    src = f"/usr/src/memlog-{cfg.memlog.version}"
    files = _listing(build.deb(cfg.packages.dkms))
    expected = {f"{src}/dkms.conf", f"{src}/include/uapi/linux/memlog.h"}
    expected |= {f"{src}/{p.name}" for p in driver_files()}
    assert expected <= files


def test_packaged_dkms_conf_has_the_version_and_minimum_kernel(build: Build) -> None:
    """The dkms.conf in memlog-dkms, read as DKMS reads it (bash), names kernel.yaml's values."""
    cfg = config.load()
    conf = _member(build.deb(cfg.packages.dkms), f"/usr/src/memlog-{cfg.memlog.version}/dkms.conf")
    values = subprocess.run(
        ["bash", "-c", 'eval "$1"; printf "%s\\n" "$PACKAGE_NAME" "$PACKAGE_VERSION" '
         '"$BUILD_EXCLUSIVE_KERNEL_MIN" "${BUILT_MODULE_NAME[0]}" "$AUTOINSTALL"', "bash", conf],
        capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    assert values == ["memlog", cfg.memlog.version, cfg.memlog.min_kernel, "memlog", "yes"]


def test_memlog_dkms_builds_on_install_and_removes_on_remove(build: Build) -> None:
    """dh_dkms's postinst hands memlog/VERSION to DKMS; its prerm runs `dkms remove --all`."""
    cfg = config.load()
    deb = build.deb(cfg.packages.dkms)
    postinst, prerm = _control_file(deb, "postinst"), _control_file(deb, "prerm")
    for script in (postinst, prerm):
        assert "DKMS_NAME=memlog\n" in script
        assert f"DKMS_VERSION={cfg.memlog.version}\n" in script
    assert "/usr/lib/dkms/common.postinst" in postinst
    assert "dkms remove -m $DKMS_NAME -v $DKMS_VERSION --all" in prerm


def test_package_dependencies(build: Build) -> None:
    """memlog-dkms needs dkms >= 3.0.3 and the same memlog-tools; memlog-tools needs python3."""
    cfg = config.load()
    version = f"{cfg.memlog.version}-{cfg.memlog.release}"
    dkms_depends = _field(build.deb(cfg.packages.dkms), "Depends")
    assert "dkms (>= 3.0.3)" in dkms_depends
    assert f"{cfg.packages.tools} (= {version})" in dkms_depends
    assert "python3" in _field(build.deb(cfg.packages.tools), "Depends")


def _shellcheck_packaged_scripts(deb: Path, tmp_path: Path, *options: str) -> None:
    scripts = []
    for name in ("preinst", "postinst", "prerm", "postrm"):
        proc = subprocess.run(["dpkg-deb", "--info", str(deb), name], capture_output=True)
        if proc.returncode == 0:
            scripts.append(tmp_path / f"{deb.name}.{name}")
            scripts[-1].write_bytes(proc.stdout)
    assert scripts
    proc = subprocess.run(
        ["shellcheck", "-s", "sh", *options, *map(str, scripts)], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout


def test_memlog_tools_maintainer_scripts_as_shipped_pass_shellcheck(
    build: Build, tmp_path: Path
) -> None:
    """memlog-tools' postinst and prerm, debhelper's snippets included, pass `shellcheck -s sh`."""
    _shellcheck_packaged_scripts(build.deb(config.load().packages.tools), tmp_path)


def test_memlog_dkms_maintainer_scripts_have_no_shellcheck_warnings(
    build: Build, tmp_path: Path
) -> None:
    """dh_dkms's scripts in memlog-dkms have no shellcheck warning.

    Only info-level notes (SC2086 on dh_dkms's own unquoted, fixed-value
    variables) are left: that text is dh_dkms's, not ours.
    """
    _shellcheck_packaged_scripts(
        build.deb(config.load().packages.dkms), tmp_path, "--severity=warning"
    )


def test_debs_hold_no_bytecode_or_build_products(build: Build) -> None:
    """No __pycache__, .pyc, object files or modules are packaged."""
    cfg = config.load()
    for package in (cfg.packages.tools, cfg.packages.dkms):
        for path in _listing(build.deb(package)):
            assert "__pycache__" not in path
            assert not path.endswith((".pyc", ".o", ".ko", ".cmd", ".mod")), path


def test_packaged_dkms_tree_builds_the_module_for_every_kernel_with_headers(
    build: Build, tmp_path: Path
) -> None:
    """DKMS builds memlog.ko from the tree memlog-dkms ships (in a private DKMS tree)."""
    releases = kernels_with_headers()
    if not releases:
        pytest.skip("no linux-headers installed")
    cfg = config.load()
    subprocess.run(["dpkg-deb", "-x", str(build.deb(cfg.packages.dkms)), str(tmp_path / "root")],
                   check=True)  # fmt: skip
    trees = ["--sourcetree", str(tmp_path / "root" / "usr" / "src"),
             "--dkmstree", str(tmp_path / "dkms")]  # fmt: skip
    (tmp_path / "dkms").mkdir()
    module = ["-m", "memlog", "-v", cfg.memlog.version]
    for command in (["add"], *(["build", "-k", release] for release in releases)):
        proc = subprocess.run(["dkms", *command, *module, *trees], capture_output=True, text=True)
        assert proc.returncode == 0, proc.stdout + proc.stderr
    built = tmp_path / "dkms" / "memlog" / cfg.memlog.version
    for release in releases:
        assert list(built.glob(f"{release}/*/module/memlog.ko*")), release
