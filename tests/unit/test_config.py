"""kernel.yaml and series.yaml are validated on load: one line per problem, naming file and key."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator

from memlog import uapi
from wintermute import config
from wintermute.errors import UserError

Mutation = Callable[[dict[str, Any]], object]


def _write(tmp_path: Path, mutate: Mutation, source: Path = config.KERNEL_YAML) -> Path:
    data = yaml.safe_load(source.read_text())
    mutate(data)
    path = tmp_path / source.name
    path.write_text(yaml.safe_dump(data))
    return path


def _error(path: Path, load: Callable[[Path], object] = config.load) -> str:
    with pytest.raises(UserError) as excinfo:
        load(path)
    message = str(excinfo.value)
    assert "\n" not in message
    return message


def _system(**changes: object) -> Mutation:
    return lambda d: d["memlog"]["system"].update(changes)


def test_shipped_kernel_yaml_is_valid() -> None:
    """The repository's own kernel.yaml loads."""
    cfg = config.load()
    assert cfg.memlog.system.group
    assert cfg.packages.dkms.endswith("-dkms")


def test_unknown_key_is_named_in_the_error(tmp_path: Path) -> None:
    """An unknown key stops the load and the message names it, the file and the keys expected."""
    path = _write(tmp_path, _system(colour="blue"))
    assert _error(path) == (
        f"{path}: memlog.system.colour: unknown key"
        " (expected one of: device_mode, group, ring_size)"
    )


def test_misspelt_key_is_reported_as_unknown_not_as_missing(tmp_path: Path) -> None:
    """dksm for dkms is both an unknown and a missing key; the unknown one is reported."""
    path = _write(tmp_path, lambda d: d["packages"].update(dksm=d["packages"].pop("dkms")))
    assert "packages.dksm: unknown key (expected one of: dkms, tools)" in _error(path)


def test_wrong_type_is_named_in_the_error(tmp_path: Path) -> None:
    """A string where a number belongs names the key."""
    message = _error(_write(tmp_path, _system(ring_size="big")))
    assert message.endswith("memlog.system.ring_size: expected an integer, got a string 'big'")


def test_whole_number_written_as_a_float_is_not_an_integer(tmp_path: Path) -> None:
    """release: 1.0 would render as "1.0", so only YAML integers are integers."""
    message = _error(_write(tmp_path, lambda d: d["memlog"].update(release=1.0)))
    assert "memlog.release: expected an integer, got a number 1.0" in message


def test_invalid_octal_mode_is_rejected(tmp_path: Path) -> None:
    """A device mode like 0999 is not an octal mode."""
    message = _error(_write(tmp_path, _system(device_mode="0999")))
    assert message.endswith(
        """memlog.system.device_mode: '0999' is not an octal file mode like "0660\""""
    )


def test_unquoted_mode_is_rejected_with_a_hint(tmp_path: Path) -> None:
    """An unquoted 0660 is a YAML number, so the error says to quote it."""
    path = tmp_path / "kernel.yaml"
    text = config.KERNEL_YAML.read_text().replace('device_mode: "0660"', "device_mode: 0660")
    path.write_text(text)
    message = _error(path)
    assert "memlog.system.device_mode: 432 is a number" in message
    assert "quoted octal string" in message


def test_three_digit_mode_is_read_as_four(tmp_path: Path) -> None:
    """device_mode "660" is accepted and given as "0660"."""
    assert config.load(_write(tmp_path, _system(device_mode="660"))).memlog.system.device_mode == (
        "0660"
    )


def test_unquoted_version_is_rejected_with_a_hint(tmp_path: Path) -> None:
    """version: 1.0 is a YAML number; the error says to quote the version."""
    message = _error(_write(tmp_path, lambda d: d["memlog"].update(version=1.0)))
    assert "memlog.version: 1.0 is a number, not a string; quote the version" in message


