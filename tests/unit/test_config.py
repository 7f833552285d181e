"""kernel.yaml is validated on load: each problem is one line naming the file and the key."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from wintermute import config
from wintermute.errors import UserError


def _write(tmp_path: Path, mutate: object) -> Path:
    data = yaml.safe_load(config.KERNEL_YAML.read_text())
    mutate(data)  # type: ignore[operator]
    path = tmp_path / "kernel.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _error(path: Path) -> str:
    with pytest.raises(UserError) as excinfo:
        config.load(path)
    message = str(excinfo.value)
    assert "\n" not in message
    return message


def test_shipped_kernel_yaml_is_valid() -> None:
    """The repository's own kernel.yaml loads."""
    cfg = config.load()
    assert cfg.memlog.system.group
    assert cfg.packages.dkms.endswith("-dkms")


def test_unknown_key_is_named_in_the_error(tmp_path: Path) -> None:
    """An unknown key stops the load and the message names it and the file."""
    path = _write(tmp_path, lambda d: d["memlog"]["system"].update(colour="blue"))
    message = _error(path)
    assert "memlog.system.colour: unknown key" in message
    assert str(path) in message


def test_wrong_type_is_named_in_the_error(tmp_path: Path) -> None:
    """A string where a number belongs names the key."""
    message = _error(_write(tmp_path, lambda d: d["memlog"]["system"].update(ring_size="big")))
    assert "memlog.system.ring_size: expected an integer" in message


def test_invalid_octal_mode_is_rejected(tmp_path: Path) -> None:
    """A device mode like 0999 is not an octal mode."""
    message = _error(_write(tmp_path, lambda d: d["memlog"]["system"].update(device_mode="0999")))
    assert "memlog.system.device_mode: '0999' is not an octal file mode" in message


def test_unquoted_mode_is_rejected_with_a_hint(tmp_path: Path) -> None:
    """An unquoted 0660 is a YAML number, so the error says to quote it."""
    path = tmp_path / "kernel.yaml"
    text = config.KERNEL_YAML.read_text().replace('device_mode: "0660"', "device_mode: 0660")
    path.write_text(text)
    assert "quoted octal string" in _error(path)


def test_empty_group_name_is_rejected(tmp_path: Path) -> None:
    """The memlog group name must not be empty."""
    message = _error(_write(tmp_path, lambda d: d["memlog"]["system"].update(group="")))
    assert "memlog.system.group: must not be empty" in message


def test_missing_value_is_named_in_the_error(tmp_path: Path) -> None:
    """A removed key is reported as missing."""
    message = _error(_write(tmp_path, lambda d: d["packages"].pop("dkms")))
    assert "packages.dkms: missing value" in message


def test_ring_size_outside_the_driver_range_is_rejected(tmp_path: Path) -> None:
    """The ring size must be within the driver's 64 KiB .. 256 MiB."""
    message = _error(_write(tmp_path, lambda d: d["memlog"]["system"].update(ring_size=1024)))
    assert "memlog.system.ring_size: 1024 is outside" in message


def test_invalid_yaml_gives_one_line(tmp_path: Path) -> None:
    """A YAML syntax error is one line with its position."""
    path = tmp_path / "kernel.yaml"
    path.write_text("memlog: [unclosed\n")
    assert "invalid YAML" in _error(path)


def test_missing_file_gives_one_line(tmp_path: Path) -> None:
    """A missing kernel.yaml is one clear line."""
    assert "cannot read" in _error(tmp_path / "nope.yaml")
