"""The start-up hook: which Redis clients get AUTH/TLS, and the GeoIP stand-in when there is no database."""

from __future__ import annotations

import os
import subprocess
import sys
import types

import pytest
import redis
from dashboard_entrypoint import hook

from .support import ENTRYPOINT_DIR

HOST = "dashboard.abc123.euw1.cache.amazonaws.com"


@pytest.fixture
def patched_redis(monkeypatch):
    """redis.Redis with the hook installed, restored afterwards (other tests use redis-py too)."""
    monkeypatch.setattr(redis.Redis, "__init__", redis.Redis.__init__)
    monkeypatch.setenv("DASHBOARD_REDIS_HOST", HOST)
    monkeypatch.setenv("DASHBOARD_REDIS_PASSWORD", "token")
    monkeypatch.delenv("DASHBOARD_REDIS_TLS", raising=False)
    monkeypatch.delenv("DASHBOARD_REDIS_CA_FILE", raising=False)
    monkeypatch.delenv("DASHBOARD_TEST_ONLY_INSECURE_REDIS", raising=False)
    hook.patch_redis(redis)
    return monkeypatch


def kwargs_of(client: redis.Redis) -> dict:
    pool = client.connection_pool
    return {**pool.connection_kwargs, "connection_class": pool.connection_class}


def test_upstream_style_client_gets_auth_and_verified_tls(patched_redis):
    client = redis.StrictRedis(host=HOST, port=6379, db=2, decode_responses=True)  # as upstream's server.py
    seen = kwargs_of(client)
    assert seen["password"] == "token"  # pragma: allowlist secret
    assert seen["connection_class"] is redis.SSLConnection
    assert seen["ssl_cert_reqs"] == "required"
    assert seen["ssl_check_hostname"] is True
    assert seen["ssl_ca_certs"] is None  # the system CA store (ElastiCache certificates are publicly trusted)
    assert (seen["host"], seen["port"], seen["db"]) == (HOST, 6379, 2)


def test_positional_host_and_custom_ca(patched_redis, tmp_path):
    patched_redis.setenv("DASHBOARD_REDIS_CA_FILE", str(tmp_path / "ca.pem"))
    seen = kwargs_of(redis.Redis(HOST, 6379, 3))  # as upstream's clean.py
    assert seen["password"] == "token"  # pragma: allowlist secret
    assert seen["ssl_ca_certs"] == str(tmp_path / "ca.pem")


def test_explicit_arguments_win(patched_redis):
    positional = "positional-password"  # pragma: allowlist secret
    assert kwargs_of(redis.Redis(HOST, 6379, 0, positional))["password"] == positional
    assert kwargs_of(redis.Redis(host=HOST, password="kw"))["password"] == "kw"  # pragma: allowlist secret
    assert kwargs_of(redis.Redis(host=HOST, ssl=False))["connection_class"] is redis.Connection


def test_other_hosts_and_pools_are_untouched(patched_redis):
    seen = kwargs_of(redis.Redis(host="localhost", port=6250, db=2))  # e.g. upstream's retrieve_map_pic.py
    assert seen["password"] is None
    assert seen["connection_class"] is redis.Connection
    pool = redis.ConnectionPool(host=HOST)
    assert redis.Redis(connection_pool=pool).connection_pool is pool
    assert pool.connection_kwargs.get("password") is None


def test_environment_is_read_at_each_call(patched_redis):
    patched_redis.setenv("DASHBOARD_REDIS_PASSWORD", "rotated")
    assert kwargs_of(redis.Redis(host=HOST))["password"] == "rotated"  # pragma: allowlist secret
    patched_redis.delenv("DASHBOARD_REDIS_HOST")
    assert kwargs_of(redis.Redis(host=HOST))["password"] is None  # hook inactive without the contract


def test_insecure_redis_needs_the_test_flag(patched_redis):
    patched_redis.setenv("DASHBOARD_REDIS_TLS", "false")
    with pytest.raises(RuntimeError, match="Redis without TLS or without DASHBOARD_REDIS_PASSWORD is refused"):
        redis.Redis(host=HOST)
    patched_redis.setenv("DASHBOARD_TEST_ONLY_INSECURE_REDIS", "true")
    seen = kwargs_of(redis.Redis(host=HOST))
    assert (seen["password"], seen["connection_class"]) == ("token", redis.Connection)


