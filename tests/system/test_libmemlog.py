"""Facts about libmemlog and the Rust crate on the guest, with the packages apt-get installed.

``apt-get install libmemlog-dev`` from the guest's repository; the C scenario
(``libmemlog/tests/scenario.c``) is compiled there against ``pkg-config
--cflags --libs memlog``; the Rust crate's scenario is built on the host with
Debian's cargo and copied in.  Both speak one protocol, so each fact is
checked for both, and what they read is compared byte for byte with what the
Python library reads (``memlog show --format raw``) from the same ring.
Runs once, on the second kernel.
"""

from __future__ import annotations

import base64
import shlex
import struct
from typing import Any

import pytest

from ci import libraries
from wintermute.paths import REPO

WRITER = "agent-wendy"
OTHER = "agent-otto"
OUTSIDER = "agent-nora"
SESSION = "00112233445566778899aabbccddeeff"
HEADER = struct.Struct("<IIIIQQII16s")
MAGIC = 0x4D4C4F47
TOOLS = {"c": f"/usr/local/bin/{libraries.C_SCENARIO}",
         "rust": f"/usr/local/bin/{libraries.RUST_SCENARIO}"}  # fmt: skip
GO = "/run/wintermute-libmemlog-go"


def _records(data: bytes) -> list[tuple[tuple[Any, ...], bytes]]:
    """(header fields, blob) of each record of a raw dump; the dump must be whole records."""
    out = []
    while data:
        fields = HEADER.unpack_from(data)
        assert fields[0] == MAGIC
        end = HEADER.size + fields[2]
        out.append((fields, data[HEADER.size : end]))
        data = data[end:]
    return out


def _as(host: Any, user: str, command: str) -> Any:
    return host.run(f"runuser -u {user} -- sh -c {shlex.quote(command)}")


def _raw(host: Any, user: str, command: str) -> bytes:
    """``command``'s stdout as bytes (base64 through the shell); it must exit 0."""
    script = f"t=$(mktemp) && {command} > $t && base64 -w0 $t; rc=$?; rm -f $t; exit $rc"
    result = _as(host, user, script)
    assert result.rc == 0, result.stderr
    return base64.b64decode(result.stdout)


def _wait_until_open(host: Any, exe: str, command: str) -> None:
    """Until a process running ``exe command`` has /dev/memlog open (at most 20 s)."""
    host.check_output(
        f"for i in $(seq 200); do for p in $(pgrep -f '^{exe} {command}'); do "
        f"ls -l /proc/$p/fd 2>/dev/null | grep -q /dev/memlog && exit 0; done; sleep 0.1; done; "
        f"exit 1"
    )


def _wait_for_file(host: Any, path: str) -> None:
    host.check_output(f"for i in $(seq 300); do [ -e {path} ] && exit 0; sleep 0.1; done; exit 1")


@pytest.fixture(scope="module")
def lib_host(final_host: Any, guest: Any, cfg: Any) -> Any:
    """libmemlog-dev installed with apt-get, both scenarios in /usr/local/bin, three users."""
    host = final_host
    guest.apt("install -y libmemlog-dev")
    guest.vm.put(REPO / "libmemlog" / "tests" / "scenario.c", "/root/scenario.c")
    flags = "$(pkg-config --cflags --libs memlog)"
    host.check_output(f"cc -O2 -Wall -Werror -o {TOOLS['c']} /root/scenario.c {flags}")
    guest.vm.put(libraries.build_rust(), TOOLS["rust"])
    host.check_output(f"chmod 755 {TOOLS['rust']}")
    for name in (WRITER, OTHER, OUTSIDER):
        if not host.user(name).exists:
            host.check_output(f"useradd --create-home --shell /bin/bash {name}")
    for name in (WRITER, OTHER):
        host.check_output(f"usermod -aG {cfg.memlog.system.group} {name}")
        host.check_output(f"memlog clear --uid {host.user(name).uid}")
    return host


def test_libmemlog_dev_gives_pkg_config_the_library_and_both_headers(lib_host: Any) -> None:
    """pkg-config --cflags --libs memlog: -lmemlog and the directory of <linux/memlog.h>."""
    flags = lib_host.check_output("pkg-config --cflags --libs memlog").split()
    assert "-lmemlog" in flags
    assert "-I/usr/include/memlog/uapi" in flags
    assert lib_host.file("/usr/include/memlog/uapi/linux/memlog.h").exists
    assert not lib_host.file("/usr/include/linux/memlog.h").exists


