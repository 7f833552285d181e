"""The driver as a ``git format-patch`` series against a kernel tree, made and applied.

``wintermute-kernel/upstream/series.yaml`` says what each patch holds (its
*parts*: the driver, the ioctl-number row, the ABI text, the sysctl section,
the selftest, and the MAINTAINERS lines for what it adds) and its message.
:func:`write_series` makes the commits in a small git repository holding only
the kernel files the series changes (:data:`BASE_FILES`, taken from the
tree), then ``git format-patch``es them: blob ids depend on content alone, so
the patches are those a full kernel repository would give.  The author,
``Signed-off-by`` and dates are fixed (kernel.yaml's maintainer,
:func:`source_date_epoch` of the series' inputs), so the same inputs give the
same bytes.  Then ``git am`` applies the patches to the same base in a second
repository, and what that gives must be what was committed.

:func:`applied_files` is what a build does with it: the series' patches
applied with ``git apply`` to the tree's own files, the result returned for
the build to write into its tree.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from memlog import uapi
from wintermute import config
from wintermute.config import DESCRIPTIONS
from wintermute.errors import InfraError, UserError
from wintermute.paths import REPO
from wintermute.reproducible import source_date_epoch
from wintermute.run import capture, run
from wintermute.upstream import driver, kernel_files

UPSTREAM = DESCRIPTIONS / "upstream"
SERIES_YAML = UPSTREAM / "series.yaml"
SERIES_SCHEMA = UPSTREAM / "series.schema.json"
SYSCTL_SECTION = UPSTREAM / "kernel.rst"
ABI_PATH = "Documentation/ABI/testing/dev-memlog"
SELFTEST_DIR = "tools/testing/selftests/memlog"
UAPI_INCLUDE = "uapi/linux/memlog.h"  # as ioctl-number.rst names include files
LOG = "patch-series.log"
# What the series dates its commits by: a commit touching anything else does not
# change the patches' bytes.
INPUTS = (
    "drivers/char/memlog",
    "include/uapi/linux/memlog.h",
    ABI_PATH,
    SELFTEST_DIR,
    "wintermute-kernel/upstream",
    "src/wintermute/upstream",
)
# The tree's files the series changes (never creates).
BASE_FILES = (
    kernel_files.KCONFIG,
    kernel_files.MAKEFILE,
    kernel_files.IOCTL_NUMBERS,
    kernel_files.SYSCTL_KERNEL,
    kernel_files.MAINTAINERS,
    kernel_files.SELFTESTS_MAKEFILE,
)


@dataclass(frozen=True)
class Patch:
    subject: str
    body: str
    parts: tuple[str, ...]


@dataclass(frozen=True)
class Description:
    cover_subject: str
    cover_body: str
    patches: tuple[Patch, ...]
    maintainers_title: str
    maintainers_list: str
    maintainers_status: str
    ioctl_seq: str
    ioctl_comment: str


def load(path: Path = SERIES_YAML) -> Description:
    """series.yaml, validated against series.schema.json."""
    data = config.load_yaml(path, SERIES_SCHEMA)
    patches = tuple(
        Patch(p["subject"], p["body"].strip(), tuple(p["parts"])) for p in data["patches"]
    )
    unknown = sorted({part for p in patches for part in p.parts} - set(PARTS))
    if unknown:
        raise UserError(
            f"{path.relative_to(REPO)}: unknown part {', '.join(unknown)} "
            f"(parts: {', '.join(PARTS)})"
        )
    return Description(
        cover_subject=data["cover_letter"]["subject"],
        cover_body=data["cover_letter"]["body"].strip(),
        patches=patches,
        maintainers_title=data["maintainers"]["title"],
        maintainers_list=data["maintainers"]["list"],
        maintainers_status=data["maintainers"]["status"],
        ioctl_seq=data["ioctl_number"]["seq"],
        ioctl_comment=data["ioctl_number"]["comment"],
    )


# --- the parts: each changes the tree's state (path -> text) ---------------------


@dataclass
class State:
    files: dict[str, str]
    desc: Description
    version: str
    maintainer: str
    created: list[str]  # by the patch being made, for its MAINTAINERS lines

    def create(self, path: str, text: str) -> None:
        if path in self.files:
            raise UserError(f"the series creates {path}, which the tree already has")
        self.files[path] = text
        self.created.append(path)

    def change(self, path: str, edit: Callable[[str], str]) -> None:
        self.files[path] = edit(self.files[path])


def _driver(state: State) -> None:
    for path, text in driver.upstream_files(state.version).items():
        state.create(path, text)
    state.change(kernel_files.KCONFIG, kernel_files.add_kconfig)
    state.change(kernel_files.MAKEFILE, kernel_files.add_makefile)


def _ioctl_number(state: State) -> None:
    state.change(
        kernel_files.IOCTL_NUMBERS,
        lambda text: kernel_files.add_ioctl_number(
            text,
            code=f"0x{uapi.IOC_TYPE:02X}",
            seq=state.desc.ioctl_seq,
            include=UAPI_INCLUDE,
            comment=state.desc.ioctl_comment,
        ),
    )


def _abi(state: State) -> None:
    state.create(ABI_PATH, (REPO / ABI_PATH).read_text())


def _sysctl(state: State) -> None:
    section = SYSCTL_SECTION.read_text()
    state.change(
        kernel_files.SYSCTL_KERNEL,
        lambda text: kernel_files.add_sysctl_section(text, "memlog", section),
    )


def _selftest(state: State) -> None:
    for path in sorted((REPO / SELFTEST_DIR).iterdir()):
        if path.is_file():
            state.create(f"{SELFTEST_DIR}/{path.name}", path.read_text())
    state.change(
        kernel_files.SELFTESTS_MAKEFILE,
        lambda text: kernel_files.add_selftest_target(text, "memlog"),
    )


def maintained_paths(created: list[str]) -> list[str]:
    """The F: patterns for files a patch created: a directory named memlog as itself."""
    paths = set()
    for path in created:
        parts = path.split("/")
        if "memlog" in parts[:-1]:
            path = "/".join(parts[: parts.index("memlog") + 1]) + "/"
        paths.add(path)
    return sorted(paths)


def _maintainers(state: State) -> None:
    desc = state.desc
    title = desc.maintainers_title
    if title not in state.files[kernel_files.MAINTAINERS].split("\n"):
        fields = [
            f"M:\t{state.maintainer}",
            f"L:\t{desc.maintainers_list}",
            f"S:\t{desc.maintainers_status}",
        ]
        state.change(
            kernel_files.MAINTAINERS,
            lambda text: kernel_files.add_maintainers_entry(text, title, fields),
        )
    paths = maintained_paths(state.created)
    state.change(
        kernel_files.MAINTAINERS,
        lambda text: kernel_files.add_maintainers_files(text, title, paths),
    )


# In the order a patch's parts are made; "maintainers" last: it names what the others created.
PARTS: dict[str, Callable[[State], None]] = {
    "driver": _driver,
    "ioctl_number": _ioctl_number,
    "abi": _abi,
    "sysctl": _sysctl,
    "selftest": _selftest,
    "maintainers": _maintainers,
}


def states(base: Mapping[str, str], desc: Description, version: str,
           maintainer: str) -> list[dict[str, str]]:  # fmt: skip
    """The tree's files (those the series touches) after each patch, in order."""
    state = State(dict(base), desc, version, maintainer, [])
    after = []
    for patch in desc.patches:
        state.created = []
        for name in PARTS:
            if name in patch.parts:
                PARTS[name](state)
        after.append(dict(state.files))
    return after