def test_empty_group_name_is_rejected(tmp_path: Path) -> None:
    """The memlog group name must not be empty."""
    message = _error(_write(tmp_path, _system(group="")))
    assert "memlog.system.group: must not be empty" in message


def test_invalid_group_name_is_rejected(tmp_path: Path) -> None:
    """A group name with a capital letter or a space is not a valid group name."""
    message = _error(_write(tmp_path, _system(group="Mem Log")))
    assert "memlog.system.group: 'Mem Log' is not a valid group name" in message


def test_missing_value_is_named_in_the_error(tmp_path: Path) -> None:
    """A removed key is reported as missing."""
    message = _error(_write(tmp_path, lambda d: d["packages"].pop("dkms")))
    assert "packages.dkms: missing value" in message


def test_empty_value_is_reported_as_missing(tmp_path: Path) -> None:
    """`group:` with nothing after it is a missing value, not a type puzzle."""
    message = _error(_write(tmp_path, _system(group=None)))
    assert "memlog.system.group: missing value" in message


def test_ring_size_outside_the_driver_range_is_rejected(tmp_path: Path) -> None:
    """The ring size must be within the driver's 64 KiB .. 256 MiB."""
    message = _error(_write(tmp_path, _system(ring_size=1024)))
    assert "memlog.system.ring_size: 1024 is outside the driver's 65536..268435456 bytes" in message


@pytest.mark.parametrize(
    ("ring_size", "valid"),
    [
        (uapi.RING_SIZE_MIN, True),
        (uapi.RING_SIZE_MAX, True),
        (uapi.RING_SIZE_MIN - 1, False),
        (uapi.RING_SIZE_MAX + 1, False),
    ],
)
def test_ring_size_limits_are_the_uapi_limits(tmp_path: Path, ring_size: int, valid: bool) -> None:
    """memlog.uapi's RING_SIZE_MIN and RING_SIZE_MAX are accepted, one byte beyond is not."""
    path = _write(tmp_path, _system(ring_size=ring_size))
    if valid:
        assert config.load(path).memlog.system.ring_size == ring_size
    else:
        assert "memlog.system.ring_size: " in _error(path)


def test_ring_size_limits_are_taken_from_the_uapi_mirror(monkeypatch: pytest.MonkeyPatch) -> None:
    """The schema's minimum and maximum are memlog.uapi's values, read when it is loaded."""
    monkeypatch.setattr(uapi, "RING_SIZE_MIN", 4096)
    monkeypatch.setattr(uapi, "RING_SIZE_MAX", 8192)
    ring_size = config.kernel_schema()["$defs"]["ring_size"]
    assert (ring_size["minimum"], ring_size["maximum"]) == (4096, 8192)


def test_min_kernel_is_the_oldest_series_of_the_matrix() -> None:
    """memlog.min_kernel is not written in kernel.yaml: it is series.yaml's oldest series."""
    cfg = config.load()
    assert "min_kernel" not in yaml.safe_load(config.KERNEL_YAML.read_text())["memlog"]
    assert cfg.memlog.min_kernel == config.kernel_matrix()[0].series == "6.1"
    assert cfg.as_dict()["memlog"]["min_kernel"] == "6.1"


def test_min_kernel_in_kernel_yaml_is_refused_as_derived(tmp_path: Path) -> None:
    """An old kernel.yaml still naming min_kernel is told where the value comes from now."""
    message = _error(_write(tmp_path, lambda d: d["memlog"].update(min_kernel="6.1")))
    assert "memlog.min_kernel: derived now: the oldest series in" in message
    assert "series.yaml" in message


def test_old_kernel_series_key_is_refused_with_what_replaced_it(tmp_path: Path) -> None:
    """kernel.series (before the kernel build) is told the source now says the series."""
    message = _error(_write(tmp_path, lambda d: d["kernel"].update(series="7.2")))
    assert message.endswith("kernel.series: the series is now the source's own (kernel.source); "
                            "remove this key")  # fmt: skip


