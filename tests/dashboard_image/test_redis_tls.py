"""The Redis hook against a real redis-server with TLS and requirepass (Debian's redis-server, like CI).

The client side runs in a separate Python that loads the hook exactly as the image does: through the `.pth` file
(site.addsitedir processes it like site-packages at start-up), then upstream-style `redis.StrictRedis(host, port, db)`.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import ClassVar

import pytest
import redis
from dashboard_entrypoint import wsgi
from redis.backoff import NoBackoff
from redis.retry import Retry
from werkzeug.test import Client

from tests.conftest import system_tool
from tests.servers.started import wait_until_answering
from tests.servers.tls import free_port, make_certificates

from .support import ENTRYPOINT_DIR
from .test_wsgi import FakeServer, make_application

pytestmark = pytest.mark.servers
NO_RETRY = Retry(NoBackoff(), 0)


def make_pki(directory: Path) -> dict[str, Path]:
    """A CA and a server certificate valid for DNS:localhost only (not for 127.0.0.1)."""
    certificates = make_certificates(directory, hosts=("localhost",))
    return {"ca": certificates.ca, "cert": certificates.cert, "key": certificates.key}


@pytest.fixture(scope="module")
def tls_redis(tmp_path_factory):
    directory = tmp_path_factory.mktemp("redis-tls")
    pki = make_pki(directory)
    password = secrets.token_urlsafe(24) + "%"  # a '%' as real AUTH tokens may have
    port = free_port()
    command = [
        system_tool("redis-server", "redis-server"),
        "--port", "0",
        "--tls-port", str(port),
        "--bind", "127.0.0.1",
        "--tls-cert-file", str(pki["cert"]),
        "--tls-key-file", str(pki["key"]),
        "--tls-ca-cert-file", str(pki["ca"]),
        "--tls-auth-clients", "no",
        "--requirepass", password,
        "--save", "",
        "--appendonly", "no",
        "--dir", str(directory),
    ]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    probe = redis.Redis(
        host="localhost", port=port, password=password, ssl=True, ssl_ca_certs=str(pki["ca"]), socket_timeout=1
    )
    wait_until_answering(process, probe.ping, (redis.exceptions.ConnectionError,), "redis-server")
    probe.close()
    yield {"port": port, "password": password, "ca": pki["ca"], "process": process}
    process.terminate()
    process.wait(timeout=10)


# Upstream's way of connecting: StrictRedis(host, port, db) with no password or TLS argument; a subscriber like
# server.py's SSE streams (psubscribe on one db) and a publisher like the dispatcher's helpers (another db).
UPSTREAM_STYLE_CLIENT = textwrap.dedent(
    """
    import json, site, sys
    site.addsitedir(sys.argv[1])  # processes zz-misp-dashboard-hook.pth like site-packages at start-up
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry
    host, port = sys.argv[2], int(sys.argv[3])
    # redis-py retries failed connections with backoff for seconds: expected failures skip that
    extra = {"retry": Retry(NoBackoff(), 0)} if sys.argv[4] == "expect-failure" else {}
    result = {}
    try:
        data = redis.StrictRedis(host=host, port=port, db=2, decode_responses=True, **extra)
        data.set("dashboard-test", "value")
        result["get"] = data.get("dashboard-test")
        listener = redis.StrictRedis(host=host, port=port, db=1, decode_responses=True)
        listener = listener.pubsub(ignore_subscribe_messages=True)
        listener.psubscribe("PicToDisplay")
        redis.StrictRedis(host=host, port=port, db=1).publish("PicToDisplay", "hello")
        for message in listener.listen():
            result["message"] = message["data"]
            break
        pool = data.connection_pool
        result["tls"] = pool.connection_class.__name__
    except Exception as error:
        result["error"] = f"{type(error).__name__}: {error}"
    print(json.dumps(result))
    """
)


def upstream_style(tls_redis, host: str, expect: str = "success", **env: str) -> dict:
    full_env = {
        "PATH": os.environ.get("PATH", ""),
        "DASHBOARD_REDIS_HOST": host,
        "DASHBOARD_REDIS_PASSWORD": tls_redis["password"],
        "DASHBOARD_REDIS_CA_FILE": str(tls_redis["ca"]),
        **env,
    }
    result = subprocess.run(
        [sys.executable, "-c", UPSTREAM_STYLE_CLIENT, str(ENTRYPOINT_DIR), host, str(tls_redis["port"]), expect],
        env=full_env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return json.loads(result.stdout)


def test_upstream_style_clients_work_through_the_hook(tls_redis):
    assert upstream_style(tls_redis, "localhost") == {"get": "value", "message": "hello", "tls": "SSLConnection"}


def test_without_the_hook_upstream_style_clients_fail(tls_redis):
    plain = redis.StrictRedis(host="localhost", port=tls_redis["port"], db=2, socket_timeout=2, retry=NO_RETRY)
    with pytest.raises(redis.exceptions.ConnectionError):
        plain.ping()


def test_a_client_without_the_password_is_refused(tls_redis):
    tls = {"ssl": True, "ssl_ca_certs": str(tls_redis["ca"]), "retry": NO_RETRY}
    client = redis.StrictRedis(host="localhost", port=tls_redis["port"], **tls)
    with pytest.raises(redis.exceptions.AuthenticationError):
        client.set("x", "y")
    wrong = redis.StrictRedis(host="localhost", port=tls_redis["port"], password="wrong", **tls)
    with pytest.raises(redis.exceptions.AuthenticationError):
        wrong.ping()


def test_plain_tcp_to_the_tls_port_is_refused(tls_redis):
    client = redis.StrictRedis(
        host="localhost", port=tls_redis["port"], password=tls_redis["password"], socket_timeout=2, retry=NO_RETRY
    )
    with pytest.raises(redis.exceptions.ConnectionError):
        client.ping()


def test_hostname_verification_is_on(tls_redis):
    # Same server, same CA, but addressed as 127.0.0.1, a name its certificate does not carry.
    result = upstream_style(tls_redis, "127.0.0.1", "expect-failure")
    assert re.search(r"mismatch|doesn't match|not valid for '127\.0\.0\.1'", result.get("error", "")), result


def test_an_untrusted_certificate_is_refused(tls_redis, tmp_path):
    other_ca = make_pki(tmp_path)["ca"]  # a CA that did not sign the server's certificate
    result = upstream_style(tls_redis, "localhost", "expect-failure", DASHBOARD_REDIS_CA_FILE=str(other_ca))
    assert "certificate verify failed" in result.get("error", ""), result


def test_healthz_against_real_redis(tls_redis, monkeypatch):
    monkeypatch.setenv("DASHBOARD_REDIS_HOST", "localhost")
    monkeypatch.setenv("DASHBOARD_REDIS_PASSWORD", tls_redis["password"])
    monkeypatch.setenv("DASHBOARD_REDIS_CA_FILE", str(tls_redis["ca"]))
    monkeypatch.setattr(redis.Redis, "__init__", redis.Redis.__init__)
    from dashboard_entrypoint import hook

    hook.patch_redis(redis)

    class Cfg:
        values: ClassVar[dict] = {
            ("RedisGlobal", "host"): "localhost",
            ("RedisGlobal", "port"): tls_redis["port"],
            ("RedisDB", "db"): 2,
        }

        def get(self, section, key):
            return self.values[(section, key)]

        getint = get

    assert wsgi.redis_ping(Cfg())() is True
    response = Client(make_application(FakeServer(), ping=wsgi.redis_ping(Cfg()))).get("/healthz")
    assert (response.status_code, response.data) == (200, b"ok\n")


def test_healthz_is_503_when_redis_is_unreachable(monkeypatch):
    class Cfg:
        def get(self, section, key):
            return "localhost"

        def getint(self, section, key):
            return free_port() if key == "port" else 2

    ping = wsgi.redis_ping(Cfg())
    started = time.monotonic()
    response = wsgi.HealthCheck(lambda environ, start: [b""], ping)(
        {"PATH_INFO": "/healthz", "REQUEST_METHOD": "GET"}, lambda status, headers: None
    )
    assert response == [b"redis unavailable\n"]
    assert time.monotonic() - started < 3  # no retries: the probe answers within its timeout
