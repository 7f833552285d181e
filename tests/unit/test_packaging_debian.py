"""The Debian source package: kernel.yaml's values, debhelper's helpers, the repo's sources."""

from __future__ import annotations

import contextlib
import dataclasses
import fnmatch
import os
import re
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from wintermute import config
from wintermute.driver_source import stage_driver_source
from wintermute.errors import UserError
from wintermute.packaging import debian, render
from wintermute.packaging.system_files import INSTALLED_PATHS, installed_paths
from wintermute.paths import REPO
from wintermute.reproducible import tarball

MAINTAINER_SCRIPTS = ("preinst", "postinst", "prerm", "postrm")
# SPDX identifier in a source file -> its DEP-5 licence in debian/copyright
DEP5_LICENCE = {
    "GPL-2.0-only": "GPL-2",
    "GPL-2.0 WITH Linux-syscall-note": "GPL-2 with Linux-syscall-note exception",
    "MIT OR Apache-2.0": "Expat or Apache-2.0",
}
EPOCH = 1700000000


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


@contextlib.contextmanager
def _umask(mask: int) -> Iterator[None]:
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


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


def _list(field: str) -> set[str]:
    """A comma-separated relationship field as a set of its entries."""
    return {d.strip() for d in field.replace("\n", " ").split(",") if d.strip()}


def _install_lines(path: Path) -> list[tuple[str, str]]:
    """(source pattern, destination directory) of each line of a debhelper .install file."""
    return [(src, dest) for src, dest in (line.split() for line in path.read_text().splitlines())]


# --- the rendered debian/


def test_rendered_tree_is_debian_only_named_after_the_upstream_version(tree: Path) -> None:
    """Rendering gives memlog-VERSION/debian/ only: the sources come from the upstream tarball."""
    assert tree.name == f"memlog-{config.load().memlog.version}"
    assert [p.name for p in tree.iterdir()] == ["debian"]


def test_control_names_packages_and_maintainer_from_kernel_yaml(tree: Path) -> None:
    """debian/control's maintainer, homepage and binary packages are kernel.yaml's."""
    cfg = config.load()
    source, *binaries = _paragraphs((tree / "debian" / "control").read_text())
    assert source["Maintainer"] == cfg.maintainer
    assert source["Homepage"] == cfg.homepage
    assert [b["Package"] for b in binaries] == [
        cfg.packages.tools, cfg.packages.dkms, "libmemlog0", "libmemlog-dev"
    ]  # fmt: skip
    assert [b["Architecture"] for b in binaries] == ["all", "all", "any", "any"]


def test_control_build_depends_on_the_helpers_that_do_the_work(tree: Path) -> None:
    """debhelper 13, the dkms and installsysusers sequences, dh-python and pybuild's pyproject."""
    source = _paragraphs((tree / "debian" / "control").read_text())[0]
    assert _list(source["Build-Depends"]) >= {
        "debhelper-compat (= 13)",
        "dh-sequence-dkms",
        "dh-sequence-installsysusers",
        "dh-python",
        "pybuild-plugin-pyproject",
        "python3-setuptools",
    }
    assert source["Testsuite"] == "autopkgtest-pkg-dkms"
    assert source["Rules-Requires-Root"] == "no"


def test_tools_package_depends_on_what_the_helpers_compute(tree: Path) -> None:
    """memlog-tools' Depends is ${python3:Depends} and ${misc:Depends}: no hand-written ones."""
    tools = _paragraphs((tree / "debian" / "control").read_text())[1]
    assert _list(tools["Depends"]) == {"${python3:Depends}", "${misc:Depends}"}


