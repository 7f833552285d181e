"""``invoke bench``: memlog's write and read costs, measured in the VM next to what they replace.

Two guest boots each run ``bench/memlog_bench.c`` (a static binary compiled here
against the UAPI header) as root, with the module built for the guest kernel:
write rates into /dev/memlog, a drained pipe, /dev/null and /dev/kmsg for
several blob sizes; one writer against four of four uids; the time to read
every record back (N, 2N, N over 256 uids); the ring bytes a record takes;
how long another uid's write and read wait while one uid grows its ring to
128 MiB (a probe alone, then beside the growth).
Every measure runs several rounds, interleaved, so the figures of a round were
taken under the same load; the report gives medians, and each ratio is the
median of the per-round ratios (this machine's speed drifts between rounds).

The two boots differ in the guest's clocksource, which decides what a
record's timestamp costs: under TCG the kernel finds the TSC unstable and reads
the emulated HPET (a trap to QEMU per read), where real hardware reads the TSC;
the second boot forces the TSC (``clocksource=tsc tsc=reliable``).

Reports, one per boot: ``out/bench/memlog.json`` and ``memlog-tsc.json`` (the
guest program's raw figures, medians, ratios, targets, the machine) and
``memlog.md`` and ``memlog-tsc.md`` (tables for a README, rendered from that
JSON alone by :func:`render_markdown`).  The guest's output:
``out/logs/bench.log``.  Nothing here fails on a missed target: these
figures describe the driver, they do not gate it.
"""

from __future__ import annotations

import dataclasses
import datetime
import itertools
import json
import os
import shlex
import shutil
import statistics
from pathlib import Path
from typing import Any

from wintermute.errors import InfraError, UserError
from wintermute.paths import REPO, log_dir, out_dir
from wintermute.run import capture, run, say

SOURCE = REPO / "bench" / "memlog_bench.c"
GUEST_DIR = "/opt/wintermute-bench"
LOG = "bench.log"
# The guest program at its defaults takes about 1 minute under TCG on an idle host.
GUEST_TIMEOUT = 1200.0
MAX_ROUNDS = 50  # the guest program's limit
TARGET_LABELS = {"memlog": "/dev/memlog", "pipe": "pipe (drained)", "devnull": "/dev/null",
                 "kmsg": "/dev/kmsg"}  # fmt: skip
HEADER_BYTES = 56  # struct memlog_record_header, when the guest program does not say
# Report name -> what the boot adds to the guest kernel's command line
BOOTS = {"memlog": "", "memlog-tsc": "clocksource=tsc tsc=reliable"}


# --- building and running ----------------------------------------------------------------


def build_binary(dest: Path) -> Path:
    """Compile bench/memlog_bench.c into ``dest`` (static, warnings fail); return its path."""
    gcc = shutil.which("gcc")
    if gcc is None:
        raise UserError("gcc not found: apt-get install gcc libc6-dev (scripts/setup-host does)")
    dest.parent.mkdir(parents=True, exist_ok=True)
    run(
        [gcc, "-O2", "-Wall", "-Wextra", "-Werror", "-static",
         "-I", REPO / "include" / "uapi", "-o", dest, SOURCE],
        log=LOG, step=f"compiling {SOURCE.relative_to(REPO)} (static)",
    )  # fmt: skip
    return dest


def _qemu_version() -> str:
    first = capture(["qemu-system-x86_64", "--version"]).splitlines()
    return first[0].removeprefix("QEMU emulator version ").strip() if first else "unknown"


