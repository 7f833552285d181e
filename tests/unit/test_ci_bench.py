"""invoke bench's report: medians, per-round ratios, targets met or missed, the Markdown."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ci import bench
from wintermute.errors import InfraError, UserError

MACHINE = {
    "host_cpu": "Test CPU @ 2.0GHz",
    "guest_kernel": "6.1.0-99-amd64",
    "accelerator": "tcg",
    "vcpus": 2,
    "qemu": "10.0.2",
    "date": "2030-01-01 00:00 UTC",
    "host_cpus": 2,
    "host_load_before": 0.5,
    "host_load_after": 3.25,
}


def _fig(rates: list[float], seconds: float = 0.5) -> dict[str, list[float]]:
    """A measure's raw rounds with the given records/s."""
    return {"records": [r * seconds for r in rates], "seconds": [seconds] * len(rates)}


def _raw(
    *,
    many_rate: float = 160.0,
    memlog_64: float = 400.0,
    grow_waits: tuple[float, ...] = (0.0004, 0.0008, 0.03),
) -> dict[str, Any]:
    """A small guest JSON, three rounds.

    64 B: /dev/null 1000/s, memlog ``memlog_64``, pipe 300/s; 1 KiB: memlog
    100/s, pipe 200/s.  Reads: N 1 s, 2N 2 s, N over 256 uids 2 s.  Writers:
    one 100/s, four of ``many_rate / 4`` each.  Grow: the probe's longest write
    wait 0.2 ms alone, ``grow_waits`` while another uid grows (median 0.8 ms).
    """
    per_writer = many_rate / 4
    return {
        "program": "memlog_bench",
        "params": {
            "rounds": 3,
            "duration_s": 0.5,
            "n": 20000,
            "passes": 3,
            "read_uids": 256,
            "writers": 4,
            "reload_module": True,
        },
        "guest": {"kernel_release": "6.1.0-99-amd64", "cpus": 2, "record_header_bytes": 56},
        "write": {
            "memlog": {"64": _fig([memlog_64] * 3), "1024": _fig([100, 100, 100])},
            "pipe": {"64": _fig([300, 300, 300]), "1024": _fig([200, 200, 200])},
            "devnull": {"64": _fig([1000, 1000, 1000]), "1024": _fig([900, 900, 900])},
            "kmsg": {"64": _fig([90, 90, 90])},
        },
        "writers": {
            "record_bytes": 64,
            "one": _fig([100, 100, 100], seconds=1.0),
            "many": [_fig([per_writer] * 4, seconds=1.0) for _ in range(3)],
        },
        "ring_bytes": {
            "blob_bytes": 64,
            "records_written": 1000,
            "records_in_ring": 1000,
            "ring_bytes": 128000,  # 8 more than expected per record
        },
        "read": {
            "record_bytes": 64,
            "n_1uid": {"records": [20000] * 3, "seconds": [1.0, 1.0, 1.0]},
            "2n_1uid": {"records": [40000] * 3, "seconds": [2.0, 2.0, 2.0]},
            "n_many_uids": {"records": [20000] * 3, "seconds": [2.0, 2.0, 2.0]},
        },
        "grow": {
            "grow_size": 128 << 20,
            "tick_s": 0.001,
            "alone": [_grow_round(0.0002)] * 3,
            "growing": [_grow_round(w) for w in grow_waits],
        },
    }


def _grow_round(write_max: float) -> dict[str, float]:
    """One round of a grow phase: the probe's longest write wait, the rest derived from it."""
    return {"seconds": 5.0, "ticks": 5000, "write_max_s": write_max,
            "write_p99_s": write_max / 4, "read_max_s": write_max / 2,
            "read_p99_s": write_max / 8}  # fmt: skip


