"""memlog as an upstream patch series: the driver's upstream form, the kernel files' edits,
the series made with git and applied with git apply (kernel_builds checks it on 7.2)."""

from __future__ import annotations

import email
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.unit.fake_kernel_files import BASE, IOCTL_NUMBERS, MAINTAINERS, SYSCTL_KERNEL
from wintermute.errors import UserError
from wintermute.paths import DRIVER_DIR, UAPI_HEADER
from wintermute.upstream import driver, kernel_files, series

# --- the driver's upstream form ---------------------------------------------------


def test_series_driver_has_no_compat_or_version_header_and_its_version_as_a_define() -> None:
    """No memlog_compat.h, Kbuild or out-of-tree Makefile; the version #defined in main.c."""
    files = driver.upstream_files("1.2.3")
    names = {path.rsplit("/", 1)[1] for path in files}
    assert "memlog_compat.h" not in names and "Kbuild" not in names
    assert not any("memlog_compat.h" in t or "memlog_version.h" in t for t in files.values())
    main = files["drivers/char/memlog/memlog_main.c"]
    assert '#define MEMLOG_DRIVER_VERSION\t"1.2.3"\n' in main
    assert "MEMLOG_CTL_" not in main and "static const struct ctl_table memlog_sysctl_table" in main


def test_series_makefile_is_the_kbuild_s_in_tree_part() -> None:
    """drivers/char/memlog/Makefile: SPDX, then the Kbuild's lines after its in-tree mark."""
    makefile = driver.upstream_files("1.2.3")["drivers/char/memlog/Makefile"]
    assert makefile.startswith("# SPDX-License-Identifier: GPL-2.0-only\nobj-$(CONFIG_MEMLOG)")
    assert "KBUILD_EXTMOD" not in makefile
    assert (DRIVER_DIR / "Kbuild").read_text().endswith(makefile.split("\n", 1)[1])


def _edited_driver(tmp_path: Path, name: str, old: str, new: str) -> Path:
    """A copy of the driver with ``old`` replaced by ``new`` in its file ``name``."""
    copy = tmp_path / "memlog"
    shutil.copytree(DRIVER_DIR, copy, ignore=shutil.ignore_patterns("*.o", "*.ko", ".*"))
    path = copy / name
    assert old in path.read_text()
    path.write_text(path.read_text().replace(old, new))
    return copy


@pytest.mark.parametrize(
    ("name", "old", "new", "error"),
    [
        ("memlog_compat.h", "#endif /* _MEMLOG_COMPAT_H */",
         "#define MEMLOG_NEW_THING 1\n#endif /* _MEMLOG_COMPAT_H */",
         r"memlog_compat.h defines MEMLOG_NEW_THING"),
        ("memlog_main.c", '#include "memlog_compat.h"\n',
         '#include "memlog_compat.h" /* older kernels */\n',
         r"still names the compat or version header"),
    ],
    ids=["a compat macro without a newest spelling", "the compat header included another way"],
)  # fmt: skip
def test_a_driver_the_series_cannot_rewrite_stops_it_with_the_reason(
    tmp_path: Path, name: str, old: str, new: str, error: str
) -> None:
    """A compat macro unknown to the series, or an include the rewrite does not know: an
    error naming it, no series."""
    copy = _edited_driver(tmp_path, name, old, new)
    with pytest.raises(UserError, match=error):
        driver.upstream_files("1.2.3", driver_dir=copy, uapi_header=UAPI_HEADER)


def test_a_kernel_name_the_compat_header_backports_stays_as_written() -> None:
    """kzalloc_obj (under #ifndef kzalloc_obj) is the newest kernel's own: unchanged."""
    main = driver.upstream_files("1.2.3")["drivers/char/memlog/memlog_main.c"]
    assert "kzalloc_obj(*ring, GFP_KERNEL_ACCOUNT)" in main


# --- the kernel files' edits -------------------------------------------------------


def test_ioctl_row_goes_in_code_order_in_the_table_s_columns() -> None:
    """0xC1 between 0xC0 and 0xCA, each column where the table's rule puts it."""
    text = kernel_files.add_ioctl_number(
        IOCTL_NUMBERS, code="0xC1", seq="00-0F", include="uapi/linux/memlog.h", comment="memlog"
    )
    lines = text.splitlines()
    [row] = [i for i, line in enumerate(lines) if line.startswith("0xC1")]
    assert lines[row - 1].startswith("0xC0") and lines[row + 1].startswith("0xCA")
    _, seq, include, comment = [m.start() for m in re.finditer(r"=+", lines[3])]
    assert lines[row][seq:include] == "00-0F  "
    assert lines[row][include:comment].rstrip() == "uapi/linux/memlog.h"
    assert lines[row][comment:] == "memlog"


def test_a_taken_ioctl_code_is_refused() -> None:
    """0xCB belongs to another driver in ioctl-number.rst: refused, naming its row."""
    with pytest.raises(UserError, match=r"already lists ioctl code 0xCB: '0xCB  00-1F"):
        kernel_files.add_ioctl_number(IOCTL_NUMBERS, code="0xCB", seq="00-0F", include="x.h",
                                      comment="x")  # fmt: skip


def test_sysctl_section_goes_before_the_first_title_after_it() -> None:
    """memlog between kptr_restrict and modprobe, parted by one blank line each side."""
    text = kernel_files.add_sysctl_section(SYSCTL_KERNEL, "memlog", "memlog\n======\n\nText.\n")
    assert "hidden.\n\nmemlog\n======\n\nText.\n\nmodprobe\n========\n" in text