def test_patching_twice_wraps_once(patched_redis):
    wrapped = redis.Redis.__init__
    hook.patch_redis(redis)
    assert redis.Redis.__init__ is wrapped


def fake_geoip2(tmp_path):
    """Minimal stand-ins for geoip2.database and geoip2.errors (the real ones are only in the image)."""
    errors = types.SimpleNamespace()

    class GeoIP2Error(Exception):
        pass

    class AddressNotFoundError(GeoIP2Error):
        pass

    errors.GeoIP2Error, errors.AddressNotFoundError = GeoIP2Error, AddressNotFoundError

    class Reader:
        def __init__(self, fileish, locales=None, mode=0):
            with open(fileish, "rb") as handle:  # noqa: PTH123 (like maxminddb: FileNotFoundError if absent)
                self.data = handle.read()

        def city(self, ip_address):
            return f"city of {ip_address} from {self.data.decode()}"

    database = types.SimpleNamespace(Reader=Reader)
    return database, errors


def test_missing_geoip_database_gives_a_not_found_reader(tmp_path, capsys):
    database, errors = fake_geoip2(tmp_path)
    original = database.Reader
    hook.patch_geoip2(database, errors)
    reader = database.Reader(str(tmp_path / "GeoLite2-City.mmdb"))  # as upstream's geo_helper, file absent
    with pytest.raises(errors.AddressNotFoundError, match="no GeoIP database"):
        reader.city("8.8.8.8")
    with pytest.raises(errors.AddressNotFoundError):
        reader.country("8.8.8.8")
    assert "IP geolocation answers 'address not found'" in capsys.readouterr().err
    # with a database file, the real reader is used
    (tmp_path / "real.mmdb").write_text("mmdb")
    real = database.Reader(str(tmp_path / "real.mmdb"))
    assert isinstance(real, original)
    assert real.city("1.1.1.1") == "city of 1.1.1.1 from mmdb"


def test_install_never_raises_and_says_what_is_missing(monkeypatch, capsys):
    monkeypatch.setattr(hook, "patch_redis", lambda module: (_ for _ in ()).throw(ValueError("boom")))
    monkeypatch.setattr(hook, "patch_geoip2", lambda *modules: None)
    hook.install()  # logs, does not raise
    assert capsys.readouterr().err == "dashboard hook: Redis patch not installed: ValueError('boom')\n"


class FakeZmq:
    """pyzmq's surface the hook touches (pyzmq 27.3.0 zmq/sugar/context.py Context.socket(socket_type,
    socket_class=None, **kwargs) builds socket_class(context, socket_type)); a socket refuses options after connect,
    so the test sees that the hook sets them before upstream connects, as libzmq needs for heartbeats."""

    SUB, PUB = 2, 1
    HEARTBEAT_IVL, HEARTBEAT_TIMEOUT, HEARTBEAT_TTL = 75, 80, 76
    TCP_KEEPALIVE, TCP_KEEPALIVE_CNT, TCP_KEEPALIVE_IDLE, TCP_KEEPALIVE_INTVL = 34, 35, 36, 37

    class Socket:
        def __init__(self, context, socket_type):
            self.type, self.options, self.connected, self.inbox = socket_type, {}, False, []

        def setsockopt(self, option, value):
            assert not self.connected, "option set after connect: it would not apply to the connection"
            self.options[option] = value

        def connect(self, url):
            self.connected = True

        def recv(self, flags=0, copy=True, track=False):
            return self.inbox.pop(0)

    class Context:
        def __init__(self):
            self._socket_class = FakeZmq.Socket

        def socket(self, socket_type, socket_class=None, **kwargs):
            return (socket_class or self._socket_class)(self, socket_type, **kwargs)


