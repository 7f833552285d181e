"""A throw-away PKCS#11 token (SoftHSM 2) holding a module signing key.

What a user's hardware token or HSM gives a build: a key and its certificate
in a token, named by a PKCS#11 URI (RFC 7512) in kernel.yaml's
``kernel.signing_key``, which kbuild's extract-cert (the certificate built
into the kernel) and sign-file (each module) open through OpenSSL's pkcs11
provider.  The token lives in a private temporary directory; the key is made
there, imported, and its file deleted, so it exists only inside the token.
The environment the build needs (``SOFTHSM2_CONF``; ``OPENSSL_CONF`` loading
the provider early, with the quirks SoftHSM needs: without them the provider
deadlocks inside SoftHSM's own OpenSSL calls) is set for the ``with`` block
only.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ci.package_verify import environment
from wintermute.errors import InfraError
from wintermute.run import run

SOFTHSM_MODULE = Path("/usr/lib/softhsm/libsofthsm2.so")
PROVIDER = Path("/usr/lib/x86_64-linux-gnu/ossl-modules/pkcs11.so")
LABEL = "wintermute-test"
OBJECT = "module-signing"
SUBJECT = "wintermute test token key"
LOG = "softhsm.log"

GENKEY = f"""[ req ]
default_bits = 3072
distinguished_name = req_distinguished_name
prompt = no
string_mask = utf8only
x509_extensions = myexts

[ req_distinguished_name ]
CN = {SUBJECT}

[ myexts ]
basicConstraints=critical,CA:FALSE
keyUsage=digitalSignature
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid
"""

OPENSSL_CNF = """openssl_conf = openssl_init

[openssl_init]
providers = provider_sect

[provider_sect]
default = default_sect
pkcs11 = pkcs11_sect

[default_sect]
activate = 1

[pkcs11_sect]
module = {provider}
pkcs11-module-path = {module}
pkcs11-module-load-behavior = early
pkcs11-module-quirks = no-deinit no-operation-state
activate = 1
"""


@dataclass(frozen=True)
class Token:
    uri: str  # what kernel.yaml's kernel.signing_key names
    subject: str  # the certificate's CN: what ``modinfo -F signer`` shows
    env: dict[str, str]  # what the build's environment needs to open it


@contextlib.contextmanager
def token(*, set_environment: bool = True) -> Iterator[Token]:
    """A token with a fresh key and certificate; the environment set while it is in use
    (unless ``set_environment`` is false: then pass ``Token.env`` to the build yourself,
    as a build in a background thread must, os.environ being the whole process's)."""
    missing = [str(p) for p in (SOFTHSM_MODULE, PROVIDER) if not p.is_file()]
    if missing:
        raise InfraError(f"{', '.join(missing)} missing: run scripts/setup-host first")
    with tempfile.TemporaryDirectory(prefix="wintermute-token-") as tmp:
        root = Path(tmp)
        (root / "tokens").mkdir()
        (root / "softhsm2.conf").write_text(
            f"directories.tokendir = {root / 'tokens'}\nobjectstore.backend = file\n"
        )
        (root / "openssl.cnf").write_text(
            OPENSSL_CNF.format(provider=PROVIDER, module=SOFTHSM_MODULE)
        )
        env = {
            "SOFTHSM2_CONF": str(root / "softhsm2.conf"),
            "OPENSSL_CONF": str(root / "openssl.cnf"),
        }
        pin = "4711"
        # not OPENSSL_CONF: pkcs11-tool and SoftHSM must not load the provider themselves
        _make_token(root, pin, {"SOFTHSM2_CONF": env["SOFTHSM2_CONF"]})
        pin_file = root / "pin"
        pin_file.write_text(pin)
        uri = f"pkcs11:token={LABEL};object={OBJECT}?pin-source=file:{pin_file}"
        if not set_environment:
            yield Token(uri, SUBJECT, env)
            return
        with environment(**env):
            yield Token(uri, SUBJECT, env)


def _make_token(root: Path, pin: str, env: dict[str, str]) -> None:
    """Initialise the token; import a fresh key and its certificate; delete the key's files."""
    run(
        ["softhsm2-util", "--init-token", "--free", "--label", LABEL,
         "--pin", pin, "--so-pin", "12345678"],
        env=env, log=LOG, step=f"making a SoftHSM token with a module signing key ({SUBJECT})",
    )  # fmt: skip
    keys = root / "keys"
    old = os.umask(0o077)
    try:
        keys.mkdir()
        (keys / "x509.genkey").write_text(GENKEY)
        run(
            ["openssl", "req", "-new", "-nodes", "-utf8", "-sha512", "-days", "36500", "-batch",
             "-x509", "-config", keys / "x509.genkey", "-outform", "PEM",
             "-out", keys / "key.pem", "-keyout", keys / "key.pem"],
            log=LOG,
        )  # fmt: skip
        run(["openssl", "pkcs8", "-topk8", "-nocrypt", "-in", keys / "key.pem",
             "-outform", "DER", "-out", keys / "key.der"], log=LOG)  # fmt: skip
        run(["openssl", "x509", "-in", keys / "key.pem", "-outform", "DER",
             "-out", keys / "cert.der"], log=LOG)  # fmt: skip
        for kind, name in (("privkey", "key.der"), ("cert", "cert.der")):
            run(
                ["pkcs11-tool", "--module", SOFTHSM_MODULE, "--login", "--pin", pin,
                 "--token-label", LABEL, "--write-object", keys / name, "--type", kind,
                 "--id", "01", "--label", OBJECT],
                env=env, log=LOG,
            )  # fmt: skip
    finally:
        os.umask(old)
        for path in keys.glob("*"):
            path.unlink()
