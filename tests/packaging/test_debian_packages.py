"""The Debian packages: built by debhelper's helpers, lintian-clean, complete, reproducible.

lintian failing on any error or warning is part of the build (``debian.build``),
so a build that returns is already lintian-clean, and what lintian checks is not
checked again here: a man page for /usr/bin/memlog (no-manual-page), dh_python3's
byte-compiling and dependency (python3-depends-but-no-python3-helper, ...),
#DEBHELPER# in the maintainer scripts, no bytecode in the packages.
"""

from __future__ import annotations

import gzip
import hashlib
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from wintermute import config
from wintermute.driver_source import stage_driver_source
from wintermute.errors import UserError
from wintermute.kernel_release import releases_from
from wintermute.module_build import newest_headers
from wintermute.packaging import debian, targets
from wintermute.packaging.system_files import installed_paths
from wintermute.paths import REPO, out_dir

pytestmark = pytest.mark.build

DIST_PACKAGES = "/usr/lib/python3/dist-packages"


@dataclass(frozen=True)
class Build:
    out: Path  # the out/ directory it was built in
    files: list[Path]  # what debian.build() returned

    def file(self, suffix: str) -> Path:
        [path] = [p for p in self.files if p.name.endswith(suffix)]
        return path

    def deb(self, package: str) -> Path:
        [deb] = [p for p in self.files if p.name.startswith(f"{package}_") and p.suffix == ".deb"]
        return deb


@pytest.fixture(scope="module")
def build() -> Build:
    return Build(out_dir(), debian.build(targets.render()))


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


def _last_lintian_run(build: Build) -> list[str]:
    text = (build.out / "logs" / "lintian.log").read_text()
    return text[text.rindex("$ lintian") :].splitlines()


def test_source_and_both_binary_packages_land_in_out_debian(build: Build) -> None:
    """out/debian/ holds the memlog-tools, memlog-dkms and libmemlog .debs, the .dsc, tarballs
    and .changes."""
    cfg = config.load()
    version = f"{cfg.memlog.version}-{cfg.memlog.release}"
    names = {p.name for p in build.files}
    assert {
        f"{cfg.packages.tools}_{version}_all.deb",
        f"{cfg.packages.dkms}_{version}_all.deb",
        f"libmemlog0_{version}_amd64.deb",
        f"libmemlog-dev_{version}_amd64.deb",
        f"memlog_{version}.dsc",
        f"memlog_{cfg.memlog.version}.orig.tar.xz",
        f"memlog_{version}.debian.tar.xz",
    } <= names
    assert any(n.endswith(".changes") for n in names) and any(
        n.endswith(".buildinfo") for n in names
    )
    assert all(p.parent == build.out / "debian" for p in build.files)


def test_orig_tarball_holds_the_upstream_files(build: Build) -> None:
    """memlog_VERSION.orig.tar.xz is memlog-VERSION/ plus the repository's package sources."""
    listing = subprocess.run(
        ["tar", "-tJf", str(build.file(".orig.tar.xz"))], capture_output=True, text=True, check=True
    ).stdout.split()
    top = f"memlog-{config.load().memlog.version}/"
    files = {name.removeprefix(top) for name in listing if not name.endswith("/")}
    assert files == set(debian.upstream_files())


def test_lintian_overrides_are_all_used(build: Build) -> None:
    """lintian reports no override that matched nothing (unused- or mismatched-override)."""
    stale = [line for line in _last_lintian_run(build) if "-override" in line.split(": ")[-1]]
    assert stale == []


def test_debs_are_reproducible_under_reprotest(build: Build, tmp_path: Path) -> None:
    """reprotest rebuilds the .dsc under other conditions (path, time, locale...): same .debs."""
    debian.reprotest(build.file(".dsc"), tmp_path / "reprotest")
    sums = (tmp_path / "reprotest" / "SHA256SUMS").read_text().splitlines()
    ours = [f"{hashlib.sha256(p.read_bytes()).hexdigest()}  ./{p.name}" for p in build.files
            if p.suffix == ".deb"]  # fmt: skip
    assert sorted(sums) == sorted(ours)  # and they are the bytes debian.build() made


