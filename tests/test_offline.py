"""The suite's own guard: nothing in a test process reaches or even resolves a host beyond loopback."""

from __future__ import annotations

import socket

import pytest


@pytest.mark.parametrize(("host", "port"), [("192.0.2.10", 443), ("2001:db8::1", 443)])
def test_connections_beyond_loopback_fail(host: str, port: int) -> None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock, pytest.raises(OSError, match="tests may not connect"):
        sock.connect((host, port))


@pytest.mark.parametrize("host", ["pypi.org", "localhost.example.org", "127.0.0.1.example.org"])
def test_names_beyond_loopback_do_not_resolve(host: str) -> None:
    with pytest.raises(OSError, match="tests may not resolve"):
        socket.getaddrinfo(host, 443)


def test_loopback_resolves() -> None:
    assert socket.getaddrinfo("localhost", 80)
    assert socket.getaddrinfo("127.0.0.1", 80)
