"""The series' changes to files a kernel tree already has, each a function of the file's text.

Each adds memlog where the file's maintainers would put it (in its sorted
place, in the file's own layout) and raises UserError, naming the file, when
the file does not look as expected or memlog's entry is already there: the
series is made against a pristine tree.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from wintermute.errors import UserError

DRIVER_PATH = "drivers/char/memlog"  # what the series creates
UAPI_PATH = "include/uapi/linux/memlog.h"
KCONFIG = "drivers/char/Kconfig"  # what it changes
MAKEFILE = "drivers/char/Makefile"
IOCTL_NUMBERS = "Documentation/userspace-api/ioctl/ioctl-number.rst"
SYSCTL_KERNEL = "Documentation/admin-guide/sysctl/kernel.rst"
MAINTAINERS = "MAINTAINERS"
SELFTESTS_MAKEFILE = "tools/testing/selftests/Makefile"
KCONFIG_LINE = 'source "drivers/char/memlog/Kconfig"'
MAKEFILE_LINE = "obj-$(CONFIG_MEMLOG)\t\t+= memlog/"


def _already(path: str, what: str) -> UserError:
    return UserError(f"{path} already has {what}: the series is made against a pristine tree")


def add_kconfig(text: str) -> str:
    """drivers/char/Kconfig sources memlog's Kconfig, last before its ``endmenu``."""
    if KCONFIG_LINE in text.splitlines():
        raise _already(KCONFIG, KCONFIG_LINE)
    head, sep, tail = text.rpartition("\nendmenu")
    if not sep:
        raise UserError(f"{KCONFIG} has no endmenu to add memlog's Kconfig before")
    return f"{head}\n{KCONFIG_LINE}\n{sep}{tail}"


def add_makefile(text: str) -> str:
    """drivers/char/Makefile descends into memlog/, as its last line."""
    if MAKEFILE_LINE in text.splitlines():
        raise _already(MAKEFILE, MAKEFILE_LINE)
    return text + ("" if text.endswith("\n") else "\n") + MAKEFILE_LINE + "\n"


def add_ioctl_number(text: str, *, code: str, seq: str, include: str, comment: str) -> str:
    """ioctl-number.rst's table gains memlog's row, in order of code; a taken code is refused.

    The columns are the table's own (from its ``====  =====  ====`` rule).
    """
    lines = text.splitlines(keepends=True)
    rules = [i for i, line in enumerate(lines) if re.fullmatch(r"=+( +=+){3}\s*", line)]
    if len(rules) < 3:
        raise UserError(f"{IOCTL_NUMBERS}: no ioctl table (its ==== rules) found")
    first, last = rules[1], rules[-1]
    starts = [m.start() for m in re.finditer(r"=+", lines[rules[0]])]
    wanted = int(code, 16)
    row = (
        code.ljust(starts[1] - starts[0])
        + seq.ljust(starts[2] - starts[1])
        + include.ljust(starts[3] - starts[2])
        + comment
    ).rstrip() + "\n"
    where = last
    for i in range(first + 1, last):
        match = re.match(r"(0x[0-9A-Fa-f]{2})\s", lines[i]) or re.match(
            r"'(.)'\s", lines[i]
        )  # fmt: skip
        if not match:
            continue
        token = match.group(1)
        number = int(token, 16) if token.startswith("0x") else ord(token)
        if number == wanted:
            raise UserError(
                f"{IOCTL_NUMBERS} already lists ioctl code {code}: {lines[i].strip()!r}; "
                f"choose a free code (include/uapi/linux/memlog.h MEMLOG_IOC_TYPE)"
            )
        if number > wanted:
            where = i
            break
    return "".join([*lines[:where], row, *lines[where:]])


_TITLE = re.compile(r"^([a-z][a-z0-9_/]*)\n(=+)\n", re.MULTILINE)


def add_sysctl_section(text: str, name: str, section: str) -> str:
    """kernel.rst gains the section titled ``name`` before the first title after it.

    ``section`` is the whole section: its title, its ``====`` underline, its
    text, ending with one blank line.
    """
    titles = [m for m in _TITLE.finditer(text) if len(m.group(2)) == len(m.group(1))]
    if not titles:
        raise UserError(f"{SYSCTL_KERNEL}: no sysctl sections (name, ==== underline) found")
    if any(m.group(1) == name for m in titles):
        raise _already(SYSCTL_KERNEL, f"a {name} section")
    after = next((m for m in titles if m.group(1) > name), None)
    where = after.start() if after else len(text)
    return text[:where] + section.rstrip("\n") + "\n\n" + text[where:]


# An entry: its title line, then "X:\t..." lines; entries are parted by blank lines.
_ENTRY = re.compile(r"^\n([^\n]+)\n(?=[A-Z]:\t)", re.MULTILINE)


def _entries(text: str) -> list[tuple[str, int]]:
    """(title, offset of the title line) of each MAINTAINERS entry, in file order."""
    return [(m.group(1), m.start(1)) for m in _ENTRY.finditer(text)]


def add_maintainers_entry(text: str, title: str, fields: Sequence[str]) -> str:
    """MAINTAINERS gains the entry ``title`` (its ``X:\\tvalue`` lines) in title order."""
    entries = _entries(text)
    if len(entries) < 10:
        raise UserError(f"{MAINTAINERS}: no maintainer entries found")
    if any(t == title for t, _ in entries):
        raise _already(MAINTAINERS, f"an entry {title!r}")
    # The list proper: from the first entry whose title sorts after the one before it
    # ("3C59X NETWORK DRIVER"...); the file's preamble has none of that form.
    after = next((offset for t, offset in entries if t > title), None)
    block = title + "\n" + "".join(f"{field}\n" for field in fields) + "\n"
    where = after if after is not None else len(text)
    return text[:where] + block + text[where:]


def add_maintainers_files(text: str, title: str, paths: Sequence[str]) -> str:
    """The entry ``title`` gains ``F:`` lines for ``paths``, its F: lines kept sorted."""
    entries = _entries(text)
    start = next((offset for t, offset in entries if t == title), None)
    if start is None:
        raise UserError(f"{MAINTAINERS} has no entry {title!r} to add files to")
    end = text.find("\n\n", start)
    end = len(text) if end < 0 else end + 1
    lines = text[start:end].splitlines()
    files = sorted({*(line for line in lines if line.startswith("F:\t")),
                    *(f"F:\t{path}" for path in paths)})  # fmt: skip
    head = [line for line in lines if not line.startswith("F:\t")]
    # F: goes where the entry had its F: lines, else after every field before F in
    # MAINTAINERS' order (M R L S W Q B C P T), before X N K.
    after_f = [i for i, line in enumerate(head) if line[:2] in ("X:", "N:", "K:")]
    cut = after_f[0] if after_f else len(head)
    block = "\n".join([*head[:cut], *files, *head[cut:]]) + "\n"
    return text[:start] + block + text[end:]


def add_selftest_target(text: str, target: str) -> str:
    """tools/testing/selftests/Makefile gains ``TARGETS += target`` in its sorted place."""
    lines = text.splitlines(keepends=True)
    targets = [i for i, line in enumerate(lines) if re.match(r"TARGETS \+= \S+\n", line)]
    if not targets:
        raise UserError(f"{SELFTESTS_MAKEFILE}: no TARGETS += lines found")
    names = {lines[i].split()[-1] for i in targets}
    if target in names:
        raise _already(SELFTESTS_MAKEFILE, f"TARGETS += {target}")
    where = next((i for i in targets if lines[i].split()[-1] > target), targets[-1] + 1)
    return "".join([*lines[:where], f"TARGETS += {target}\n", *lines[where:]])