def test_memlog_tools_ships_the_library_pybuild_built(build: Build) -> None:
    """The memlog package's modules (memlog.agents too) and a memlog-VERSION.dist-info, in
    dist-packages."""
    cfg = config.load()
    files = _listing(build.deb(cfg.packages.tools))
    modules = {
        f"{DIST_PACKAGES}/{Path(f).relative_to('src')}"
        for f in debian.upstream_files()
        if f.startswith("src/memlog/") and f.endswith(".py")
    }
    assert f"{DIST_PACKAGES}/memlog/agents/claude_agent_sdk.py" in modules  # subpackages too
    assert modules and modules <= files
    assert f"{DIST_PACKAGES}/memlog-{cfg.memlog.version}.dist-info/METADATA" in files


def test_memlog_tools_ships_only_the_memlog_distribution(build: Build) -> None:
    """dist-packages holds memlog and its dist-info: no wintermute toolkit, no bytecode."""
    files = _listing(build.deb(config.load().packages.tools))
    prefix = f"{DIST_PACKAGES}/"
    tops = {f.removeprefix(prefix).split("/")[0] for f in files if f.startswith(prefix)}
    assert tops == {"memlog", f"memlog-{config.load().memlog.version}.dist-info"}
    assert not [f for f in files if "wintermute" in f or "__pycache__" in f]


def test_memlog_tools_ships_the_record_format_documentation(build: Build) -> None:
    """docs/record-format.md as /usr/share/doc/<tools>/record-format.md.gz (dh_compress, as
    policy wants documentation over 4 KiB), the same text once uncompressed."""
    tools = config.load().packages.tools
    deb = build.deb(tools)
    data = subprocess.run(["dpkg-deb", "--fsys-tarfile", str(deb)], capture_output=True, check=True)
    shipped = subprocess.run(
        ["tar", "-xO", f"./usr/share/doc/{tools}/record-format.md.gz"],
        input=data.stdout,
        capture_output=True,
        check=True,
    ).stdout
    assert gzip.decompress(shipped) == (REPO / "docs" / "record-format.md").read_bytes()


def test_usr_bin_memlog_is_the_entry_point_of_pyproject(build: Build) -> None:
    """/usr/bin/memlog is the console script generated from [project.scripts] memlog.cli:main."""
    deb = build.deb(config.load().packages.tools)
    script = _member(deb, "/usr/bin/memlog")
    assert script.startswith("#!/usr/bin/python3\n")
    assert "from memlog.cli import main" in script
    version = config.load().memlog.version
    entry_points = _member(deb, f"{DIST_PACKAGES}/memlog-{version}.dist-info/entry_points.txt")
    assert "memlog = memlog.cli:main" in entry_points


def test_memlog_tools_ships_each_system_file_where_debhelper_puts_it(build: Build) -> None:
    """The udev rule, sysusers.d, sysctl.d and modules-load.d files at installed_paths("debian")."""
    files = _listing(build.deb(config.load().packages.tools))
    assert set(installed_paths("debian").values()) <= files


def test_memlog_tools_udev_rule_sets_the_configured_group(build: Build) -> None:
    """The packaged udev rule gives /dev/memlog kernel.yaml's group and mode."""
    system = config.load().memlog.system
    deb = build.deb(config.load().packages.tools)
    rule = _member(deb, installed_paths("debian")["udev.rules"])
    assert f'GROUP="{system.group}", MODE="{system.device_mode}"' in rule


def test_memlog_tools_postinst_creates_the_group_with_systemd_sysusers(build: Build) -> None:
    """dh_installsysusers' snippet runs systemd-sysusers on the packaged sysusers.d file."""
    deb = build.deb(config.load().packages.tools)
    name = Path(installed_paths("debian")["sysusers.conf"]).name
    assert f'systemd-sysusers ${{DPKG_ROOT:+--root="$DPKG_ROOT"}} {name}\n' in _control_file(
        deb, "postinst"
    )


