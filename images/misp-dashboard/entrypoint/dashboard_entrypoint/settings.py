"""The environment contract: DASHBOARD_* variables -> a validated Settings object (no I/O except file checks)."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from dashboard_entrypoint import ConfigError
from dashboard_entrypoint.streams import RESERVED_THREADS

# The variables the Kubernetes manifests set (see images/misp-dashboard/README.md).
CONTRACT = (
    "DASHBOARD_MISP_URL",
    "DASHBOARD_MISP_ZMQ_URL",
    "DASHBOARD_REDIS_HOST",
    "DASHBOARD_REDIS_PORT",
    "DASHBOARD_REDIS_PASSWORD",
    "DASHBOARD_REDIS_TLS",
    "DASHBOARD_REDIS_CA_FILE",
    "DASHBOARD_SESSION_SECRET",
    "DASHBOARD_MAXMIND_ACCOUNT_ID",
    "DASHBOARD_MAXMIND_LICENSE_KEY",
    "DASHBOARD_SETTINGS_FILE",
    "DASHBOARD_RANKING_FILE",
    "DASHBOARD_PORT",
)
# Optional tuning of the web role, and the image's own layout (set by the Dockerfile; tests point them elsewhere).
TUNING = ("DASHBOARD_WEB_WORKERS", "DASHBOARD_WEB_THREADS")
LAYOUT = ("DASHBOARD_APP_DIR", "DASHBOARD_DEFAULTS_DIR", "DASHBOARD_STATE_DIR")
# Lets a test run against a local Redis without TLS or password. Never set it in a cluster.
INSECURE_FLAG = "DASHBOARD_TEST_ONLY_INSECURE_REDIS"
TESTS_ONLY = f"{INSECURE_FLAG} is for tests only"
KNOWN = frozenset((*CONTRACT, *TUNING, *LAYOUT, INSECURE_FLAG))

DEFAULT_APP_DIR = "/opt/misp-dashboard/app"
DEFAULT_DEFAULTS_DIR = "/opt/misp-dashboard/defaults"
DEFAULT_STATE_DIR = "/var/lib/misp-dashboard"
MIN_WEB_THREADS = RESERVED_THREADS + 2  # room for one page's two streams beside the threads streams never take
MIN_SECRET_LENGTH = 32
UPSTREAM_PLACEHOLDER_SECRET = "**Change_Me**"  # noqa: S105 (the value refused)

_TRUE = frozenset(("1", "true", "yes", "on"))
_FALSE = frozenset(("0", "false", "no", "off"))
_HOSTNAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$|^\[[0-9A-Fa-f:.]+\]$")


@dataclass(frozen=True)
class Settings:
    misp_url: str
    misp_zmq_url: str | None
    redis_host: str
    redis_port: int
    redis_password: str | None
    redis_tls: bool
    redis_ca_file: Path | None
    session_secret: str
    maxmind_account_id: str | None
    maxmind_license_key: str | None
    settings_file: Path | None
    ranking_file: Path | None
    port: int
    web_workers: int
    web_threads: int
    insecure_redis: bool
    app_dir: Path
    defaults_dir: Path
    state_dir: Path

    @property
    def misp_name(self) -> str:
        """The feed name the subscriber reports (shown in the live log): the MISP host name."""
        return urlsplit(self.misp_url).hostname or "misp"


def _get(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name)
    if value is None or value == "":
        return None
    if any(ch in value for ch in "\r\n\0"):
        raise ConfigError(f"{name} must be a single line (it contains a line break or NUL character)")
    return value


def _require(env: Mapping[str, str], name: str, why: str = "") -> str:
    value = _get(env, name)
    if value is None:
        raise ConfigError(f"{name} is required{why}")
    return value


def parse_bool(name: str, value: str | None, default: bool) -> bool:
    if value is None:
        return default
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ConfigError(f"{name} must be true or false, not {value!r}")


def web_threads(env: Mapping[str, str]) -> int:
    """DASHBOARD_WEB_THREADS: gunicorn's --threads, also read by each worker to size its streams."""
    return _int("DASHBOARD_WEB_THREADS", _get(env, "DASHBOARD_WEB_THREADS"), 32, MIN_WEB_THREADS, 1000)


def _int(name: str, value: str | None, default: int, low: int, high: int) -> int:
    if value is None:
        return default
    if not re.fullmatch(r"[0-9]+", value.strip()):
        hint = " (a Kubernetes Service link? set enableServiceLinks: false)" if value.startswith("tcp://") else ""
        raise ConfigError(f"{name} must be an integer, not {value!r}{hint}")
    number = int(value)
    if not low <= number <= high:
        raise ConfigError(f"{name} must be between {low} and {high}, not {number}")
    return number


def _file(env: Mapping[str, str], name: str) -> Path | None:
    value = _get(env, name)
    if value is None:
        return None
    path = Path(value)
    if not path.is_file():
        raise ConfigError(f"{name} points to {value}, which is not a readable file")
    return path


