"""Load and validate the descriptions in ``wintermute-kernel/``.

``kernel.yaml`` says what ships; ``series.yaml`` is the kernel series matrix
the driver is compiled against, whose oldest series is the oldest kernel memlog
supports (``memlog.min_kernel``).  Each file is checked against its JSON Schema
(draft 2020-12: ``kernel.schema.json``, ``series.schema.json``) by
``jsonschema``.  Two things the schema cannot know are filled in when it is
loaded: the ring-size limits, from :mod:`memlog.uapi` (the mirror of
``include/uapi/linux/memlog.h``).  Relative paths in ``kernel.yaml``'s
``kernel`` section are taken from the file's directory.

Every problem is one :class:`UserError` line naming the file and the key
(``kernel.yaml: memlog.system.device_mode: '0999' is not an octal file mode
like "0660"``), before anything is built.
"""

from __future__ import annotations

import functools
import json
import os
import reprlib
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator, TypeChecker, validators
from jsonschema.exceptions import ValidationError, best_match, by_relevance

from memlog import uapi
from wintermute.errors import UserError
from wintermute.paths import REPO

DESCRIPTIONS = REPO / "wintermute-kernel"
KERNEL_YAML = DESCRIPTIONS / "kernel.yaml"
KERNEL_SCHEMA = DESCRIPTIONS / "kernel.schema.json"
SERIES_YAML = DESCRIPTIONS / "series.yaml"
SERIES_SCHEMA = DESCRIPTIONS / "series.schema.json"


def default_path() -> Path:
    """kernel.yaml, or the file ``WINTERMUTE_KERNEL_YAML`` names."""
    env = os.environ.get("WINTERMUTE_KERNEL_YAML")
    return Path(env) if env else KERNEL_YAML


# --- what the files hold ------------------------------------------------------


@dataclass(frozen=True)
class System:
    group: str
    device_mode: str  # four octal digits, e.g. "0660"
    ring_size: int


@dataclass(frozen=True)
class Memlog:
    version: str
    release: int
    min_kernel: str  # the oldest series of series.yaml
    system: System


@dataclass(frozen=True)
class Packages:
    tools: str
    dkms: str


@dataclass(frozen=True)
class KernelSource:
    """Where the kernel's source comes from: exactly one of the three is set."""

    debian_package: str | None = None  # a linux-source-X.Y package ...
    suite: str | None = None  # ... of this Debian suite
    tarball: str | None = None  # an http(s) URL or an absolute path ...
    sha256: str | None = None  # ... and its checksum
    tree: Path | None = None  # a local kernel tree, copied into the cache and built there


DEBUG_FRAGMENT = "debug.config"
LATENCY_FRAGMENT = "latency.config"


@dataclass(frozen=True)
class Kernel:
    package: str  # linux-wintermute: Debian's source package, Arch's pkgbase without flavour
    release: int  # packaging revision (see wintermute.kernel.names)
    source: KernelSource
    config_base: str  # defconfig, tinyconfig, debian, running, or a file beside kernel.yaml
    fragments: tuple[str, ...]  # files under wintermute-kernel/config/
    patches: tuple[str, ...]  # files under wintermute-kernel/patches/
    build_user: str
    build_host: str
    signing_key: Path | None  # a PEM file; None (and no URI): a fresh key for each build
    directory: Path  # kernel.yaml's own: config/ and patches/ are found beside it
    flavour: str | None = None  # a variant with packages of its own: "debug"
    signing_key_uri: str | None = None  # a PKCS#11 URI (RFC 7512): the key in a token

    @property
    def debug(self) -> bool:
        """Built with debug.config (KASAN, lockdep, kmemleak): slower, for the stress runs."""
        return DEBUG_FRAGMENT in self.fragments

    @property
    def latency(self) -> bool:
        """Built with latency.config: the preempt-off tracer, for a latency run."""
        return LATENCY_FRAGMENT in self.fragments


