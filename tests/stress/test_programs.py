"""The stress and fuzz programs build as static binaries the guest can run as they are.

They run in the debug-kernel guest of tests/built_kernel (ci/stress.py); see
README.md here for what each checks and how to replay a seed.
"""

from __future__ import annotations

from pathlib import Path

from ci import stress


def test_both_programs_build_statically_without_warnings(tmp_path: Path) -> None:
    """gcc -Wall -Wextra -Werror -static: the binaries need nothing from the guest."""
    built = stress.build_programs(tmp_path)
    assert set(built) == {"memlog_stress", "memlog_fuzz"}
    for path in built.values():
        assert _program_headers(path.read_bytes()), path
        assert PT_INTERP not in _program_headers(path.read_bytes())  # static: no ld.so


PT_INTERP = 3


def _program_headers(elf: bytes) -> list[int]:
    """The p_type of each program header of a 64-bit little-endian ELF file."""
    assert elf[:4] == b"\x7fELF" and elf[4] == 2 and elf[5] == 1
    phoff = int.from_bytes(elf[0x20:0x28], "little")
    size = int.from_bytes(elf[0x36:0x38], "little")
    count = int.from_bytes(elf[0x38:0x3A], "little")
    return [
        int.from_bytes(elf[phoff + i * size : phoff + i * size + 4], "little") for i in range(count)
    ]
