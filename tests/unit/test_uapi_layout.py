# SPDX-License-Identifier: MIT OR Apache-2.0
"""memlog/uapi.py agrees with include/uapi/linux/memlog.h as the C compiler sees it.

A small C program compiled with the system ``cc`` against the repository's
header (``-I include/uapi``; <linux/ioctl.h> and <linux/types.h> from the
system's kernel headers) prints every size, offset, constant and ioctl
number; each must equal the Python value, so a change on either side fails.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
from pathlib import Path
from typing import Any

import pytest

from memlog import uapi

REPO = Path(__file__).resolve().parents[2]

HEADER_FIELDS = ["magic", "schema_version", "length", "reserved", "ts_ns", "seq", "uid", "pid",
                 "session_id"]  # fmt: skip
STATS_FIELDS = ["total_writes", "total_evictions", "records_in_ring", "ring_bytes",
                "ring_capacity", "oldest_ts_ns", "newest_ts_ns"]  # fmt: skip
CONSTANTS = {
    "MEMLOG_MAGIC": uapi.MAGIC,
    "MEMLOG_SCHEMA_VERSION": uapi.SCHEMA_VERSION,
    "MEMLOG_RECORD_MAX": uapi.RECORD_MAX,
    "MEMLOG_SESSION_ID_LEN": uapi.SESSION_ID_LEN,
    "MEMLOG_RING_SIZE_MIN": uapi.RING_SIZE_MIN,
    "MEMLOG_RING_SIZE_MAX": uapi.RING_SIZE_MAX,
    "MEMLOG_RING_SIZE_DEFAULT": uapi.RING_SIZE_DEFAULT,
    "MEMLOG_MAX_BYTES_MIN": uapi.MAX_BYTES_MIN,
    "MEMLOG_MAX_BYTES_DEFAULT": uapi.MAX_BYTES_DEFAULT,
    "MEMLOG_UID_ALL": uapi.UID_ALL,
    "MEMLOG_IOC_TYPE": uapi.IOC_TYPE,
    "MEMLOG_IOC_STATS": uapi.IOC_STATS,
    "MEMLOG_IOC_CLEAR": uapi.IOC_CLEAR,
    "MEMLOG_IOC_SET_RING_SIZE": uapi.IOC_SET_RING_SIZE,
    "MEMLOG_IOC_FILTER_UID": uapi.IOC_FILTER_UID,
    "MEMLOG_IOC_GET_VERSION": uapi.IOC_GET_VERSION,
    "MEMLOG_IOC_SET_SESSION": uapi.IOC_SET_SESSION,
    "MEMLOG_IOC_GET_LOST": uapi.IOC_GET_LOST,
}


def _python_offsets(fmt: str, names: list[str]) -> dict[str, tuple[int, int]]:
    """name -> (offset, size) from a packed little-endian struct format."""
    out = {}
    offset = 0
    codes = [c for c in fmt.lstrip("<") if not c.isspace()]
    i = 0
    for name in names:
        count = ""
        while codes[i].isdigit():
            count += codes[i]
            i += 1
        size = struct.calcsize("<" + count + codes[i])
        out[name] = (offset, size)
        offset += size
        i += 1
    return out


@pytest.fixture(scope="module")
def c_values(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Every size, offset and constant as a C program compiled against the header prints them."""
    lines = ['#include <stdio.h>', '#include <stddef.h>', '#include <linux/memlog.h>',
             "int main(void) {"]  # fmt: skip
    for struct_name, fields in (
        ("memlog_record_header", HEADER_FIELDS),
        ("memlog_stats", STATS_FIELDS),
    ):
        lines.append(f'printf("sizeof.{struct_name} %zu\\n", sizeof(struct {struct_name}));')
        for field in fields:
            key = f"{struct_name}.{field}"
            member = f"((struct {struct_name} *)0)->{field}"
            offset = f"offsetof(struct {struct_name}, {field})"
            lines.append(f'printf("offsetof.{key} %zu\\n", {offset});')
            lines.append(f'printf("sizeof.{key} %zu\\n", sizeof({member}));')
    lines.append('printf("sizeof.memlog_session %zu\\n", sizeof(struct memlog_session));')
    lines.append('printf("MEMLOG_DEVICE_NAME %s\\n", MEMLOG_DEVICE_NAME);')
    for name in CONSTANTS:
        lines.append(f'printf("{name} %llu\\n", (unsigned long long)({name}));')
    lines.append("return 0; }")
    if shutil.which("cc") is None:
        pytest.fail("no C compiler: install gcc (or build-essential) to check the UAPI layout")
    tmp = tmp_path_factory.mktemp("uapi")
    src = tmp / "layout.c"
    src.write_text("\n".join(lines) + "\n")
    exe = tmp / "layout"
    subprocess.run(
        [
            "cc",
            "-std=c11",
            "-Wall",
            "-Werror",
            "-I",
            str(REPO / "include" / "uapi"),
            "-o",
            str(exe),
            str(src),
        ],
        check=True,
    )
    out = subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout
    values = dict(line.split() for line in out.splitlines())
    return {
        key: value if key == "MEMLOG_DEVICE_NAME" else int(value) for key, value in values.items()
    }


