"""MISP's OpenPGP key, generated with GnuPG in a throw-away home directory.

No maintained pure-Python OpenPGP library fits: PGPy (last release 2022) imports ``imghdr``, which
Python 3.13 removed, and relies on cryptography APIs marked for removal; pysequoia cannot protect a
generated key with a passphrase; johnnycanencrypt needs libpcsclite. GnuPG is what MISP itself uses
to read the key, so its output is what MISP expects: RSA 3072 (misp-docker's own choice), no expiry,
UID "MISP <sender>", protected by GPG_PASSPHRASE. The passphrase travels on stdin, never in argv.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from misp_eks.provision.errors import BootstrapError
from misp_eks.provision.tools import GPG, Tools

KEY_BITS = 3072
_GPG_TIMEOUT_SECONDS = 300


@dataclass(frozen=True)
class GpgKey:
    private_key: str
    public_key: str
    fingerprint: str


def _parameters(email: str, passphrase: str) -> str:
    return "\n".join(
        [
            "Key-Type: RSA",
            f"Key-Length: {KEY_BITS}",
            "Key-Usage: sign",
            "Subkey-Type: RSA",
            f"Subkey-Length: {KEY_BITS}",
            "Subkey-Usage: encrypt",
            "Name-Real: MISP",
            f"Name-Email: {email}",
            "Expire-Date: 0",
            f"Passphrase: {passphrase}",
            "%commit",
            "",
        ]
    )


def generate(tools: Tools, email: str, passphrase: str) -> GpgKey:
    """An ASCII-armoured key pair for ``MISP <email>``."""
    if "\n" in passphrase or "\n" in email:
        raise BootstrapError("the GPG passphrase and e-mail must be single lines")
    home = Path(tempfile.mkdtemp(prefix="misp-gpg-"))
    home.chmod(0o700)
    env = {"GNUPGHOME": str(home)}
    base = ["--homedir", str(home), "--batch", "--no-tty"]
    try:
        tools.run(
            GPG,
            [*base, "--pinentry-mode", "loopback", "--gen-key"],
            stdin=_parameters(email, passphrase),
            timeout=_GPG_TIMEOUT_SECONDS,
            env=env,
            what="gpg --gen-key",
        )
        listing = tools.run(GPG, [*base, "--with-colons", "--list-secret-keys", email], timeout=60, env=env)
        fingerprint = next(line.split(":")[9] for line in listing.splitlines() if line.startswith("fpr:"))
        public = tools.run(GPG, [*base, "--armor", "--export", fingerprint], timeout=60, env=env)
        private = tools.run(
            GPG,
            [
                *base,
                "--pinentry-mode",
                "loopback",
                "--passphrase-fd",
                "0",
                "--armor",
                "--export-secret-keys",
                fingerprint,
            ],
            stdin=passphrase + "\n",
            timeout=60,
            env=env,
            what="gpg --export-secret-keys",
        )
    finally:
        gpgconf = shutil.which("gpgconf", path=tools.environ.get("PATH"))
        if gpgconf:
            subprocess.run(
                [gpgconf, "--kill", "gpg-agent"],
                env={**tools.environ, **env},
                capture_output=True,
                timeout=30,
                check=False,
            )
        shutil.rmtree(home, ignore_errors=True)
    # pragma: allowlist nextline secret
    if "BEGIN PGP PRIVATE KEY BLOCK" not in private or "BEGIN PGP PUBLIC KEY BLOCK" not in public:
        raise BootstrapError("gpg produced no ASCII-armoured key")
    return GpgKey(private_key=private, public_key=public, fingerprint=fingerprint)
