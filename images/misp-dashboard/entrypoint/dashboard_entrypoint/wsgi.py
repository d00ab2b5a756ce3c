"""gunicorn's entry point (`dashboard_entrypoint.wsgi:application`): upstream's Flask app from server.py, adapted
to run behind the AWS ALB without editing upstream.

- werkzeug ProxyFix(x_for=1, x_proto=1): the client address and https scheme come from the ALB's X-Forwarded-*.
- flask-login session protection "basic" instead of upstream's "strong", which deletes the session whenever the
  (proxied) client address changes, logging users out at random behind a load balancer.
- GET /healthz, answered before Flask (no session, no login): 200 when Redis answers PING, else 503.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from types import ModuleType
from typing import Any

HEALTH_PATH = "/healthz"
PING_TIMEOUT_SECONDS = 2


class HealthCheck:
    """WSGI middleware answering HEALTH_PATH itself; every other request goes to the wrapped app."""

    def __init__(self, app: Callable[..., Iterable[bytes]], ping: Callable[[], object]) -> None:
        self.app = app
        self.ping = ping

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != HEALTH_PATH:
            return self.app(environ, start_response)
        if environ.get("REQUEST_METHOD") not in ("GET", "HEAD"):
            status, body = "405 Method Not Allowed", b"method not allowed\n"
        else:
            try:
                healthy = bool(self.ping())
            except Exception:
                healthy = False
            status, body = ("200 OK", b"ok\n") if healthy else ("503 Service Unavailable", b"redis unavailable\n")
        headers = [
            ("Content-Type", "text/plain; charset=utf-8"),
            ("Content-Length", str(len(body))),
            ("Cache-Control", "no-store"),
        ]
        start_response(status, headers)
        return [b""] if environ.get("REQUEST_METHOD") == "HEAD" else [body]


def redis_ping(cfg: Any) -> Callable[[], object]:
    """A PING through a dedicated small client of upstream's data DB (the hook adds AUTH and TLS)."""
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    client = redis.StrictRedis(
        host=cfg.get("RedisGlobal", "host"),
        port=cfg.getint("RedisGlobal", "port"),
        db=cfg.getint("RedisDB", "db"),
        socket_timeout=PING_TIMEOUT_SECONDS,
        socket_connect_timeout=PING_TIMEOUT_SECONDS,
        retry=Retry(NoBackoff(), 0),
    )
    return client.ping


def make_application(server: ModuleType, ping: Callable[[], object] | None = None) -> HealthCheck:
    from werkzeug.middleware.proxy_fix import ProxyFix

    app = server.app
    app.config["SESSION_PROTECTION"] = "basic"  # flask-login reads this before its own attribute
    login_manager = getattr(app, "login_manager", None)
    if login_manager is not None:
        login_manager.session_protection = "basic"
    app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1, x_host=0, x_port=0, x_prefix=0)
    return HealthCheck(app, ping or redis_ping(server.cfg))


def __getattr__(name: str) -> Any:
    # Importing upstream's server.py connects helpers and reads config, so do it only when gunicorn asks for the app.
    if name == "application":
        application = make_application(importlib.import_module("server"))
        globals()["application"] = application
        return application
    raise AttributeError(name)
