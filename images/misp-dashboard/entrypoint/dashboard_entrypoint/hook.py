"""Loaded at interpreter start by the image's `.pth` file, in every Python process of the image (the three roles,
and operator tools such as give_honors_to_org.py run with `kubectl exec`), before upstream's code runs.

1. Redis AUTH and TLS: upstream creates every client as `redis.StrictRedis(host=..., port=..., db=...)`.
   `redis.Redis.__init__` is wrapped so that a client for DASHBOARD_REDIS_HOST gets, unless the caller passed them,
   password=DASHBOARD_REDIS_PASSWORD, ssl=True, ssl_cert_reqs="required", ssl_check_hostname=True and
   ssl_ca_certs=DASHBOARD_REDIS_CA_FILE (system CA store when unset). Clients for any other host are untouched, so
   the password is never sent elsewhere. The environment is read at each call, never cached.
2. GeoIP fallback: upstream opens geoip2.database.Reader(pathMaxMindDB) at import and crashes if the file is
   missing. geoip2.database.Reader is replaced by a subclass that, when the file does not exist, returns a reader
   whose lookups raise geoip2.errors.AddressNotFoundError, which upstream already catches ("Address not in
   Database").
3. ZeroMQ keep-alive for the subscriber: upstream's zmq_subscriber.py creates `zmq.Context().socket(zmq.SUB)` and
   connects at once, with no heartbeat: after the abrupt loss of MISP's node it waits on a half-open TCP connection
   forever. `zmq.Context.socket` is wrapped so that every SUB socket gets ZMTP heartbeats and TCP keepalive before
   it connects (libzmq closes and reconnects a connection whose peer stops answering), and writes the time of its
   last received message to SUBSCRIBER_HEARTBEAT in the state directory: the liveness probe's evidence.
"""

from __future__ import annotations

import functools
import inspect
import os
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dashboard_entrypoint.settings import DEFAULT_STATE_DIR, INSECURE_FLAG, parse_bool

_PATCHED = "__dashboard_hook__"
SUBSCRIBER_HEARTBEAT = "subscriber.alive"  # in the state directory; its mtime is the last message's time
# libzmq zmq_setsockopt(3): ZMQ_HEARTBEAT_IVL (ms between ZMTP PINGs), ZMQ_HEARTBEAT_TIMEOUT (ms without any traffic
# before the connection is dropped and re-established), ZMQ_HEARTBEAT_TTL (ms the publisher may keep a silent
# subscriber); TCP keepalive as a second line (idle/interval in seconds, probe count).
ZMQ_SUB_OPTIONS = {
    "HEARTBEAT_IVL": 10_000,
    "HEARTBEAT_TIMEOUT": 30_000,
    "HEARTBEAT_TTL": 60_000,
    "TCP_KEEPALIVE": 1,
    "TCP_KEEPALIVE_IDLE": 60,
    "TCP_KEEPALIVE_INTVL": 10,
    "TCP_KEEPALIVE_CNT": 3,
}
HEARTBEAT_WRITE_SECONDS = 1.0  # at most one file write per second, however busy MISP is


def redis_client_defaults(env: Mapping[str, str] | None = None) -> dict[str, Any] | None:
    """The keyword arguments added to clients of DASHBOARD_REDIS_HOST; None when the hook is inactive."""
    env = os.environ if env is None else env
    if not env.get("DASHBOARD_REDIS_HOST"):
        return None
    insecure = parse_bool(INSECURE_FLAG, env.get(INSECURE_FLAG) or None, default=False)
    tls = parse_bool("DASHBOARD_REDIS_TLS", env.get("DASHBOARD_REDIS_TLS") or None, default=True)
    password = env.get("DASHBOARD_REDIS_PASSWORD") or None
    if not insecure and (not tls or password is None):
        # Fail closed, like the entrypoint: never talk to Redis in clear text or without AUTH by accident.
        raise RuntimeError(
            f"Redis without TLS or without DASHBOARD_REDIS_PASSWORD is refused ({INSECURE_FLAG} is for tests only)"
        )
    defaults: dict[str, Any] = {}
    if password is not None:
        defaults["password"] = password
    if tls:
        defaults.update(ssl=True, ssl_cert_reqs="required", ssl_check_hostname=True)
        if env.get("DASHBOARD_REDIS_CA_FILE"):
            defaults["ssl_ca_certs"] = env["DASHBOARD_REDIS_CA_FILE"]
    return defaults


def patch_redis(redis_module: Any) -> None:
    cls = redis_module.Redis
    original = cls.__init__
    if getattr(original, _PATCHED, False):
        return
    signature = inspect.signature(original)

    @functools.wraps(original)
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        bound = signature.bind_partial(self, *args, **kwargs).arguments
        defaults = redis_client_defaults()
        if (
            defaults is not None
            and bound.get("connection_pool") is None
            and bound.get("unix_socket_path") is None
            and bound.get("host", "localhost") == os.environ["DASHBOARD_REDIS_HOST"]
        ):
            positional = set(list(signature.parameters)[: 1 + len(args)])
            for name, value in defaults.items():
                # Only what the caller left unset: an explicit argument (even ssl=False) always wins.
                if name in signature.parameters and name not in positional and bound.get(name) is None:
                    kwargs[name] = value
        original(self, *args, **kwargs)

    setattr(__init__, _PATCHED, True)
    cls.__init__ = __init__


