"""The start-up hook: which Redis clients get AUTH/TLS, and the GeoIP stand-in when there is no database."""

from __future__ import annotations

import types

import pytest
import redis
from dashboard_entrypoint import hook

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


def test_install_never_raises(monkeypatch):
    monkeypatch.setattr(hook, "patch_redis", lambda module: (_ for _ in ()).throw(ValueError("boom")))
    hook.install()  # logs, does not raise
