"""python -m dashboard_entrypoint.run_script SCRIPT [ARGS...]: run an upstream script as `python SCRIPT ARGS` would,
except that SIGTERM raises KeyboardInterrupt.

The role's process is PID 1 of its container, and the kernel drops signals PID 1 has no handler for: without
this, Kubernetes' SIGTERM would be ignored and every stop would wait for SIGKILL. Upstream's zmq_subscriber.py
and zmq_dispatcher.py already end cleanly on KeyboardInterrupt.

It also makes upstream's log readable (upstream at the pinned commit): its helpers (helpers/*_helper.py,
updates.py) add their own handler to their logger *and* propagate to the root logger, which the script's
logging.basicConfig points to the same output, so every helper line was written twice; and zmq_dispatcher.py logs
"Processed 0 message(s) since last sleep." every second while idle. Helper lines now stop at their own handler, and
the idle line is dropped (a count above zero is kept).

Upstream's zmq_subscriber.py does not start without the ZeroMQ keep-alive of the hook (hook.require_zmq_keepalive):
a failure is one line on stderr and exit code 78, as the entrypoint's refusals.
"""

from __future__ import annotations

import logging
import runpy
import signal
import sys
from pathlib import Path

from dashboard_entrypoint import hook

# The loggers of upstream's modules that carry their own handler: helpers.<name>_helper, and updates.
OWN_HANDLER_LOGGERS = ("helpers", "updates")
IDLE_LINE = "Processed 0 message(s) since last sleep."  # zmq_dispatcher.py main()
SUBSCRIBER = "zmq_subscriber.py"
EX_CONFIG = 78


def _not_idle(record: logging.LogRecord) -> bool:
    return record.getMessage() != IDLE_LINE


def quiet_upstream_logging() -> None:
    for name in OWN_HANDLER_LOGGERS:
        logging.getLogger(name).propagate = False  # a child's record stops here, after its own handler
    logging.getLogger("zmq_dispatcher").addFilter(_not_idle)


def main(argv: list[str]) -> None:
    if not argv:
        raise SystemExit("usage: python -m dashboard_entrypoint.run_script SCRIPT [ARGS...]")
    script = Path(argv[0]).resolve()
    if script.name == SUBSCRIBER:
        try:
            hook.require_zmq_keepalive()
        except Exception as error:
            print(f"misp-dashboard: refusing to start: no ZeroMQ keep-alive ({error!r})", file=sys.stderr, flush=True)
            raise SystemExit(EX_CONFIG) from None
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    quiet_upstream_logging()
    sys.argv = [str(script), *argv[1:]]
    sys.path.insert(0, str(script.parent))  # what `python SCRIPT` puts first on sys.path
    runpy.run_path(str(script), run_name="__main__")


if __name__ == "__main__":
    main(sys.argv[1:])
