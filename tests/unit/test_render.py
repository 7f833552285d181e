"""Templates render from kernel.yaml alone, strictly, and re-rendering changes nothing."""

from __future__ import annotations

import dataclasses
import subprocess
from pathlib import Path

import jinja2
import pytest

from wintermute import config
from wintermute.errors import UserError
from wintermute.packaging import render, targets


def _mtimes(root: Path) -> dict[Path, int]:
    return {p: p.stat().st_mtime_ns for p in root.rglob("*")}


def test_rendering_twice_leaves_the_output_untouched(tmp_path: Path) -> None:
    """Unchanged inputs change nothing in the output directory."""
    dest = targets.render(tmp_path / "render")
    before = _mtimes(dest)
    targets.render(dest)
    assert _mtimes(dest) == before


def test_udev_rule_carries_group_and_mode_from_kernel_yaml(tmp_path: Path) -> None:
    """The udev rule's GROUP and MODE come from kernel.yaml."""
    cfg = config.load()
    system = dataclasses.replace(cfg.memlog.system, group="agents", device_mode="0640")
    cfg = dataclasses.replace(cfg, memlog=dataclasses.replace(cfg.memlog, system=system))
    dest = targets.render(tmp_path / "render", cfg)
    rule = (dest / "system" / "udev.rules").read_text()
    assert 'GROUP="agents", MODE="0640"' in rule


def test_sysctl_file_carries_the_configured_ring_size(tmp_path: Path) -> None:
    """sysctl.d sets kernel.memlog.ring_size to kernel.yaml's value."""
    cfg = config.load()
    dest = targets.render(tmp_path / "render", cfg)
    text = (dest / "system" / "sysctl.conf").read_text()
    assert f"kernel.memlog.ring_size = {cfg.memlog.system.ring_size}" in text


def test_promote_user_unit_runs_for_members_of_the_configured_group(tmp_path: Path) -> None:
    """memlog-promote.service runs `memlog episode promote --all-sessions`, only for members of
    kernel.yaml's group; the timer starts it every 10 minutes once enabled."""
    cfg = config.load()
    system = dataclasses.replace(cfg.memlog.system, group="agents")
    cfg = dataclasses.replace(cfg, memlog=dataclasses.replace(cfg.memlog, system=system))
    dest = targets.render(tmp_path / "render", cfg)
    service = (dest / "system" / "memlog-promote.service").read_text().splitlines()
    assert "ConditionGroup=agents" in service
    assert "ExecStart=/usr/bin/memlog episode promote --all-sessions" in service
    timer = (dest / "system" / "memlog-promote.timer").read_text().splitlines()
    assert "OnUnitActiveSec=10min" in timer and "WantedBy=timers.target" in timer


def test_dkms_conf_names_version_and_minimum_kernel(tmp_path: Path) -> None:
    """dkms.conf's version and minimum kernel come from kernel.yaml."""
    cfg = config.load()
    text = (targets.render(tmp_path / "render", cfg) / "dkms" / "dkms.conf").read_text()
    assert f'PACKAGE_VERSION="{cfg.memlog.version}"' in text
    assert f'BUILD_EXCLUSIVE_KERNEL_MIN="{cfg.memlog.min_kernel}"' in text
    assert 'AUTOINSTALL="yes"' in text


def test_dkms_conf_skips_kernels_that_carry_memlog_in_tree(tmp_path: Path) -> None:
    """DKMS builds nothing for a kernel whose .config has CONFIG_MEMLOG (linux-wintermute)."""
    text = (targets.render(tmp_path / "render", config.load()) / "dkms" / "dkms.conf").read_text()
    assert 'BUILD_EXCLUSIVE_CONFIG="!CONFIG_MEMLOG"' in text.splitlines()


@pytest.mark.parametrize(
    ("environment", "autoinstall"),
    [({}, "yes"), ({"MEMLOG_IN_TREE_KERNEL": "7.2.13-1-wintermute"}, "")],
)
def test_dkms_conf_stays_out_of_autoinstall_for_a_kernel_with_memlog_in_tree(
    tmp_path: Path, environment: dict[str, str], autoinstall: str
) -> None:
    """Sourced by bash as DKMS does: AUTOINSTALL is off only in a linux-wintermute hook's run."""
    conf = targets.render(tmp_path / "render", config.load()) / "dkms" / "dkms.conf"
    result = subprocess.run(
        ["bash", "-c", 'kernel_source_dir=/k dkms_tree=/d; . "$1"; printf %s "$AUTOINSTALL"', "-",
         conf],
        env={"PATH": "/usr/bin:/bin", **environment}, capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert result.stdout == autoinstall


def test_bad_kernel_yaml_renders_nothing(tmp_path: Path) -> None:
    """A kernel.yaml error stops before any output is written."""
    bad = tmp_path / "kernel.yaml"
    bad.write_text(config.KERNEL_YAML.read_text().replace('"0660"', '"0999"'))
    with pytest.raises(UserError):
        targets.render(tmp_path / "render", config.load(bad))
    assert not (tmp_path / "render").exists()


def test_undefined_template_value_is_an_error() -> None:
    """A template naming a value kernel.yaml lacks fails instead of rendering empty."""
    env = render.environment()
    with pytest.raises(jinja2.UndefinedError):
        env.from_string("{{ memlog.nope }}").render(render.context(config.load()))


def test_render_task_reports_a_bad_kernel_yaml_in_one_line(tmp_path: Path) -> None:
    """`invoke render` with a bad kernel.yaml exits 1 with one E: line and writes nothing."""
    import os
    import subprocess
    import sys

    bad = tmp_path / "kernel.yaml"
    bad.write_text(config.KERNEL_YAML.read_text().replace("group: memlog", 'group: ""'))
    out = tmp_path / "out"
    env = dict(os.environ, WINTERMUTE_KERNEL_YAML=str(bad), WINTERMUTE_OUT=str(out))
    proc = subprocess.run(
        [sys.executable, "-m", "invoke", "render"],
        cwd=render.REPO,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert lines == [f"E: {bad}: memlog.system.group: must not be empty"]
    assert not (out / "render").exists()