def test_a_program_compiled_in_the_guest_links_the_packaged_library(lib_host: Any) -> None:
    """The C scenario, built with pkg-config's flags, runs on libmemlog.so.0 from libmemlog0."""
    ldd = lib_host.check_output(f"ldd {TOOLS['c']}")
    line = next(line for line in ldd.splitlines() if "libmemlog.so.0" in line)
    path = line.split("=>")[1].split()[0]
    real = lib_host.check_output(f"readlink -f {path}")
    assert lib_host.check_output(f"dpkg -S {real}").startswith("libmemlog0:")


@pytest.mark.parametrize("tool", sorted(TOOLS))
def test_plain_and_vectored_writes_read_back_as_python_reads_them(lib_host: Any, tool: str) -> None:
    """A write and a writev of two parts (with a session) are two records; the tool's raw
    dump equals `memlog show --format raw` byte for byte."""
    host, exe = lib_host, TOOLS[tool]
    host.check_output(f"memlog clear --uid {host.user(WRITER).uid}")
    for parts in ("68656c6c6f", "6162 636465"):
        result = _as(host, WRITER, f"{exe} write --session {SESSION} {parts}")
        assert (result.rc, result.stderr) == (0, ""), result.stderr
    mine = _raw(host, WRITER, f"{exe} dump")
    python = _raw(host, WRITER, "memlog show --format raw")
    assert mine == python
    records = _records(mine)
    assert [blob for _, blob in records] == [b"hello", b"abcde"]
    uid = host.user(WRITER).uid
    for fields, _ in records:
        assert fields[6] == uid and fields[7] > 0
        assert fields[8] == bytes.fromhex(SESSION)
    assert records[0][0][5] < records[1][0][5]


def test_c_and_rust_read_the_same_bytes_from_one_ring(lib_host: Any) -> None:
    """Records written by both tools: the C dump, the Rust dump and Python's are identical."""
    host = lib_host
    host.check_output(f"memlog clear --uid {host.user(WRITER).uid}")
    for exe in TOOLS.values():
        assert _as(host, WRITER, f"{exe} write 01 0203 040506").rc == 0
        assert _as(host, WRITER, f"{exe} write 07").rc == 0
    dumps = {tool: _raw(host, WRITER, f"{exe} dump") for tool, exe in TOOLS.items()}
    python = _raw(host, WRITER, "memlog show --format raw")
    assert dumps["c"] == dumps["rust"] == python
    assert [blob for _, blob in _records(python)] == [bytes.fromhex("010203040506"), b"\x07"] * 2


@pytest.mark.parametrize("tool", sorted(TOOLS))
def test_root_follows_another_uid_with_poll_while_it_writes(lib_host: Any, tool: str) -> None:
    """`follow --uid OTHER --count 3` started before OTHER writes returns those 3 records,
    as Python reads them."""
    host, exe = lib_host, TOOLS[tool]
    uid = host.user(OTHER).uid
    host.check_output(f"memlog clear --uid {uid}")
    out = f"/root/follow-{tool}.bin"
    host.check_output(
        f"setsid sh -c '{exe} follow --uid {uid} --count 3 --timeout-ms 60000 > {out} "
        f"2> {out}.err; echo $? > {out}.rc' > /dev/null 2>&1 &"
    )
    _wait_until_open(host, exe, "follow")
    for blob in ("6f6e65", "74776f", "7468726565"):
        assert _as(host, OTHER, f"{TOOLS['c']} write {blob}").rc == 0
    _wait_for_file(host, f"{out}.rc")
    assert host.check_output(f"cat {out}.rc") == "0", host.check_output(f"cat {out}.err")
    followed = _raw(host, "root", f"cat {out}")
    assert followed == _raw(host, "root", f"memlog show --format raw --uid {uid}")
    assert [blob for _, blob in _records(followed)] == [b"one", b"two", b"three"]


def _stats(host: Any, exe: str) -> dict[str, int]:
    out = host.check_output(f"runuser -u {WRITER} -- {exe} stats")
    return {name: int(value) for name, value in (line.split() for line in out.splitlines())}


