"""Facts about a machine that apt-get installed the built linux-wintermute kernel and booted it.

The guest's disk boots through GRUB (installed on it first, as Debian's
installer leaves a machine): the kernel packages' hooks and update-grub decide
what boots, and every boot below is GRUB's default entry.

memlog-tools is installed with the kernel, as a user does, so the first boot
of the built kernel is the one whose facts are checked first: those every
memlog installation shares (``tests/system/installed_facts.py``, the same code
as on the DKMS path, imported first so that pytest runs them first).  Then the
driver's functional suite runs against the in-tree module (it sets the device
and the sysctls as it needs them), and the facts of the kernel are checked.

Last, memlog-dkms is installed on top: DKMS must skip the kernel
(``BUILD_EXCLUSIVE_CONFIG="!CONFIG_MEMLOG"``) and say so (Debian 12's DKMS
3.0.10 says it while installing; its ``dkms status`` lists memlog as added
only, with no line for the kernel), and the headers package must let an
external module build against ``/lib/modules/$(uname -r)/build``.

Then the kernel's own lifecycle, as Debian's kernels live it: a second build
with one input changed (the driver's version; an incremental build; its
modules signed by a key in a PKCS#11 token) is published, ``apt-get
upgrade`` installs it beside the running one through the metapackages, the
running kernel is kept from autoremoval; a reboot boots the new build through
GRUB, the first still on the menu, the token's signatures verified; purging
the first build leaves nothing of it, and the machine still boots; removing
the running kernel asks first (linux-base's ``linux-check-removal``), its
default answer aborting.

One module, so that the guest (module-scoped) is shut down when it ends and
does not idle under the tiers that run after it.
"""

from __future__ import annotations

import concurrent.futures
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.system.installed_facts import *  # noqa: F403  (collected here too)


def test_functional_suite_passes_against_the_in_tree_module(functional_results: Any) -> None:
    """tests/functional, run in the guest on the built kernel, passes: every test, none skipped."""
    assert functional_results, "no functional test ran"
    failed = {
        nodeid: r.longrepr for nodeid, r in functional_results.items() if r.outcome != "passed"
    }
    assert not failed, "\n\n".join(f"{k}:\n{v}" for k, v in failed.items())


