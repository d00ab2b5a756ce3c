"""Timings of the bootstrap for ``scripts/bench``.

- :func:`plan_seconds`: ``bootstrap.py --env prod --dry-run`` as on a fresh machine (no credentials,
  so no AWS call), in a fresh interpreter each time.
- :func:`converged_rerun_seconds`: a re-run of ``bootstrap.py --env prod --yes`` on an environment
  that is already complete, against a moto server with the test stand-ins for eksctl and flux and
  the fake Kubernetes API (tests.provision.world). The first, converging run is not timed.

``python -m tests.provision.bench`` (from the repository's root; scripts/bench runs it) prints both.
It lives with the tests because it runs on their emulated AWS.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from misp_eks.paths import repository_root
from tests.provision.world import world

_NO_CREDENTIALS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_ENDPOINT_URL")


def plan_seconds(repeat: int = 3, environment: str = "prod") -> list[float]:
    """Wall-clock seconds of each ``--dry-run``, without credentials."""
    root = repository_root()
    environ = {key: value for key, value in os.environ.items() if key not in _NO_CREDENTIALS}
    environ.update(AWS_EC2_METADATA_DISABLED="true", AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull)
    command = [sys.executable, str(root / "bootstrap" / "bootstrap.py"), "--env", environment, "--dry-run", "--plain"]
    timings = []
    for _ in range(repeat):
        started = time.perf_counter()
        subprocess.run(command, env=environ, cwd=root, check=True, capture_output=True, timeout=120)
        timings.append(time.perf_counter() - started)
    return timings


def converged_rerun_seconds(repeat: int = 3) -> list[float]:
    """Wall-clock seconds of each re-run on a converged environment (emulated AWS)."""
    root = repository_root()
    timings = []
    with tempfile.TemporaryDirectory(prefix="misp-eks-bench-") as work, world(root, Path(work)) as emulated:
        first = emulated.bootstrap()
        if first.returncode != 0:
            raise RuntimeError(f"the converging run failed: {first.stderr.strip()}")
        for _ in range(repeat):
            started = time.perf_counter()
            again = emulated.bootstrap()
            timings.append(time.perf_counter() - started)
            if again.returncode != 0:
                raise RuntimeError(f"the re-run failed: {again.stderr.strip()}")
    return timings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.provision.bench", description=__doc__)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    plans = plan_seconds(args.repeat)
    print(f"bootstrap --dry-run (no credentials): median {statistics.median(plans):.2f}s of {len(plans)}")
    reruns = converged_rerun_seconds(args.repeat)
    print(f"bootstrap re-run, converged (moto):    median {statistics.median(reruns):.2f}s of {len(reruns)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
