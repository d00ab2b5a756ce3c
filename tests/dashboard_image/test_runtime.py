"""The web role at run time, over real HTTP, against a real redis-server and a MISP double.

The WSGI wrapper (dashboard_entrypoint.wsgi) wraps an upstream-shaped server.py (upstream_server.py) exactly as in
the image, served by werkzeug's threaded server (one thread per connection, closing the response iterable when a
write fails, as gunicorn's gthread worker does).
"""

from __future__ import annotations

import configparser
import importlib
import json
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import redis
import requests
from dashboard_entrypoint import launcher, misp, sessions, settings, streams, wsgi
from flask import Flask
from werkzeug.serving import make_server

from tests.conftest import system_tool
from tests.servers.started import wait_until_answering
from tests.servers.tls import free_port

from .misp_double import Account, MispDouble, running
from .support import ENTRYPOINT_DIR

pytestmark = pytest.mark.servers
UPSTREAM_DOUBLE = Path(__file__).with_name("upstream_server.py")
FAST = streams.StreamTiming(poll_seconds=0.05, keepalive_seconds=0.2)
STREAMS = ("/_logs", "/_maps", "/_eventStreamLastContributor", "/_eventStreamAwards")
PASSWORD = "correct horse"  # pragma: allowlist secret


@pytest.fixture(scope="module")
def redis_port(tmp_path_factory) -> Iterator[int]:
    port = free_port()
    directory = tmp_path_factory.mktemp("redis")
    command = [system_tool("redis-server", "redis-server"), "--port", str(port), "--bind", "127.0.0.1"]
    command += ["--save", "", "--appendonly", "no", "--dir", str(directory)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    probe = redis.Redis(port=port, socket_timeout=1)
    wait_until_answering(process, probe.ping, (redis.exceptions.ConnectionError,), "redis-server")
    probe.close()
    yield port
    process.terminate()
    process.wait(timeout=10)


def handlers() -> int:
    """Threads serving a connection (socketserver's ThreadingMixIn names them after process_request_thread)."""
    return sum("process_request_thread" in thread.name for thread in threading.enumerate())


def at_login(answer: requests.Response) -> bool:
    """Whether a request ended on the login form (upstream's unauthorized handler adds an error to the query)."""
    return urlsplit(answer.url).path == "/login"


def wait_for(condition: Callable[[], bool], seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


class Dashboard:
    def __init__(self, url: str, store: sessions.SessionStore, misp_double: MispDouble, redis_port: int) -> None:
        self.url = url
        self.store = store
        self.misp = misp_double
        self.admin = redis.Redis(port=redis_port, decode_responses=True)

    def login(self, email: str = "analyst@example.org") -> requests.Session:
        browser = requests.Session()
        answer = browser.post(f"{self.url}/login", data={"username": email, "password": PASSWORD})
        assert answer.url == f"{self.url}/", answer.text
        return browser

    def redis_clients(self) -> int:
        return len(self.admin.client_list()) - 1  # not this admin connection

    def subscribers(self) -> int:
        return sum(1 for c in self.admin.client_list() if int(c["sub"]) or int(c["psub"]))


@pytest.fixture
def dashboard(env, layout, redis_port, monkeypatch) -> Iterator[Dashboard]:
    env.update(
        DASHBOARD_REDIS_HOST="127.0.0.1",
        DASHBOARD_REDIS_PORT=str(redis_port),
        DASHBOARD_REDIS_PASSWORD="",
        DASHBOARD_REDIS_TLS="false",
        DASHBOARD_TEST_ONLY_INSECURE_REDIS="true",
    )
    launcher.prepare(settings.load(env), "web")
    shutil.copy(UPSTREAM_DOUBLE, layout["app"] / "server.py")
    monkeypatch.syspath_prepend(str(layout["app"]))  # what gunicorn --chdir does
    sys.modules.pop("server", None)
    server = importlib.import_module("server")
    redis.Redis(port=redis_port).flushall()
    double = MispDouble(accounts={"analyst@example.org": Account(PASSWORD)})
    with running(double):
        store = sessions.SessionStore(
            wsgi.redis_client(server.cfg, decode_responses=True),
            sessions.SessionPolicy(max_age_seconds=3600, recheck_seconds=3600, misp_timeout_seconds=2),
            misp_url=double.url,
            verify=False,
        )
        application = wsgi.make_application(server, timing=FAST, store=store, threads=64)
        http = make_server("127.0.0.1", 0, application, threaded=True)
        thread = threading.Thread(target=http.serve_forever, daemon=True)
        thread.start()
        try:
            yield Dashboard(f"http://127.0.0.1:{http.server_port}", store, double, redis_port)
        finally:
            http.shutdown()
            thread.join(timeout=10)
            sys.modules.pop("server", None)


def open_stream(dashboard: Dashboard, path: str, cookie: str) -> tuple[socket.socket, bytes]:
    """A browser's EventSource: GET with the session cookie; returns the socket and what came before a keep-alive."""
    port = int(dashboard.url.rsplit(":", 1)[1])
    connection = socket.create_connection(("127.0.0.1", port), timeout=5)
    request = f"GET {path} HTTP/1.1\r\nHost: dashboard\r\nAccept: text/event-stream\r\nCookie: session={cookie}\r\n\r\n"
    connection.sendall(request.encode())
    received = b""
    while streams.KEEPALIVE.encode() not in received:
        chunk = connection.recv(4096)  # socket.timeout here: the stream never writes while nothing is published
        assert chunk, f"{path} closed: {received!r}"
        received += chunk
    return connection, received


def test_dropped_streams_free_their_threads_and_redis_connections(dashboard):
    with dashboard.login() as browser:
        cookie = browser.cookies["session"]
    assert wait_for(lambda: handlers() == 0)  # the login's connections are gone
    clients = dashboard.redis_clients()
    for _ in range(5):
        opened = [open_stream(dashboard, path, cookie) for path in STREAMS]
        assert handlers() == len(STREAMS)  # one thread per open stream
        assert dashboard.subscribers() == len(STREAMS)  # one pub/sub connection per open stream
        for connection, head in opened:
            assert head.startswith(b"HTTP/1.1 200")
            assert b"text/event-stream" in head
            connection.close()  # the page goes away without a word
        assert wait_for(lambda: handlers() == 0), threading.enumerate()
        assert wait_for(lambda: dashboard.subscribers() == 0), dashboard.admin.client_list()
        # what stays is the idle pool of the clients the requests used, at most one per concurrent request
        assert dashboard.redis_clients() <= clients + len(STREAMS), dashboard.admin.client_list()
    assert requests.get(f"{dashboard.url}/healthz", timeout=5).text == "ok\n"
    assert requests.get(f"{dashboard.url}/livez", timeout=5).text == "ok\n"


def test_a_page_whose_filters_reject_everything_still_frees_its_thread(dashboard):
    """Upstream's EventMessage.to_json_ev() is '' for a message the page's `filters` cookie rejects: nothing is
    written, so only keep-alives can reveal that the page has gone, however busy the channel."""
    with dashboard.login() as browser:
        cookie = browser.cookies["session"]
    assert wait_for(lambda: handlers() == 0)
    cfg = sys.modules["server"].cfg
    port = dashboard.admin.connection_pool.connection_kwargs["port"]
    publisher = redis.Redis(port=port, db=cfg.getint("RedisLog", "db"))
    busy = threading.Event()

    def publish() -> None:
        while not busy.wait(0.01):
            publisher.publish(cfg.get("RedisLog", "channel"), json.dumps({"name": "Attribute", "zmqName": "misp"}))

    feeder = threading.Thread(target=publish)
    feeder.start()
    try:
        # the cookie as werkzeug.http.dump_cookie quotes it (werkzeug drops an unquoted value with '"')
        logs, _ = open_stream(dashboard, "/_logs", cookie + '; filters="{\\"name\\":\\"Object\\"}"')
        received = read_until(logs, streams.KEEPALIVE.encode())  # the next keep-alive, while the channel is busy
        assert b"data:" not in received
        logs.close()
        assert wait_for(lambda: handlers() == 0), threading.enumerate()
        assert wait_for(lambda: dashboard.subscribers() == 0)
    finally:
        busy.set()
        feeder.join(timeout=10)


def read_until(connection: socket.socket, wanted: bytes) -> bytes:
    received = b""
    while wanted not in received:
        chunk = connection.recv(4096)
        assert chunk, received
        received += chunk
    return received


def test_streams_deliver_what_the_dispatcher_publishes(dashboard):
    cookie = dashboard.login().cookies["session"]
    cfg = sys.modules["server"].cfg
    port = dashboard.admin.connection_pool.connection_kwargs["port"]
    maps, _ = open_stream(dashboard, "/_maps", cookie)
    assert wait_for(lambda: dashboard.subscribers() == 1)
    redis.Redis(port=port, db=cfg.getint("RedisMap", "db")).publish(cfg.get("RedisMap", "channelDisp"), "[1, 2]")
    read_until(maps, b"data: [1, 2]\n\n")
    maps.close()
    awards, _ = open_stream(dashboard, "/_eventStreamAwards", cookie)
    log = {"log": '{"org": "CIRCL", "epoch": 7, "award": ["badge", 1]}'}
    redis.Redis(port=port, db=cfg.getint("RedisLog", "db")).publish(
        cfg.get("RedisLog", "channelLastAwards"), json.dumps(log)
    )
    read_until(awards, b'data: {"org": "CIRCL", "epoch": 7, "award": ["badge", 1]}\n\n')
    awards.close()


def test_logout_ends_the_session_everywhere(dashboard):
    browser = dashboard.login()
    stolen = browser.cookies["session"]
    stream, _ = open_stream(dashboard, "/_maps", stolen)
    assert browser.get(f"{dashboard.url}/", timeout=5).text == "index of analyst@example.org"
    browser.get(f"{dashboard.url}/logout", timeout=5)
    replay = requests.get(f"{dashboard.url}/", cookies={"session": stolen}, timeout=5)
    assert at_login(replay), "a copy of the cookie must not outlive /logout"
    assert dashboard.misp.logouts == 1
    assert dashboard.misp.sessions == {}, "the MISP session kept in Redis must end with the dashboard's"
    stream.settimeout(5)
    while chunk := stream.recv(4096):  # the open stream ends at its next keep-alive
        assert b"data:" not in chunk
    stream.close()


def test_sessions_end_at_their_maximum_age(dashboard):
    dashboard.store.policy = sessions.SessionPolicy(max_age_seconds=1, recheck_seconds=3600)
    browser = dashboard.login()
    assert browser.get(f"{dashboard.url}/", timeout=5).text.startswith("index of")
    time.sleep(1.5)
    assert at_login(browser.get(f"{dashboard.url}/", timeout=5))


@pytest.mark.parametrize("change", ["dashboard_access", "disabled", "misp_logout", "change_pw"])
def test_access_is_rechecked_against_misp(dashboard, change):
    dashboard.store.policy = sessions.SessionPolicy(max_age_seconds=3600, recheck_seconds=1)
    browser = dashboard.login()
    assert browser.get(f"{dashboard.url}/", timeout=5).text.startswith("index of")
    account = dashboard.misp.accounts["analyst@example.org"]
    if change == "dashboard_access":
        account.dashboard_access = 0
    elif change == "disabled":
        account.disabled = True
    elif change == "change_pw":
        account.change_pw = True  # a site admin forces a password reset
    else:
        dashboard.misp.sessions.clear()
    assert browser.get(f"{dashboard.url}/", timeout=5).text.startswith("index of")  # until the next check is due
    time.sleep(1.2)
    assert at_login(browser.get(f"{dashboard.url}/", timeout=5))
    assert dashboard.misp.sessions == {}, "a denied session's MISP session is logged out too"


def test_recheck_is_rate_limited_and_survives_a_slow_misp(dashboard, capfd):
    dashboard.store.policy = sessions.SessionPolicy(max_age_seconds=3600, recheck_seconds=1, misp_timeout_seconds=0.3)
    browser = dashboard.login()
    before = dashboard.misp.me_requests
    for _ in range(5):
        assert browser.get(f"{dashboard.url}/", timeout=5).text.startswith("index of")
    assert dashboard.misp.me_requests == before  # none due yet
    time.sleep(1.1)
    dashboard.misp.delay_seconds = 1.0  # MISP does not answer in time: no conclusion, the session goes on
    assert browser.get(f"{dashboard.url}/", timeout=5).text.startswith("index of")
    assert dashboard.misp.me_requests == before + 1  # the check was made, and timed out
    assert "MISP did not answer the access check of analyst@example.org" in capfd.readouterr().err
    dashboard.misp.delay_seconds = 0


@pytest.mark.parametrize(
    ("account", "message"),
    [
        (Account(PASSWORD, change_pw=True), misp.MUST_CHANGE),
        (Account(PASSWORD, dashboard_access=False), misp.NO_ACCESS),
        (Account(PASSWORD, dashboard_access=None), misp.NO_ACCESS),
        (Account("another password"), "Username and Password does not match"),
    ],
)
def test_login_refusals_are_messages_not_errors(dashboard, account, message):
    dashboard.misp.accounts["analyst@example.org"] = account
    browser = requests.Session()
    answer = browser.post(
        f"{dashboard.url}/login", data={"username": "analyst@example.org", "password": PASSWORD}, timeout=5
    )
    assert answer.status_code == 200
    assert message in answer.text
    assert at_login(browser.get(f"{dashboard.url}/", timeout=5)), "a refused login must not open a session"
    assert dashboard.misp.sessions == {}, "a MISP session opened for a refused login is logged out"


def test_login_has_a_timeout(dashboard):
    dashboard.store.policy = sessions.SessionPolicy(max_age_seconds=3600, misp_timeout_seconds=0.3)
    dashboard.misp.delay_seconds = 2.0
    started = time.monotonic()
    answer = requests.post(
        f"{dashboard.url}/login", data={"username": "analyst@example.org", "password": PASSWORD}, timeout=10
    )
    assert time.monotonic() - started < 1.5
    assert "no answer within 0.3 s" in answer.text


GUNICORN_THREADS = 6  # the smallest the image accepts: streams.RESERVED_THREADS + one page's two streams


@pytest.fixture
def gunicorn(env, layout, redis_port, tmp_path) -> Iterator[tuple[str, str]]:
    """The web role as the image runs it (gunicorn 27 gthread, the wrapper around an upstream-shaped server.py),
    1 worker x GUNICORN_THREADS threads; yields its URL and a session cookie of a logged-in user."""
    env.update(
        DASHBOARD_REDIS_HOST="127.0.0.1",
        DASHBOARD_REDIS_PORT=str(redis_port),
        DASHBOARD_REDIS_PASSWORD="",
        DASHBOARD_REDIS_TLS="false",
        DASHBOARD_TEST_ONLY_INSECURE_REDIS="true",
        DASHBOARD_WEB_THREADS=str(GUNICORN_THREADS),
    )
    loaded = settings.load(env)
    launcher.prepare(loaded, "web")
    shutil.copy(UPSTREAM_DOUBLE, layout["app"] / "server.py")
    redis.Redis(port=redis_port).flushall()
    port = free_port()
    argv = launcher.build_argv(loaded, "web")
    argv[argv.index("--bind") + 1] = f"127.0.0.1:{port}"
    argv[argv.index("--worker-tmp-dir") + 1] = str(tmp_path)
    argv[argv.index("--workers") + 1] = "1"
    log = (tmp_path / "gunicorn.log").open("w")
    process = subprocess.Popen(
        argv,
        env={**env, "PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "PYTHONPATH": str(ENTRYPOINT_DIR)},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        assert wait_for(lambda: _answers(f"{url}/livez"), 30), (tmp_path / "gunicorn.log").read_text()
        cfg = configparser.ConfigParser()
        cfg.read(layout["app"] / "config" / "config.cfg")
        store = sessions.SessionStore(
            wsgi.redis_client(cfg, decode_responses=True),
            sessions.SessionPolicy.from_config(cfg),
            misp_url="https://misp.invalid",
            verify=True,
        )
        signer = Flask("cookie")  # Flask's session cookie, signed with the session secret the entrypoint wrote
        signer.secret_key = cfg.get("Auth", "session_secret")
        cookie = signer.session_interface.get_signing_serializer(signer).dumps(
            {"_user_id": "analyst@example.org", "_fresh": True, sessions.SESSION_ID: store.open("analyst", {})}
        )
        yield url, cookie
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.RequestException:
        return False


def test_streams_never_take_the_threads_probes_need(gunicorn):
    """gunicorn's gthread worker queues a request while all its threads are busy: were every thread streaming,
    the liveness probe would time out and the pod be restarted, again and again. Streams over the worker's limit are
    answered at once with an SSE retry instead, and the probe and pages are always served."""
    url, cookie = gunicorn
    port = int(url.rsplit(":", 1)[1])
    held, refused = [], []
    for _ in range(GUNICORN_THREADS):  # as many streams as threads: without a limit, /livez would never answer
        connection = socket.create_connection(("127.0.0.1", port), timeout=5)
        connection.sendall(f"GET /_maps HTTP/1.1\r\nHost: dashboard\r\nCookie: session={cookie}\r\n\r\n".encode())
        received = read_until(connection, b"\n\n")
        assert received.startswith(b"HTTP/1.1 200"), received
        (refused if b"retry: 15000\n\n" in received else held).append(connection)
    assert len(held) == GUNICORN_THREADS - streams.RESERVED_THREADS
    started = time.monotonic()
    assert requests.get(f"{url}/livez", timeout=5).text == "ok\n"
    assert requests.get(f"{url}/", cookies={"session": cookie}, timeout=5).text == "index of analyst@example.org"
    assert time.monotonic() - started < 3
    for connection in held + refused:
        connection.close()