class _NoDatabaseReader:
    """Stands in for geoip2.database.Reader when there is no GeoLite2 file: every lookup is 'not found'."""

    def __init__(self, path: str, errors: Any) -> None:
        self._path = path
        self._errors = errors

    def _not_found(self, ip_address: object = None, *_: object, **__: object) -> Any:
        raise self._errors.AddressNotFoundError(f"no GeoIP database ({self._path} does not exist): {ip_address}")

    city = country = asn = isp = domain = enterprise = anonymous_ip = anonymous_plus = connection_type = _not_found

    def metadata(self) -> Any:
        raise self._errors.GeoIP2Error(f"no GeoIP database: {self._path} does not exist")

    def close(self) -> None:
        pass

    def __enter__(self) -> _NoDatabaseReader:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


def patch_geoip2(database_module: Any, errors_module: Any) -> None:
    original = database_module.Reader
    if getattr(original, _PATCHED, False):
        return

    class Reader(original):  # type: ignore[misc, valid-type]
        def __new__(cls, fileish: Any = None, *args: Any, **kwargs: Any) -> Any:
            if isinstance(fileish, str | os.PathLike) and not Path(fileish).exists():
                print(
                    f"geoip: {os.fspath(fileish)} does not exist; IP geolocation answers 'address not found'",
                    file=sys.stderr,
                    flush=True,
                )
                return _NoDatabaseReader(os.fspath(fileish), errors_module)
            return super().__new__(cls)

    setattr(Reader, _PATCHED, True)
    Reader.__name__ = Reader.__qualname__ = "Reader"
    Reader.__module__ = original.__module__
    database_module.Reader = Reader


def heartbeat_path(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    return Path(env.get("DASHBOARD_STATE_DIR") or DEFAULT_STATE_DIR) / SUBSCRIBER_HEARTBEAT


def _heartbeat_socket_class(base: Any, path: Path) -> Any:
    last = [float("-inf")]  # monotonic time of the last write, shared by the sockets of this class

    class HeartbeatSocket(base):  # type: ignore[misc, valid-type]
        def recv(self, *args: Any, **kwargs: Any) -> Any:
            message = super().recv(*args, **kwargs)
            if time.monotonic() - last[0] >= HEARTBEAT_WRITE_SECONDS:
                last[0] = time.monotonic()
                try:
                    path.touch()
                except OSError as error:
                    print(f"dashboard hook: cannot write {path}: {error.strerror}", file=sys.stderr, flush=True)
            return message

    return HeartbeatSocket


def patch_zmq(zmq_module: Any) -> None:
    cls = zmq_module.Context
    original = cls.socket
    if getattr(original, _PATCHED, False):
        return

    @functools.wraps(original)
    def socket(self: Any, socket_type: int, socket_class: Any = None, **kwargs: Any) -> Any:
        if socket_type != zmq_module.SUB:
            return original(self, socket_type, socket_class, **kwargs)
        base = socket_class or self._socket_class
        made = original(self, socket_type, _heartbeat_socket_class(base, heartbeat_path()), **kwargs)
        for name, value in ZMQ_SUB_OPTIONS.items():
            made.setsockopt(getattr(zmq_module, name), value)  # before upstream connects: they apply to it
        return made

    setattr(socket, _PATCHED, True)
    cls.socket = socket


def require_zmq_keepalive() -> None:
    """For the subscriber, before upstream's script runs: the ZeroMQ keep-alive must be in place, else raise.

    install() never raises (it runs in every process of the image); the subscriber must not run without its
    keep-alive, so its start calls this: a no-op when the .pth hook already patched pyzmq, else the patch is made
    here, and any failure (pyzmq missing, an option it does not know) stops the start."""
    import zmq

    patch_zmq(zmq)
    if not getattr(zmq.Context.socket, _PATCHED, False):
        raise RuntimeError("zmq.Context.socket is not wrapped")


def install() -> None:
    """Called from the .pth file; never raises (a broken hook must not hide the process's own error). What the
    subscriber cannot do without is checked again at its start (require_zmq_keepalive)."""
    try:
        import redis

        patch_redis(redis)
    except ImportError:
        pass
    except Exception as error:
        print(f"dashboard hook: Redis patch not installed: {error!r}", file=sys.stderr)
    try:
        import geoip2.database
        import geoip2.errors

        patch_geoip2(geoip2.database, geoip2.errors)
    except ImportError:
        pass
    except Exception as error:
        print(f"dashboard hook: GeoIP fallback not installed: {error!r}", file=sys.stderr)
    try:
        import zmq

        patch_zmq(zmq)
    except ImportError:
        pass
    except Exception as error:
        print(f"dashboard hook: ZeroMQ keep-alive not installed: {error!r}", file=sys.stderr)
