"""The kernel configuration: what the fragments ask for must be what .config ends up with."""

from __future__ import annotations

from pathlib import Path

import pytest

from wintermute.config import DESCRIPTIONS
from wintermute.errors import UserError
from wintermute.kernel import kconfig


def test_fragment_lines_are_read_as_options_and_values() -> None:
    """=y, =m, strings, numbers and "is not set" are understood; comments are not options."""
    text = (
        '# a comment\nCONFIG_A=y\nCONFIG_B=m\nCONFIG_C="x y"\nCONFIG_D=42\n# CONFIG_E is not set\n'
    )
    assert kconfig.parse(text) == {
        "CONFIG_A": "y", "CONFIG_B": "m", "CONFIG_C": '"x y"', "CONFIG_D": "42", "CONFIG_E": "n"
    }  # fmt: skip


def test_later_fragment_wins_as_in_merge_config(tmp_path: Path) -> None:
    """Two fragments setting one option: the later one is what is requested."""
    (tmp_path / "a.config").write_text("CONFIG_MEMLOG=y\n")
    (tmp_path / "b.config").write_text("CONFIG_MEMLOG=m\n")
    [request] = kconfig.requests([tmp_path / "a.config", tmp_path / "b.config"])
    assert (request.value, request.fragment) == ("m", "b.config")


def test_option_dropped_by_an_unmet_dependency_is_named_with_its_fragment() -> None:
    """CONFIG_MEMLOG=m that became "is not set" is reported, naming the option and fragment."""
    wanted = [kconfig.Request("CONFIG_MEMLOG", "m", "memlog.config")]
    assert kconfig.unmet(wanted, {"CONFIG_MEMLOG": "n"}) == [
        "CONFIG_MEMLOG=m (from memlog.config) became not set"
    ]
    assert kconfig.unmet(wanted, {}) == [
        "CONFIG_MEMLOG=m (from memlog.config) became absent (unknown, or its dependencies unmet)"
    ]


def test_values_that_stuck_are_not_reported() -> None:
    """Requests the final config honours, an absent option honouring "not set" and ""."""
    wanted = [
        kconfig.Request("CONFIG_A", "y", "f"),
        kconfig.Request("CONFIG_B", "n", "f"),
        kconfig.Request("CONFIG_C", '""', "f"),
    ]
    assert kconfig.unmet(wanted, {"CONFIG_A": "y"}) == []


def test_unknown_config_base_is_refused(tmp_path: Path) -> None:
    """A base that is no kbuild target, debian, running nor a file beside kernel.yaml: one line."""
    with pytest.raises(
        UserError,
        match=r"^unknown config base 'smallconfig' .*defconfig, tinyconfig, debian or running",
    ):
        kconfig.check_base("smallconfig", tmp_path)


def test_config_base_outside_kernel_yaml_s_directory_is_refused(tmp_path: Path) -> None:
    """A base path may not climb out of kernel.yaml's directory."""
    (tmp_path / "outside.config").write_text("CONFIG_A=y\n")
    (tmp_path / "desc").mkdir()
    with pytest.raises(UserError, match=r"unknown config base '\.\./outside\.config'"):
        kconfig.check_base("../outside.config", tmp_path / "desc")


def test_debian_config_base_is_the_fetched_file(tmp_path: Path) -> None:
    """Base debian writes the configuration the pipeline fetched, unchanged."""
    fetched = tmp_path / "config"
    fetched.write_text("CONFIG_DEBIAN=y\n")
    scratch = tmp_path / "scratch"
    kconfig.write_base(tmp_path, "debian", tmp_path, scratch, {}, fetched)
    assert scratch.read_text() == "CONFIG_DEBIAN=y\n"
    assert kconfig.check_base("debian", tmp_path) is None


def test_config_base_file_beside_kernel_yaml_is_accepted(tmp_path: Path) -> None:
    (tmp_path / "base.config").write_text("CONFIG_A=y\n")
    assert kconfig.check_base("base.config", tmp_path) == tmp_path / "base.config"