# --- git -------------------------------------------------------------------------


def _git_env(name: str, email: str, epoch: int) -> dict[str, str]:
    when = f"@{epoch} +0000"
    return {
        "GIT_AUTHOR_NAME": name,
        "GIT_AUTHOR_EMAIL": email,
        "GIT_COMMITTER_NAME": name,
        "GIT_COMMITTER_EMAIL": email,
        "GIT_AUTHOR_DATE": when,
        "GIT_COMMITTER_DATE": when,
        "GIT_CONFIG_GLOBAL": "/dev/null",
        "GIT_CONFIG_NOSYSTEM": "1",
        "TZ": "UTC",
    }


def _person(maintainer: str) -> tuple[str, str]:
    name, _, rest = maintainer.partition("<")
    if not rest.endswith(">") or not name.strip():
        raise UserError(f"kernel.yaml maintainer {maintainer!r} is not 'Name <email>'")
    return name.strip(), rest[:-1]


def _write_tree(root: Path, files: Mapping[str, str]) -> None:
    for path, text in files.items():
        dest = root / path
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text(text)


def _repo(root: Path, base: Mapping[str, str], env: Mapping[str, str]) -> None:
    root.mkdir(parents=True)
    _write_tree(root, base)
    git = ["git", "-C", root]
    run([*git, "init", "-q", "-b", "base"], log=LOG, env=env)
    run([*git, "add", "-A"], log=LOG, env=env)
    run([*git, "commit", "-q", "-m", "the kernel tree's files the series changes"],
        log=LOG, env=env)  # fmt: skip


