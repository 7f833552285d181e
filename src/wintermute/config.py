"""Load and validate ``wintermute-kernel/kernel.yaml``, the one description of what ships.

Every problem is reported as one line naming the file and the key
(``kernel.yaml: memlog.system.device_mode: '0999' is not an octal mode``),
before anything is built.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from wintermute.errors import UserError
from wintermute.paths import REPO

KERNEL_YAML = REPO / "wintermute-kernel" / "kernel.yaml"


def default_path() -> Path:
    """kernel.yaml, or the file ``WINTERMUTE_KERNEL_YAML`` names."""
    env = os.environ.get("WINTERMUTE_KERNEL_YAML")
    return Path(env) if env else KERNEL_YAML


RING_SIZE_MIN = 64 << 10
RING_SIZE_MAX = 256 << 20

_VERSION = re.compile(r"^[0-9]+(\.[0-9]+)*$")
_SERIES = re.compile(r"^[0-9]+\.[0-9]+$")
_PACKAGE = re.compile(r"^[a-z0-9][a-z0-9+.-]+$")
_GROUP = re.compile(r"^[a-z_][a-z0-9_-]*$")
_MODE = re.compile(r"^0?[0-7]{3}$")
_MAINTAINER = re.compile(r"^[^<>]+ <[^<>@\s]+@[^<>@\s]+>$")


@dataclass(frozen=True)
class System:
    group: str
    device_mode: str  # four octal digits, e.g. "0660"
    ring_size: int


@dataclass(frozen=True)
class Memlog:
    version: str
    release: int
    min_kernel: str
    system: System


@dataclass(frozen=True)
class Packages:
    tools: str
    dkms: str


@dataclass(frozen=True)
class Kernel:
    package: str
    series: str
    source_package: str
    suite: str


@dataclass(frozen=True)
class Config:
    maintainer: str
    homepage: str
    memlog: Memlog
    packages: Packages
    kernel: Kernel
    source: Path

    def as_dict(self) -> dict[str, Any]:
        """The values templates see, as plain nested dicts."""
        from dataclasses import asdict

        data = asdict(self)
        data.pop("source")
        return data


# --- the schema: key -> checker; a checker returns the clean value or raises ValueError

Checker = Callable[[Any], Any]


def _string(pattern: re.Pattern[str] | None = None, what: str = "") -> Checker:
    def check(value: Any) -> str:
        if not isinstance(value, str):
            raise ValueError(f"expected a string, got {type(value).__name__} {value!r}")
        if not value.strip():
            raise ValueError("must not be empty")
        if pattern is not None and not pattern.match(value):
            raise ValueError(f"{value!r} is not {what}")
        return value

    return check


def _mode(value: Any) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        raise ValueError(
            f'{value!r} is a number; write the mode as a quoted octal string like "0660"'
        )
    text = _string()(value)
    if not _MODE.match(text):
        raise ValueError(f'{text!r} is not an octal file mode like "0660"')
    return text.zfill(4)


def _int_range(low: int, high: int) -> Checker:
    def check(value: Any) -> int:
        if not isinstance(value, int) or isinstance(value, bool):
            raise ValueError(f"expected an integer, got {type(value).__name__} {value!r}")
        if not low <= value <= high:
            raise ValueError(f"{value} is outside {low}..{high}")
        return value

    return check


def _version(value: Any) -> str:
    if isinstance(value, int | float) and not isinstance(value, bool):
        raise ValueError(f"{value!r} is a number; quote the version")
    return _string(_VERSION, "a version like 1.2.3")(value)


_SCHEMA: dict[str, Any] = {
    "maintainer": _string(_MAINTAINER, "'Name <email>'"),
    "homepage": _string(re.compile(r"^https?://\S+$"), "an http(s) URL"),
    "memlog": {
        "version": _version,
        "release": _int_range(1, 10_000),
        "min_kernel": _string(_SERIES, 'a kernel series like "6.1"'),
        "system": {
            "group": _string(_GROUP, "a valid group name"),
            "device_mode": _mode,
            "ring_size": _int_range(RING_SIZE_MIN, RING_SIZE_MAX),
        },
    },
    "packages": {
        "tools": _string(_PACKAGE, "a package name"),
        "dkms": _string(_PACKAGE, "a package name"),
    },
    "kernel": {
        "package": _string(_PACKAGE, "a package name"),
        "series": _string(_SERIES, 'a kernel series like "7.2"'),
        "source_package": _string(_PACKAGE, "a package name"),
        "suite": _string(re.compile(r"^[a-z-]+$"), "a Debian suite name"),
    },
}


def _validate(data: Any, schema: Mapping[str, Any], where: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise ValueError(f"{where or 'top level'}: expected a mapping, got {type(data).__name__}")
    for key in data:
        if key not in schema:
            known = ", ".join(sorted(schema))
            raise ValueError(f"{where}{key}: unknown key (expected one of: {known})")
    clean: dict[str, Any] = {}
    for key, rule in schema.items():
        path = f"{where}{key}"
        if key not in data or data[key] is None:
            raise ValueError(f"{path}: missing value")
        if isinstance(rule, dict):
            clean[key] = _validate(data[key], rule, f"{path}.")
        else:
            try:
                clean[key] = rule(data[key])
            except ValueError as exc:
                raise ValueError(f"{path}: {exc}") from None
    return clean


def load(path: Path | None = None) -> Config:
    """Read and validate ``path`` (default: :func:`default_path`); one-line UserError if bad."""
    path = path or default_path()
    name = path.relative_to(REPO) if path.is_relative_to(REPO) else path
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UserError(f"{name}: cannot read: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise UserError(f"{name}: invalid YAML{at}: {problem}") from None
    try:
        data = _validate(raw, _SCHEMA, "")
    except ValueError as exc:
        raise UserError(f"{name}: {exc}") from None
    m = data["memlog"]
    return Config(
        maintainer=data["maintainer"],
        homepage=data["homepage"],
        memlog=Memlog(
            version=m["version"],
            release=m["release"],
            min_kernel=m["min_kernel"],
            system=System(**m["system"]),
        ),
        packages=Packages(**data["packages"]),
        kernel=Kernel(**data["kernel"]),
        source=path,
    )