@dataclass(frozen=True)
class Repository:
    """The signed APT and pacman repositories ``invoke repository`` publishes."""

    name: str = "wintermute"  # pacman's [section]; the keyring package is NAME-archive-keyring
    url: str = "https://wintermute.invalid/packages"  # where out/repository/ is served
    suites: tuple[str, ...] = ("bookworm", "trixie")  # the APT repository's suites
    signing_key: Path | None = None  # an exported secret key; None: one made per directory


@dataclass(frozen=True)
class Config:
    maintainer: str
    homepage: str
    memlog: Memlog
    packages: Packages
    kernel: Kernel
    source: Path
    repository: Repository = Repository()

    def as_dict(self) -> dict[str, Any]:
        """The values templates see, as plain nested dicts."""
        data = asdict(self)
        data.pop("source")
        return data


@dataclass(frozen=True)
class KernelSeries:
    """One series of the build matrix and the Debian package that carries its source."""

    series: str
    suite: str
    source_package: str
    kernel_packages: bool  # invoke build-kernel can package a kernel of this series


# --- loading --------------------------------------------------------------------


def load(path: Path | None = None) -> Config:
    """Read and validate ``path`` (default: :func:`default_path`); one-line UserError if bad."""
    path = path or default_path()
    data = _load_valid(path, _kernel_validator())
    memlog, system = data["memlog"], data["memlog"]["system"]
    cfg = Config(
        maintainer=data["maintainer"],
        homepage=data["homepage"],
        memlog=Memlog(
            version=memlog["version"],
            release=memlog["release"],
            min_kernel=kernel_matrix()[0].series,
            system=System(
                group=system["group"],
                device_mode=system["device_mode"].zfill(4),
                ring_size=system["ring_size"],
            ),
        ),
        packages=Packages(**data["packages"]),
        kernel=_kernel(data["kernel"], path.parent),
        source=path,
        repository=_repository(data.get("repository", {}), path.parent),
    )
    _check_packageable(cfg.kernel.source, path)
    _check_debian_base(cfg.kernel, path)
    _check_signing_uri(cfg.kernel, path)
    return cfg


PKCS11_SCHEME = "pkcs11:"


def _check_signing_uri(kernel: Kernel, path: Path) -> None:
    """A PKCS#11 URI never carries the token's PIN: it goes into the kernel's .config."""
    uri = kernel.signing_key_uri
    if uri and "pin-value=" in uri:
        raise UserError(
            f"{_shown(path)}: kernel.signing_key: the URI carries the token's PIN (pin-value), "
            "which would end up in the kernel's configuration and its packages; name a file "
            "holding it with pin-source=file:/path instead"
        )


def _check_debian_base(kernel: Kernel, path: Path) -> None:
    """Config base ``debian`` is Debian's kernel of the same version: a Debian source only."""
    if kernel.config_base == "debian" and kernel.source.debian_package is None:
        raise UserError(
            f"{_shown(path)}: kernel.config.base: debian takes the configuration of Debian's "
            "kernel of the same version, so it needs kernel.source.debian (a linux-source-X.Y "
            "package); with a tarball or a tree, use defconfig or a file"
        )


def _check_packageable(source: KernelSource, path: Path) -> None:
    """A Debian source of a series build-kernel cannot package is refused before any download."""
    row = next((r for r in kernel_matrix() if r.source_package == source.debian_package), None)
    if row is None or row.kernel_packages:
        return
    usable = [r.source_package for r in kernel_matrix() if r.kernel_packages]
    raise UserError(
        f"{_shown(path)}: kernel.source.debian.package: {row.source_package} (Linux {row.series}) "
        "cannot be packaged (its tree has no scripts/package/install-extmod-build); use "
        f"{' or '.join(usable)} ({_shown(SERIES_YAML)})"
    )


