"""The rendered Debian source tree: kernel.yaml's values, dh, DEP-5, clean maintainer scripts."""

from __future__ import annotations

import dataclasses
import fnmatch
import re
import subprocess
from pathlib import Path

import pytest

from wintermute import config
from wintermute.packaging import debian, render
from wintermute.packaging.system_files import INSTALLED_PATHS

MAINTAINER_SCRIPTS = ("preinst", "postinst", "prerm", "postrm")
# SPDX identifier in a source file -> its DEP-5 licence in debian/copyright
DEP5_LICENCE = {
    "GPL-2.0-only": "GPL-2",
    "GPL-2.0 WITH Linux-syscall-note": "GPL-2 with Linux-syscall-note exception",
    "MIT OR Apache-2.0": "Expat or Apache-2.0",
}


def _render(dest: Path, cfg: config.Config | None = None) -> Path:
    """Render only the Debian target; return the source tree (memlog-VERSION/)."""
    cfg = cfg or config.load()
    debian.render(render.environment(), render.context(cfg), dest)
    [tree] = dest.iterdir()
    return tree


def _with(cfg: config.Config, **changes: object) -> config.Config:
    """cfg with memlog.system or packages fields replaced."""
    system = {k: v for k, v in changes.items() if k in ("group", "device_mode", "ring_size")}
    packages = {k: v for k, v in changes.items() if k in ("tools", "dkms")}
    memlog = dataclasses.replace(
        cfg.memlog, system=dataclasses.replace(cfg.memlog.system, **system)
    )
    return dataclasses.replace(
        cfg, memlog=memlog, packages=dataclasses.replace(cfg.packages, **packages)
    )


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _render(tmp_path_factory.mktemp("debian"))


def _paragraphs(text: str) -> list[dict[str, str]]:
    """deb822 paragraphs, continuation lines joined with newlines."""
    paragraphs = []
    for block in re.split(r"\n\s*\n", text.strip()):
        fields: dict[str, str] = {}
        key = ""
        for line in block.splitlines():
            if line.startswith((" ", "\t")):
                fields[key] += "\n" + line.strip()
            elif not line.startswith("#"):
                key, _, value = line.partition(":")
                fields[key] = value.strip()
        paragraphs.append(fields)
    return paragraphs


def test_source_tree_is_named_after_the_upstream_version(tree: Path) -> None:
    """The source tree is memlog-VERSION, with debian/, dkms/ and root/."""
    assert tree.name == f"memlog-{config.load().memlog.version}"
    assert {p.name for p in tree.iterdir()} == {"debian", "dkms", "root"}


def test_control_names_packages_and_maintainer_from_kernel_yaml(tree: Path) -> None:
    """debian/control's maintainer, homepage and binary packages are kernel.yaml's."""
    cfg = config.load()
    source, *binaries = _paragraphs((tree / "debian" / "control").read_text())
    assert source["Maintainer"] == cfg.maintainer
    assert source["Homepage"] == cfg.homepage
    assert [b["Package"] for b in binaries] == [cfg.packages.tools, cfg.packages.dkms]
    assert all(b["Architecture"] == "all" for b in binaries)


def test_control_uses_debhelper_13_dh_dkms_and_the_dkms_autopkgtest(tree: Path) -> None:
    """Build-Depends: debhelper-compat (= 13), dh-sequence-dkms; Testsuite: autopkgtest-pkg-dkms."""
    source = _paragraphs((tree / "debian" / "control").read_text())[0]
    build_depends = {d.strip() for d in source["Build-Depends"].split(",")}
    assert build_depends == {"debhelper-compat (= 13)", "dh-sequence-dkms"}
    assert source["Testsuite"] == "autopkgtest-pkg-dkms"
    assert source["Rules-Requires-Root"] == "no"