def test_shipped_fragments_exist_and_ask_for_memlog_and_signing() -> None:
    """The fragments kernel.yaml names are shipped; memlog is a module, modules are signed."""
    paths = kconfig.fragment_paths(
        ["wintermute.config", "memlog.config", "vm.config", "debug.config"], DESCRIPTIONS
    )
    wanted = {r.option: r.value for r in kconfig.requests(paths)}
    assert wanted["CONFIG_MEMLOG"] == "m"
    assert wanted["CONFIG_MODULE_SIG_ALL"] == "y" and wanted["CONFIG_MODULE_SIG_SHA512"] == "y"
    assert wanted["CONFIG_LOCALVERSION_AUTO"] == "n"
    assert wanted["CONFIG_KASAN"] == "y" and wanted["CONFIG_PROVE_LOCKING"] == "y"


def test_missing_fragment_is_named(tmp_path: Path) -> None:
    (tmp_path / "config").mkdir()
    with pytest.raises(UserError, match=r"fragments names nope.config, not in .*config/"):
        kconfig.fragment_paths(["nope.config"], tmp_path)


@pytest.fixture
def configured(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """An extracted tree (its .ready), a description with one fragment, and a resolve
    that counts its calls."""
    import dataclasses

    from wintermute import config

    root = tmp_path / "entry" / "linux"
    (root / "drivers" / "char" / "memlog").mkdir(parents=True)
    (root.parent / ".ready").write_text("linux-source-7.2 7.2.13-1 (sid)\n")
    (root / "drivers" / "char" / "Kconfig").write_text('source "drivers/char/memlog/Kconfig"\n')
    (root / "drivers" / "char" / "memlog" / "Kconfig").write_text("config MEMLOG\n")
    desc = tmp_path / "desc"
    (desc / "config").mkdir(parents=True)
    (desc / "config" / "a.config").write_text("CONFIG_A=y\n")
    kernel = dataclasses.replace(
        config.load().kernel, directory=desc, fragments=("a.config",), config_base="tinyconfig",
        signing_key=None, signing_key_uri=None,
    )  # fmt: skip
    calls = []

    def resolve(tree: Path, kernel: object, env: object, fetched: object = None) -> str:
        calls.append(1)
        return "CONFIG_A=y\n"

    monkeypatch.setattr(kconfig, "resolve", resolve)
    return root, kernel, desc, calls


def test_unchanged_inputs_keep_the_config_without_resolving_it_again(configured) -> None:
    """The edit loop: same base, fragments, Kconfig and compiler: no merge, no olddefconfig."""
    root, kernel, _, calls = configured
    assert kconfig.configure(root, kernel, {}, reuse=True) is True
    assert kconfig.configure(root, kernel, {}, reuse=True) is False
    assert len(calls) == 1


@pytest.mark.parametrize("change", ["fragment", "memlog Kconfig", ".config", "tree"])
def test_a_changed_input_or_an_edited_config_is_resolved_again(configured, change: str) -> None:
    """Any input of the configuration changed, or .config edited by hand: made again."""
    root, kernel, desc, calls = configured
    kconfig.configure(root, kernel, {}, reuse=True)
    if change == "fragment":
        (desc / "config" / "a.config").write_text("CONFIG_A=m\n")
    elif change == "memlog Kconfig":
        (root / "drivers" / "char" / "memlog" / "Kconfig").write_text("config MEMLOG\n\tbool\n")
    elif change == ".config":
        (root / ".config").write_text("CONFIG_A=n\n")
    else:
        (root.parent / ".ready").write_text("linux-source-7.2 7.2.13-2 (sid)\n")
    kconfig.configure(root, kernel, {}, reuse=True)
    assert len(calls) == 2
    assert (root / ".config").read_text() == "CONFIG_A=y\n"


def test_without_reuse_the_config_is_always_resolved(configured) -> None:
    """A local kernel tree (its files may change anywhere): resolved every build."""
    root, kernel, _, calls = configured
    kconfig.configure(root, kernel, {})
    kconfig.configure(root, kernel, {})
    assert len(calls) == 2