def host_cpu_model(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """The host CPU's model name, as /proc/cpuinfo gives it."""
    try:
        text = cpuinfo.read_text()
    except OSError:
        return "unknown"
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "model name":
            return value.strip()
    return "unknown"


def host_load(loadavg: Path = Path("/proc/loadavg")) -> float | None:
    """The host's 1-minute load average: other work on the host slows the guest."""
    try:
        return float(loadavg.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def guest_args(rounds: int | str | None, duration: float | str | None) -> list[str]:
    """The guest program's options: its defaults, but for what the task was given."""
    args = []
    if rounds is not None:
        try:
            count = int(rounds)
        except ValueError:
            count = 0
        if not 1 <= count <= MAX_ROUNDS:
            raise UserError(f"--rounds {rounds}: give a whole number from 1 to {MAX_ROUNDS}")
        args += ["--rounds", str(count)]
    if duration is not None:
        try:
            seconds = float(duration)
        except ValueError:
            seconds = 0.0
        if not 0.01 <= seconds <= 60:
            raise UserError(f"--duration {duration}: give seconds from 0.01 to 60")
        args += ["--duration", str(seconds)]
    return args


@dataclasses.dataclass(frozen=True)
class Prepared:
    """What every boot runs: the VM image, the module built for its kernel, the programs."""

    image: Any  # ci.rootfs.Image
    ko: Path
    binary: Path
    libmemlog: Path  # libmemlog's build directory (libmemlog.so.0, memlog-c-scenario)
    rust_scenario: Path


def prepare() -> Prepared:
    """Build the guest programs and the module, and make the image, once for every boot."""
    from ci import libraries, rootfs
    from wintermute import module_build

    binary = build_binary(out_dir() / "bench" / "memlog_bench")
    libmemlog, rust = libraries.build_c(), libraries.build_rust()
    image = rootfs.ensure_image()
    build = module_build.build_for_host_headers(image.kernel_release)
    module_build.require_clean(build)
    return Prepared(image, build.ko, binary, libmemlog, rust)


# Each library's scenario program -> the guest command; each compares its
# library with raw write(2) on the same fd, in batches taking turns
LIBRARY_PROGRAMS = {
    "libmemlog": f"{GUEST_DIR}/memlog-c-scenario bench-write",
    "rust": f"{GUEST_DIR}/memlog-rs-scenario bench-write",
}
LIBRARY_ROUNDS = 5
LIBRARY_SECONDS = 1.0


def _library_args(args: list[str]) -> tuple[int, float]:
    """The rounds and seconds of the library rounds: the guest program's when given."""
    rounds, seconds = LIBRARY_ROUNDS, LIBRARY_SECONDS
    for flag, value in itertools.pairwise(args):
        if flag == "--rounds":
            rounds = int(value)
        elif flag == "--duration":
            seconds = float(value)
    return rounds, seconds


def parse_library_line(line: str) -> tuple[float, float, float]:
    """``raw W T library W T ratio R`` -> (raw write(2)'s rate, the library's, in records/s,
    and the median over pairs of batches of the library's rate over raw write(2)'s)."""
    words = line.split()
    if len(words) != 8 or (words[0], words[3], words[6]) != ("raw", "library", "ratio"):
        raise InfraError(f"a library's bench printed {line.strip()!r}")
    return int(words[1]) / float(words[2]), int(words[4]) / float(words[5]), float(words[7])


def measure_libraries(guest: Any, prepared: Prepared, args: list[str], log: Path) -> dict[str, Any]:
    """64 B writes through libmemlog and the Rust crate, each beside raw write(2), this boot.

    Each program writes in batches of 256, by write(2) on its fd and by its
    library in turn, timing each batch: the two rates of a round were taken
    under the same load.  A first unmeasured run fills the ring, so every
    measured write evicts.  Returns records/s per round (``raw-<library>``
    and ``<library>``) and, per round, the median over pairs of batches of
    the library's rate over raw write(2)'s (``pair_ratios``): one preempted
    batch moves a sum, not a median.
    """
    guest.put(prepared.libmemlog / "libmemlog.so.0", f"{GUEST_DIR}/libmemlog.so.0")
    guest.put(prepared.libmemlog / "memlog-c-scenario", f"{GUEST_DIR}/memlog-c-scenario")
    guest.put(prepared.rust_scenario, f"{GUEST_DIR}/memlog-rs-scenario")
    guest.run(f"chmod 0755 {GUEST_DIR}/memlog-*-scenario && "
              f"{{ grep -q '^memlog ' /proc/modules || insmod {GUEST_DIR}/memlog.ko; }}",
              log=log, timeout=120)  # fmt: skip
    rounds, seconds = _library_args(args)
    env = f"LD_LIBRARY_PATH={GUEST_DIR}"
    rates: dict[str, list[float]] = {}
    ratios: dict[str, list[float]] = {}
    say(f"64 B writes through libmemlog and Rust beside raw write(2): {rounds} rounds "
        f"(log: {log})")  # fmt: skip
    guest.run(f"{env} {LIBRARY_PROGRAMS['libmemlog']} --size 64 --seconds {seconds}", log=log,
              timeout=600)  # fmt: skip
    for _ in range(rounds):
        for name, program in LIBRARY_PROGRAMS.items():
            out = guest.run(f"{env} {program} --size 64 --seconds {seconds}", log=log, timeout=600)
            raw, library, ratio = parse_library_line(out.stdout)
            rates.setdefault(f"raw-{name}", []).append(raw)
            rates.setdefault(name, []).append(library)
            ratios.setdefault(name, []).append(ratio)
    return {"size": 64, "seconds": seconds, "rates": rates, "pair_ratios": ratios}


def measure(prepared: Prepared, args: list[str], cmdline: str = "") -> dict[str, Any]:
    """Boot (``cmdline`` added to the guest kernel's), run the guest program with ``args``;
    return its JSON and the machine's facts."""
    from ci import vm

    log = log_dir() / LOG
    image, binary = prepared.image, prepared.binary
    load_before = host_load()
    with vm.boot(image, cmdline=cmdline) as guest:
        ko, exe = f"{GUEST_DIR}/memlog.ko", f"{GUEST_DIR}/memlog_bench"
        guest.put(prepared.ko, ko)
        guest.put(binary, exe)
        guest.run(f"chmod 0755 {exe} && insmod {ko}", log=log, timeout=120)
        cmd = shlex.join([exe, "--module", ko, *args])
        say(f"running the benchmark in the guest: 1 to 3 minutes under TCG (log: {log})")
        proc = guest.run(cmd, check=False, timeout=GUEST_TIMEOUT, log=log)
        crash = guest.crashes_since_boot()
        if crash is not None:
            raise InfraError(
                f"the guest kernel complained during the benchmark ({crash}); "
                f"console: {guest.console_log}"
            )
        if proc.returncode != 0:
            last = (proc.stderr.strip().splitlines() or ["no message"])[-1]
            raise InfraError(f"the benchmark failed in the guest (exit {proc.returncode}): "
                             f"{last}; see {log}")  # fmt: skip
        try:
            raw = json.loads(proc.stdout)
        except ValueError as exc:
            raise InfraError(f"the benchmark printed no JSON ({exc}); see {log}") from exc
        raw["libraries"] = measure_libraries(guest, prepared, args, log)
        machine = {
            "host_cpu": host_cpu_model(),
            "guest_kernel": raw.get("guest", {}).get("kernel_release", image.kernel_release),
            "accelerator": guest.accelerator,
            "vcpus": guest.launch.cpus,
            "host_cpus": os.cpu_count(),
            "host_load_before": load_before,
            "host_load_after": host_load(),
            "qemu": _qemu_version(),
            "guest_cmdline_extra": cmdline,
            "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        }
    return {"raw": raw, "machine": machine}


# --- the report: pure functions of the guest's JSON ----------------------------------------


def _spread(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def _rates(fig: dict[str, list[float]]) -> list[float]:
    """Records per second of each round."""
    return [n / s for n, s in zip(fig["records"], fig["seconds"], strict=True)]


def _many_rates(rounds: list[dict[str, list[float]]]) -> list[float]:
    """Each round's total rate of the concurrent writers: the sum of their own rates."""
    return [sum(_rates(writers)) for writers in rounds]


def _ratios(top: list[float], bottom: list[float]) -> list[float]:
    """Per-round ratios: the rounds were taken side by side."""
    return [a / b for a, b in zip(top, bottom, strict=True)]


def _target(
    name: str, ratios: list[float], op: str, limit: float, what: str, unit: str = "x"
) -> dict[str, Any]:
    """A target on the median of per-round values (ratios, or figures in ``unit``)."""
    value = statistics.median(ratios)
    met = value <= limit if op == "<=" else value >= limit
    return {"name": name, "what": what, "value": value, "min": min(ratios), "max": max(ratios),
            "op": op, "limit": limit, "met": met, "unit": unit}  # fmt: skip


GROW_FIGURES = ("write_max_s", "write_p99_s", "read_max_s", "read_p99_s")
GROW_PHASES = ("alone", "growing")


def _grow(raw: dict[str, Any], targets: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians of the grow section's per-round figures; its target added to ``targets``."""
    if "grow" not in raw:
        return {}
    grow = raw["grow"]
    medians: dict[str, Any] = {"grow_size": grow["grow_size"]}
    for phase in GROW_PHASES:
        medians[phase] = {k: statistics.median(r[k] for r in grow[phase]) for k in GROW_FIGURES}
    targets.append(_target(
        "grow_other_uid_write_wait_ms", [r["write_max_s"] * 1e3 for r in grow["growing"]], "<=",
        1.0, f"the longest wait of another uid's 64 B write while one uid grows its ring to "
        f"{_size_label(grow['grow_size'])} (ms)", unit=" ms",
    ))  # fmt: skip
    return medians


LIBRARY_LABELS = {"raw-libmemlog": "raw write(2), in the C program",
                  "libmemlog": "libmemlog (memlog_write)",
                  "raw-rust": "raw write(2), in the Rust program",
                  "rust": "Rust crate (Device::write)"}  # fmt: skip


def _libraries(raw: dict[str, Any], targets: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians of the library rounds; a target per library added to ``targets``."""
    if "libraries" not in raw:
        return {}
    rates = raw["libraries"]["rates"]
    pairs = raw["libraries"].get("pair_ratios")
    for way in ("libmemlog", "rust"):
        per_round = pairs[way] if pairs else _ratios(rates[way], rates[f"raw-{way}"])
        targets.append(_target(
            f"{way}_vs_raw_64", per_round, ">=", 0.97,
            f"64 B records/s, {LIBRARY_LABELS[way]} / raw write(2) on the device",
        ))  # fmt: skip
    return {way: _spread(values) for way, values in rates.items()}


def summarize(raw: dict[str, Any], machine: dict[str, Any]) -> dict[str, Any]:
    """The report's data: raw figures, medians, per-round ratios, targets met or missed."""
    write: dict[str, dict[str, dict[str, float]]] = {}
    rates: dict[str, dict[str, list[float]]] = {}
    for target, by_size in raw.get("write", {}).items():
        for size, fig in by_size.items():
            per_round = _rates(fig)
            rates.setdefault(target, {})[size] = per_round
            spread = _spread(per_round)
            spread["mb_per_s"] = spread["median"] * int(size) / 1e6
            write.setdefault(target, {})[size] = spread
    targets = []
    memlog = rates.get("memlog", {})
    devnull = rates.get("devnull", {})
    pipe = rates.get("pipe", {})
    if "64" in memlog and "64" in devnull:
        targets.append(_target(
            "memlog_vs_devnull_64", _ratios(devnull["64"], memlog["64"]), "<=", 1.6,
            "64 B write cost, /dev/memlog vs /dev/null (rate of /dev/null / rate of memlog)",
        ))  # fmt: skip
    for size in sorted(set(memlog) & set(pipe), key=int):
        targets.append(_target(
            f"memlog_vs_pipe_{size}", _ratios(pipe[size], memlog[size]), "<=", 0.9,
            f"{_size_label(int(size))} write cost, /dev/memlog vs pipe (pipe rate / memlog rate)",
        ))  # fmt: skip
    read: dict[str, dict[str, float]] = {}
    if "read" in raw:
        seconds = {key: raw["read"][key]["seconds"] for key in ("n_1uid", "2n_1uid", "n_many_uids")}
        read = {key: _spread(values) for key, values in seconds.items()}
        targets.append(_target(
            "read_2n_vs_n", _ratios(seconds["2n_1uid"], seconds["n_1uid"]), "<=", 2.2,
            "read-all time, 2N records / N records (one uid)",
        ))  # fmt: skip
        targets.append(_target(
            "read_many_uids_vs_one", _ratios(seconds["n_many_uids"], seconds["n_1uid"]), "<=",
            1.3, f"read-all time, N records over {raw['params']['read_uids']} uids / over 1 uid",
        ))  # fmt: skip
    writers: dict[str, dict[str, float]] = {}
    if "writers" in raw:
        one = _rates(raw["writers"]["one"])
        many = _many_rates(raw["writers"]["many"])
        writers = {"one": _spread(one), "many": _spread(many)}
        count = raw["params"]["writers"]
        targets.append(_target(
            "writers_many_vs_one", _ratios(many, one), ">=", 1.5,
            f"64 B records/s, {count} writers of {count} uids / 1 writer",
        ))  # fmt: skip
    grow = _grow(raw, targets)
    libraries = _libraries(raw, targets)
    floor = _floor_costs(rates, raw.get("guest", {}).get("clocksource", "unknown"))
    ring = raw.get("ring_bytes")
    ring_bytes: dict[str, Any] = {}
    if ring:
        header = raw.get("guest", {}).get("record_header_bytes", HEADER_BYTES)
        ring_bytes = {
            "measured": ring["ring_bytes"] / ring["records_in_ring"],
            "expected": (header + ring["blob_bytes"] + 7) // 8 * 8,
            "header_bytes": header,
            "blob_bytes": ring["blob_bytes"],
        }
    return {
        "machine": machine,
        "params": raw.get("params", {}),
        "medians": {
            "write": write,
            "writers": writers,
            "read_seconds": read,
            "ring_bytes_per_record": ring_bytes,
            "beyond_the_floor": floor,
            "grow": grow,
            "libraries": libraries,
        },
        "targets": targets,
        "raw": raw,
    }


def _floor_costs(rates: dict[str, dict[str, list[float]]], clocksource: str) -> dict[str, Any]:
    """Microseconds per 64 B call: /dev/null, memlog, a CLOCK_REALTIME read; medians of rounds.

    ``memlog_extra`` and ``clock_extra`` are each call's cost beyond the
    /dev/null write in the same round: where memlog's time goes that the
    syscall floor does not have, next to what one clock read costs there.
    """
    needed = ("devnull", "memlog", "clock")
    if not all("64" in rates.get(name, {}) for name in needed):
        return {}
    null, memlog, clock = (rates[name]["64"] for name in needed)
    rounds = range(min(len(null), len(memlog), len(clock)))

    def median_us(values: list[float]) -> float:
        return float(statistics.median(values)) * 1e6

    return {
        "devnull_us": median_us([1 / null[r] for r in rounds]),
        "memlog_us": median_us([1 / memlog[r] for r in rounds]),
        "memlog_extra_us": median_us([1 / memlog[r] - 1 / null[r] for r in rounds]),
        "clock_extra_us": median_us([1 / clock[r] - 1 / null[r] for r in rounds]),
        "clocksource": clocksource,
    }


def _size_label(size: int) -> str:
    for unit, scale in (("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size >= scale and size % scale == 0:
            return f"{size // scale} {unit}"
    return f"{size} B"


def _rate(value: float) -> str:
    return f"{value:,.0f}"


def _mb(value: float) -> str:
    return f"{value:,.1f}" if value >= 10 else f"{value:,.2f}"


def _host_line(machine: dict[str, Any]) -> str:
    """`` (2 CPUs, load 0.5 before, 3.9 after)``: what else the host was doing."""
    parts = []
    if machine.get("host_cpus"):
        parts.append(f"{machine['host_cpus']} CPUs")
    before, after = machine.get("host_load_before"), machine.get("host_load_after")
    if before is not None and after is not None:
        parts.append(f"host load average {before:g} before the boot, {after:g} after the run")
    return f" ({', '.join(parts)})" if parts else ""


def render_markdown(report: dict[str, Any]) -> str:
    """The Markdown report of ``report`` (what :func:`summarize` returns), and nothing else."""
    machine, params, medians = report["machine"], report["params"], report["medians"]
    lines = [
        "# memlog benchmark",
        "",
        f"Measured {machine['date']} in one boot of Linux {machine['guest_kernel']} under "
        f"{machine['accelerator'].upper()} (QEMU {machine['qemu']}, {machine['vcpus']} vCPUs) "
        f"on {machine['host_cpu']}{_host_line(machine)}: {params.get('rounds')} rounds of every "
        "measure, "
        f"interleaved, {params.get('duration_s')} s per write measure; medians. Ratios are "
        "the median of the per-round ratios. MB/s: 10^6 bytes of blob per second.",
    ]
    clocksource = report.get("raw", {}).get("guest", {}).get("clocksource", "unknown")
    added = machine.get("guest_cmdline_extra")
    lines[-1] += f" Every figure here was taken with the guest's clocksource {clocksource}" + (
        f" (the kernel command line adds `{added}`)." if added else " (its own choice)."
    )
    if params.get("passes"):
        lines[-1] += (
            f" A read-all figure is the fastest of {params['passes']} passes in its round"
            + (", each round on a freshly loaded module." if params.get("reload_module") else ".")
        )
    write = medians["write"]
    if write:
        columns = [t for t in TARGET_LABELS if t in write]
        sizes = sorted({int(s) for t in columns for s in write[t]})
        lines += ["", "## Writes: records/s (MB/s), one writer", "",
                  "| blob | " + " | ".join(TARGET_LABELS[t] for t in columns) + " |",
                  "| ---: | " + " | ".join("---:" for _ in columns) + " |"]  # fmt: skip
        for size in sizes:
            cells = []
            for target in columns:
                fig = write[target].get(str(size))
                cells.append(f"{_rate(fig['median'])} ({_mb(fig['mb_per_s'])})" if fig else "-")
            lines.append(f"| {_size_label(size)} | " + " | ".join(cells) + " |")
    floor = medians.get("beyond_the_floor")
    if floor:
        clock = f"clock_gettime, guest clocksource {floor['clocksource']}"
        lines += [
            "",
            "## A 64 B write beyond the syscall floor (µs per call, medians)",
            "",
            "| call | µs |",
            "| --- | ---: |",
            f"| write to /dev/null (the floor) | {floor['devnull_us']:.2f} |",
            f"| write to /dev/memlog | {floor['memlog_us']:.2f} |",
            f"| memlog beyond the floor | {floor['memlog_extra_us']:.2f} |",
            f"| one kernel CLOCK_REALTIME read beyond the floor ({clock}) "
            f"| {floor['clock_extra_us']:.2f} |",
        ]
    writers, read = medians["writers"], medians["read_seconds"]
    ring = medians["ring_bytes_per_record"]
    if writers or read or ring:
        lines += ["", "## Concurrency, reads, memory", "", "| measure | median |", "| --- | ---: |"]
        if writers:
            count = params.get("writers")
            lines.append(f"| 64 B records/s, 1 writer | {_rate(writers['one']['median'])} |")
            lines.append(
                f"| 64 B records/s, {count} writers of {count} uids (total) "
                f"| {_rate(writers['many']['median'])} |"
            )
        if read:
            n = params.get("n")
            uids = params.get("read_uids")
            for key, what in (("n_1uid", f"{n:,} records of 1 uid"),
                              ("2n_1uid", f"{2 * n:,} records of 1 uid"),
                              ("n_many_uids", f"{n:,} records over {uids} uids")):  # fmt: skip
                lines.append(f"| read-all, {what} (ms) | {read[key]['median'] * 1e3:,.1f} |")
        if ring:
            lines.append(
                f"| ring bytes per {ring['blob_bytes']} B record (expected {ring['expected']}: "
                f"{ring['header_bytes']}-byte header + blob, padded to 8) "
                f"| {ring['measured']:g} |"
            )
    grow = medians.get("grow")
    if grow:
        lines += [
            "",
            f"## Another uid's waits while one uid grows its ring to "
            f"{_size_label(grow['grow_size'])} (ms, medians of rounds)",
            "",
            "A probe of its own uid wakes every millisecond, writes a 64 B record and reads it "
            "back: alone, then while another uid writes 64 KiB records until its ring has grown "
            "from 4 KiB (a root reader of that ring reading along). A write's wait runs from "
            "the probe's wake-up time to the write's return.",
            "",
            "| the probe's | alone | while the other uid grows |",
            "| --- | ---: | ---: |",
        ]
        for key, what in (("write_max_s", "longest write wait"),
                          ("write_p99_s", "99th-percentile write wait"),
                          ("read_max_s", "longest read"),
                          ("read_p99_s", "99th-percentile read")):  # fmt: skip
            lines.append(
                f"| {what} | {grow['alone'][key] * 1e3:.3f} | {grow['growing'][key] * 1e3:.3f} |"
            )
    libraries = medians.get("libraries")
    if libraries:
        lines += [
            "",
            "## 64 B writes through the libraries (records/s, medians of rounds)",
            "",
            "Each library's scenario program writes 64 B records in batches of 256, by raw "
            "write(2) on its fd and through its library in turn, each batch timed, the ring "
            "full (every write evicts): libmemlog.so.0 in the C program, the crate in the "
            "Rust one. Each target is the median of rounds of the median over pairs of "
            "batches of the library's rate over raw write(2)'s.",
            "",
            "| way | records/s |",
            "| --- | ---: |",
        ]
        for way, label in LIBRARY_LABELS.items():
            if way in libraries:
                lines.append(f"| {label} | {_rate(libraries[way]['median'])} |")
    if report["targets"]:
        lines += ["", "## Targets", "", "| target | measured | target | result |",
                  "| --- | ---: | ---: | --- |"]  # fmt: skip
        for t in report["targets"]:
            op = "at most" if t["op"] == "<=" else "at least"
            result = "met" if t["met"] else "**missed**"
            unit = t.get("unit", "x")
            lines.append(
                f"| {t['what']} | {t['value']:.2f}{unit} | {op} {t['limit']:g}{unit} | {result} |"
            )
        missed = sum(not t["met"] for t in report["targets"])
        lines += ["", f"{len(report['targets']) - missed} of {len(report['targets'])} "
                  "targets met."]  # fmt: skip
    return "\n".join(lines) + "\n"


def write_report(report: dict[str, Any], name: str = "memlog") -> Path:
    """Write out/bench/<name>.json and <name>.md; return the .md."""
    dest = out_dir() / "bench"
    dest.mkdir(parents=True, exist_ok=True)
    (dest / f"{name}.json").write_text(json.dumps(report, indent=1) + "\n")
    path = dest / f"{name}.md"
    path.write_text(render_markdown(report))
    return path


def bench(rounds: int | str | None = None, duration: float | str | None = None) -> list[Path]:
    """``invoke bench``: measure in the VM, once per boot of BOOTS; return the reports."""
    args = guest_args(rounds, duration)
    (log_dir() / LOG).write_text("")
    prepared = prepare()
    paths = []
    for name, cmdline in BOOTS.items():
        measured = measure(prepared, args, cmdline)
        paths.append(write_report(summarize(measured["raw"], measured["machine"]), name))
        say(f"report: {paths[-1]} and {name}.json (guest output: {log_dir() / LOG})")
    return paths