def test_dkms_package_depends_on_dkms_with_build_exclusive_kernel_min(tree: Path) -> None:
    """memlog-dkms needs dkms >= 3.0.3 (BUILD_EXCLUSIVE_KERNEL_MIN) and the matching tools."""
    cfg = config.load()
    dkms = _paragraphs((tree / "debian" / "control").read_text())[2]
    depends = {d.strip() for d in dkms["Depends"].replace("\n", " ").split(",")}
    assert {"dkms (>= 3.0.3)", f"{cfg.packages.tools} (= ${{source:Version}})"} <= depends
    assert "${misc:Depends}" in depends


def test_changelog_version_is_version_dash_release(tree: Path) -> None:
    """dpkg reads kernel.yaml's version-release from debian/changelog."""
    cfg = config.load()
    version = subprocess.run(
        ["dpkg-parsechangelog", "-l", str(tree / "debian" / "changelog"), "-S", "Version"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    assert version == f"{cfg.memlog.version}-{cfg.memlog.release}"


def test_changelog_is_dated_by_source_date_epoch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The changelog's date is SOURCE_DATE_EPOCH, which dpkg then derives back from it."""
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    changelog = _render(tmp_path) / "debian" / "changelog"
    timestamp = subprocess.run(
        ["dpkg-parsechangelog", "-l", str(changelog), "-S", "Timestamp"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    assert timestamp == "1700000000"


def test_source_format_is_quilt(tree: Path) -> None:
    """3.0 (quilt): the version carries a Debian revision, so the package is not native."""
    assert (tree / "debian" / "source" / "format").read_text() == "3.0 (quilt)\n"


def test_rules_runs_dh_and_dh_dkms_with_the_upstream_version(tree: Path) -> None:
    """debian/rules is `dh $@` plus dh_dkms -V taking its version from the changelog."""
    rules = tree / "debian" / "rules"
    text = rules.read_text()
    assert rules.stat().st_mode & 0o111
    assert "%:\n\tdh $@\n" in text
    assert "dh_dkms -p" in text and "-V $(DEB_VERSION_UPSTREAM)" in text


def test_dkms_package_installs_the_tree_under_usr_src_memlog_version(tree: Path) -> None:
    """memlog-dkms.install puts dkms/ (sources and dkms.conf) in /usr/src/memlog-VERSION/."""
    cfg = config.load()
    install = (tree / "debian" / f"{cfg.packages.dkms}.install").read_text().split()
    assert install == ["dkms/*", f"usr/src/memlog-{cfg.memlog.version}/"]
    assert (tree / "dkms" / "dkms.conf").is_file()
    assert (tree / "dkms" / "include" / "uapi" / "linux" / "memlog.h").is_file()


def test_system_files_are_rendered_at_their_installed_paths(tree: Path, tmp_path: Path) -> None:
    """root/ holds the four system files at INSTALLED_PATHS, as templates/system renders them."""
    env, ctx = render.environment(), render.context(config.load())
    render.render_group(env, ctx, "system", tmp_path)
    for name, installed in INSTALLED_PATHS.items():
        assert (tree / "root" / installed.lstrip("/")).read_text() == (tmp_path / name).read_text()


def test_launcher_runs_memlog_cli_main(tree: Path) -> None:
    """/usr/bin/memlog is an executable python3 script calling memlog.cli:main."""
    launcher = tree / "root" / "usr" / "bin" / "memlog"
    text = launcher.read_text()
    assert launcher.stat().st_mode & 0o111
    assert text.startswith("#!/usr/bin/python3\n")
    assert "from memlog.cli import main" in text
    assert (tree / "root" / debian.PYTHON_LIBRARY_DIR.lstrip("/") / "cli.py").is_file()


def test_maintainer_scripts_pass_shellcheck(tree: Path) -> None:
    """Every rendered maintainer script passes `shellcheck -s sh`."""
    scripts = sorted(
        p for p in (tree / "debian").iterdir() if p.name.rpartition(".")[2] in MAINTAINER_SCRIPTS
    )
    assert {p.name for p in scripts} >= {"memlog-tools.postinst", "memlog-tools.prerm"}
    proc = subprocess.run(["shellcheck", "-s", "sh", *map(str, scripts)], capture_output=True,
                          text=True)  # fmt: skip
    assert proc.returncode == 0, proc.stdout


def test_maintainer_scripts_keep_the_debhelper_token(tree: Path) -> None:
    """Each maintainer script has #DEBHELPER#, so debhelper's snippets are added."""
    for path in (tree / "debian").iterdir():
        if path.name.rpartition(".")[2] in MAINTAINER_SCRIPTS:
            assert "\n#DEBHELPER#\n" in path.read_text(), path.name


def test_postinst_creates_the_group_kernel_yaml_names(tmp_path: Path) -> None:
    """A different group in kernel.yaml is the group memlog-tools' postinst creates."""
    cfg = _with(config.load(), group="agents")
    postinst = (_render(tmp_path, cfg) / "debian" / f"{cfg.packages.tools}.postinst").read_text()
    assert "getent group agents" in postinst
    assert "addgroup --system --quiet agents" in postinst
    assert "systemd-sysusers memlog.conf" in postinst  # the sysusers.d file it ships
    assert "group memlog" not in postinst and "--quiet memlog" not in postinst


def test_postinst_triggers_udev_for_an_already_loaded_module(tree: Path) -> None:
    """postinst re-applies the udev rule (node group/mode, sysctl) to a loaded module."""
    postinst = (tree / "debian" / "memlog-tools.postinst").read_text()
    for subsystem in ("misc", "module"):
        trigger = f"--action=add --subsystem-match={subsystem} --sysname-match=memlog"
        assert f"udevadm trigger {trigger}" in postinst


def test_package_files_follow_the_package_names_in_kernel_yaml(tmp_path: Path) -> None:
    """Renamed packages get their debian/<package>.* files under the new names."""
    cfg = _with(config.load(), tools="agentlog-tools", dkms="agentlog-dkms")
    files = {p.name for p in (_render(tmp_path, cfg) / "debian").iterdir()}
    assert {"agentlog-tools.postinst", "agentlog-tools.prerm", "agentlog-dkms.install"} <= files
    assert not [name for name in files if name.startswith("memlog-")]


def test_lintian_overrides_each_give_a_reason(tree: Path) -> None:
    """Every lintian override is preceded by a comment saying why."""
    overrides = sorted((tree / "debian").glob("*.lintian-overrides"))
    assert overrides
    for path in overrides:
        lines = path.read_text().splitlines()
        for i, line in enumerate(lines):
            if line and not line.startswith("#"):
                assert i > 0 and lines[i - 1].startswith("#"), f"{path.name}: {line}"


def test_copyright_is_dep5_with_a_text_for_every_licence(tree: Path) -> None:
    """debian/copyright is DEP-5; each licence used has its text or a common-licenses pointer."""
    header, *rest = _paragraphs((tree / "debian" / "copyright").read_text())
    assert header["Format"] == "https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/"
    texts = {p["License"].split("\n")[0] for p in rest if "Files" not in p}
    for files in (p for p in rest if "Files" in p):
        name, _, text = files["License"].partition("\n")
        names = re.split(r" or | and ", re.sub(r" with .* exception$", "", name))
        assert text or all(n in texts for n in names), name


def test_copyright_licences_match_the_spdx_tags_of_the_sources(tree: Path) -> None:
    """The DEP-5 licence of each tagged file in the tree is its SPDX tag's licence."""
    copyright_ = _paragraphs((tree / "debian" / "copyright").read_text())
    paragraphs = [p for p in copyright_ if "Files" in p]
    checked = 0
    for path in sorted(p for p in tree.rglob("*") if p.is_file()):
        rel = path.relative_to(tree).as_posix()
        tag = re.search(r"SPDX-License-Identifier: (.+?)\s*(\*/)?$", path.read_text(), re.M)
        if not tag:
            continue
        # DEP-5: the last paragraph whose pattern matches wins; `*` matches `/` too
        [*_, licence] = [
            p["License"].split("\n")[0]
            for p in paragraphs
            if any(fnmatch.fnmatchcase(rel, g) for g in p["Files"].split())
        ]
        assert licence == DEP5_LICENCE[tag.group(1)], rel
        checked += 1
    assert checked