def write_series(
    base: Mapping[str, str],
    dest: Path,
    *,
    desc: Description | None = None,
    cfg: config.Config | None = None,
) -> list[Path]:
    """The series against ``base`` (path -> text of :data:`BASE_FILES`) into ``dest``.

    ``dest`` is emptied of an earlier series first (UserError if it holds other
    files); returns the patch files, cover letter first.
    UserError if the result does not apply to ``base`` with ``git am``.
    """
    desc = desc or load()
    cfg = cfg or config.load()
    name, email = _person(cfg.maintainer)
    env = _git_env(name, email, source_date_epoch(INPUTS))
    after = states(base, desc, cfg.memlog.version, cfg.maintainer)
    with tempfile.TemporaryDirectory(prefix="wintermute-series-") as tmp:
        repo = Path(tmp) / "made"
        _repo(repo, base, env)
        git = ["git", "-C", repo]
        run([*git, "checkout", "-q", "-b", "memlog"], log=LOG, env=env)
        run([*git, "config", "branch.memlog.description",
             f"{desc.cover_subject}\n\n{desc.cover_body}\n"], log=LOG, env=env)  # fmt: skip
        previous = dict(base)
        for patch, files in zip(desc.patches, after, strict=True):
            for gone in set(previous) - set(files):
                (repo / gone).unlink()
            _write_tree(repo, files)
            previous = files
            message = f"{patch.subject}\n\n{patch.body}\n\nSigned-off-by: {cfg.maintainer}\n"
            run([*git, "add", "-A"], log=LOG, env=env)
            run([*git, "commit", "-q", "-F", "-"], log=LOG, env=env, input=message.encode())
        out = Path(tmp) / "patches"
        step = f"writing the patch series ({len(desc.patches)} patches)"
        run([*git, "format-patch", "-q", "--cover-letter", "--cover-from-description=subject",
             "--zero-commit", "--no-signature", "--no-thread", "-o", out, "base..memlog"],
            log=LOG, env=env, step=step)  # fmt: skip
        patches = sorted(out.glob("*.patch"))
        _check_applies(Path(tmp) / "check", base, patches[1:], after[-1], env)
        _empty(dest)
        written = []
        for patch_file in patches:
            shutil.copyfile(patch_file, dest / patch_file.name)
            written.append(dest / patch_file.name)
    return written


def _empty(dest: Path) -> None:
    """``dest`` made, or emptied of an earlier series; UserError if it holds anything else."""
    dest.mkdir(parents=True, exist_ok=True)
    others = [p.name for p in dest.iterdir() if not (p.is_file() and p.suffix == ".patch")]
    if others:
        raise UserError(f"{dest} holds other files than patches ({others[0]}): choose another")
    for old in dest.iterdir():
        old.unlink()


def _check_applies(root: Path, base: Mapping[str, str], patches: list[Path],
                   final: Mapping[str, str], env: Mapping[str, str]) -> None:  # fmt: skip
    """``git am`` of ``patches`` onto ``base`` gives ``final``, or UserError."""
    _repo(root, base, env)
    try:
        run(["git", "-C", root, "am", "-q", *patches], log=LOG, env=env,
            step="applying the series to its base with git am")  # fmt: skip
    except InfraError:
        raise UserError(
            f"the patch series does not apply to its base; see out/logs/{LOG}"
        ) from None
    tracked = capture(["git", "-C", root, "ls-files"]).split()
    got = {path: (root / path).read_text() for path in tracked}
    if got != dict(final):
        differ = sorted(p for p in set(got) | set(final) if got.get(p) != final.get(p))
        raise UserError(f"git am of the series gives other files than made it: {', '.join(differ)}")


def base_files(tree: Path, *, pristine: Path | None = None) -> dict[str, str]:
    """:data:`BASE_FILES` of ``tree``, each from ``pristine`` instead where it has a copy."""
    files = {}
    for path in BASE_FILES:
        source = pristine / path if pristine and (pristine / path).is_file() else tree / path
        if not source.is_file():
            raise UserError(f"{tree} has no {path}: not a kernel tree the series is made for")
        files[path] = source.read_text()
    return files


def applied_files(base: Mapping[str, str], patches: list[Path]) -> dict[str, str]:
    """``base`` with ``patches`` (the cover letter skipped) applied by ``git apply``."""
    with tempfile.TemporaryDirectory(prefix="wintermute-apply-") as tmp:
        root = Path(tmp)
        _write_tree(root, base)
        mails = [p for p in patches if not p.name.startswith("0000-")]
        try:
            run(["git", "apply", "--whitespace=error-all", *mails], log=LOG, cwd=root)
        except InfraError:
            raise UserError(f"the patch series does not apply; see out/logs/{LOG}") from None
        return {
            str(p.relative_to(root)): p.read_text() for p in sorted(root.rglob("*")) if p.is_file()
        }
