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
"""

from __future__ import annotations

import functools
import inspect
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dashboard_entrypoint.settings import INSECURE_FLAG, parse_bool

_PATCHED = "__dashboard_hook__"


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


def install() -> None:
    """Called from the .pth file; never raises (a broken hook must not hide the process's own error)."""
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
