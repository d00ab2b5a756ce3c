"""For tests that start servers: a throw-away certificate authority and certificate on disk, and a free port."""

from __future__ import annotations

import socket
from dataclasses import dataclass
from pathlib import Path

from misp_eks import local_tls


@dataclass(frozen=True)
class Certificates:
    ca: Path
    cert: Path
    key: Path
    ca_key: Path


def make_certificates(directory: Path, hosts: tuple[str, ...] = ("localhost", "127.0.0.1")) -> Certificates:
    """A CA and a server certificate for ``hosts`` (DNS names and IP addresses), valid for a day."""
    authority = local_tls.new_authority("misp-eks test CA")
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "ca.pem").write_bytes(authority.cert)
    (directory / "ca.key").write_bytes(authority.key)
    (directory / "ca.key").chmod(0o600)
    files = Certificates(directory / "ca.pem", directory / "server.pem", directory / "server.key", directory / "ca.key")
    return issue(files, hosts, files.cert, files.key)


def issue(authority: Certificates, hosts: tuple[str, ...], cert: Path, key_file: Path) -> Certificates:
    """A server certificate for ``hosts`` from ``authority``'s CA, written to ``cert`` and ``key_file``."""
    pem = local_tls.issue(local_tls.Pem(authority.ca.read_bytes(), authority.ca_key.read_bytes()), hosts)
    cert.write_bytes(pem.cert)
    key_file.write_bytes(pem.key)
    key_file.chmod(0o600)
    return Certificates(authority.ca, cert, key_file, authority.ca_key)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
