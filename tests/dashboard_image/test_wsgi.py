"""The gunicorn entry point: ProxyFix, flask-login "basic" session protection, and /healthz, around a fake server.py."""

from __future__ import annotations

import sys

import pytest
from dashboard_entrypoint import launcher, sessions, settings, wsgi
from flask import Flask, redirect, request
from werkzeug.test import Client

FAKE_SERVER = '''\
"""Stand-in for upstream's server.py: module-level cfg, app and a login_manager with "strong" protection."""
import configparser, os
from flask import Flask, redirect, request

configfile = os.path.join(os.path.dirname(os.path.realpath(__file__)), "config/config.cfg")
cfg = configparser.ConfigParser()
cfg.read(configfile)
app = Flask(__name__)
app.config.update(SECRET_KEY=cfg.get("Auth", "session_secret"))
auth_host = cfg.get("Auth", "misp_fqdn")
auth_ssl_verify = cfg.getboolean("Auth", "ssl_verify")


class User:
    def __init__(self, id, password):
        self.id, self.password = id, password


def login_user(user):
    return True


def logout_user():
    return True


class LoginManager:
    session_protection = "strong"


login_manager = LoginManager()
app.login_manager = login_manager


@app.route("/")
def index():
    return redirect("/login")


@app.route("/whoami")
def whoami():
    return {"remote_addr": request.remote_addr, "scheme": request.scheme, "host": request.host}
'''


def fake_app() -> Flask:
    app = Flask("server")

    @app.route("/")
    def index():
        return redirect("/login")

    @app.route("/whoami")
    def whoami():
        return {"remote_addr": request.remote_addr, "scheme": request.scheme, "host": request.host}

    return app


class FakeServer:
    def __init__(self) -> None:
        self.app = fake_app()
        self.login_manager = type("LoginManager", (), {"session_protection": "strong"})()
        self.app.login_manager = self.login_manager
        self.User = type("User", (), {})
        self.login_user = self.logout_user = lambda *args: True


def make_application(server: FakeServer, ping) -> wsgi.HealthCheck:
    """The wrapper as gunicorn gets it; the session store is never reached by these requests (no login)."""
    store = sessions.SessionStore(None, sessions.SessionPolicy(max_age_seconds=60), "https://misp.test", verify=True)
    return wsgi.make_application(server, ping=ping, store=store)


def test_healthz_answers_from_redis_ping():
    client = Client(make_application(FakeServer(), ping=lambda: True))
    response = client.get("/healthz")
    assert (response.status_code, response.data) == (200, b"ok\n")
    assert response.headers["Cache-Control"] == "no-store"
    assert "Set-Cookie" not in response.headers  # answered before Flask: no session
    head = client.head("/healthz")
    assert (head.status_code, head.data) == (200, b"")
    assert client.post("/healthz").status_code == 405


def test_livez_answers_without_redis():
    pings = []
    client = Client(make_application(FakeServer(), ping=lambda: pings.append(1)))
    response = client.get("/livez")
    assert (response.status_code, response.data) == (200, b"ok\n")
    assert "Set-Cookie" not in response.headers
    assert pings == []  # a Redis failover must not fail liveness
    assert client.post("/livez").status_code == 405


@pytest.mark.parametrize("ping", [lambda: False, lambda: (_ for _ in ()).throw(ConnectionError("down"))])
def test_healthz_is_503_when_redis_does_not_answer(ping):
    response = Client(make_application(FakeServer(), ping=ping)).get("/healthz")
    assert (response.status_code, response.data) == (503, b"redis unavailable\n")


def test_everything_else_goes_to_the_app_behind_proxyfix():
    pings = []
    client = Client(make_application(FakeServer(), ping=lambda: pings.append(1)))
    assert client.get("/").status_code == 302  # upstream's routes keep their own login_required
    headers = {"X-Forwarded-For": "198.51.100.7", "X-Forwarded-Proto": "https", "X-Forwarded-Host": "evil.example"}
    seen = client.get("/whoami", headers=headers, environ_base={"REMOTE_ADDR": "10.0.3.4"}).json
    assert seen == {"remote_addr": "198.51.100.7", "scheme": "https", "host": "localhost"}  # host not trusted
    assert pings == []  # only /healthz touches Redis


def test_session_protection_is_basic():
    server = FakeServer()
    make_application(server, ping=lambda: True)
    assert server.app.config["SESSION_PROTECTION"] == "basic"  # what flask-login reads first
    assert server.login_manager.session_protection == "basic"


@pytest.fixture
def forget_server():
    """Leaves no fake `server` module or cached application behind for other tests."""
    yield
    sys.modules.pop("server", None)
    wsgi.__dict__.pop("application", None)


def test_application_imports_upstream_server_lazily(env, layout, monkeypatch, forget_server):
    launcher.prepare(settings.load(env), "web")
    (layout["app"] / "server.py").write_text(FAKE_SERVER)
    monkeypatch.syspath_prepend(str(layout["app"]))  # what gunicorn --chdir does
    sys.modules.pop("server", None)
    wsgi.__dict__.pop("application", None)
    application = wsgi.application
    server = sys.modules["server"]
    assert application.app is server.app
    assert server.app.config["SESSION_PROTECTION"] == "basic"
    assert server.login_manager.session_protection == "basic"
    whoami = Client(application).get("/whoami", headers={"X-Forwarded-Proto": "https"}).json
    assert whoami["scheme"] == "https"
    with pytest.raises(AttributeError):
        _ = wsgi.app