def _targets(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {t["name"]: t for t in report["targets"]}


def _row(markdown: str, starts: str) -> str:
    rows = [line for line in markdown.splitlines() if line.startswith(f"| {starts}")]
    assert len(rows) == 1, (starts, markdown)
    return rows[0]


def test_targets_are_met_or_missed_by_their_comparison() -> None:
    """Each target's verdict follows its value and limit, in the right direction."""
    targets = _targets(bench.summarize(_raw(), MACHINE))
    assert targets["memlog_vs_devnull_64"]["value"] == pytest.approx(2.5)
    assert not targets["memlog_vs_devnull_64"]["met"]  # 2.5x a /dev/null write > 1.6
    assert targets["memlog_vs_pipe_64"]["value"] == pytest.approx(0.75)
    assert targets["memlog_vs_pipe_64"]["met"]  # memlog at most 0.9x the pipe's cost
    assert not targets["memlog_vs_pipe_1024"]["met"]  # half the pipe's rate
    assert targets["read_2n_vs_n"]["value"] == pytest.approx(2.0)
    assert targets["read_2n_vs_n"]["met"]
    assert targets["read_many_uids_vs_one"]["value"] == pytest.approx(2.0)
    assert not targets["read_many_uids_vs_one"]["met"]
    assert targets["writers_many_vs_one"]["value"] == pytest.approx(1.6)
    assert targets["writers_many_vs_one"]["met"]


@pytest.mark.parametrize(("many_rate", "met"), [(160.0, True), (150.0, True), (120.0, False)])
def test_the_writers_target_is_at_least_one_and_a_half(many_rate: float, met: bool) -> None:
    """4 writers at 1.6x and exactly 1.5x one writer meet the target; at 1.2x miss it."""
    report = bench.summarize(_raw(many_rate=many_rate), MACHINE)
    assert _targets(report)["writers_many_vs_one"]["met"] is met


@pytest.mark.parametrize(("memlog_64", "met"), [(625.0, True), (624.0, False), (2000.0, True)])
def test_the_devnull_target_is_at_most_1_6_times_the_cost(memlog_64: float, met: bool) -> None:
    """memlog at 1/1.6 of /dev/null's rate (1.6x the cost) meets it; slower misses it."""
    report = bench.summarize(_raw(memlog_64=memlog_64), MACHINE)
    assert _targets(report)["memlog_vs_devnull_64"]["met"] is met


def test_markdown_shows_a_missed_target_as_missed_and_a_met_one_as_met() -> None:
    markdown = bench.render_markdown(bench.summarize(_raw(), MACHINE))
    devnull = _row(markdown, "64 B write cost, /dev/memlog vs /dev/null")
    assert devnull.endswith("| **missed** |")
    assert "| 2.50x | at most 1.6x |" in devnull
    pipe = _row(markdown, "64 B write cost, /dev/memlog vs pipe")
    assert pipe.endswith("| met |")
    assert _row(markdown, "read-all time, 2N").endswith("| met |")
    assert _row(markdown, "read-all time, N records over 256 uids").endswith("| **missed** |")
    assert _row(markdown, "64 B records/s, 4 writers of 4 uids /").endswith("| met |")
    assert "4 of 7 targets met." in markdown


def test_markdown_rates_table_has_medians_and_mb_per_s() -> None:
    """The median of the rounds (not the mean), with MB/s of blob; '-' where not measured."""
    raw = _raw()
    raw["write"]["devnull"]["64"] = _fig([1000, 4000, 900])
    markdown = bench.render_markdown(bench.summarize(raw, MACHINE))
    header = _row(markdown, "blob |")
    assert header == "| blob | /dev/memlog | pipe (drained) | /dev/null | /dev/kmsg |"
    assert _row(markdown, "64 B |") == (
        "| 64 B | 400 (0.03) | 300 (0.02) | 1,000 (0.06) | 90 (0.01) |"
    )
    assert _row(markdown, "1 KiB |") == "| 1 KiB | 100 (0.10) | 200 (0.20) | 900 (0.92) | - |"


def test_report_keeps_min_max_and_per_round_ratios() -> None:
    """Ratios are the median of per-round ratios: a slow round moves both sides together."""
    raw = _raw()
    raw["write"]["devnull"]["64"] = _fig([1000, 500, 1000])
    raw["write"]["memlog"]["64"] = _fig([400, 200, 400])
    report = bench.summarize(raw, MACHINE)
    spread = report["medians"]["write"]["devnull"]["64"]
    assert (spread["median"], spread["min"], spread["max"]) == pytest.approx((1000, 500, 1000))
    target = _targets(report)["memlog_vs_devnull_64"]
    assert (target["value"], target["min"], target["max"]) == pytest.approx((2.5, 2.5, 2.5))


def test_concurrency_reads_and_ring_bytes_come_from_the_json() -> None:
    markdown = bench.render_markdown(bench.summarize(_raw(), MACHINE))
    assert _row(markdown, "64 B records/s, 1 writer |").endswith("| 100 |")
    assert _row(markdown, "64 B records/s, 4 writers of 4 uids (total)").endswith("| 160 |")
    assert _row(markdown, "read-all, 20,000 records of 1 uid").endswith("| 1,000.0 |")
    assert _row(markdown, "read-all, 40,000 records of 1 uid").endswith("| 2,000.0 |")
    ring = _row(markdown, "ring bytes per 64 B record")
    assert "(expected 120: 56-byte header + blob, padded to 8)" in ring
    assert ring.endswith("| 128 |")


def test_markdown_names_the_machine_and_renders_from_json_alone() -> None:
    """The report survives a JSON round trip unchanged: the .md is a function of the .json."""
    report = bench.summarize(_raw(), MACHINE)
    markdown = bench.render_markdown(report)
    assert markdown == bench.render_markdown(json.loads(json.dumps(report)))
    assert (
        "Linux 6.1.0-99-amd64 under TCG (QEMU 10.0.2, 2 vCPUs) on Test CPU @ 2.0GHz (2 CPUs, "
        "host load average 0.5 before the boot, 3.25 after the run)"
    ) in markdown
    assert "3 rounds" in markdown
    assert "fastest of 3 passes in its round, each round on a freshly loaded module." in markdown


def test_a_partial_run_renders_what_it_has() -> None:
    """Sections the guest program skipped (--only) leave their tables and targets out."""
    raw = _raw()
    for key in ("writers", "read", "ring_bytes", "grow"):
        del raw[key]
    del raw["write"]["kmsg"]
    report = bench.summarize(raw, MACHINE)
    assert set(_targets(report)) == {
        "memlog_vs_devnull_64", "memlog_vs_pipe_64", "memlog_vs_pipe_1024",
    }  # fmt: skip
    markdown = bench.render_markdown(report)
    assert "/dev/kmsg" not in markdown
    assert "## Concurrency" not in markdown
    assert "grows its ring" not in markdown


def test_host_cpu_model_is_read_from_cpuinfo(tmp_path: Path) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nvendor_id\t: X\nmodel name\t: Some CPU 9000\n")
    assert bench.host_cpu_model(cpuinfo) == "Some CPU 9000"
    assert bench.host_cpu_model(tmp_path / "missing") == "unknown"


def test_host_load_is_the_one_minute_average(tmp_path: Path) -> None:
    loadavg = tmp_path / "loadavg"
    loadavg.write_text("4.69 4.27 2.91 3/412 31337\n")
    assert bench.host_load(loadavg) == 4.69
    assert bench.host_load(tmp_path / "missing") is None


def test_guest_args_pass_only_what_was_given() -> None:
    assert bench.guest_args(None, None) == []
    assert bench.guest_args(3, 0.3) == ["--rounds", "3", "--duration", "0.3"]
    assert bench.guest_args("3", "0.3") == ["--rounds", "3", "--duration", "0.3"]


@pytest.mark.parametrize(("rounds", "duration"), [("0", None), ("x", None), (None, "-1")])
def test_bad_options_are_user_errors_before_anything_runs(
    rounds: str | None, duration: str | None
) -> None:
    with pytest.raises(UserError, match=r"--rounds|--duration"):
        bench.guest_args(rounds, duration)


def test_no_gcc_is_a_user_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(bench.shutil, "which", lambda name: None)
    with pytest.raises(UserError, match="gcc not found"):
        bench.build_binary(tmp_path / "memlog_bench")


def test_a_64_byte_writes_cost_beyond_the_floor_is_set_beside_one_clock_read() -> None:
    """Per round: 1/rate beyond /dev/null's, for memlog and for a CLOCK_REALTIME read; medians."""
    rates = {
        "devnull": {"64": [1_000_000.0, 500_000.0, 1_000_000.0]},  # 1, 2, 1 us
        "memlog": {"64": [250_000.0, 200_000.0, 250_000.0]},  # 4, 5, 4 us
        "clock": {"64": [400_000.0, 250_000.0, 400_000.0]},  # 2.5, 4, 2.5 us
    }
    floor = bench._floor_costs(rates, "hpet")
    assert floor["devnull_us"] == pytest.approx(1.0)
    assert floor["memlog_us"] == pytest.approx(4.0)
    assert floor["memlog_extra_us"] == pytest.approx(3.0)
    assert floor["clock_extra_us"] == pytest.approx(1.5)
    assert floor["clocksource"] == "hpet"


def test_without_a_clock_measure_there_is_no_floor_table() -> None:
    assert bench._floor_costs({"devnull": {"64": [1.0]}, "memlog": {"64": [1.0]}}, "tsc") == {}


@pytest.mark.parametrize(
    ("clocksource", "added", "said"),
    [
        ("hpet", "", "the guest's clocksource hpet (its own choice)."),
        ("tsc", "clocksource=tsc tsc=reliable",
         "the guest's clocksource tsc (the kernel command line adds "
         "`clocksource=tsc tsc=reliable`)."),
    ],
)  # fmt: skip
def test_markdown_says_which_clocksource_every_figure_used(
    clocksource: str, added: str, said: str
) -> None:
    raw = _raw()
    raw["guest"]["clocksource"] = clocksource
    markdown = bench.render_markdown(
        bench.summarize(raw, {**MACHINE, "guest_cmdline_extra": added})
    )
    assert f"Every figure here was taken with {said}" in markdown


@pytest.mark.parametrize(("waits", "met"), [((0.0004, 0.0008, 0.03), True),
                                            ((0.0004, 0.0012, 0.03), False)])  # fmt: skip
def test_the_grow_target_is_the_median_longest_write_wait_of_at_most_1_ms(
    waits: tuple[float, ...], met: bool
) -> None:
    target = _targets(bench.summarize(_raw(grow_waits=waits), MACHINE))[
        "grow_other_uid_write_wait_ms"
    ]
    assert target["value"] == pytest.approx(sorted(waits)[1] * 1e3)
    assert target["met"] is met
    assert target["unit"] == " ms"


def test_markdown_sets_the_probes_waits_while_growing_beside_its_waits_alone() -> None:
    markdown = bench.render_markdown(bench.summarize(_raw(), MACHINE))
    assert "grows its ring to 128 MiB (ms, medians of rounds)" in markdown
    assert _row(markdown, "longest write wait") == "| longest write wait | 0.200 | 0.800 |"
    assert _row(markdown, "99th-percentile read") == "| 99th-percentile read | 0.025 | 0.100 |"
    target = _row(markdown, "the longest wait of another uid")
    assert target.endswith("| 0.80 ms | at most 1 ms | met |")


def _with_libraries(libmemlog: list[float], rust: list[float]) -> dict[str, Any]:
    raw = _raw()
    raw["libraries"] = {"size": 64, "seconds": 1.0,
                        "rates": {"raw-libmemlog": [1000.0, 2000.0, 1000.0],
                                  "libmemlog": libmemlog,
                                  "raw-rust": [1000.0, 2000.0, 1000.0], "rust": rust}}  # fmt: skip
    return raw


@pytest.mark.parametrize(
    ("libmemlog", "met"),
    [([980.0, 1950.0, 975.0], True), ([960.0, 1950.0, 960.0], False)],
)
def test_a_library_is_within_3_percent_when_the_median_per_round_ratio_is_at_least_0_97(
    libmemlog: list[float], met: bool
) -> None:
    """Per-round ratios (round 2 ran twice as fast for every way): the median decides."""
    report = bench.summarize(_with_libraries(libmemlog, [1000.0, 2000.0, 1000.0]), MACHINE)
    target = _targets(report)["libmemlog_vs_raw_64"]
    assert target["value"] == pytest.approx(sorted(a / b for a, b in zip(
        libmemlog, [1000.0, 2000.0, 1000.0], strict=True))[1])  # fmt: skip
    assert (target["op"], target["limit"], target["met"]) == (">=", 0.97, met)
    assert _targets(report)["rust_vs_raw_64"]["met"] is True


def test_markdown_lists_the_three_ways_of_writing_and_their_targets() -> None:
    markdown = bench.render_markdown(
        bench.summarize(_with_libraries([990.0] * 3, [900.0] * 3), MACHINE)
    )
    assert _row(markdown, "raw write(2), in the C") == "| raw write(2), in the C program | 1,000 |"
    assert _row(markdown, "libmemlog (memlog_write)") == "| libmemlog (memlog_write) | 990 |"
    assert _row(markdown, "64 B records/s, Rust crate").endswith(
        "| 0.90x | at least 0.97x | **missed** |"
    )


def test_library_rounds_take_the_guest_program_s_rounds_and_duration() -> None:
    assert bench._library_args([]) == (bench.LIBRARY_ROUNDS, bench.LIBRARY_SECONDS)
    assert bench._library_args(["--rounds", "3", "--duration", "0.2"]) == (3, 0.2)


def test_a_library_line_gives_both_rates_and_anything_else_is_an_error() -> None:
    assert bench.parse_library_line("raw 512 0.5 library 256 0.5 ratio 0.9876\n") == (
        1024.0,
        512.0,
        0.9876,
    )
    with pytest.raises(InfraError, match="printed 'writes 1 seconds 2'"):
        bench.parse_library_line("writes 1 seconds 2")


def test_the_library_targets_use_the_pair_ratios_when_the_programs_give_them() -> None:
    """The medians over pairs of batches (per round) decide, not the ratio of the sums."""
    raw = _with_libraries([500.0] * 3, [1000.0, 2000.0, 1000.0])
    raw["libraries"]["pair_ratios"] = {"libmemlog": [0.99, 0.98, 0.5], "rust": [0.9, 0.96, 1.0]}
    targets = _targets(bench.summarize(raw, MACHINE))
    assert targets["libmemlog_vs_raw_64"]["value"] == pytest.approx(0.98)
    assert targets["libmemlog_vs_raw_64"]["met"] is True
    assert targets["rust_vs_raw_64"]["met"] is False
