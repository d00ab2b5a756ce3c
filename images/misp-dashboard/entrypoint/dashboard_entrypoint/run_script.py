"""python -m dashboard_entrypoint.run_script SCRIPT [ARGS...]: run an upstream script as `python SCRIPT ARGS` would,
except that SIGTERM raises KeyboardInterrupt.

The role's process is PID 1 of its container, and the kernel drops signals PID 1 has no handler for: without
this, Kubernetes' SIGTERM would be ignored and every stop would wait for SIGKILL. Upstream's zmq_subscriber.py
and zmq_dispatcher.py already end cleanly on KeyboardInterrupt.
"""

from __future__ import annotations

import runpy
import signal
import sys
from pathlib import Path


def main(argv: list[str]) -> None:
    if not argv:
        raise SystemExit("usage: python -m dashboard_entrypoint.run_script SCRIPT [ARGS...]")
    script = Path(argv[0]).resolve()
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    sys.argv = [str(script), *argv[1:]]
    sys.path.insert(0, str(script.parent))  # what `python SCRIPT` puts first on sys.path
    runpy.run_path(str(script), run_name="__main__")


if __name__ == "__main__":
    main(sys.argv[1:])