def _repository(data: dict[str, Any], base: Path) -> Repository:
    default = Repository()
    key = data.get("signing_key")
    return Repository(
        name=data.get("name", default.name),
        url=data.get("url", default.url),
        suites=tuple(data.get("suites", default.suites)),
        signing_key=_relative_to(base, key) if key else None,
    )


def _relative_to(base: Path, value: str) -> Path:
    return Path(value) if os.path.isabs(value) else (base / value).resolve()


def _kernel(data: dict[str, Any], base: Path) -> Kernel:
    """kernel.yaml's ``kernel`` section; relative paths are taken from ``base`` (its directory)."""
    src = data["source"]
    if "debian" in src:
        source = KernelSource(debian_package=src["debian"]["package"], suite=src["debian"]["suite"])
    elif "tarball" in src:
        location = src["tarball"]["location"]
        if "://" not in location:
            location = str(_relative_to(base, location))
        source = KernelSource(tarball=location, sha256=src["tarball"]["sha256"])
    else:
        source = KernelSource(tree=_relative_to(base, src["tree"]))
    key = data.get("signing_key")
    uri = key if key and key.startswith(PKCS11_SCHEME) else None
    return Kernel(
        package=data["package"],
        release=data["release"],
        source=source,
        config_base=data["config"]["base"],
        fragments=tuple(data["config"]["fragments"]),
        patches=tuple(data["patches"]),
        build_user=data["build_user"],
        build_host=data["build_host"],
        signing_key=_relative_to(base, key) if key and not uri else None,
        signing_key_uri=uri,
        directory=base.resolve(),
        flavour=data.get("flavour"),
    )


def load_matrix(path: Path = SERIES_YAML) -> tuple[KernelSeries, ...]:
    """Read and validate a series file: its kernel series, oldest first."""
    data = _load_valid(path, _validator(_read_schema(SERIES_SCHEMA)))
    rows = [KernelSeries(**row) for row in data["series"]]
    seen: set[str] = set()
    for index, row in enumerate(rows):
        if row.series in seen:
            raise UserError(
                f"{_shown(path)}: series[{index}].series: {row.series!r} is listed twice"
            )
        seen.add(row.series)
    return tuple(sorted(rows, key=lambda row: tuple(map(int, row.series.split(".")))))


def load_yaml(path: Path, schema: Path) -> dict[str, Any]:
    """The YAML file ``path``, validated against the JSON schema file ``schema``."""
    return _load_valid(path, _validator(_read_schema(schema)))


@functools.cache
def kernel_matrix() -> tuple[KernelSeries, ...]:
    """``series.yaml``'s kernel series, oldest first (read once per process)."""
    return load_matrix(SERIES_YAML)


def kernel_schema() -> dict[str, Any]:
    """``kernel.schema.json`` with the values it takes from the UAPI mirror."""
    schema = _read_schema(KERNEL_SCHEMA)
    defs = schema["$defs"]
    defs["ring_size"].update(minimum=uapi.RING_SIZE_MIN, maximum=uapi.RING_SIZE_MAX)
    return schema


@functools.cache
def _kernel_validator() -> Draft202012Validator:
    return _validator(kernel_schema())


def _shown(path: Path) -> Path:
    """``path`` as messages show it: relative to the repository when inside it."""
    return path.relative_to(REPO) if path.is_relative_to(REPO) else path