def test_dkms_package_depends_on_dkms_with_build_exclusive_kernel_min(tree: Path) -> None:
    """memlog-dkms needs dkms >= 3.0.3 (BUILD_EXCLUSIVE_KERNEL_MIN) and the matching tools."""
    cfg = config.load()
    dkms = _paragraphs((tree / "debian" / "control").read_text())[2]
    depends = _list(dkms["Depends"])
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
    monkeypatch.setenv("SOURCE_DATE_EPOCH", str(EPOCH))
    changelog = _render(tmp_path) / "debian" / "changelog"
    timestamp = subprocess.run(
        ["dpkg-parsechangelog", "-l", str(changelog), "-S", "Timestamp"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    assert timestamp == str(EPOCH)


def test_rules_is_dh_with_python3_and_pybuild(tree: Path) -> None:
    """debian/rules runs dh with the python3 addon and the pybuild build system."""
    rules = tree / "debian" / "rules"
    assert rules.stat().st_mode & 0o111
    assert "%:\n\tdh $@ --with python3 --buildsystem=pybuild\n" in rules.read_text()


def test_rules_names_the_udev_rule_after_the_device(tree: Path) -> None:
    """dh_installudev --name=memlog: the rule is 60-memlog.rules, whatever the package is called."""
    text = (tree / "debian" / "rules").read_text()
    assert "override_dh_installudev:\n\tdh_installudev --name=memlog\n" in text


def test_helper_files_are_the_rendered_templates(tree: Path, tmp_path: Path) -> None:
    """Each file a debhelper helper takes (udev, sysusers, sysctl...) is its template, rendered."""
    cfg = config.load()
    tools, dkms = cfg.packages.tools, cfg.packages.dkms
    expected = {  # the names dh_installudev --name=memlog, dh_installsysusers, ... look for
        f"{tools}.memlog.udev": "system/udev.rules",
        f"{tools}.sysusers": "system/sysusers.conf",
        "sysctl.d/60-memlog.conf": "system/sysctl.conf",
        "modules-load.d/memlog.conf": "system/modules-load.conf",
        "memlog.1": "doc/memlog.1",
        f"{dkms}.dkms": "dkms/dkms.conf",
    }
    env, ctx = render.environment(), render.context(cfg)
    for group in ("system", "doc", "dkms"):
        render.render_group(env, ctx, group, tmp_path / group)
    for name, source in expected.items():
        assert (tree / "debian" / name).read_text() == (tmp_path / source).read_text(), name


def test_sysusers_file_creates_the_group_kernel_yaml_names(tmp_path: Path) -> None:
    """A different group in kernel.yaml is the group debian/<tools>.sysusers creates."""
    cfg = _with(config.load(), group="agents")
    sysusers = _render(tmp_path, cfg) / "debian" / f"{cfg.packages.tools}.sysusers"
    assert "g agents - -" in sysusers.read_text().splitlines()


def test_dkms_install_lays_out_the_source_as_stage_driver_source_does(
    tree: Path, tmp_path: Path
) -> None:
    """memlog-dkms.install lays the source out in /usr/src/memlog-VERSION/ as staging does."""
    cfg = config.load()
    installed = set()
    rendered = [p.relative_to(tree).as_posix() for p in (tree / "debian").rglob("*")]
    for pattern, dest in _install_lines(tree / "debian" / f"{cfg.packages.dkms}.install"):
        for rel in fnmatch.filter([*debian.upstream_files(), *rendered], pattern):
            installed.add(f"{dest.rstrip('/')}/{Path(rel).name}")
    staged = stage_driver_source(tmp_path / "staged")
    expected = {
        f"usr/src/memlog-{cfg.memlog.version}/{p.relative_to(staged).as_posix()}"
        for p in staged.rglob("*")
        if p.is_file()
    }
    assert installed == expected


def test_maintainer_scripts_pass_shellcheck(tree: Path) -> None:
    """Every rendered maintainer script passes `shellcheck -s sh`."""
    scripts = sorted(
        p for p in (tree / "debian").iterdir() if p.name.rpartition(".")[2] in MAINTAINER_SCRIPTS
    )
    assert {p.name for p in scripts} == {"memlog-tools.postinst"}
    proc = subprocess.run(["shellcheck", "-s", "sh", *map(str, scripts)], capture_output=True,
                          text=True)  # fmt: skip
    assert proc.returncode == 0, proc.stdout


def test_postinst_triggers_udev_for_an_already_loaded_module(tree: Path) -> None:
    """postinst re-applies the udev rule (node group/mode, sysctl) to a loaded module."""
    postinst = (tree / "debian" / "memlog-tools.postinst").read_text()
    for subsystem in ("misc", "module"):
        trigger = f"--action=add --subsystem-match={subsystem} --sysname-match=memlog"
        assert f"udevadm trigger {trigger}" in postinst


def test_postinst_triggers_udev_after_debhelpers_snippets(tree: Path) -> None:
    """The trigger comes after #DEBHELPER#, where systemd-sysusers creates the group it names."""
    postinst = (tree / "debian" / "memlog-tools.postinst").read_text()
    assert postinst.index("#DEBHELPER#") < postinst.index("udevadm trigger")


def test_package_files_follow_the_package_names_in_kernel_yaml(tmp_path: Path) -> None:
    """Renamed packages get their debian/<package>.* files under the new names."""
    cfg = _with(config.load(), tools="agentlog-tools", dkms="agentlog-dkms")
    files = {p.name for p in (_render(tmp_path, cfg) / "debian").iterdir()}
    assert {
        "agentlog-tools.postinst", "agentlog-tools.install", "agentlog-tools.manpages",
        "agentlog-tools.memlog.udev", "agentlog-tools.sysusers",
        "agentlog-dkms.install", "agentlog-dkms.dkms",
    } <= files  # fmt: skip
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
    """The DEP-5 licence of each tagged file of the upstream tarball is its SPDX tag's licence."""
    copyright_ = _paragraphs((tree / "debian" / "copyright").read_text())
    paragraphs = [p for p in copyright_ if "Files" in p]
    checked = 0
    for rel in debian.upstream_files():
        text = (REPO / rel).read_bytes().decode(errors="replace")  # the vectors are binary
        tag = re.search(r"SPDX-License-Identifier: (.+?)\s*(\*/)?$", text, re.M)
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


# --- the upstream tarball


def test_upstream_files_are_the_package_sources(tree: Path) -> None:
    """The tarball holds the driver, the UAPI header, the library and its pyproject.toml."""
    files = debian.upstream_files()
    assert {
        "drivers/char/memlog/Kbuild", "drivers/char/memlog/memlog_main.c",
        "include/uapi/linux/memlog.h", "src/memlog/cli.py", "pyproject.toml", "README.md",
    } <= set(files)  # fmt: skip
    assert all(f.startswith(debian.UPSTREAM_PATHS) for f in files)
    assert files == sorted(files)


def _git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t.invalid", *args],
        check=True, capture_output=True,
    )  # fmt: skip


def _write(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)


def test_upstream_files_are_what_git_knows_without_build_artefacts(tmp_path: Path) -> None:
    """Untracked files count, ignored and deleted ones do not; of the driver, only its sources."""
    repo = tmp_path / "repo"
    _write(repo, {
        ".gitignore": "*.o\n", "README.md": "", "pyproject.toml": "", "tasks.py": "",
        "drivers/char/memlog/Kbuild": "", "drivers/char/memlog/memlog_main.c": "",
        "include/uapi/linux/memlog.h": "", "src/memlog/cli.py": "", "src/memlog/gone.py": "",
        "src/wintermute/run.py": "",
    })  # fmt: skip
    _git(repo, "init", "-q")
    _git(repo, "add", ".")
    _git(repo, "commit", "-q", "-m", "sources")
    (repo / "src/memlog/gone.py").unlink()
    _write(repo, {
        "src/memlog/new.py": "", "drivers/char/memlog/memlog_main.o": "",
        "drivers/char/memlog/memlog.mod.c": "", "drivers/char/memlog/.memlog.ko.cmd": "",
        "drivers/char/memlog/notes.txt": "",
    })  # fmt: skip
    assert debian.upstream_files(repo) == [
        "README.md",
        "drivers/char/memlog/Kbuild",
        "drivers/char/memlog/memlog_main.c",
        "include/uapi/linux/memlog.h",
        "pyproject.toml",
        "src/memlog/cli.py",
        "src/memlog/new.py",
    ]


@pytest.mark.parametrize("inside", [False, True], ids=["alone", "inside-a-checkout"])
def test_upstream_files_of_a_tree_without_git_are_its_files_not_ignored(
    tmp_path: Path, inside: bool
) -> None:
    """An unpacked release (no .git): its files that its .gitignore keeps; never the git of a
    checkout it was unpacked into (which ignores it, as a clone ignores out/)."""
    if inside:
        _write(tmp_path, {".gitignore": "/wintermute-0.2.0/\n"})
        _git(tmp_path, "init", "-q")
    tree = tmp_path / "wintermute-0.2.0"
    _write(tree, {
        ".gitignore": "__pycache__/\n*.o\n", "README.md": "", "tasks.py": "",
        "drivers/char/memlog/Kbuild": "", "drivers/char/memlog/memlog_main.o": "",
        "src/memlog/cli.py": "", "src/memlog/__pycache__/cli.cpython-311.pyc": "",
    })  # fmt: skip
    assert debian.upstream_files(tree) == [
        "README.md",
        "drivers/char/memlog/Kbuild",
        "src/memlog/cli.py",
    ]


def test_tarball_bytes_do_not_depend_on_modes_umask_or_place(tmp_path: Path) -> None:
    """The same files, with other modes and umask, elsewhere: the same tarball bytes."""
    files = {"b/z.c": "int z;\n", "a.py": "print()\n", "run": "#!/bin/sh\n"}
    tarballs = []
    for name, mask, mode in (("one", 0o022, 0o644), ("two", 0o077, 0o600)):
        root = tmp_path / name / "src"
        with _umask(mask):
            _write(root, files)
            (root / "run").chmod(mode | 0o100)
            (root / "a.py").chmod(mode)
            tarballs.append(tarball(root, sorted(files), tmp_path / name / "x.tar.xz",
                                    top="x-1", epoch=EPOCH, log=str(tmp_path / "log")))  # fmt: skip
    assert tarballs[0].read_bytes() == tarballs[1].read_bytes()


def test_tarball_members_are_sorted_owned_by_root_and_dated_by_the_epoch(tmp_path: Path) -> None:
    """Names sorted under top/, uid and gid 0, mtime the epoch, modes 0644 and 0755."""
    root = tmp_path / "src"
    _write(root, {"b/z.c": "", "a.py": "", "run": ""})
    (root / "run").chmod(0o700)
    path = tarball(root, ["run", "b/z.c", "a.py"], tmp_path / "x.tar.xz", top="x-1",
                   epoch=EPOCH, log=str(tmp_path / "log"))  # fmt: skip
    with tarfile.open(path) as tar:
        members = tar.getmembers()
    assert [m.name for m in members] == ["x-1", "x-1/a.py", "x-1/b", "x-1/b/z.c", "x-1/run"]
    assert {(m.uid, m.gid, m.mtime) for m in members} == {(0, 0, EPOCH)}
    modes = {m.name: m.mode for m in members}
    assert (modes["x-1/a.py"], modes["x-1/run"], modes["x-1/b"]) == (0o644, 0o755, 0o755)


def test_source_tree_is_the_upstream_tarball_plus_the_rendered_debian_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The build tree holds exactly the upstream files and debian/, the tarball beside it."""
    monkeypatch.setenv("WINTERMUTE_OUT", str(tmp_path / "out"))
    _render(tmp_path / "render" / "debian")
    tree = debian.source_tree(tmp_path / "render", tmp_path / "build")
    version = config.load().memlog.version
    assert (tmp_path / "build" / f"memlog_{version}.orig.tar.xz").is_file()
    files = {p.relative_to(tree).as_posix() for p in tree.rglob("*") if p.is_file()}
    assert {f for f in files if not f.startswith("debian/")} == set(debian.upstream_files())
    assert "debian/rules" in files


def test_source_tree_does_not_depend_on_the_umask(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under umask 077 the orig tarball and debian/'s modes are those made under umask 022."""
    monkeypatch.setenv("WINTERMUTE_OUT", str(tmp_path / "out"))
    results = []
    for name, mask in (("one", 0o022), ("two", 0o077)):
        with _umask(mask):
            _render(tmp_path / name / "render" / "debian")
            tree = debian.source_tree(tmp_path / name / "render", tmp_path / name / "build")
        [orig] = tree.parent.glob("*.orig.tar.xz")
        debian_dir = [tree / "debian", *(tree / "debian").rglob("*")]
        results.append(
            (orig.read_bytes(), {p.relative_to(tree): p.stat().st_mode for p in debian_dir})
        )
    assert results[0] == results[1]


# --- where the system files are installed


def test_installed_paths_for_arch_are_the_canonical_ones() -> None:
    """Arch installs the system files where INSTALLED_PATHS says."""
    assert installed_paths("arch") == INSTALLED_PATHS


def test_installed_paths_for_debian_are_where_debhelper_puts_them() -> None:
    """dh_installudev uses /lib/udev/rules.d; dh_installsysusers names the file for the package."""
    paths = installed_paths("debian", "agentlog-tools")
    assert paths["udev.rules"] == "/lib/udev/rules.d/60-memlog.rules"
    assert paths["sysusers.conf"] == "/usr/lib/sysusers.d/agentlog-tools.conf"
    assert paths.keys() == INSTALLED_PATHS.keys()


def test_installed_paths_of_an_unknown_distribution_is_a_user_error() -> None:
    """An unknown distribution is named in a one-line error listing the known ones."""
    with pytest.raises(UserError, match=r"'gentoo'.*debian"):
        installed_paths("gentoo")


def test_symbols_file_gives_each_global_of_the_version_script_its_node_s_version() -> None:
    """A node's globals, and the node itself, with the version SYMBOL_NODE_VERSIONS gives it."""
    script = "/* c */\nMEMLOG_0.1 {\nglobal:\n\tmemlog_b;\n\tmemlog_a;\nlocal:\n\t*;\n};\n"
    assert debian.symbols_file(script).splitlines() == [
        "libmemlog.so.0 libmemlog0 #MINVER#",
        "* Build-Depends-Package: libmemlog-dev",
        " MEMLOG_0.1@MEMLOG_0.1 0.2.0",
        " memlog_a@MEMLOG_0.1 0.2.0",
        " memlog_b@MEMLOG_0.1 0.2.0",
    ]


def test_a_version_node_without_an_upstream_version_stops_rendering() -> None:
    """A new node in libmemlog.map needs the version it ships in, or the symbols file lies."""
    script = "MEMLOG_0.1 { global: a; local: *; };\nMEMLOG_0.2 { global: b; } MEMLOG_0.1;\n"
    with pytest.raises(UserError, match=r"MEMLOG_0\.2 has no upstream version"):
        debian.symbols_file(script)
