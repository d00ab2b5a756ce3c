"""python -m dashboard_entrypoint {web|subscriber|dispatcher|healthcheck}"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from dashboard_entrypoint import ROLES, ConfigError, launcher, settings

EX_USAGE = 64
EX_CONFIG = 78


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or args[0] not in (*ROLES, "healthcheck"):
        print(f"usage: python -m dashboard_entrypoint {{{'|'.join(ROLES)}|healthcheck}}", file=sys.stderr)
        return EX_USAGE
    if args[0] == "healthcheck":
        state_dir = Path(os.environ.get("DASHBOARD_STATE_DIR") or settings.DEFAULT_STATE_DIR)
        port = os.environ.get("DASHBOARD_PORT", "8001")
        return 0 if port.isdigit() and launcher.healthcheck(state_dir, int(port)) else 1
    try:
        launcher.run(settings.load(), args[0])
    except ConfigError as error:
        launcher.log(f"refusing to start: {error}")
        return EX_CONFIG
    return 0  # only reached when execv is replaced (tests)


if __name__ == "__main__":
    sys.exit(main())
