"""Fixtures for the MISP Dashboard image tests: the entrypoint package on sys.path, and a fake upstream layout.

The fake layout has the shape of the image (app/config -> state/config, defaults/ with upstream's two default files)
but its files are written here: no upstream code or data is needed to run these tests.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from .support import CONFIG_DEFAULT, RANKING, SECRET


@pytest.fixture
def layout(tmp_path: Path) -> dict[str, Path]:
    """app/ (config symlinked into state/), defaults/ and state/, like the image."""
    app, defaults, state = tmp_path / "app", tmp_path / "defaults", tmp_path / "state"
    for directory in (app / "data", defaults, state):
        directory.mkdir(parents=True)
    (defaults / "config.cfg.default").write_text(CONFIG_DEFAULT)
    (defaults / "ranking.cfg").write_text(RANKING)
    (app / "config").symlink_to(state / "config")
    return {"app": app, "defaults": defaults, "state": state}


@pytest.fixture
def env(layout: dict[str, Path]) -> dict[str, str]:
    """A complete production-like environment."""
    return {
        "DASHBOARD_MISP_URL": "https://misp.example.org/",
        "DASHBOARD_MISP_ZMQ_URL": "tcp://misp-zmq.misp.svc.cluster.local:50000",
        "DASHBOARD_REDIS_HOST": "dashboard.abc123.euw1.cache.amazonaws.com",
        "DASHBOARD_REDIS_PASSWORD": "redis-token",  # pragma: allowlist secret
        "DASHBOARD_SESSION_SECRET": SECRET,
        "DASHBOARD_APP_DIR": str(layout["app"]),
        "DASHBOARD_DEFAULTS_DIR": str(layout["defaults"]),
        "DASHBOARD_STATE_DIR": str(layout["state"]),
    }