def test_kernel_source_is_read_as_the_debian_package_of_a_suite() -> None:
    """The shipped kernel.yaml builds sid's linux-source-7.2, defconfig plus three fragments."""
    kernel = config.load().kernel
    assert (kernel.source.debian_package, kernel.source.suite) == ("linux-source-7.2", "sid")
    assert kernel.source.tarball is None and kernel.source.tree is None
    assert (kernel.config_base, kernel.fragments) == (
        "defconfig",
        ("wintermute.config", "memlog.config", "vm.config", "lean.config", "server.config"),
    )
    assert kernel.directory == config.DESCRIPTIONS


def test_kernel_source_of_a_series_that_cannot_be_packaged_is_refused_on_load(
    tmp_path: Path,
) -> None:
    """linux-source-6.1 (no install-extmod-build) stops at load, naming the packages that work."""
    old = config.kernel_matrix()[0]
    assert not old.kernel_packages
    path = _write(tmp_path, lambda d: d["kernel"]["source"]["debian"].update(
        package=old.source_package, suite=old.suite
    ))  # fmt: skip
    message = _error(path)
    assert f"kernel.source.debian.package: {old.source_package} (Linux {old.series})" in message
    assert all(
        row.source_package in message for row in config.kernel_matrix() if row.kernel_packages
    )


def test_kernel_flavour_is_read_and_checked(tmp_path: Path) -> None:
    """kernel.flavour names a variant: lower-case letters and digits only."""
    path = _write(tmp_path, lambda d: d["kernel"].update(flavour="debug"))
    assert config.load(path).kernel.flavour == "debug"
    path = _write(tmp_path, lambda d: d["kernel"].update(flavour="De-bug"))
    assert "kernel.flavour: 'De-bug' is not a flavour" in _error(path)


def test_kernel_source_naming_two_kinds_is_rejected(tmp_path: Path) -> None:
    """A source is one of debian, tarball, tree; two at once is an error saying so."""
    path = _write(tmp_path, lambda d: d["kernel"]["source"].update(tree="/usr/src/linux"))
    assert _error(path).endswith("kernel.source: name one source only: debian, tarball or tree")


def test_kernel_tarball_sha256_must_be_64_hex_digits(tmp_path: Path) -> None:
    """A tarball's sha256 is checked for its form on load."""
    tarball = {"tarball": {"location": "linux.tar.xz", "sha256": "abc"}}
    path = _write(tmp_path, lambda d: d["kernel"].update(source=tarball))
    assert _error(path).endswith(
        "kernel.source.tarball.sha256: 'abc' is not a sha256 (64 lower-case hex digits)"
    )


def test_relative_kernel_paths_are_taken_from_kernel_yaml_s_directory(tmp_path: Path) -> None:
    """A relative tarball path and signing key are beside kernel.yaml, not the caller's cwd."""
    source = {"tarball": {"location": "src/linux.tar.xz", "sha256": "0" * 64}}
    path = _write(tmp_path, lambda d: d["kernel"].update(source=source, signing_key="keys/k.pem"))
    kernel = config.load(path).kernel
    assert kernel.source.tarball == str(tmp_path / "src" / "linux.tar.xz")
    assert kernel.signing_key == tmp_path / "keys" / "k.pem"
    assert kernel.directory == tmp_path


def test_kernel_fragment_with_a_directory_is_rejected(tmp_path: Path) -> None:
    """Fragments are file names in config/ beside kernel.yaml, never paths elsewhere."""
    path = _write(tmp_path, lambda d: d["kernel"]["config"].update(fragments=["../x.config"]))
    assert "kernel.config.fragments[0]: '../x.config' is not a plain file name" in _error(path)


def test_invalid_yaml_gives_one_line(tmp_path: Path) -> None:
    """A YAML syntax error is one line with its position."""
    path = tmp_path / "kernel.yaml"
    path.write_text("memlog: [unclosed\n")
    assert "invalid YAML at line 2" in _error(path)