def test_record_header_is_56_bytes_in_c_and_python(c_values: dict[str, Any]) -> None:
    """sizeof(struct memlog_record_header) is 56 on both sides."""
    assert c_values["sizeof.memlog_record_header"] == uapi.RECORD_HEADER.size == 56


def test_stats_is_48_bytes_in_c_and_python(c_values: dict[str, Any]) -> None:
    """sizeof(struct memlog_stats) is 48 on both sides."""
    assert c_values["sizeof.memlog_stats"] == uapi.STATS.size == 48


def test_session_argument_is_16_bytes(c_values: dict[str, Any]) -> None:
    """struct memlog_session is SESSION_ID_LEN bytes."""
    assert c_values["sizeof.memlog_session"] == uapi.SESSION_ID_LEN


def test_device_path_is_dev_slash_the_device_name(c_values: dict[str, Any]) -> None:
    """DEVICE_PATH is /dev/ followed by MEMLOG_DEVICE_NAME."""
    assert f"/dev/{c_values['MEMLOG_DEVICE_NAME']}" == uapi.DEVICE_PATH


@pytest.mark.parametrize(
    ("fmt", "names"),
    [(uapi.RECORD_HEADER.format, HEADER_FIELDS), (uapi.STATS.format, STATS_FIELDS)],
)
def test_python_formats_have_one_item_per_c_field(fmt: str, names: list[str]) -> None:
    """Each Python struct unpacks to exactly as many values as the C struct has fields."""
    assert len(struct.unpack(fmt, bytes(struct.calcsize(fmt)))) == len(names)


@pytest.mark.parametrize(
    ("struct_name", "fmt", "field"),
    [("memlog_record_header", uapi.RECORD_HEADER.format, f) for f in HEADER_FIELDS]
    + [("memlog_stats", uapi.STATS.format, f) for f in STATS_FIELDS],
)
def test_field_offset_and_size_match_c(
    c_values: dict[str, Any], struct_name: str, fmt: str, field: str
) -> None:
    """Each field sits at the same offset with the same size in C and Python."""
    names = HEADER_FIELDS if struct_name == "memlog_record_header" else STATS_FIELDS
    offset, size = _python_offsets(fmt, names)[field]
    assert c_values[f"offsetof.{struct_name}.{field}"] == offset
    assert c_values[f"sizeof.{struct_name}.{field}"] == size


@pytest.mark.parametrize("name", sorted(CONSTANTS))
def test_constant_and_ioctl_number_match_c(c_values: dict[str, Any], name: str) -> None:
    """Each constant and ioctl number has the C header's value."""
    assert c_values[name] == CONSTANTS[name]
