"""Prepare the state directory for a role and build the command that replaces this process."""

from __future__ import annotations

import os
import socket
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

from dashboard_entrypoint import ROLES, ConfigError, config, geoip, hook
from dashboard_entrypoint.settings import INSECURE_FLAG, Settings

GUNICORN_APP = "dashboard_entrypoint.wsgi:application"
RUN_SCRIPT = "dashboard_entrypoint.run_script"  # upstream script with a SIGTERM handler (it runs as PID 1)
# MISP's ZeroMQ publisher sends misp_json_self whenever it has been idle for 10 s (MISP app/files/scripts/mispzmq/
# mispzmq.py: blpop timeout=10), so a subscriber with nothing for this long has lost its connection.
SUBSCRIBER_SILENCE_SECONDS = 60
PUBLISHER_CONNECT_SECONDS = 3.0


def log(line: str) -> None:
    print(f"misp-dashboard: {line}", file=sys.stderr, flush=True)


def _write(path: Path, data: bytes, mode: int) -> None:
    """Atomic write: a restarted container never sees a half-written file, and the subscriber and dispatcher
    containers of one pod may share the state directory. Each writes a temporary file of a unique name: a
    PID would not do, both containers run as PID 1 in their own PID namespaces."""
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    temporary = Path(name)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        temporary.chmod(mode)
        temporary.replace(path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def check_layout(settings: Settings) -> Path:
    """Upstream reads <app>/config/*.cfg: that must be the state directory's config/ (a symlink made at build)."""
    config_dir = settings.state_dir / "config"
    try:
        config_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as error:
        raise ConfigError(
            f"cannot create {config_dir} ({error.strerror}): mount a writable emptyDir at {settings.state_dir}"
        ) from None
    linked = settings.app_dir / "config"
    if linked.resolve() != config_dir.resolve():
        raise ConfigError(f"{linked} must be a symlink to {config_dir} (image layout broken)")
    return config_dir


def prepare(settings: Settings, role: str, *, geoip_options: dict[str, object] | None = None) -> None:
    if role not in ROLES:
        raise ConfigError(f"unknown role {role!r}: use one of {', '.join(ROLES)}")
    if role == "subscriber" and settings.misp_zmq_url is None:
        raise ConfigError("DASHBOARD_MISP_ZMQ_URL is required for the subscriber role (e.g. tcp://misp-zmq:50000)")
    if settings.insecure_redis:
        log(f"WARNING: {INSECURE_FLAG} is set: Redis TLS/AUTH checks are off. Tests only, never in a cluster.")
    config_dir = check_layout(settings)
    text = config.render_config(settings)
    ranking_default = settings.defaults_dir / config.RANKING_DEFAULT
    if settings.ranking_file is not None:
        config.validate_ranking(settings.ranking_file, ranking_default)
        ranking = settings.ranking_file.read_bytes()
    else:
        ranking = ranking_default.read_bytes()
    _write(config_dir / "config.cfg", text.encode(), 0o600)  # holds the session secret
    _write(config_dir / "ranking.cfg", ranking, 0o644)
    if role == "subscriber":
        # a fresh start counts as a message: the liveness probe gives the first connection the same time
        (settings.state_dir / hook.SUBSCRIBER_HEARTBEAT).touch()
    if role == "dispatcher":
        # Only the dispatcher geolocates; the web role never looks an address up and runs with the stand-in reader.
        geoip.ensure_database(
            settings.state_dir / config.GEOIP_RELATIVE,
            settings.maxmind_account_id,
            settings.maxmind_license_key,
            log=log,
            **(geoip_options or {}),
        )


def build_argv(settings: Settings, role: str, python: str = sys.executable) -> list[str]:
    app = settings.app_dir
    if role == "web":
        return [
            python, "-m", "gunicorn",
            "--chdir", str(app),
            "--bind", f"0.0.0.0:{settings.port}",
            "--worker-class", "gthread",
            "--workers", str(settings.web_workers),
            # Each open Server-Sent Events stream (/_logs, /_maps, /_eventStreamLastContributor,
            # /_eventStreamAwards; two per open page) holds one thread for as long as the page is open.
            "--threads", str(settings.web_threads),
            "--timeout", "60",  # worker heartbeat; gthread keeps beating while threads stream
            "--graceful-timeout", "20",  # streams never end: cut them before Kubernetes' 30 s grace period
            "--keep-alive", "620",  # above the load balancer's idle timeout (600 s), so that it closes first
            "--worker-tmp-dir", "/dev/shm",  # noqa: S108 (tmpfs for the heartbeat file)
            "--no-control-socket",  # gunicorn 27 would create $HOME/.gunicorn/gunicorn.ctl
            "--access-logfile", "-",
            "--error-logfile", "-",
            GUNICORN_APP,
        ]  # fmt: skip
    if role == "subscriber":
        assert settings.misp_zmq_url is not None
        script = [str(app / "zmq_subscriber.py"), "-n", settings.misp_name, "-u", settings.misp_zmq_url]
        return [python, "-m", RUN_SCRIPT, *script]
    if role == "dispatcher":
        return [python, "-m", RUN_SCRIPT, str(app / "zmq_dispatcher.py"), "-s", "1"]
    raise ConfigError(f"unknown role {role!r}: use one of {', '.join(ROLES)}")


def run(settings: Settings, role: str, execv: Callable[[str, list[str]], object] = os.execv) -> None:
    prepare(settings, role)
    argv = build_argv(settings, role)
    os.chdir(settings.app_dir)
    if role == "subscriber":
        # Upstream prints every raw MISP message to stdout; its log (stderr, see [Log]) is what matters.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.close(devnull)
    log(f"starting {role}: {' '.join(argv[1:5])} ...")
    execv(argv[0], argv)


def publisher_reachable(env: dict[str, str] | None = None) -> bool:
    """Whether MISP's ZeroMQ publisher (DASHBOARD_MISP_ZMQ_URL, tcp://HOST:PORT) accepts a TCP connection now."""
    url = (os.environ if env is None else env).get("DASHBOARD_MISP_ZMQ_URL", "")
    host, _, port = url.removeprefix("tcp://").rpartition(":")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=PUBLISHER_CONNECT_SECONDS):
            return True
    except (OSError, ValueError):
        return False


