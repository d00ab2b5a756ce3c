"""Shared fixtures: the repository, and tools installed in this virtual environment."""

from __future__ import annotations

import ipaddress
import shutil
import socket
import sys
import sysconfig
from pathlib import Path

import pytest

from misp_eks.paths import repository_root
from misp_eks.validate.runner import Report


@pytest.fixture(scope="session")
def repo() -> Path:
    return repository_root()


@pytest.fixture(scope="session")
def real_report() -> Report:
    """scripts/validate's report on this repository (computed once per session)."""
    from tests.validate.fixtures import repository_report

    return repository_report()


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


def _loopback(host: object) -> bool:
    if host in (None, "localhost", b"localhost"):
        return True
    try:
        return ipaddress.ip_address(str(host).split("%")[0]).is_loopback
    except ValueError:
        return False


@pytest.fixture(autouse=True, scope="session")
def _no_network():
    """Tests never touch the network: connecting to, or even resolving, anything but loopback fails.

    This guards this process; child processes are each given what keeps them offline (see the tests
    that start tools).
    """
    original_connect, original_connect_ex = socket.socket.connect, socket.socket.connect_ex
    original_getaddrinfo = socket.getaddrinfo

    def check(sock: socket.socket, address: object) -> None:
        if sock.family == getattr(socket, "AF_UNIX", None):
            return
        if not _loopback(address[0] if isinstance(address, tuple) else address):
            raise OSError(f"tests may not connect to {address!r}: only loopback servers the test started")

    def connect(sock: socket.socket, address: object) -> None:
        check(sock, address)
        return original_connect(sock, address)

    def connect_ex(sock: socket.socket, address: object) -> int:
        check(sock, address)
        return original_connect_ex(sock, address)

    def getaddrinfo(host: object, *args: object, **kwargs: object) -> object:
        if not _loopback(host):
            raise OSError(f"tests may not resolve {host!r}: only loopback servers the test started")
        return original_getaddrinfo(host, *args, **kwargs)  # type: ignore[arg-type]

    socket.socket.connect, socket.socket.connect_ex = connect, connect_ex  # type: ignore[method-assign]
    socket.getaddrinfo = getaddrinfo  # type: ignore[assignment]
    yield
    socket.socket.connect, socket.socket.connect_ex = original_connect, original_connect_ex  # type: ignore[method-assign]
    socket.getaddrinfo = original_getaddrinfo