def test_empty_file_gives_one_line(tmp_path: Path) -> None:
    """An empty kernel.yaml says so."""
    path = tmp_path / "kernel.yaml"
    path.write_text("# nothing\n")
    assert _error(path) == f"{path}: the file is empty"


def test_missing_file_gives_one_line(tmp_path: Path) -> None:
    """A missing kernel.yaml is one clear line."""
    assert "cannot read" in _error(tmp_path / "nope.yaml")


def test_environment_names_another_kernel_yaml(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """WINTERMUTE_KERNEL_YAML replaces the repository's kernel.yaml."""
    path = _write(tmp_path, _system(group="agents"))
    monkeypatch.setenv("WINTERMUTE_KERNEL_YAML", str(path))
    assert config.default_path() == path
    assert config.load().memlog.system.group == "agents"


# --- series.yaml: the kernel series matrix ----------------------------------------


def test_matrix_is_read_from_series_yaml_oldest_first() -> None:
    """Each row of series.yaml becomes a KernelSeries; the list is sorted by version."""
    rows = yaml.safe_load(config.SERIES_YAML.read_text())["series"]
    matrix = config.kernel_matrix()
    assert {(s.series, s.suite, s.source_package) for s in matrix} == {
        (r["series"], r["suite"], r["source_package"]) for r in rows
    }
    versions = [tuple(map(int, s.series.split("."))) for s in matrix]
    assert versions == sorted(versions)


def test_matrix_sorts_by_version_not_by_text(tmp_path: Path) -> None:
    """6.12 comes after 6.9, whatever order the file lists them in."""

    def add(data: dict[str, Any]) -> None:
        data["series"].append(
            {
                "series": "6.9",
                "suite": "x",
                "source_package": "linux-source-6.9",
                "kernel_packages": True,
            }
        )

    path = _write(tmp_path, add, config.SERIES_YAML)
    assert [s.series for s in config.load_matrix(path)] == ["6.1", "6.9", "6.12", "7.2"]


def test_series_entry_error_names_its_index_and_key(tmp_path: Path) -> None:
    """A bad suite in the second row is series[1].suite."""
    path = _write(tmp_path, lambda d: d["series"][1].update(suite="Trixie"), config.SERIES_YAML)
    message = _error(path, config.load_matrix)
    assert (
        message
        == f"""{path}: series[1].suite: 'Trixie' is not a Debian suite name like "bookworm\""""
    )


def test_unquoted_series_is_rejected_with_a_hint(tmp_path: Path) -> None:
    """series: 6.10 would be the number 6.1; the error says to quote it."""
    path = _write(tmp_path, lambda d: d["series"][0].update(series=6.1), config.SERIES_YAML)
    assert "series[0].series: 6.1 is a number, not a string; quote the series" in _error(
        path, config.load_matrix
    )


def test_series_entry_without_its_source_package_is_rejected(tmp_path: Path) -> None:
    """Each row names its series, suite and source package."""
    path = _write(tmp_path, lambda d: d["series"][2].pop("source_package"), config.SERIES_YAML)
    assert "series[2].source_package: missing value" in _error(path, config.load_matrix)


def test_empty_matrix_is_rejected(tmp_path: Path) -> None:
    """Without a series there is no oldest kernel and nothing to compile against."""
    path = _write(tmp_path, lambda d: d.update(series=[]), config.SERIES_YAML)
    assert "series: the matrix needs at least one kernel series" in _error(path, config.load_matrix)


def test_series_listed_twice_is_rejected(tmp_path: Path) -> None:
    """Each series appears once; the second appearance is named."""
    path = _write(tmp_path, lambda d: d["series"].append(dict(d["series"][0])), config.SERIES_YAML)
    assert "series[3].series: '6.1' is listed twice" in _error(path, config.load_matrix)


# --- the schema files themselves ----------------------------------------------------


def _subschemas(schema: object) -> Iterator[dict[str, Any]]:
    """Every mapping in a schema, but not the x-messages and x-removed texts."""
    if isinstance(schema, dict):
        yield schema
        for key, value in schema.items():
            if not key.startswith("x-"):
                yield from _subschemas(value)
    elif isinstance(schema, list):
        for value in schema:
            yield from _subschemas(value)


@pytest.mark.parametrize("path", [config.KERNEL_SCHEMA, config.SERIES_SCHEMA], ids=lambda p: p.name)
def test_schema_files_are_draft_2020_12_schemas(path: Path) -> None:
    """Both schemas are valid JSON Schema 2020-12, as read and as filled in at load."""
    schema = json.loads(path.read_text())
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    Draft202012Validator.check_schema(schema)
    Draft202012Validator.check_schema(config.kernel_schema())


@pytest.mark.parametrize("path", [config.KERNEL_SCHEMA, config.SERIES_SCHEMA], ids=lambda p: p.name)
def test_every_pattern_has_a_message(path: Path) -> None:
    """A bare regular expression is no message for a user: each pattern says what it wants."""
    for sub in _subschemas(json.loads(path.read_text())):
        if isinstance(sub.get("pattern"), str):
            assert "pattern" in sub.get("x-messages", {}), sub


def test_both_schemas_share_their_definitions() -> None:
    """Package and suite names mean the same in kernel.yaml and series.yaml."""
    kernel = json.loads(config.KERNEL_SCHEMA.read_text())["$defs"]
    series = json.loads(config.SERIES_SCHEMA.read_text())["$defs"]
    assert set(series) <= set(kernel)
    for name, definition in series.items():
        assert kernel[name] == definition, name


def test_debian_config_base_is_accepted_with_a_debian_source(tmp_path: Path) -> None:
    """config.base: debian with kernel.source.debian: Debian's kernel of that version."""
    path = _write(tmp_path, lambda d: d["kernel"]["config"].update(base="debian"))
    assert config.load(path).kernel.config_base == "debian"


def test_debian_config_base_without_a_debian_source_is_refused_on_load(tmp_path: Path) -> None:
    """A tarball has no Debian kernel of its version: refused at once, saying what to use."""

    def mutate(d: dict[str, Any]) -> None:
        d["kernel"]["config"]["base"] = "debian"
        d["kernel"]["source"] = {"tarball": {"location": "linux.tar.xz", "sha256": "0" * 64}}

    message = _error(_write(tmp_path, mutate))
    assert "kernel.config.base: debian" in message
    assert "needs kernel.source.debian" in message


def test_signing_key_may_be_a_pkcs11_uri(tmp_path: Path) -> None:
    """A pkcs11: URI names a key in a token: kept as it is, not taken for a file."""
    uri = "pkcs11:token=build;object=modules?pin-source=file:/etc/wintermute/pin"
    kernel = config.load(_write(tmp_path, lambda d: d["kernel"].update(signing_key=uri))).kernel
    assert (kernel.signing_key_uri, kernel.signing_key) == (uri, None)


def test_pkcs11_uri_carrying_its_pin_is_refused(tmp_path: Path) -> None:
    """pin-value would put the PIN into .config and the packages: refused, pin-source offered."""
    uri = "pkcs11:token=build;object=modules?pin-value=1234"
    message = _error(_write(tmp_path, lambda d: d["kernel"].update(signing_key=uri)))
    assert "kernel.signing_key" in message
    assert "pin-source=file:" in message


def test_only_a_kernel_with_latency_config_has_the_preempt_off_tracer(tmp_path: Path) -> None:
    """The test suite's debug kernel is no latency kernel; one listing latency.config is."""
    suite_kernel = config.load(config.REPO / "tests" / "built_kernel" / "kernel.yaml").kernel
    assert suite_kernel.debug and not suite_kernel.latency
    path = _write(
        tmp_path,
        lambda d: d["kernel"]["config"]["fragments"].append("latency.config"),
        config.REPO / "tests" / "built_kernel" / "kernel.yaml",
    )
    assert config.load(path).kernel.latency