def healthcheck(
    state_dir: Path,
    port: int,
    *,
    init_cmdline: Path = Path("/proc/1/cmdline"),
    opener: Callable[..., object] = urllib.request.urlopen,
    reachable: Callable[[], bool] = publisher_reachable,
) -> bool:
    """Docker's HEALTHCHECK and the subscriber's liveness probe. The role is PID 1's command line: gunicorn (web) ->
    GET /healthz; the subscriber -> a message from MISP within SUBSCRIBER_SILENCE_SECONDS (the .pth hook records
    each one), or else MISP's publisher not reachable: a restart cannot help then (libzmq reconnects by itself once
    it is back), and failing would only put the container in CrashLoopBackOff, whose back-off (up to 5 minutes)
    would delay the reconnection; the dispatcher -> Redis PING with the written config."""
    try:
        command = init_cmdline.read_bytes().split(b"\0")
    except OSError:
        return False
    if any(part.endswith(b"zmq_subscriber.py") for part in command):
        try:
            age = time.time() - (state_dir / hook.SUBSCRIBER_HEARTBEAT).stat().st_mtime
        except OSError:
            return False
        # silent while the publisher answers: the subscriber is stuck on a connection that no longer leads there
        return age <= SUBSCRIBER_SILENCE_SECONDS or not reachable()
    if b"gunicorn" in command:
        try:
            with opener(f"http://127.0.0.1:{port}/healthz", timeout=5) as response:  # type: ignore[attr-defined]
                return response.status == 200
        except Exception:
            return False
    import configparser

    import redis

    cfg = configparser.ConfigParser()
    if not cfg.read(state_dir / "config" / "config.cfg"):
        return False
    try:
        client = redis.StrictRedis(
            host=cfg.get("RedisGlobal", "host"), port=cfg.getint("RedisGlobal", "port"), socket_timeout=5
        )
        return bool(client.ping())
    except Exception:
        return False