def _read_yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UserError(f"{_shown(path)}: cannot read: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise UserError(f"{_shown(path)}: invalid YAML{at}: {problem}") from None


def _read_schema(path: Path) -> dict[str, Any]:
    try:
        schema: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UserError(f"{_shown(path)}: cannot read: {exc.strerror}") from None
    except ValueError as exc:
        raise UserError(f"{_shown(path)}: invalid JSON: {exc}") from None
    return schema


def _load_valid(path: Path, validator: Draft202012Validator) -> dict[str, Any]:
    """The YAML document at ``path`` if ``validator`` finds nothing wrong with it."""
    data: dict[str, Any] = _read_yaml(path)
    error = best_match(validator.iter_errors(data), key=_RELEVANCE)
    if error is not None:
        raise UserError(f"{_shown(path)}: {_describe(error)}")
    return data


# --- validation -----------------------------------------------------------------


def _is_int(checker: TypeChecker, instance: Any) -> bool:
    """YAML's integers only: JSON Schema would also take 1.0, which renders as "1.0"."""
    return isinstance(instance, int) and not isinstance(instance, bool)


# Draft 2020-12 with whole numbers only; the same on jsonschema 4.10 (Debian 12) and later.
_Validator = validators.extend(
    Draft202012Validator,
    type_checker=Draft202012Validator.TYPE_CHECKER.redefine("integer", _is_int),
)


def _validator(schema: dict[str, Any]) -> Draft202012Validator:
    validator: Draft202012Validator = _Validator(schema)
    return validator


# best_match reports the problem highest up in the document.  When two keywords
# fail on the same value, these win: a misspelt key is reported as unknown (with
# the keys expected) rather than as the key it should have been, missing; an
# empty string as empty rather than as not matching its pattern.
_RELEVANCE = by_relevance(strong=frozenset({"additionalProperties", "minLength"}))


# --- error messages -------------------------------------------------------------

_TYPE_NAMES = {
    "object": "a mapping",
    "array": "a list",
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false",
    "null": "nothing",
}
_KINDS = {
    bool: "boolean",
    int: "number",
    float: "number",
    str: "string",
    list: "list",
    dict: "mapping",
}
_REPR = reprlib.Repr()
_REPR.maxstring = 60
_REPR.maxother = 60


def _describe(error: ValidationError) -> str:
    """``key.path: what is wrong``, one line a user can act on.

    The schema's own words come first: ``x-messages`` (per failing keyword) and
    ``x-removed`` (per key no longer written); jsonschema's wording is the last resort.
    """
    path: list[str | int] = list(error.absolute_path)
    schema: Mapping[str, Any] = error.schema if isinstance(error.schema, Mapping) else {}
    if error.validator == "additionalProperties":
        known = schema.get("properties", {})
        key = str(next(k for k in error.instance if k not in known))
        path.append(key)
        removed = schema.get("x-removed", {})
        text = removed.get(key) or f"unknown key (expected one of: {', '.join(sorted(known))})"
    elif error.validator == "required":
        path.append(next(k for k in error.validator_value if k not in error.instance))
        text = "missing value"
    elif error.validator == "type" and error.instance is None:
        text = "missing value" if path else "the file is empty"
    else:
        text = _message(error, schema)
    where = _key_path(path)
    return f"{where}: {text}" if where else text


def _key_path(path: Iterable[str | int]) -> str:
    """``memlog.system.group``, ``series[1].suite``: a key path as the user writes it."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


def _message(error: ValidationError, schema: Mapping[str, Any]) -> str:
    keyword, expected = error.validator, error.validator_value
    fields = {k: v for k, v in schema.items() if isinstance(k, str) and k.isidentifier()}
    fields |= {
        "value": _REPR.repr(error.instance),
        "kind": _KINDS.get(type(error.instance), type(error.instance).__name__),
        "choices": ", ".join(map(str, expected)) if keyword == "enum" else "",
    }
    template = schema.get("x-messages", {}).get(keyword)
    if template is not None:
        return str(template).format_map(fields)
    if keyword == "type":
        wanted = " or ".join(
            _TYPE_NAMES[t] for t in ([expected] if isinstance(expected, str) else expected)
        )
        return f"expected {wanted}, got a {fields['kind']} {fields['value']}"
    if keyword == "minLength" and expected == 1:
        return "must not be empty"
    if keyword in ("minimum", "maximum") and {"minimum", "maximum"} <= schema.keys():
        return f"{fields['value']} is outside {schema['minimum']}..{schema['maximum']}"
    if keyword == "enum":
        return f"{fields['value']} is not one of: {fields['choices']}"
    return error.message
