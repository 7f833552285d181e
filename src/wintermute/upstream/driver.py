"""The driver as the patch series adds it to a kernel tree: no compat header, no version header.

The repository's driver builds on every supported kernel, in and out of tree,
through ``memlog_compat.h``.  In the newest kernel's tree none of that is
needed, and a maintainer would not take it, so the series' copy differs in
three ways, each checked here rather than trusted:

- every ``MEMLOG_*`` macro the compat header defines becomes its newest
  kernel's spelling (:data:`NEWEST_SPELLING`); a line left empty by that goes;
  the kernel names it backports (``#ifndef kzalloc_obj``) are the kernel's own
  there and stay as written;
- the ``#include "memlog_compat.h"`` line becomes the version's ``#define``
  (kernel.yaml's ``memlog.version``, what ``memlog_version.h`` holds out of tree);
- ``drivers/char/memlog/Makefile`` is the Kbuild's in-tree part (what follows
  its :data:`IN_TREE_MARK` line), under an SPDX line; the out-of-tree
  ``Makefile`` and ``Kbuild`` are not in the series.

A macro added to the compat header without a spelling here stops the series
with an error naming it.
"""

from __future__ import annotations

import re
from pathlib import Path

from wintermute.driver_source import driver_files
from wintermute.errors import UserError
from wintermute.paths import DRIVER_DIR, UAPI_HEADER
from wintermute.upstream.kernel_files import DRIVER_PATH, UAPI_PATH

COMPAT_HEADER = "memlog_compat.h"
COMPAT_INCLUDE = f'#include "{COMPAT_HEADER}"'
IN_TREE_MARK = "# In a kernel tree: the lines below are the patch series' Makefile"
# Each MEMLOG_* macro of memlog_compat.h as the newest supported kernel spells it.
NEWEST_SPELLING = {
    "MEMLOG_CTL_HANDLER_CONST": "const",
    "MEMLOG_CTL_TABLE_CONST": "const",
    "MEMLOG_CTL_TABLE_END": "",
}
# Defined by the compat header, given its value in the series by the version line.
VERSION_MACRO = "MEMLOG_DRIVER_VERSION"
# Out-of-tree build files, not part of the series.
NOT_IN_SERIES = ("Kbuild", "Makefile", COMPAT_HEADER)

_DEFINE = re.compile(r"^#\s*define\s+([A-Za-z_]\w*)", re.MULTILINE)
_IFNDEF = re.compile(r"^#\s*ifndef\s+([A-Za-z_]\w*)", re.MULTILINE)


def compat_macros(text: str) -> dict[str, str]:
    """The compat header's ``MEMLOG_*`` macros, each with its newest kernel's spelling.

    UserError for one without a spelling in :data:`NEWEST_SPELLING`.  Names
    defined under ``#ifndef NAME`` (a kernel API backported) and the header's
    include guard are the kernel's or the header's own, and need none.
    """
    guarded = set(_IFNDEF.findall(text))
    wanted = {}
    for name in _DEFINE.findall(text):
        if name in guarded or name == VERSION_MACRO or not name.startswith("MEMLOG_"):
            continue
        if name not in NEWEST_SPELLING:
            raise UserError(
                f"{COMPAT_HEADER} defines {name}, which the patch series has no spelling "
                f"for: add how the newest kernel writes it to NEWEST_SPELLING in {__name__}"
            )
        wanted[name] = NEWEST_SPELLING[name]
    return wanted


def upstream_source(text: str, macros: dict[str, str], version: str) -> str:
    """One of the driver's C files as the series has it."""
    names = "|".join(map(re.escape, macros)) or "(?!)"  # (?!): no macro, no match
    pattern = re.compile(rf"\b({names})\b")
    lines = []
    for line in text.splitlines(keepends=True):
        if line.rstrip("\n") == COMPAT_INCLUDE:
            lines.append(f'#define {VERSION_MACRO}\t"{version}"\n')
            continue
        if not pattern.search(line):
            lines.append(line)
            continue
        new = pattern.sub(lambda m: macros[m.group(1)], line)
        new = re.sub(r"(?<=\S) {2,}(?=\S)", " ", new).replace("( ", "(")
        if new.strip():  # a line that held nothing but a macro spelled "" goes
            lines.append(new)
    return "".join(lines)


def in_tree_makefile(kbuild: str) -> str:
    """drivers/char/memlog/Makefile in the series: the Kbuild's in-tree part."""
    head, mark, tail = kbuild.partition(IN_TREE_MARK + "\n")
    if not mark:
        raise UserError(f"{DRIVER_PATH}/Kbuild has no line {IN_TREE_MARK!r} (its in-tree part)")
    spdx = head.splitlines()[0]
    if not spdx.startswith("# SPDX-License-Identifier:"):
        raise UserError(f"{DRIVER_PATH}/Kbuild does not start with its SPDX line")
    return f"{spdx}\n{tail}"


def upstream_files(
    version: str, *, driver_dir: Path = DRIVER_DIR, uapi_header: Path = UAPI_HEADER
) -> dict[str, str]:
    """The files the series creates for the driver: path in the kernel tree -> content."""
    sources = {p.name: p for p in driver_files(driver_dir)}
    for needed in (COMPAT_HEADER, "Kbuild", "Kconfig"):
        if needed not in sources:
            raise UserError(f"{driver_dir} has no {needed}")
    compat = sources[COMPAT_HEADER].read_text()
    macros = compat_macros(compat)
    files = {f"{DRIVER_PATH}/Makefile": in_tree_makefile(sources["Kbuild"].read_text())}
    for name, path in sources.items():
        if name in NOT_IN_SERIES:
            continue
        text = path.read_text()
        if path.suffix in (".c", ".h"):
            text = upstream_source(text, macros, version)
        files[f"{DRIVER_PATH}/{name}"] = text
    files[UAPI_PATH] = uapi_header.read_text()
    leftover = [
        path
        for path, text in files.items()
        if COMPAT_HEADER in text or "memlog_version.h" in text or any(m in text for m in macros)
    ]
    if leftover:
        raise UserError(
            f"{', '.join(leftover)} still name{'s' if len(leftover) == 1 else ''} the compat "
            f"or version header after the series' rewrite: {__name__} cannot rewrite that form"
        )
    return dict(sorted(files.items()))
