"""gunicorn's entry point (`dashboard_entrypoint.wsgi:application`): upstream's Flask app from server.py, adapted
to run behind the AWS ALB without editing upstream.

- werkzeug ProxyFix(x_for=1, x_proto=1): the client address and https scheme come from the ALB's X-Forwarded-*.
- flask-login session protection "basic" instead of upstream's "strong", which deletes the session whenever the
  (proxied) client address changes, logging users out at random behind a load balancer.
- GET /healthz, answered before Flask (no session, no login): 200 when Redis answers PING, else 503 (readiness).
- GET /livez, answered before Flask without touching Redis: 200 from any free worker thread (liveness: a worker
  that answers nothing fails it).
- Upstream's Server-Sent-Events streams poll Redis and send keep-alives, so a closed page frees its thread, and
  never take a worker's last streams.RESERVED_THREADS threads, so that probes and pages are always answered
  (streams.py).
- Sessions with a maximum age, re-checked against MISP, ended server-side at logout; MISP logins with a timeout
  and a clear message when MISP wants the user on one of its pages first (sessions.py, misp.py).
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Iterable
from types import ModuleType
from typing import Any

from dashboard_entrypoint import sessions, settings, streams

HEALTH_PATH = "/healthz"
LIVE_PATH = "/livez"
PING_TIMEOUT_SECONDS = 2


class HealthCheck:
    """WSGI middleware answering HEALTH_PATH itself; every other request goes to the wrapped app."""

    def __init__(self, app: Callable[..., Iterable[bytes]], ping: Callable[[], object]) -> None:
        self.app = app
        self.ping = ping

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO")
        if path not in (HEALTH_PATH, LIVE_PATH):
            return self.app(environ, start_response)
        if environ.get("REQUEST_METHOD") not in ("GET", "HEAD"):
            status, body = "405 Method Not Allowed", b"method not allowed\n"
        elif path == LIVE_PATH:
            status, body = "200 OK", b"ok\n"
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


def redis_client(cfg: Any, **options: Any) -> Any:
    """A dedicated small client of upstream's data DB (the hook adds AUTH and TLS), failing fast."""
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    return redis.StrictRedis(
        host=cfg.get("RedisGlobal", "host"),
        port=cfg.getint("RedisGlobal", "port"),
        db=cfg.getint("RedisDB", "db"),
        socket_timeout=PING_TIMEOUT_SECONDS,
        socket_connect_timeout=PING_TIMEOUT_SECONDS,
        retry=Retry(NoBackoff(), 0),
        **options,
    )


def redis_ping(cfg: Any) -> Callable[[], object]:
    return redis_client(cfg).ping  # type: ignore[no-any-return]


def make_application(
    server: ModuleType,
    ping: Callable[[], object] | None = None,
    *,
    timing: streams.StreamTiming | None = None,
    store: sessions.SessionStore | None = None,
    threads: int | None = None,
) -> HealthCheck:
    """`threads`: gunicorn's --threads per worker (default: DASHBOARD_WEB_THREADS, as the launcher passes it)."""
    from werkzeug.middleware.proxy_fix import ProxyFix

    app = server.app
    app.config["SESSION_PROTECTION"] = "basic"  # flask-login reads this before its own attribute
    login_manager = getattr(app, "login_manager", None)
    if login_manager is not None:
        login_manager.session_protection = "basic"
    if store is None:
        store = sessions.SessionStore(
            redis_client(server.cfg, decode_responses=True),
            sessions.SessionPolicy.from_config(server.cfg),
            misp_url=server.auth_host,
            verify=server.auth_ssl_verify,
        )
    stream_check = sessions.install(server, store)
    if threads is None:
        threads = settings.web_threads(os.environ)
    streams.install(server, timing or streams.StreamTiming(), stream_check, streams.stream_slots(threads))
    app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1, x_host=0, x_port=0, x_prefix=0)
    return HealthCheck(app, ping or redis_ping(server.cfg))


def __getattr__(name: str) -> Any:
    # Importing upstream's server.py connects helpers and reads config, so do it only when gunicorn asks for the app.
    if name == "application":
        application = make_application(importlib.import_module("server"))
        globals()["application"] = application
        return application
    raise AttributeError(name)