def test_memlog_dkms_ships_the_staged_driver_source_and_dkms_conf(
    build: Build, tmp_path: Path
) -> None:
    """/usr/src/memlog-VERSION/ is what stage_driver_source lays out, plus dkms.conf: no more."""
    cfg = config.load()
    src = f"/usr/src/memlog-{cfg.memlog.version}"
    staged = stage_driver_source(tmp_path / "staged")
    expected = {f"{src}/{p.relative_to(staged).as_posix()}" for p in staged.rglob("*")}
    expected |= {src, f"{src}/dkms.conf"}
    files = _listing(build.deb(cfg.packages.dkms))
    assert {f for f in files if f.startswith(f"{src}")} == expected


def test_packaged_dkms_conf_has_the_version_and_minimum_kernel(build: Build) -> None:
    """The dkms.conf in memlog-dkms, read as DKMS reads it (bash), names kernel.yaml's values."""
    cfg = config.load()
    conf = _member(build.deb(cfg.packages.dkms), f"/usr/src/memlog-{cfg.memlog.version}/dkms.conf")
    values = subprocess.run(
        ["bash", "-c", 'eval "$1"; printf "%s\\n" "$PACKAGE_NAME" "$PACKAGE_VERSION" '
         '"$BUILD_EXCLUSIVE_KERNEL_MIN" "$BUILD_EXCLUSIVE_KERNEL" "${BUILT_MODULE_NAME[0]}" '
         '"$AUTOINSTALL"', "bash", conf],
        capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    minimum = cfg.memlog.min_kernel
    assert values == ["memlog", cfg.memlog.version, minimum, releases_from(minimum), "memlog",
                      "yes"]  # fmt: skip


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


def test_memlog_dkms_depends_on_dkms_and_the_same_tools(build: Build) -> None:
    """memlog-dkms needs dkms >= 3.0.3 and memlog-tools of the same version.

    (dh_dkms may ask for more: for BUILD_EXCLUSIVE_CONFIG it adds 3.0.3-4~,
    and dpkg-gencontrol keeps the stronger of the two.)
    """
    cfg = config.load()
    depends = _field(build.deb(cfg.packages.dkms), "Depends")
    match = re.search(r"\bdkms \(>= ([^)]+)\)", depends)
    assert match, depends
    at_least = subprocess.run(["dpkg", "--compare-versions", match[1], "ge", "3.0.3"])
    assert at_least.returncode == 0, depends
    assert f"{cfg.packages.tools} (= {cfg.memlog.version}-{cfg.memlog.release})" in depends


def test_memlog_tools_depends_on_python3_cbor2_zstandard_and_systemd_sysusers(
    build: Build,
) -> None:
    """${python3:Depends} gives python3 (>= 3.11~), python3-cbor2 and python3-zstandard (and no
    optional extra: anthropic, claude-agent-sdk); dh_installsysusers adds systemd-sysusers."""
    depends = [
        d.strip() for d in _field(build.deb(config.load().packages.tools), "Depends").split(",")
    ]
    assert "python3:any (>= 3.11~)" in depends
    names = {d.split()[0] for d in depends if d.startswith("python3")}
    assert names == {"python3-cbor2", "python3-zstandard", "python3:any"}, depends
    assert "systemd | systemd-standalone-sysusers | systemd-sysusers" in depends


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


def test_packaged_dkms_tree_builds_the_module_against_the_newest_headers(
    build: Build, tmp_path: Path
) -> None:
    """DKMS builds memlog.ko from the tree memlog-dkms ships (newest headers, private tree)."""
    try:
        release = newest_headers()
    except UserError:
        pytest.skip("no linux-headers installed")
    cfg = config.load()
    subprocess.run(["dpkg-deb", "-x", str(build.deb(cfg.packages.dkms)), str(tmp_path / "root")],
                   check=True)  # fmt: skip
    trees = ["--sourcetree", str(tmp_path / "root" / "usr" / "src"),
             "--dkmstree", str(tmp_path / "dkms")]  # fmt: skip
    (tmp_path / "dkms").mkdir()
    module = ["-m", "memlog", "-v", cfg.memlog.version]
    for command in (["add"], ["build", "-k", release]):
        proc = subprocess.run(["dkms", *command, *module, *trees], capture_output=True, text=True)
        assert proc.returncode == 0, proc.stdout + proc.stderr
    built = tmp_path / "dkms" / "memlog" / cfg.memlog.version
    assert list(built.glob(f"{release}/*/module/memlog.ko*")), release


def test_orig_tarball_carries_the_working_trees_contents(build: Build, tmp_path: Path) -> None:
    """Each file of the .orig.tar.xz is the working tree's, uncommitted edits included."""
    subprocess.run(
        ["tar", "-C", str(tmp_path), "-xJf", str(build.file(".orig.tar.xz"))], check=True
    )
    [top] = tmp_path.iterdir()
    for rel in debian.upstream_files():
        assert (top / rel).read_bytes() == (REPO / rel).read_bytes(), rel


LIBRARY_MAP = REPO / "libmemlog" / "src" / "libmemlog.map"
MAN_DIR = REPO / "libmemlog" / "man"


def _exported(map_text: str) -> set[str]:
    """The global symbols of libmemlog's version script."""
    body = map_text.split("global:")[1].split("local:")[0]
    return {name.strip() for name in body.split(";") if name.strip()}


def test_libmemlog0_ships_the_shared_library_under_its_soname_and_nothing_else(
    build: Build,
) -> None:
    """libmemlog0: libmemlog.so.0 (a link) and libmemlog.so.VERSION in the multiarch dir."""
    cfg = config.load()
    deb = build.deb("libmemlog0")
    files = {p for p in _listing(deb) if p.startswith("/usr/lib/")}
    libdir = "/usr/lib/x86_64-linux-gnu"
    assert files == {libdir, f"{libdir}/libmemlog.so.0",
                     f"{libdir}/libmemlog.so.{cfg.memlog.version}"}  # fmt: skip
    assert (_field(deb, "Architecture"), _field(deb, "Multi-Arch")) == ("amd64", "same")


def test_libmemlog0_symbols_file_lists_every_exported_symbol_with_its_version(
    build: Build,
) -> None:
    """DEBIAN/symbols: each global of libmemlog.map @MEMLOG_0.1, since the version it came in."""
    symbols = _control_file(build.deb("libmemlog0"), "symbols").splitlines()
    assert symbols[0].startswith("libmemlog.so.0 libmemlog0 #MINVER#")
    listed = {line.split()[0].split("@")[0] for line in symbols[1:] if line.startswith(" ")}
    assert listed == _exported(LIBRARY_MAP.read_text()) | {"MEMLOG_0.1"}
    assert "libmemlog 0 libmemlog0" in _control_file(build.deb("libmemlog0"), "shlibs")


def test_libmemlog_dev_ships_headers_pkg_config_file_and_a_man_page_per_function(
    build: Build,
) -> None:
    """libmemlog-dev: <memlog/memlog.h>, the UAPI header beside it, memlog.pc, man3 pages."""
    deb = build.deb("libmemlog-dev")
    files = _listing(deb)
    assert {"/usr/include/memlog/memlog.h", "/usr/include/memlog/uapi/linux/memlog.h",
            "/usr/lib/x86_64-linux-gnu/libmemlog.so",
            "/usr/lib/x86_64-linux-gnu/pkgconfig/memlog.pc",
            "/usr/share/doc/libmemlog-dev/examples/memlog-c-tail.c"} <= files  # fmt: skip
    man3 = "/usr/share/man/man3/"
    pages = {Path(p).name.removesuffix(".3.gz") for p in files if p.startswith(man3)}
    assert _exported(LIBRARY_MAP.read_text()) | {"libmemlog"} <= pages
    assert _field(deb, "Depends") == (
        f"libc6-dev | libc-dev, libmemlog0 (= {_field(deb, 'Version')}), linux-libc-dev"
    )
    pc = _member(deb, "/usr/lib/x86_64-linux-gnu/pkgconfig/memlog.pc")
    assert "-I${includedir}/memlog/uapi" in pc and "-lmemlog" in pc
    uapi = _member(deb, "/usr/include/memlog/uapi/linux/memlog.h")
    assert uapi == (REPO / "include" / "uapi" / "linux" / "memlog.h").read_text()


def test_every_exported_function_has_a_manual_page_in_the_source() -> None:
    """libmemlog/man holds NAME.3 for each function of the version script (a .so link at least)."""
    assert {p.stem for p in MAN_DIR.glob("*.3")} >= _exported(LIBRARY_MAP.read_text())