def test_maintainers_entry_goes_in_title_order_and_gains_sorted_files() -> None:
    """The entry after MEMBARRIER SUPPORT, before MEMORY MANAGEMENT; F: lines sorted."""
    text = kernel_files.add_maintainers_entry(
        MAINTAINERS, "MEMLOG DRIVER", ["M:\tA <a@example.org>", "S:\tMaintained"]
    )
    text = kernel_files.add_maintainers_files(text, "MEMLOG DRIVER", ["include/x.h", "drivers/x/"])
    text = kernel_files.add_maintainers_files(text, "MEMLOG DRIVER", ["Documentation/x"])
    entry = ("\nMEMLOG DRIVER\nM:\tA <a@example.org>\nS:\tMaintained\nF:\tDocumentation/x\n"
             "F:\tdrivers/x/\nF:\tinclude/x.h\n\nMEMORY MANAGEMENT\n")  # fmt: skip
    assert entry in text
    assert text.index("MEMBARRIER SUPPORT") < text.index("MEMLOG DRIVER")


@pytest.mark.parametrize(
    ("edit", "text"),
    [
        (kernel_files.add_kconfig, BASE["drivers/char/Kconfig"]),
        (kernel_files.add_makefile, BASE["drivers/char/Makefile"]),
        (lambda t: kernel_files.add_selftest_target(t, "memlog"),
         BASE["tools/testing/selftests/Makefile"]),
    ],
    ids=["Kconfig", "Makefile", "selftests"],
)  # fmt: skip
def test_an_edit_made_twice_is_refused(edit, text) -> None:  # type: ignore[no-untyped-def]
    """The series is made against a pristine tree: memlog found there already is an error."""
    once = edit(text)
    assert once != text
    with pytest.raises(UserError, match="already has"):
        edit(once)


# --- the series --------------------------------------------------------------------


def _git_am(base: dict[str, str], patches: list[Path], root: Path) -> dict[str, str]:
    root.mkdir()
    for path, text in base.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(text)
    env = ["-c", "user.name=t", "-c", "user.email=t@example.org"]
    for cmd in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "base"], ["am", "-q", *patches]):
        subprocess.run(["git", *env, "-C", root, *cmd], check=True, capture_output=True)
    return {str(p.relative_to(root)): p.read_text() for p in sorted(root.rglob("*"))
            if p.is_file() and ".git" not in p.parts}  # fmt: skip


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return series.write_series(BASE, tmp_path_factory.mktemp("series") / "patches")


def test_series_is_a_cover_letter_and_one_mail_per_patch_of_series_yaml(
    written: list[Path],
) -> None:
    """0000-cover-letter, then the patches of series.yaml in order, each signed off."""
    desc = series.load()
    assert [p.name[:5] for p in written] == [f"{i:04}-" for i in range(len(desc.patches) + 1)]
    cover = written[0].read_text()
    assert f"Subject: [PATCH 0/{len(desc.patches)}] {desc.cover_subject}\n" in cover
    for number, (mail, patch) in enumerate(zip(written[1:], desc.patches, strict=True), 1):
        text = mail.read_text()
        subject = " ".join(email.message_from_string(text)["Subject"].split())
        assert subject.endswith(f"] {patch.subject}") and "\nSigned-off-by: " in text, mail.name
        assert f"[PATCH {number}/{len(desc.patches)}]" in text


def test_series_applied_with_git_am_and_with_git_apply_gives_the_same_tree(
    written: list[Path], tmp_path: Path
) -> None:
    """What a maintainer's git am makes of the mails is what the build's git apply makes."""
    by_am = _git_am(BASE, written[1:], tmp_path / "am")
    assert by_am == series.applied_files(BASE, written)
    assert "drivers/char/memlog/memlog_main.c" in by_am
    assert by_am["drivers/char/Kconfig"].count(kernel_files.KCONFIG_LINE) == 1


def test_series_is_the_same_bytes_when_made_again(written: list[Path], tmp_path: Path) -> None:
    """Fixed author, dates and no git version: the same inputs give the same mails."""
    again = series.write_series(BASE, tmp_path / "again")
    assert [p.read_bytes() for p in again] == [p.read_bytes() for p in written]


def test_series_refuses_to_empty_a_directory_holding_other_files(tmp_path: Path) -> None:
    """--dest pointing at a directory with other things in it: refused, nothing removed."""
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match=r"holds other files than patches \(notes.txt\)"):
        series.write_series(BASE, tmp_path)
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_maintainers_lines_name_new_directories_whole() -> None:
    """drivers/char/memlog/* as drivers/char/memlog/; a lone new file as itself."""
    assert series.maintained_paths(
        ["drivers/char/memlog/Kconfig", "drivers/char/memlog/memlog_main.c",
         "include/uapi/linux/memlog.h"]
    ) == ["drivers/char/memlog/", "include/uapi/linux/memlog.h"]  # fmt: skip


def test_every_patch_of_the_series_adds_its_new_files_to_maintainers(written: list[Path]) -> None:
    """checkpatch asks it of a patch adding files: each such patch touches MAINTAINERS."""
    for mail in written[1:]:
        text = mail.read_text()
        if "new file mode" in text:
            assert "\n+++ b/MAINTAINERS\n" in text, mail.name