@pytest.mark.parametrize("tool", sorted(TOOLS))
def test_stats_and_lost_count_the_records_evicted_before_a_reader_read_them(
    lib_host: Any, cfg: Any, tool: str
) -> None:
    """In a 64 KiB ring, 200 records of 1 KiB evict; a reader opened before them reads the
    rest and GET_LOST says how many it missed: the ring's evictions, as STATS says."""
    host, exe = lib_host, TOOLS[tool]
    uid = host.user(WRITER).uid
    host.check_output(f"memlog clear --uid {uid}")
    host.check_output(f"rm -f {GO}")
    try:
        host.check_output("sysctl -q -w kernel.memlog.ring_size=65536")
        host.check_output(
            f"runuser -u {WRITER} -- setsid sh -c '{exe} dump --wait-for {GO} > /tmp/dump-{tool} "
            f"2> /tmp/dump-{tool}.err; echo $? > /tmp/dump-{tool}.rc' > /dev/null 2>&1 &"
        )
        _wait_until_open(host, exe, "dump")
        before = _stats(host, exe)
        blob = "61" * 1024
        flood = f"for i in $(seq 200); do {exe} write {blob} || exit 1; done"
        assert _as(host, WRITER, flood).rc == 0
        after = _stats(host, exe)
        host.check_output(f"touch {GO}")
        _wait_for_file(host, f"/tmp/dump-{tool}.rc")
    finally:
        host.check_output(f"sysctl -q -w kernel.memlog.ring_size={cfg.memlog.system.ring_size}")
    assert host.check_output(f"cat /tmp/dump-{tool}.rc") == "0"
    read = _records(_raw(host, "root", f"cat /tmp/dump-{tool}"))
    lost = int(host.check_output(f"cat /tmp/dump-{tool}.err").split()[-1])
    evicted = after["total_evictions"] - before["total_evictions"]
    assert after["total_writes"] - before["total_writes"] == 200
    assert evicted > 0 and lost == evicted
    assert len(read) + lost == 200
    assert after["records_in_ring"] == len(read)
    python = _raw(host, WRITER, "memlog show --format raw")
    assert [fields[5] for fields, _ in read] == [fields[5] for fields, _ in _records(python)]


@pytest.mark.parametrize("tool", sorted(TOOLS))
def test_a_member_may_not_choose_another_uid_s_view(lib_host: Any, tool: str) -> None:
    """FILTER_UID to root's uid, or to every uid, is EPERM for a member; root may."""
    host, exe = lib_host, TOOLS[tool]
    for view in ("--uid 0", "--all"):
        result = _as(host, WRITER, f"{exe} dump {view}")
        assert result.rc == 1 and "(EPERM)" in result.stderr, result.stderr
    assert host.run(f"{exe} dump --all > /dev/null").rc == 0


@pytest.mark.parametrize("tool", sorted(TOOLS))
def test_a_non_member_cannot_write_and_is_told_so_in_one_line(lib_host: Any, tool: str) -> None:
    """A user outside the memlog group gets EACCES from open for writing: exit 1, one line."""
    result = _as(lib_host, OUTSIDER, f"{TOOLS[tool]} write 00")
    assert result.rc == 1 and "(EACCES)" in result.stderr, result.stderr
    assert result.stderr.count("\n") == 1


@pytest.mark.parametrize("tool", sorted(TOOLS))
def test_a_non_member_reads_as_the_node_s_mode_says_and_only_its_own_ring(
    lib_host: Any, cfg: Any, tool: str
) -> None:
    """Reading: EACCES unless device_mode lets others read; then its own, empty, view."""
    result = _as(lib_host, OUTSIDER, f"{TOOLS[tool]} dump")
    if int(cfg.memlog.system.device_mode, 8) & 0o004:
        assert (result.rc, result.stdout, result.stderr) == (0, "", "lost 0\n")
    else:
        assert result.rc == 1 and "(EACCES)" in result.stderr, result.stderr


def test_memlog_c_tail_prints_a_new_record_as_memlog_show_does(lib_host: Any, guest: Any) -> None:
    """The example memlog-c-tail (libmemlog-dev ships it; the image excludes
    /usr/share/doc, so it is copied in), compiled in the guest and following another uid as
    root, prints a record written after it started as `memlog show` prints it."""
    host = lib_host
    uid = host.user(OTHER).uid
    exe = "/usr/local/bin/memlog-c-tail"
    source = "/root/memlog-c-tail.c"
    guest.vm.put(REPO / "libmemlog" / "examples" / "memlog-c-tail.c", source)
    flags = "$(pkg-config --cflags --libs memlog)"
    host.check_output(f"cc -O2 -Wall -Werror -o {exe} {source} {flags}")
    host.check_output(f"memlog clear --uid {uid}")
    host.check_output("rm -f /root/tail.out")
    host.check_output(
        f"setsid sh -c 'timeout 120 {exe} --uid {uid} > /root/tail.out 2>&1' > /dev/null 2>&1 &"
    )
    _wait_until_open(host, exe, f"--uid {uid}")
    assert _as(host, OTHER, "printf 'hello from a tail' | memlog write").rc == 0
    host.check_output(
        "for i in $(seq 300); do [ -s /root/tail.out ] && exit 0; sleep 0.1; done; exit 1"
    )
    host.run(f"pkill -f '^{exe}'")
    shown = host.check_output(f"memlog show --uid {uid}")
    assert host.check_output("head -n 1 /root/tail.out") == shown
    assert shown.endswith("17 B: hello from a tail")
