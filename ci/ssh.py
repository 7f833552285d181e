"""ssh into the guest: a key per run, and a config file usable by ssh and testinfra.

Connections share one master connection per guest boot (``ControlMaster``):
under TCG a fresh ssh login costs about 3 s, a multiplexed command about
0.15 s.  The master is closed whenever the guest reboots or stops
(:func:`close_master`), and keep-alives end one whose guest vanished.
"""

from __future__ import annotations

import base64
import subprocess
from pathlib import Path

from wintermute.run import run

HOST_ALIAS = "wintermute-vm"


def make_key(run_dir: Path) -> Path:
    """A fresh ed25519 key pair for this run; returns the private key's path."""
    key = run_dir / "id_ed25519"
    run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "wintermute-vm-run", "-f", key],
        log=run_dir / "ssh.log",
    )
    return key


def key_cmdline_arg(key: Path) -> str:
    """The kernel command line word that hands the public key to the guest."""
    public = key.with_suffix(".pub").read_bytes()
    return "wintermute.ssh_key=" + base64.b64encode(public).decode()


def write_config(path: Path, port: int, key: Path) -> Path:
    path.write_text(
        f"Host {HOST_ALIAS}\n"
        "  HostName 127.0.0.1\n"
        f"  Port {port}\n"
        "  User root\n"
        f"  IdentityFile {key}\n"
        "  IdentitiesOnly yes\n"
        "  StrictHostKeyChecking no\n"
        "  UserKnownHostsFile /dev/null\n"
        "  LogLevel ERROR\n"
        "  ConnectTimeout 10\n"
        "  ServerAliveInterval 10\n"
        "  ServerAliveCountMax 6\n"
        "  ControlMaster auto\n"
        # short: a socket path has at most 107 bytes; %C hashes host, port and user
        "  ControlPath /tmp/wintermute-ssh-%C\n"
        "  ControlPersist 120\n"
    )
    return path


def close_master(config: Path) -> None:
    """End the shared connection, if there is one (before a reboot, after a stop)."""
    subprocess.run(
        ["ssh", "-F", str(config), "-O", "exit", HOST_ALIAS],
        capture_output=True,
        stdin=subprocess.DEVNULL,
        timeout=30,
        check=False,
    )


# A connection of its own: for probes that must reach the guest's sshd itself.
UNSHARED = ("-o", "ControlMaster=no", "-o", "ControlPath=none")


def ssh_argv(config: Path, *extra: str) -> list[str]:
    return ["ssh", "-F", str(config), *extra, HOST_ALIAS]
