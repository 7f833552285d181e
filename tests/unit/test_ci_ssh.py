"""ssh into the guest: the config file and how the run's key travels."""

from __future__ import annotations

import base64
from pathlib import Path

from ci import ssh


def test_ssh_config_names_port_key_and_no_host_key_checking(tmp_path: Path) -> None:
    """The ssh config file testinfra and ssh use points at the forwarded port and the run's key."""
    text = ssh.write_config(tmp_path / "cfg", 2345, tmp_path / "id").read_text()
    assert "Host wintermute-vm\n" in text
    for line in ("HostName 127.0.0.1", "Port 2345", "User root", f"IdentityFile {tmp_path / 'id'}",
                 "StrictHostKeyChecking no", "UserKnownHostsFile /dev/null"):  # fmt: skip
        assert f"  {line}\n" in text


def test_public_key_travels_base64_encoded_on_the_kernel_command_line(tmp_path: Path) -> None:
    """The run's public key is one command-line word the guest decodes."""
    (tmp_path / "id.pub").write_text("ssh-ed25519 AAAA test\n")
    word = ssh.key_cmdline_arg(tmp_path / "id")
    assert " " not in word
    assert base64.b64decode(word.split("=", 1)[1]) == b"ssh-ed25519 AAAA test\n"
