"""Shared fixtures: the repository, and tools installed in this virtual environment."""

from __future__ import annotations

import shutil
import socket
import sys
import sysconfig
from pathlib import Path

import pytest

from misp_eks.paths import repository_root


@pytest.fixture(scope="session")
def repo() -> Path:
    return repository_root()


def venv_tool(name: str) -> str:
    """A command installed by requirements/test.txt into this environment (never one from elsewhere on PATH)."""
    candidate = Path(sysconfig.get_path("scripts")) / name
    if candidate.is_file():
        return str(candidate)
    candidate = Path(sys.executable).parent / name
    if candidate.is_file():
        return str(candidate)
    pytest.fail(f"{name} is not installed in this environment: run `make test`")


def system_tool(name: str, package: str) -> str:
    """A server binary from the operating system (installed by scripts/install-test-servers)."""
    found = shutil.which(name) or next(
        (str(p) for p in (Path("/usr/sbin") / name, Path("/usr/bin") / name) if p.is_file()), None
    )
    if found is None:
        pytest.fail(f"{name} is not installed: run `make servers` (Debian package {package})")
    return found


_LOOPBACK = ("127.", "::1", "localhost")


@pytest.fixture(autouse=True, scope="session")
def _no_network():
    """Tests never touch the network: a connection to anything but loopback or a Unix socket fails."""
    original_connect, original_connect_ex = socket.socket.connect, socket.socket.connect_ex

    def allowed(sock: socket.socket, address: object) -> bool:
        if sock.family == getattr(socket, "AF_UNIX", None):
            return True
        host = address[0] if isinstance(address, tuple) else str(address)
        return str(host).startswith(_LOOPBACK)

    def connect(sock: socket.socket, address: object) -> None:
        if not allowed(sock, address):
            raise OSError(f"tests may not connect to {address!r}: only loopback servers the test started")
        return original_connect(sock, address)

    def connect_ex(sock: socket.socket, address: object) -> int:
        if not allowed(sock, address):
            raise OSError(f"tests may not connect to {address!r}: only loopback servers the test started")
        return original_connect_ex(sock, address)

    socket.socket.connect, socket.socket.connect_ex = connect, connect_ex  # type: ignore[method-assign]
    yield
    socket.socket.connect, socket.socket.connect_ex = original_connect, original_connect_ex  # type: ignore[method-assign]