@pytest.fixture(scope="module")
def selftest_output(guest: Any, kernel_build: Any, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The kernel selftest the patch series put in the built tree
    (tools/testing/selftests/memlog), compiled on the host as its Makefile would (its
    tree's kselftest harness, the tree's <linux/memlog.h>), run in the guest as root
    with the in-tree module loaded.  Its TAP output."""
    from wintermute.upstream.check import SELFTEST_CFLAGS

    tree = kernel_build.tree
    selftests = tree / "tools" / "testing" / "selftests"
    include = tmp_path_factory.mktemp("selftest-include")
    (include / "linux").mkdir()
    (include / "linux" / "memlog.h").write_bytes(
        (tree / "include" / "uapi" / "linux" / "memlog.h").read_bytes()
    )
    binary = tmp_path_factory.mktemp("selftest") / "memlog_test"
    subprocess.run(["gcc", *SELFTEST_CFLAGS, "-I", include, "-o", binary,
                    selftests / "memlog" / "memlog_test.c"], check=True)  # fmt: skip
    guest.vm.put(binary, "/opt/wintermute/memlog_test")
    proc = guest.vm.run(
        "chmod 755 /opt/wintermute/memlog_test && modprobe memlog && /opt/wintermute/memlog_test",
        check=False, log=guest.log,
    )  # fmt: skip
    return f"exit {proc.returncode}\n{proc.stdout}"


def test_kernel_selftest_of_the_patch_series_passes_against_the_in_tree_module(
    selftest_output: str,
) -> None:
    """tools/testing/selftests/memlog: exit 0, every test of its TAP plan ok, none skipped."""
    lines = selftest_output.splitlines()
    plan = next(line for line in lines if line.startswith("1.."))
    count = int(plan[3:])
    oks = [line for line in lines if line.startswith("ok ")]
    assert lines[0] == "exit 0", selftest_output
    assert count >= 10 and len(oks) == count, selftest_output
    assert not any(line.startswith("not ok") or "# SKIP" in line for line in lines), selftest_output


def test_guest_runs_the_built_release(host: Any, guest: Any) -> None:
    """uname -r is the release build-kernel made."""
    assert host.check_output("uname -r") == guest.release


def test_grub_booted_the_built_kernel_as_its_default_entry(host: Any, guest: Any) -> None:
    """GRUB (not QEMU's -kernel) loaded /boot/vmlinuz-<release>: the first entry of its menu."""
    cmdline = host.file("/proc/cmdline").content_string.split()
    assert f"BOOT_IMAGE=/boot/vmlinuz-{guest.release}" in cmdline, cmdline
    assert _grub_kernels(host)[0] == guest.release


def _grub_kernels(host: Any) -> list[str]:
    """The releases grub.cfg's entries boot, in menu order (recovery entries left out)."""
    cfg = host.file("/boot/grub/grub.cfg").content_string
    releases = []
    for line in cfg.splitlines():
        words = line.split()
        if words[:1] == ["linux"] and "single" not in words:
            release = words[1].removeprefix("/boot/vmlinuz-")
            if release not in releases:
                releases.append(release)
    return releases


def test_kernel_is_not_tainted(host: Any) -> None:
    """/proc/sys/kernel/tainted is 0: no unsigned, out-of-tree or forced module, no warning."""
    assert host.file("/proc/sys/kernel/tainted").content_string.strip() == "0"


def test_kernel_log_has_no_critical_alert_or_emergency_message(host: Any) -> None:
    assert host.check_output("dmesg --level=crit,alert,emerg") == ""


def test_memlog_is_the_in_tree_module_from_the_kernel_package(host: Any, guest: Any) -> None:
    """modinfo resolves memlog under kernel/drivers/char/memlog/, a file of linux-image."""
    path = host.check_output("modinfo -n memlog")
    assert path == f"/lib/modules/{guest.release}/kernel/drivers/char/memlog/memlog.ko"
    owner = host.check_output(f"dpkg -S {path}").split(":")[0]
    assert owner == f"linux-image-{guest.release}"


def test_memlog_module_is_signed_with_sha512(host: Any) -> None:
    """modinfo shows the module's signer and its sha512 signature."""
    assert host.check_output("modinfo -F signer memlog")
    assert host.check_output("modinfo -F sig_hashalgo memlog") == "sha512"


def test_initramfs_was_made_by_the_kernel_package_hooks(host: Any, guest: Any) -> None:
    """/boot/initrd.img-<release> exists, made by initramfs-tools' hook (no package owns it)."""
    initrd = f"/boot/initrd.img-{guest.release}"
    assert host.file(initrd).is_file
    assert host.run(f"dpkg -S {initrd}").rc != 0


# --- memlog-dkms on top ------------------------------------------------------

HELLO_C = r"""
#include <linux/module.h>
static int __init hello_init(void) { return 0; }
static void __exit hello_exit(void) { }
module_init(hello_init);
module_exit(hello_exit);
MODULE_LICENSE("GPL");
"""


@dataclass(frozen=True)
class DkmsInstall:
    apt_output: str  # what apt-get install memlog-dkms printed (DKMS's messages among it)
    status: str  # dkms status -m memlog -k <built release>, afterwards


@pytest.fixture(scope="module")
def dkms_installed(host: Any, guest: Any, cfg: Any) -> DkmsInstall:
    """apt-get install memlog-dkms on the built kernel."""
    output = guest.apt(f"install {cfg.packages.dkms} 2>&1")  # DKMS's errors go to stderr
    return DkmsInstall(output, host.check_output(f"dkms status -m memlog -k {guest.release}"))


def test_memlog_dkms_installs_on_the_built_kernel(
    dkms_installed: DkmsInstall, host: Any, cfg: Any
) -> None:
    assert host.package(cfg.packages.dkms).is_installed


def test_dkms_says_build_exclusive_skips_the_built_kernel(
    dkms_installed: DkmsInstall, guest: Any
) -> None:
    """Installing memlog-dkms, DKMS says its BUILD_EXCLUSIVE directive excludes this kernel."""
    out = dkms_installed.apt_output
    assert f"memlog/{guest.cfg.memlog.version}/{guest.release}/" in out, out[-2000:]
    assert "includes a BUILD_EXCLUSIVE directive which does not match this kernel" in out


def test_dkms_status_shows_memlog_added_but_not_built_for_the_built_kernel(
    dkms_installed: DkmsInstall, guest: Any
) -> None:
    """dkms status (Debian 12's DKMS 3.0.10): only "added", no built or installed line."""
    status = dkms_installed.status
    assert status == f"memlog/{guest.cfg.memlog.version}: added", status


def test_no_dkms_copy_of_memlog_shadows_the_in_tree_one(
    dkms_installed: DkmsInstall, host: Any
) -> None:
    """No updates/dkms/memlog.ko; modinfo still finds the kernel package's module."""
    release = host.check_output("uname -r")
    assert not host.file(f"/lib/modules/{release}/updates/dkms/memlog.ko").exists
    assert "/kernel/drivers/char/memlog/" in host.check_output("modinfo -n memlog")


def test_external_module_builds_against_the_headers_package(host: Any) -> None:
    """A module builds out of tree against /lib/modules/$(uname -r)/build."""
    host.check_output("rm -rf /tmp/hello && mkdir /tmp/hello")
    host.check_output(f"cat > /tmp/hello/hello.c <<'EOF'\n{HELLO_C}\nEOF")
    host.check_output("echo 'obj-m := hello.o' > /tmp/hello/Kbuild")
    result = host.run("make -C /lib/modules/$(uname -r)/build M=/tmp/hello modules")
    assert result.rc == 0, result.stdout + result.stderr
    assert host.file("/tmp/hello/hello.ko").is_file


# --- stress and fuzz ----------------------------------------------------------
# The test suite's kernel (tests/built_kernel/kernel.yaml) is the debug kernel
# (debug.config: KASAN, lockdep, DEBUG_ATOMIC_SLEEP, kmemleak); the shipped
# kernel.yaml (vm-verify --kernel built) runs the same programs without them.

STRESS_SECONDS = 30
FUZZ_SECONDS = 30
DEBUG_OPTIONS = (
    "CONFIG_KASAN=y",
    "CONFIG_PROVE_LOCKING=y",
    "CONFIG_DEBUG_ATOMIC_SLEEP=y",
    "CONFIG_DEBUG_KMEMLEAK=y",
)


@pytest.fixture(scope="module")
def seed() -> int:
    """WINTERMUTE_STRESS_SEED, or a new one; printed so that a failure can be replayed."""
    import os
    import random

    from wintermute.run import say

    value = int(os.environ.get("WINTERMUTE_STRESS_SEED") or random.randrange(1, 2**31))
    say(f"stress and fuzz seed: {value} (WINTERMUTE_STRESS_SEED={value} replays it)")
    return value


@pytest.fixture(scope="module")
def stress_programs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from ci import stress

    return stress.build_programs(tmp_path_factory.mktemp("stress"))


@pytest.fixture(scope="module")
def leaks_forgotten(host: Any, guest: Any) -> bool:
    """kmemleak's suspicions from boot cleared, so that a later scan shows only new leaks."""
    from ci import stress

    return stress.kmemleak_clear(guest.vm)


def test_guest_kernel_has_the_debug_options_its_description_asks_for(
    host: Any, guest: Any, cfg: Any
) -> None:
    """With debug.config among the fragments: KASAN, lockdep, atomic-sleep checks, kmemleak."""
    config = host.file(f"/boot/config-{guest.release}").content_string.splitlines()
    wanted = cfg.kernel.debug
    assert {option: option in config for option in DEBUG_OPTIONS} == dict.fromkeys(
        DEBUG_OPTIONS, wanted
    )


def test_stress_keeps_every_record_whole_ordered_and_in_its_own_uids_ring(
    guest: Any, cfg: Any, stress_programs: dict[str, Any], seed: int, leaks_forgotten: bool
) -> None:
    """Writers of several uids, 16 more each the root of a user namespace of one user's,
    over a max_bytes they use up, dumps, all-uid and poll readers, a writer stalled by
    userfaultfd, resizes and CLEAR at once: every record byte-exact, seq increasing,
    STATS and GET_LOST adding up, the quiet uid losing nothing and never refused, the
    stall delaying no one, the kernel log clean. On a kernel with latency.config the
    preempt-off tracer watches the run: its longest section is reported
    (out/preempt-off.json; README: "Latency run")."""
    from ci import preempt_trace, stress
    from wintermute.run import say

    tracing = preempt_trace.start(guest.vm)
    assert tracing == cfg.kernel.latency, "the preempt-off tracer is latency.config's"
    try:
        summary = stress.run_stress(
            guest.vm, stress_programs["memlog_stress"], STRESS_SECONDS, seed
        )
    finally:
        trace = preempt_trace.stop(guest.vm) if tracing else ""
    if tracing:
        section = preempt_trace.write_report(trace, f"memlog_stress --seed {seed}")
        say(f"longest preempt-off section during the stress run: {section.summary()}")
    assert summary["ok"] is True
    flood = [u for u in summary["uids"] if u["role"] == "namespace"]
    assert len(flood) == stress.NAMESPACE_UIDS and all(u["writes_ok"] > 0 for u in flood)


def test_fuzz_gets_only_documented_results_and_a_clean_kernel_log(
    guest: Any, stress_programs: dict[str, Any], seed: int, leaks_forgotten: bool
) -> None:
    """A seeded random sequence of every call, from root, a member, a non-member and a
    user namespace: every result documented, no WARN, BUG, KASAN or lockdep report."""
    from ci import stress

    summary = stress.run_fuzz(guest.vm, stress_programs["memlog_fuzz"], FUZZ_SECONDS, seed)
    assert summary["ok"] is True


def test_memlog_unloads_after_stress_and_fuzz_and_kmemleak_finds_nothing_leaked(
    host: Any, guest: Any, cfg: Any, leaks_forgotten: bool
) -> None:
    """rmmod memlog succeeds; kmemleak (on the debug kernel) reports no unreferenced object."""
    from ci import stress

    result = host.run("rmmod memlog")
    try:
        assert result.rc == 0, result.stderr
        assert leaks_forgotten == (cfg.kernel.debug)
        report = stress.kmemleak_scan(guest.vm)
        assert stress.kernel_log_problems(report) == [], report[-3000:]
    finally:
        host.run("modprobe memlog")


# --- the kernel's lifecycle: a second build beside it, purge, removal refused ---

NEXT_DRIVER_VERSION = "99.0.0"


def _token_builds(description: Path, desc: Path, repo: Path) -> tuple[Any, Any]:
    """Two more builds, signed with a key in a PKCS#11 token (SoftHSM, ``ci/softhsm.py``)
    named by its URI in kernel.yaml, the path a build server with an HSM takes; in a
    scratch copy of the repository, whose driver the second of them edits:

    - the same kernel.yaml with the driver's version changed (a new release);
    - then ``memlog_main.c`` edited, nothing else (the key persistent: the same
      release, a newer version, the headers reused).

    Run in a background thread, at nice 19: nothing here may touch os.environ.
    """
    from ci import softhsm
    from ci.built_kernel import build_in_copy
    from wintermute.kernel.bench import scratch_repo
    from wintermute.paths import out_dir

    copy = scratch_repo(repo)
    data = yaml.safe_load(description.read_text())
    data["memlog"]["version"] = NEXT_DRIVER_VERSION
    for sub in ("config", "patches"):
        (desc / sub).symlink_to((description.parent / sub).resolve())
    with softhsm.token(set_environment=False) as token:
        data["kernel"]["signing_key"] = token.uri
        (desc / "kernel.yaml").write_text(yaml.safe_dump(data))
        second = build_in_copy(copy, desc / "kernel.yaml", out_dir() / "kernel-second",
                               "the second build: the driver's version changed",
                               env=token.env, background=True)  # fmt: skip
        main_c = copy / "drivers" / "char" / "memlog" / "memlog_main.c"
        main_c.write_text(main_c.read_text() + EDIT_MARK)
        third = build_in_copy(copy, desc / "kernel.yaml", out_dir() / "kernel-third",
                              "the third build: memlog_main.c edited",
                              env=token.env, background=True)  # fmt: skip
    return second, third


@pytest.fixture(scope="module", autouse=True)
def token_builds_started(
    pytestconfig: pytest.Config,
    kernel_build: Any,
    description: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[concurrent.futures.Future[tuple[Any, Any]]]:
    """The second and third builds (:func:`_token_builds`), started in the background
    before the guest boots: the guest keeps about one core busy, the builds take the
    rest at nice 19, and the lifecycle tests find them done."""
    from ci.pytest_support import live_output
    from wintermute.paths import log_dir
    from wintermute.run import say

    desc = tmp_path_factory.mktemp("second-build")
    repo = tmp_path_factory.mktemp("repository") / "repo"
    with live_output(pytestconfig):
        say(f"the second and third builds start in the background "
            f"(log: {log_dir() / 'kernel-build-in-copy.log'})")  # fmt: skip
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="token-builds") as pool:
        future = pool.submit(_token_builds, description, desc, repo)
        yield future
        # a failing test before the lifecycle ones: the builds still end before the
        # module does (the executor waits), and their error is the lifecycle tests'


@pytest.fixture(scope="module")
def token_builds(
    pytestconfig: pytest.Config, token_builds_started: concurrent.futures.Future[tuple[Any, Any]]
) -> tuple[Any, Any]:
    """The second and third builds, waited for if they are not done yet."""
    from ci.pytest_support import live_output
    from wintermute.run import say

    if not token_builds_started.done():
        with live_output(pytestconfig):
            say("waiting for the second and third builds (started in the background)")
    return token_builds_started.result()


# Code, not a comment: modpost's srcversion ignores comments
EDIT_MARK = '\nMODULE_INFO(wintermute_edit, "a driver-only rebuild");\n'


@pytest.fixture(scope="module")
def second_build(token_builds: tuple[Any, Any]) -> Any:
    return token_builds[0]


@pytest.fixture(scope="module")
def driver_edit_build(token_builds: tuple[Any, Any]) -> Any:
    return token_builds[1]


@pytest.fixture(scope="module")
def upgraded(host: Any, guest: Any, kernel_build: Any, second_build: Any) -> str:
    """Both builds published; the user's upgrade (apt upgrade installs new dependencies).

    kmemleak is switched off first, now and for the later boots: its scan is
    done, and it slows every fork of the debug kernel by about 40%.
    """
    guest.leak_checks_done()
    debs = [p for p in kernel_build.packages["debian"] + second_build.packages["debian"]
            if p.suffix == ".deb"]  # fmt: skip
    guest.publish(debs)
    with guest.timings.step("apt upgrade to a second build"):
        return guest.apt("upgrade --with-new-pkgs 2>&1")


def test_second_build_has_a_newer_version_and_a_release_of_its_own(
    kernel_build: Any, second_build: Any
) -> None:
    """One changed input: a new release (module directory) and a version that sorts above."""
    import subprocess

    first, second = kernel_build.names, second_build.names
    assert second.release != first.release
    newer = ["dpkg", "--compare-versions", second.deb_version, "gt", first.deb_version]
    assert subprocess.run(newer).returncode == 0, (first.deb_version, second.deb_version)


def test_upgrade_installs_the_second_build_beside_the_running_one(
    upgraded: str, host: Any, guest: Any, second_build: Any
) -> None:
    """apt upgrade moves the metapackages to the new build and keeps the running kernel."""
    new = second_build.names
    assert host.package(new.image).is_installed, upgraded[-2000:]
    assert host.package(f"linux-image-{guest.release}").is_installed
    assert host.package(new.image_meta).version == new.deb_version
    for path in (f"/boot/vmlinuz-{new.release}", f"/boot/initrd.img-{new.release}"):
        assert host.file(path).is_file, path


def test_upgrade_points_the_boot_links_at_the_newest_kernel(
    upgraded: str, host: Any, second_build: Any
) -> None:
    """linux-base's linux-update-symlinks: /vmlinuz and /initrd.img name the new build."""
    new = second_build.names.release
    assert host.file("/vmlinuz").linked_to == f"/boot/vmlinuz-{new}"
    assert host.file("/initrd.img").linked_to == f"/boot/initrd.img-{new}"


def test_autoremove_never_takes_the_running_kernel(upgraded: str, host: Any, guest: Any) -> None:
    """The old build is marked automatic (autoremove may take it once it is old enough), yet
    autoremove leaves it now: apt's kernel protection keeps the running kernel (and, as
    for Debian's kernels, the two newest, which it also is)."""
    running = f"linux-image-{guest.release}"
    assert running in host.check_output("apt-mark showauto").split()
    simulated = host.check_output("apt-get -s autoremove")
    assert f"Remv {running} " not in simulated, simulated


@pytest.fixture(scope="module")
def rebooted_after_upgrade(upgraded: str, guest: Any) -> str:
    """The user reboots after the upgrade; GRUB boots its default entry. uname -r."""
    with guest.timings.step("reboot after the upgrade"):
        guest.reboot()
    return str(guest.vm.run("uname -r", log=guest.log).stdout.strip())


def test_reboot_after_the_upgrade_boots_the_second_build_through_grub(
    rebooted_after_upgrade: str, host: Any, second_build: Any
) -> None:
    """update-grub made the newest build GRUB's default: it is what runs now."""
    new = second_build.names.release
    assert rebooted_after_upgrade == new
    assert f"BOOT_IMAGE=/boot/vmlinuz-{new}" in host.file("/proc/cmdline").content_string


def test_upgraded_kernel_carries_the_new_driver_version(
    rebooted_after_upgrade: str, host: Any
) -> None:
    """modinfo of the running kernel's memlog shows the changed version."""
    assert host.check_output("modinfo -F version memlog") == NEXT_DRIVER_VERSION


def test_upgraded_kernel_trusts_its_modules_signed_by_the_pkcs11_token_key(
    rebooted_after_upgrade: str, host: Any
) -> None:
    """The second build's modules carry the token key's signature, and its kernel (whose
    built-in certificate came out of the token) verifies them: memlog loaded at boot,
    nothing tainted (an unverifiable signature would taint it with E)."""
    from ci import softhsm

    assert host.check_output("modinfo -F signer memlog") == softhsm.SUBJECT
    assert host.file("/sys/module/memlog").exists
    assert host.file("/proc/sys/kernel/tainted").content_string.strip() == "0"


def test_grub_still_offers_the_first_build_after_the_upgrade(
    rebooted_after_upgrade: str, host: Any, guest: Any, second_build: Any
) -> None:
    """Both builds are on GRUB's menu, the newest first."""
    kernels = _grub_kernels(host)
    assert kernels[0] == second_build.names.release, kernels
    assert guest.release in kernels, kernels


def _deb_version(path: Path) -> str:
    import subprocess

    return subprocess.run(["dpkg-deb", "-f", path, "Version"], capture_output=True, text=True,
                          check=True).stdout.strip()  # fmt: skip


def test_driver_only_rebuild_keeps_the_release_and_reuses_the_headers(
    second_build: Any, driver_edit_build: Any
) -> None:
    """memlog_main.c edited, the key persistent: the same release (module directory), a
    version that sorts above, and the second build's headers packages, unchanged."""
    import subprocess

    second, third = second_build.names, driver_edit_build.names
    assert third.release == second.release
    newer = ["dpkg", "--compare-versions", third.deb_version, "gt", second.deb_version]
    assert subprocess.run(newer).returncode == 0, (second.deb_version, third.deb_version)
    debs = {p.name.split("_")[0]: p for p in driver_edit_build.packages["debian"]
            if p.suffix == ".deb"}  # fmt: skip
    assert set(debs) == set(third.debian_packages)
    assert _deb_version(debs[third.image]) == third.deb_version
    assert _deb_version(debs[third.image_meta]) == third.deb_version
    before = {p.name: p for p in second_build.packages["debian"]}
    for name in (third.headers, third.headers_meta):
        assert debs[name].name in before, debs[name].name
        assert debs[name].read_bytes() == before[debs[name].name].read_bytes()
    changes = [p for p in driver_edit_build.packages["debian"] if p.suffix == ".changes"]
    assert third.headers not in changes[0].read_text()  # built (and linted): the image's


@pytest.fixture(scope="module")
def upgraded_in_place(
    rebooted_after_upgrade: str,
    host: Any,
    guest: Any,
    kernel_build: Any,
    second_build: Any,
    driver_edit_build: Any,
) -> dict[str, str]:
    """The driver-only rebuild published; apt upgrade replaces the running kernel's image
    package in place; then memlog is unloaded and loaded again, without a reboot.
    Returns memlog's srcversion before and after, and what apt printed."""
    before = host.file("/sys/module/memlog/srcversion").content_string.strip()
    debs = [p for build in (kernel_build, second_build, driver_edit_build)
            for p in build.packages["debian"] if p.suffix == ".deb"]  # fmt: skip
    guest.publish(debs)
    with guest.timings.step("apt upgrade in place: a driver-only rebuild"):
        printed = guest.apt("upgrade --with-new-pkgs 2>&1")
    reload = host.run("modprobe -r memlog && modprobe memlog")
    after = host.file("/sys/module/memlog/srcversion").content_string.strip()
    return {"before": before, "after": after, "apt": printed,
            "reload": f"{reload.rc} {reload.stderr}"}  # fmt: skip


def test_driver_only_rebuild_upgrades_the_running_kernel_s_package_in_place(
    upgraded_in_place: dict[str, str], host: Any, driver_edit_build: Any
) -> None:
    """apt upgrade takes the newer version of the same linux-image-<release>: the running
    kernel's package, its module directory the same; the headers stay as they were."""
    third = driver_edit_build.names
    assert host.check_output("uname -r") == third.release
    assert host.package(third.image).version == third.deb_version, upgraded_in_place["apt"][-2000:]
    assert host.package(third.image_meta).version == third.deb_version
    assert host.package(third.headers).version != third.deb_version  # the second build's


def test_driver_only_rebuild_s_module_loads_into_the_running_kernel(
    upgraded_in_place: dict[str, str], host: Any
) -> None:
    """memlog unloaded and loaded again: the new module (another srcversion, the edit's
    modinfo) runs, its signature (the same token key) verified by the running kernel:
    nothing tainted."""
    from ci import softhsm

    assert upgraded_in_place["reload"].startswith("0 "), upgraded_in_place["reload"]
    assert upgraded_in_place["after"] != upgraded_in_place["before"]
    assert upgraded_in_place["after"] == host.check_output("modinfo -F srcversion memlog")
    assert host.check_output("modinfo -F wintermute_edit memlog") == "a driver-only rebuild"
    assert host.check_output("modinfo -F signer memlog") == softhsm.SUBJECT
    assert host.file("/proc/sys/kernel/tainted").content_string.strip() == "0"


@pytest.fixture(scope="module")
def first_build_purged(rebooted_after_upgrade: str, guest: Any, kernel_build: Any) -> Any:
    """The user purges the first build (no longer running) with its headers."""
    old = kernel_build.names
    if rebooted_after_upgrade == old.release:
        pytest.fail(f"the first build {old.release} still runs: purging it would test nothing")
    with guest.timings.step("apt-get purge of the first build"):
        guest.apt(f"purge {old.image} {old.headers}")
    return old


def test_purging_the_old_build_leaves_nothing_of_it(
    first_build_purged: Any, host: Any, guest: Any
) -> None:
    """Nothing of it under /boot, /lib/modules, /usr/src, initramfs-tools' state or dpkg's."""
    old = first_build_purged
    leftovers = host.run(
        f"ls -d /boot/*-{old.release} /lib/modules/{old.release} /usr/src/{old.headers} "
        f"/var/lib/initramfs-tools/{old.release} 2>/dev/null"
    ).stdout
    assert leftovers == ""
    assert host.run(f"dpkg -l {old.image} {old.headers} 2>/dev/null | grep -q '^[ir]'").rc != 0


def test_purging_the_old_build_takes_it_off_grubs_menu(
    first_build_purged: Any, host: Any, second_build: Any
) -> None:
    """zz-update-grub ran on removal: the menu names the remaining build first, not the old."""
    kernels = _grub_kernels(host)
    assert first_build_purged.release not in kernels
    assert kernels[0] == second_build.names.release


def test_the_machine_still_boots_the_new_build_after_the_purge(
    first_build_purged: Any, guest: Any, second_build: Any
) -> None:
    """A reboot after the purge: GRUB boots the remaining build."""
    with guest.timings.step("reboot after the purge"):
        guest.reboot()
    guest.expect_running(second_build.names.release)


def test_removing_the_running_kernel_asks_and_the_default_answer_aborts(
    rebooted_after_upgrade: str, host: Any
) -> None:
    """linux-check-removal asks before the running kernel goes; its default answer aborts.

    As with Debian's own kernels: a prompting debconf front end (teletype, here
    answered with an empty line: the default) keeps the kernel; the
    noninteractive front end, which automation chooses, lets it go.
    """
    running = rebooted_after_upgrade
    image = f"linux-image-{running}"
    result = host.run(f"echo | DEBIAN_FRONTEND=teletype apt-get remove -y {image} 2>&1")
    assert result.rc != 0, result.stdout[-2000:]
    assert "E: Aborting removal of the running kernel" in result.stdout, result.stdout[-2000:]
    assert host.package(image).is_installed
    assert host.file(f"/boot/vmlinuz-{running}").is_file
