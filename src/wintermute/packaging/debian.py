"""Debian: one source package ``memlog`` with two binary packages, built by debhelper.

``render`` writes ``debian/`` into ``out/render/debian/memlog-VERSION/``:
``templates/debian`` with kernel.yaml's values, plus the system files, the man
page and dkms.conf (``templates/system``, ``templates/doc``,
``templates/dkms``) under the names debhelper's helpers look for
(:func:`helper_files`).

``build`` makes the upstream tarball ``memlog_VERSION.orig.tar.xz`` from the
repository's own sources (:func:`upstream_files`), unpacks it, adds the
rendered ``debian/``, runs ``dpkg-buildpackage`` and then ``lintian`` (an
error or a warning fails the build; log ``out/logs/lintian.log``), and puts
the results in ``out/debian/``.  :func:`reprotest` rebuilds the source
package twice with Debian's ``reprotest``, varying what differs between
machines, and compares the ``.deb`` files.

Who does what, for whoever maintains this next:

* pybuild (``--buildsystem=pybuild``, pybuild-plugin-pyproject) builds the
  library and the ``memlog`` entry point from pyproject.toml; dh_python3
  fills ``${python3:Depends}`` and byte-compiles on installation.
* dh_installudev (``--name=memlog``: ``/lib/udev/rules.d/60-memlog.rules``
  under compat 13), dh_installsysusers (the ``installsysusers`` addon, not in
  compat 13's default sequence; it adds the systemd-sysusers dependency and
  creates the group in postinst), dh_installman, dh_install (sysctl.d,
  modules-load.d, the DKMS source) and dh_dkms (dkms.conf, the DKMS
  maintainer scripts).  :func:`system_files.installed_paths` says where each
  system file ends up.
* memlog-tools' own postinst only re-triggers udev for an already loaded
  module, which no helper does.
* The changelog's date is :func:`reproducible.source_date_epoch`; dpkg derives
  ``SOURCE_DATE_EPOCH`` from it, and the upstream tarball's mtimes are the
  same, so the same inputs give the same bytes.
* Purge leaves the group (Debian never deletes system groups); README.Debian
  says so.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

import jinja2

from wintermute.driver_source import VERSION_HEADER, driver_files, version_header
from wintermute.errors import InfraError, UserError
from wintermute.packaging import render as rendering
from wintermute.packaging.system_files import installed_paths
from wintermute.paths import REPO, out_dir
from wintermute.reproducible import rfc2822, tarball
from wintermute.run import capture, run, say

LOG = "debian-build.log"
DRIVER = "drivers/char/memlog"
# What the packages are built from, relative to the repository.
UPSTREAM_PATHS = (DRIVER, "include/uapi/linux/memlog.h", "src/memlog", "pyproject.toml",
                  "README.md", "docs", "libmemlog")  # fmt: skip
# libmemlog's linker version script: the symbols file is made from it.
LIBRARY_MAP = REPO / "libmemlog" / "src" / "libmemlog.map"
# The upstream version each of the map's version nodes first shipped in (the
# symbols file's minimal versions); a new node needs its line here.
SYMBOL_NODE_VERSIONS = {"MEMLOG_0.1": "0.2.0"}
# lintian: any error or warning fails the build.  Info tags are shown too (an
# unused override is one).  Not --show-overrides: lintian 2.116 then counts the
# overridden tags towards --fail-on.
LINTIAN = ["lintian", "--fail-on", "error,warning", "--display-info", "--tag-display-limit", "0"]
# The build sees the distribution's tools, not a user's (a pyenv python3 first on PATH).
BUILD_ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C.UTF-8"}
# What reprotest varies between its two builds: everything it can (build path,
# hostname and domain, time zone, locale, umask, time, file order, kernel
# personality, CPUs, HOME, PATH, environment) except user_group: with the null
# backend it needs domain_host.use_sudo, and reprotest 0.7.23 then runs
# `sudo -h HOST`, which Debian 12's sudo 1.9.13 rejects ("a remote host may
# only be specified when listing privileges"; tried with the wintermute-build
# user).  The time is always moved 700 days ahead (by default reprotest
# sometimes leaves it).
REPROTEST_VARIATIONS = ("+all", "-user_group", "time.faketimes+=+700days")


def source_dir_name(ctx: dict[str, Any]) -> str:
    return f"memlog-{ctx['memlog']['version']}"


def helper_files(packages: dict[str, str]) -> dict[str, str]:
    """Rendered template (group/name) -> its name in debian/, where a debhelper helper finds it."""
    tools, dkms = packages["tools"], packages["dkms"]
    return {
        "system/udev.rules": f"{tools}.memlog.udev",  # dh_installudev --name=memlog
        "system/sysusers.conf": f"{tools}.sysusers",  # dh_installsysusers
        "system/sysctl.conf": "sysctl.d/60-memlog.conf",  # dh_install: <tools>.install
        "system/modules-load.conf": "modules-load.d/memlog.conf",  # dh_install
        "system/memlog-promote.service": f"{tools}.memlog-promote.user.service",
        "system/memlog-promote.timer": f"{tools}.memlog-promote.user.timer",
        "doc/memlog.1": "memlog.1",  # dh_installman: <tools>.manpages
        "dkms/dkms.conf": f"{dkms}.dkms",  # dh_dkms
    }


def render(env: jinja2.Environment, ctx: dict[str, Any], dest: Path) -> None:
    """Write memlog-VERSION/debian/ under ``dest``."""
    ctx = {
        **ctx,
        "changelog_date": rfc2822(ctx["source_date_epoch"]),
        "installed_paths": installed_paths("debian", ctx["packages"]["tools"]),
    }
    debian = dest / source_dir_name(ctx) / "debian"
    rendering.render_group(env, ctx, "debian", debian.parent)
    _rename_package_files(debian, ctx["packages"])
    files = helper_files(ctx["packages"])
    with tempfile.TemporaryDirectory() as tmp:
        for group in sorted({source.partition("/")[0] for source in files}):
            rendering.render_group(env, ctx, group, Path(tmp) / group)
        for source, name in files.items():
            (debian / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(Path(tmp) / source, debian / name)  # with the mode rendering gave it
    (debian / "libmemlog0.symbols").write_text(symbols_file(LIBRARY_MAP.read_text()))
    (debian / "libmemlog0.symbols").chmod(0o644)
    # The driver's version, from kernel.yaml like every staged driver source
    # (memlog-dkms.install puts it beside the driver).
    (debian / VERSION_HEADER).write_text(version_header(ctx["memlog"]["version"]))
    (debian / VERSION_HEADER).chmod(0o644)  # as rendering gives, whatever the umask


def symbols_file(version_script: str) -> str:
    """debian/libmemlog0.symbols for the exported symbols of ``version_script`` (a linker map).

    Every global symbol gets the version of its node in :data:`SYMBOL_NODE_VERSIONS`;
    dpkg-gensymbols (-c4) then fails the build on any difference from the library.
    """
    text = re.sub(r"/\*.*?\*/", "", version_script, flags=re.S)
    lines = ["libmemlog.so.0 libmemlog0 #MINVER#", "* Build-Depends-Package: libmemlog-dev"]
    nodes = re.findall(r"([\w.]+)\s*\{(.*?)\}\s*[\w.]*\s*;", text, flags=re.S)
    if not nodes:
        raise UserError(f"{LIBRARY_MAP}: no version node found")
    for node, body in nodes:
        if node not in SYMBOL_NODE_VERSIONS:
            raise UserError(
                f"{LIBRARY_MAP}: version node {node} has no upstream version in "
                "debian.SYMBOL_NODE_VERSIONS: add the version it first ships in"
            )
        version = SYMBOL_NODE_VERSIONS[node]
        global_part = body.split("local:")[0].replace("global:", "")
        names = sorted(n.strip() for n in global_part.split(";") if n.strip())
        lines.append(f" {node}@{node} {version}")
        lines.extend(f" {name}@{node} {version}" for name in names)
    return "\n".join(lines) + "\n"


def _rename_package_files(debian: Path, packages: dict[str, str]) -> None:
    """debian/memlog-tools.* and memlog-dkms.* take the package names kernel.yaml gives."""
    names = {"memlog-tools": packages["tools"], "memlog-dkms": packages["dkms"]}
    for path in sorted(debian.glob("memlog-*.*")):
        package, _, rest = path.name.partition(".")
        if names.get(package, package) != package:
            path.rename(path.with_name(f"{names[package]}.{rest}"))


def upstream_files(repo: Path = REPO) -> list[str]:
    """The files of the upstream tarball, relative to ``repo``, sorted.

    What git knows in the working tree (tracked or not ignored; uncommitted
    edits count) under :data:`UPSTREAM_PATHS`; in a tree without ``.git`` (an
    unpacked release), every file there that its ``.gitignore`` files do not
    ignore, as git lists them against an empty repository.  Of the driver
    directory, only source files (no build artefacts).
    """
    with tempfile.TemporaryDirectory(prefix="wintermute-git-") as empty:
        git = ["git"]
        if not (repo / ".git").exists():  # never the git of a checkout around the tree
            capture(["git", "init", "-q", "--bare", empty])
            git = ["git", f"--git-dir={empty}", f"--work-tree={repo}"]
        listing = capture(
            [*git, "ls-files", "-z", "--cached", "--others", "--exclude-standard", "--",
             *UPSTREAM_PATHS],
            cwd=repo,
        )  # fmt: skip
    known = {p for p in listing.split("\0") if p and (repo / p).is_file()}
    driver_sources = {p.relative_to(repo).as_posix() for p in driver_files(repo / DRIVER)}
    return sorted(p for p in known if not p.startswith(f"{DRIVER}/") or p in driver_sources)


def _changelog(tree: Path, field: str) -> str:
    return capture(["dpkg-parsechangelog", "-S", field], cwd=tree).strip()


def source_tree(render_dir: Path, build_dir: Path) -> Path:
    """Make the upstream tarball in ``build_dir``, unpack it there, add the rendered debian/.

    Returns the source tree, ``build_dir/memlog-VERSION``.
    """
    [rendered] = (render_dir / "debian").iterdir()
    epoch = int(_changelog(rendered, "Timestamp"))
    version = _changelog(rendered, "Version").rpartition("-")[0]
    orig = tarball(REPO, upstream_files(), build_dir / f"memlog_{version}.orig.tar.xz",
                   top=rendered.name, epoch=epoch, log=LOG)  # fmt: skip
    run(["tar", "-C", build_dir, "-xf", orig], log=LOG)
    tree = build_dir / rendered.name
    shutil.copytree(rendered / "debian", tree / "debian")
    # dpkg-source packs debian/ with the modes it finds: files are rendered
    # 0644 or 0755, directories are made here under the caller's umask.
    for path in [tree / "debian", *(p for p in (tree / "debian").rglob("*") if p.is_dir())]:
        path.chmod(0o755)
    return tree


def _check_build_dependencies(tree: Path) -> None:
    try:
        capture(["dpkg-checkbuilddeps"], cwd=tree, env=BUILD_ENV)
    except InfraError as exc:
        raise UserError(f"{exc}; install them with scripts/setup-host") from None


def _collect(build_dir: Path) -> list[Path]:
    """Move what dpkg-buildpackage made into a fresh out/debian/."""
    dest = out_dir() / "debian"
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir()
    return [
        Path(shutil.move(path, dest / path.name))
        for path in sorted(build_dir.iterdir())
        if path.is_file()
    ]


def build(render_dir: Path) -> list[Path]:
    """Build the source and binary packages into out/debian/; lintian must find nothing."""
    build_dir = out_dir() / "build" / "debian"
    if build_dir.exists():
        shutil.rmtree(build_dir)
    build_dir.mkdir(parents=True)
    tree = source_tree(render_dir, build_dir)
    _check_build_dependencies(tree)
    run(
        ["dpkg-buildpackage", "-us", "-uc"],
        cwd=tree,
        log=LOG,
        env=BUILD_ENV,
        step="building the Debian packages with dpkg-buildpackage",
    )
    results = _collect(build_dir)
    changes = [p for p in results if p.suffix == ".changes"]
    if len(changes) != 1:
        raise InfraError(f"dpkg-buildpackage made {len(changes)} .changes files; see {LOG}")
    run([*LINTIAN, changes[0]], log="lintian.log", step="lintian (errors and warnings fail)")
    say(f"built {', '.join(p.name for p in results if p.suffix == '.deb')} in {out_dir()}/debian")
    return results


def reprotest(dsc: Path, store: Path) -> None:
    """Build ``dsc`` twice with reprotest (null server: here, in temp dirs); the .debs must match.

    ``store`` (must not exist yet) keeps both builds' .debs, and diffoscope's
    report if they differ.  Needs the build dependencies installed.
    """
    run(
        ["reprotest", "--verbosity=1", "--min-cpus=1",
         f"--variations={','.join(REPROTEST_VARIATIONS)}", "--store-dir", store, dsc, "--", "null"],
        cwd=dsc.parent,
        log="reprotest.log",
        env=BUILD_ENV,
        step=f"reprotest: building {dsc.name} twice, the second time under other conditions",
    )  # fmt: skip