def test_subscriber_sockets_get_heartbeats_and_record_each_message(monkeypatch, tmp_path):
    monkeypatch.setenv("DASHBOARD_STATE_DIR", str(tmp_path))
    zmq = FakeZmq()
    hook.patch_zmq(zmq)
    socket = zmq.Context().socket(zmq.SUB)  # as upstream's zmq_subscriber.py, then connect
    socket.connect("tcp://misp-zmq:50000")
    assert socket.options == {
        FakeZmq.HEARTBEAT_IVL: 10_000,
        FakeZmq.HEARTBEAT_TIMEOUT: 30_000,
        FakeZmq.HEARTBEAT_TTL: 60_000,
        FakeZmq.TCP_KEEPALIVE: 1,
        FakeZmq.TCP_KEEPALIVE_IDLE: 60,
        FakeZmq.TCP_KEEPALIVE_INTVL: 10,
        FakeZmq.TCP_KEEPALIVE_CNT: 3,
    }
    heartbeat = tmp_path / hook.SUBSCRIBER_HEARTBEAT
    assert not heartbeat.exists()
    socket.inbox.append(b"misp_json_self {}")
    assert socket.recv() == b"misp_json_self {}"
    assert heartbeat.exists()
    assert zmq.Context().socket(zmq.PUB).options == {}  # only subscribers


def test_heartbeats_on_real_pyzmq(monkeypatch, tmp_path):
    """Only where pyzmq is installed (the image has it; the test environment may not)."""
    zmq = pytest.importorskip("zmq")
    monkeypatch.setenv("DASHBOARD_STATE_DIR", str(tmp_path))
    monkeypatch.setattr(zmq.Context, "socket", zmq.Context.socket)
    hook.patch_zmq(zmq)
    context = zmq.Context()
    publisher = context.socket(zmq.PUB)
    port = publisher.bind_to_random_port("tcp://127.0.0.1")
    subscriber = context.socket(zmq.SUB)
    subscriber.connect(f"tcp://127.0.0.1:{port}")
    subscriber.setsockopt_string(zmq.SUBSCRIBE, "")
    assert subscriber.getsockopt(zmq.HEARTBEAT_TIMEOUT) == 30_000
    assert subscriber.getsockopt(zmq.TCP_KEEPALIVE) == 1
    subscriber.setsockopt(zmq.RCVTIMEO, 5000)
    for _ in range(50):
        publisher.send(b"misp_json_self {}")
        if subscriber.poll(100):
            break
    assert subscriber.recv() == b"misp_json_self {}"
    assert (tmp_path / hook.SUBSCRIBER_HEARTBEAT).exists()
    context.destroy(linger=0)


SUBSCRIBER_PROBE = """\
import zmq
print(getattr(zmq.Context.socket, "__dashboard_hook__", False), flush=True)
"""


def run_subscriber(tmp_path, pythonpath):
    script = tmp_path / "zmq_subscriber.py"
    script.write_text(SUBSCRIBER_PROBE)
    return subprocess.run(
        [sys.executable, "-m", "dashboard_entrypoint.run_script", str(script), "-n", "misp"],
        env={"PATH": os.environ.get("PATH", ""), "PYTHONPATH": os.pathsep.join(map(str, pythonpath))},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_subscriber_never_runs_without_its_keep_alive(tmp_path):
    """No .pth here (as if the hook had failed at interpreter start): the subscriber's start installs it or refuses."""
    pytest.importorskip("zmq")
    started = run_subscriber(tmp_path, [ENTRYPOINT_DIR])
    assert (started.returncode, started.stdout) == (0, "True\n"), started.stderr
    broken = tmp_path / "broken"
    (broken / "zmq").mkdir(parents=True)
    (broken / "zmq" / "__init__.py").write_text("SUB = 2\n")  # a pyzmq without Context: the patch cannot be made
    refused = run_subscriber(tmp_path, [ENTRYPOINT_DIR, broken])
    assert refused.returncode == 78
    assert refused.stdout == ""  # upstream's script did not run
    assert refused.stderr.startswith("misp-dashboard: refusing to start: no ZeroMQ keep-alive (AttributeError(")


def test_the_image_build_fails_without_any_of_the_hooks():
    dockerfile = (ENTRYPOINT_DIR.parent / "Dockerfile").read_text()
    for patched in ("redis.Redis.__init__", "d.Reader", "zmq.Context.socket"):
        assert f"assert getattr({patched}, '__dashboard_hook__', False)" in dockerfile