def _misp_url(env: Mapping[str, str]) -> str:
    url = _require(env, "DASHBOARD_MISP_URL", " (the https:// URL of MISP, used for login)").strip()
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.hostname:
        raise ConfigError(f"DASHBOARD_MISP_URL must be an https:// URL (login sends passwords to it), not {url!r}")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise ConfigError("DASHBOARD_MISP_URL must not contain credentials, a query or a fragment")
    # Upstream appends "/users/login" etc. to the value as it is, so no trailing slash.
    return url.rstrip("/")


def _zmq_url(env: Mapping[str, str]) -> str | None:
    url = _get(env, "DASHBOARD_MISP_ZMQ_URL")
    if url is None:
        return None
    parts = urlsplit(url.strip())
    try:
        port = parts.port
    except ValueError:
        port = None
    if parts.scheme != "tcp" or not parts.hostname or port is None or parts.path not in ("", "/"):
        raise ConfigError(f"DASHBOARD_MISP_ZMQ_URL must look like tcp://HOST:PORT, not {url!r}")
    return url.strip()


def _secret(env: Mapping[str, str]) -> str:
    secret = _require(env, "DASHBOARD_SESSION_SECRET", " (one random value for all replicas, kept across restarts)")
    if secret != secret.strip():
        raise ConfigError("DASHBOARD_SESSION_SECRET must not start or end with whitespace")
    if len(secret) < MIN_SECRET_LENGTH or secret == UPSTREAM_PLACEHOLDER_SECRET:
        raise ConfigError(f"DASHBOARD_SESSION_SECRET must be a random value of at least {MIN_SECRET_LENGTH} characters")
    return secret


def load(env: Mapping[str, str] | None = None) -> Settings:
    """Validate the environment; raises ConfigError with a one-line message on the first problem."""
    env = os.environ if env is None else env
    unknown = sorted(name for name in env if name.startswith("DASHBOARD_") and name not in KNOWN)
    if unknown:
        raise ConfigError(
            f"unknown environment variable {unknown[0]}: the image reads only {', '.join(CONTRACT)}"
            " (authentication, TLS checks and cookie flags cannot be changed)"
        )
    insecure = parse_bool(INSECURE_FLAG, _get(env, INSECURE_FLAG), default=False)
    redis_tls = parse_bool("DASHBOARD_REDIS_TLS", _get(env, "DASHBOARD_REDIS_TLS"), default=True)
    redis_password = _get(env, "DASHBOARD_REDIS_PASSWORD")
    if not insecure:
        if not redis_tls:
            raise ConfigError(f"DASHBOARD_REDIS_TLS=false is refused: Redis traffic must be encrypted ({TESTS_ONLY})")
        if redis_password is None:
            raise ConfigError(f"DASHBOARD_REDIS_PASSWORD is required (the Redis AUTH token; {TESTS_ONLY})")
    redis_host = _require(env, "DASHBOARD_REDIS_HOST").strip()
    if not _HOSTNAME.match(redis_host):
        raise ConfigError(f"DASHBOARD_REDIS_HOST must be a host name, not {redis_host!r}")
    account = _get(env, "DASHBOARD_MAXMIND_ACCOUNT_ID")
    license_key = _get(env, "DASHBOARD_MAXMIND_LICENSE_KEY")
    if (account is None) != (license_key is None):
        raise ConfigError(
            "DASHBOARD_MAXMIND_ACCOUNT_ID and DASHBOARD_MAXMIND_LICENSE_KEY must be set together or not at all"
        )
    if account is not None and not account.strip().isdigit():
        raise ConfigError("DASHBOARD_MAXMIND_ACCOUNT_ID must be the numeric MaxMind account ID")
    return Settings(
        misp_url=_misp_url(env),
        misp_zmq_url=_zmq_url(env),
        redis_host=redis_host,
        redis_port=_int("DASHBOARD_REDIS_PORT", _get(env, "DASHBOARD_REDIS_PORT"), 6379, 1, 65535),
        redis_password=redis_password,
        redis_tls=redis_tls,
        redis_ca_file=_file(env, "DASHBOARD_REDIS_CA_FILE"),
        session_secret=_secret(env),
        maxmind_account_id=account.strip() if account else None,
        maxmind_license_key=license_key.strip() if license_key else None,
        settings_file=_file(env, "DASHBOARD_SETTINGS_FILE"),
        ranking_file=_file(env, "DASHBOARD_RANKING_FILE"),
        port=_int("DASHBOARD_PORT", _get(env, "DASHBOARD_PORT"), 8001, 1024, 65535),
        web_workers=_int("DASHBOARD_WEB_WORKERS", _get(env, "DASHBOARD_WEB_WORKERS"), 2, 1, 64),
        web_threads=web_threads(env),
        insecure_redis=insecure,
        app_dir=Path(_get(env, "DASHBOARD_APP_DIR") or DEFAULT_APP_DIR),
        defaults_dir=Path(_get(env, "DASHBOARD_DEFAULTS_DIR") or DEFAULT_DEFAULTS_DIR),
        state_dir=Path(_get(env, "DASHBOARD_STATE_DIR") or DEFAULT_STATE_DIR),
    )
