"""Waiting for a server a test started: until it answers, it exits, or 20 seconds pass."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable

import pytest


def wait_until_answering(
    process: subprocess.Popen[bytes], ping: Callable[[], object], errors: tuple[type[Exception], ...], what: str
) -> None:
    """Call ``ping`` until it stops raising ``errors``; fail the test (with the server's output when it was
    captured) when the server exits or does not answer within 20 seconds."""
    deadline = time.monotonic() + 20
    while True:
        try:
            ping()
            return
        except errors:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                output = process.stdout.read().decode()[-2000:] if process.stdout else ""
                pytest.fail(f"{what} did not start: {output}")
            time.sleep(0.05)
