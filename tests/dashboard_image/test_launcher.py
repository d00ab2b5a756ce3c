"""Roles: the files written to the state directory, the command each role runs, and start-up refusals."""

from __future__ import annotations

import os
import re
import signal
import socket
import stat
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml
from dashboard_entrypoint import ConfigError, launcher, settings

from .support import ENTRYPOINT_DIR, RANKING, SECRET


def test_prepare_writes_config_and_ranking(env, layout):
    launcher.prepare(settings.load(env), "web")
    config_file = layout["app"] / "config" / "config.cfg"  # read through the symlink, like upstream
    assert "auth_enabled = True" in config_file.read_text()
    assert stat.S_IMODE(config_file.stat().st_mode) == 0o600  # it holds the session secret
    assert (layout["app"] / "config" / "ranking.cfg").read_text() == RANKING
    assert sorted(p.name for p in (layout["state"] / "config").iterdir()) == ["config.cfg", "ranking.cfg"]
    assert not (layout["state"] / "geoip").exists()  # only the dispatcher geolocates


def test_ranking_file_replaces_upstream_default(env, layout, tmp_path):
    custom = tmp_path / "community-ranking.cfg"
    custom.write_text(RANKING.replace("1=Cadet", "1=Recruit"))
    env["DASHBOARD_RANKING_FILE"] = str(custom)
    launcher.prepare(settings.load(env), "dispatcher")
    assert "1=Recruit" in (layout["app"] / "config" / "ranking.cfg").read_text()


def test_invalid_ranking_file_refused_before_writing(env, layout, tmp_path):
    custom = tmp_path / "community-ranking.cfg"
    custom.write_text(RANKING.replace("[additionalInfo]", "[Nonsense]\nx=1\n[additionalInfo]"))
    env["DASHBOARD_RANKING_FILE"] = str(custom)
    with pytest.raises(ConfigError, match=r"section \[Nonsense\] is not a section of upstream's ranking.cfg"):
        launcher.prepare(settings.load(env), "web")
    assert not (layout["state"] / "config" / "config.cfg").exists()


def test_state_dir_must_be_what_upstream_reads(env, layout):
    (layout["app"] / "config").unlink()
    (layout["app"] / "config").mkdir()
    with pytest.raises(ConfigError, match="must be a symlink to"):
        launcher.prepare(settings.load(env), "web")


def test_unwritable_state_dir(env, layout):
    env["DASHBOARD_STATE_DIR"] = "/proc/misp-dashboard-state"
    with pytest.raises(ConfigError, match="mount a writable emptyDir at /proc/misp-dashboard-state"):
        launcher.prepare(settings.load(env), "web")


def test_subscriber_needs_the_zmq_url(env):
    del env["DASHBOARD_MISP_ZMQ_URL"]
    with pytest.raises(ConfigError, match="DASHBOARD_MISP_ZMQ_URL is required for the subscriber role"):
        launcher.prepare(settings.load(env), "subscriber")


def test_web_argv(env, layout):
    env.update(DASHBOARD_PORT="8081", DASHBOARD_WEB_WORKERS="3", DASHBOARD_WEB_THREADS="48")
    argv = launcher.build_argv(settings.load(env), "web", python="/py")
    assert argv[:3] == ["/py", "-m", "gunicorn"]
    assert argv[-1] == "dashboard_entrypoint.wsgi:application"  # the wrapper, never `python server.py`
    options = dict(zip(argv[3:-1:2], argv[4:-1:2], strict=False))
    assert options["--chdir"] == str(layout["app"])
    assert options["--bind"] == "0.0.0.0:8081"
    assert options["--worker-class"] == "gthread"
    assert (options["--workers"], options["--threads"]) == ("3", "48")
    assert int(options["--keep-alive"]) > 600  # above the load balancer's idle timeout (see the next test)
    assert int(options["--graceful-timeout"]) < 30  # below Kubernetes' default grace period
    assert options["--worker-tmp-dir"] == "/dev/shm"
    assert "--no-control-socket" in argv  # nothing written under $HOME on a read-only root
    assert "--reload" not in argv
    assert "--debug" not in argv


def test_subscriber_and_dispatcher_argv(env, layout):
    loaded = settings.load(env)
    assert launcher.build_argv(loaded, "subscriber", python="/py") == [
        "/py",
        "-m",
        "dashboard_entrypoint.run_script",
        str(layout["app"] / "zmq_subscriber.py"),
        "-n",
        "misp.example.org",
        "-u",
        "tcp://misp-zmq.misp.svc.cluster.local:50000",
    ]
    assert launcher.build_argv(loaded, "dispatcher", python="/py") == [
        "/py",
        "-m",
        "dashboard_entrypoint.run_script",
        str(layout["app"] / "zmq_dispatcher.py"),
        "-s",
        "1",
    ]
    with pytest.raises(ConfigError, match="unknown role 'zmq_subscribers'"):
        launcher.build_argv(loaded, "zmq_subscribers")


def test_run_prepares_then_execs(env, layout, monkeypatch):
    calls = []
    monkeypatch.chdir(layout["state"])
    launcher.run(settings.load(env), "dispatcher", execv=lambda path, argv: calls.append((path, argv)))
    script = str(layout["app"] / "zmq_dispatcher.py")
    assert calls == [(sys.executable, [sys.executable, "-m", "dashboard_entrypoint.run_script", script, "-s", "1"])]
    assert Path.cwd() == layout["app"]
    assert (layout["state"] / "config" / "config.cfg").is_file()


FAKE_DISPATCHER = """\
import configparser, os, sys
# like upstream: the config path is derived from the script's own location
configfile = os.path.join(os.path.dirname(os.path.realpath(__file__)), 'config/config.cfg')
cfg = configparser.ConfigParser()
cfg.read(configfile)
ranking = configparser.ConfigParser()
ranking.read(os.path.join(os.path.dirname(os.path.realpath(__file__)), 'helpers/../config/ranking.cfg'))
print(cfg.get('Auth', 'auth_enabled'), cfg.get('Auth', 'session_secret'), ranking.get('rankTitle', '1'), sys.argv[1:])
"""


def run_entrypoint(env: dict[str, str], role: str) -> subprocess.CompletedProcess[str]:
    full_env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(ENTRYPOINT_DIR), **env}
    return subprocess.run(
        [sys.executable, "-m", "dashboard_entrypoint", role],
        env=full_env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_entrypoint_execs_the_role_which_reads_the_written_config(env, layout):
    (layout["app"] / "helpers").mkdir()
    (layout["app"] / "zmq_dispatcher.py").write_text(FAKE_DISPATCHER)
    result = run_entrypoint(env, "dispatcher")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"True {SECRET} Cadet ['-s', '1']"
    assert "geoip: no MaxMind credentials" in result.stderr


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"DASHBOARD_SESSION_SECRET": ""}, "DASHBOARD_SESSION_SECRET is required"),
        ({"DASHBOARD_AUTH_ENABLED": "False"}, "unknown environment variable DASHBOARD_AUTH_ENABLED"),
        ({"DASHBOARD_MISP_URL": "http://misp"}, "must be an https:// URL"),
    ],
)
def test_entrypoint_refuses_with_one_line(env, change, message):
    env.update(change)
    result = run_entrypoint(env, "web")
    assert result.returncode == 78  # EX_CONFIG
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("misp-dashboard: refusing to start: ")
    assert message in lines[0]


def test_entrypoint_usage(env):
    result = run_entrypoint(env, "server.py")
    assert result.returncode == 64
    assert "usage: python -m dashboard_entrypoint {web|subscriber|dispatcher|healthcheck}" in result.stderr


def init_cmdline(tmp_path, *argv: str):
    path = tmp_path / "cmdline"
    path.write_bytes(b"\0".join(a.encode() for a in argv) + b"\0")
    return path


def test_healthcheck_web_role(layout, tmp_path):
    gunicorn = init_cmdline(tmp_path, "/opt/venv/bin/python", "-m", "gunicorn", "--chdir", "/app")
    seen = []

    class Response:
        status = 200

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    def opener(url, timeout):
        seen.append(url)
        return Response()

    assert launcher.healthcheck(layout["state"], 8123, init_cmdline=gunicorn, opener=opener) is True
    assert seen == ["http://127.0.0.1:8123/healthz"]

    def failing(url, timeout):
        raise OSError("connection refused")

    assert launcher.healthcheck(layout["state"], 8123, init_cmdline=gunicorn, opener=failing) is False


def test_healthcheck_before_start(layout, tmp_path):
    dispatcher = init_cmdline(tmp_path, "python", "-m", "dashboard_entrypoint", "dispatcher")
    assert launcher.healthcheck(layout["state"], 8001, init_cmdline=dispatcher) is False  # no config yet
    assert launcher.healthcheck(layout["state"], 8001, init_cmdline=tmp_path / "missing") is False


def test_dispatcher_healthcheck_pings_redis(env, layout, tmp_path, monkeypatch):
    import redis

    launcher.prepare(settings.load(env), "dispatcher")
    script = init_cmdline(tmp_path, "python", "-m", "dashboard_entrypoint.run_script", "/app/zmq_dispatcher.py")
    pinged = []
    monkeypatch.setattr(redis.Redis, "ping", lambda self: pinged.append(self.connection_pool.connection_kwargs) or True)
    assert launcher.healthcheck(layout["state"], 8001, init_cmdline=script) is True
    assert pinged[0]["host"] == env["DASHBOARD_REDIS_HOST"]
    assert pinged[0]["port"] == 6379


def test_subscriber_and_dispatcher_can_share_the_state_directory(env, layout):
    loaded = settings.load(env)
    launcher.prepare(loaded, "subscriber")
    first = (layout["state"] / "config" / "config.cfg").read_text()
    launcher.prepare(loaded, "dispatcher")
    assert (layout["state"] / "config" / "config.cfg").read_text() == first
    assert not [p.name for p in (layout["state"] / "config").iterdir() if p.name.startswith(".")]


def test_gunicorn_outlasts_the_load_balancers_idle_timeout(repo, env):
    """Else gunicorn closes connections the load balancer still sends requests on: sporadic 502s."""
    ingress = yaml.safe_load((repo / "apps/misp-dashboard/base/ingress.yaml").read_text())
    attributes = ingress["metadata"]["annotations"]["alb.ingress.kubernetes.io/load-balancer-attributes"]
    idle = int(re.search(r"idle_timeout\.timeout_seconds=(\d+)", attributes).group(1))
    argv = launcher.build_argv(settings.load(env), "web")
    assert int(argv[argv.index("--keep-alive") + 1]) > idle


def test_two_containers_starting_at_once_never_trip_over_each_other(env, layout, monkeypatch):
    """The subscriber and dispatcher containers share the state directory and both run as PID 1."""
    monkeypatch.setattr(launcher.os, "getpid", lambda: 1)
    loaded = settings.load(env)

    def start(_: int) -> None:
        for _ in range(200):
            launcher.prepare(loaded, "subscriber")

    with ThreadPoolExecutor(max_workers=2) as pool:
        list(pool.map(start, range(2)))  # re-raises what either container would have died of
    assert "Cadet" in (layout["state"] / "config" / "ranking.cfg").read_text()
    assert not [p.name for p in (layout["state"] / "config").iterdir() if p.name.startswith(".")]


FAKE_LOOP = """\
import os, sys, time
print(os.path.realpath(__file__), sys.argv[1:], sys.path[0] == os.path.dirname(os.path.realpath(__file__)), flush=True)
try:
    print("looping", flush=True)
    while True:
        time.sleep(0.05)
except KeyboardInterrupt:  # what upstream's subscriber and dispatcher catch
    print("stopped cleanly", flush=True)
"""


def test_run_script_turns_sigterm_into_a_clean_stop(tmp_path):
    script = tmp_path / "zmq_subscriber.py"
    script.write_text(FAKE_LOOP)
    process = subprocess.Popen(
        [sys.executable, "-m", "dashboard_entrypoint.run_script", str(script), "-n", "misp"],
        env={"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(ENTRYPOINT_DIR)},
        stdout=subprocess.PIPE,
        text=True,
    )
    first = process.stdout.readline()
    assert first.strip() == f"{script} ['-n', 'misp'] True"
    assert process.stdout.readline().strip() == "looping"
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=10) == 0
    assert process.stdout.read().strip() == "stopped cleanly"


FAKE_SUBSCRIBER = """\
import sys
import time
print("raw MISP message", flush=True)  # upstream prints every message to stdout
print("a log line", file=sys.stderr, flush=True)
"""


def test_subscriber_stdout_is_discarded_and_its_log_kept(env, layout):
    (layout["app"] / "zmq_subscriber.py").write_text(FAKE_SUBSCRIBER)
    result = run_entrypoint(env, "subscriber")
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert "a log line" in result.stderr


def test_subscriber_liveness_rests_on_misps_messages(env, layout, tmp_path):
    subscriber = init_cmdline(
        tmp_path, "/opt/venv/bin/python", "-m", "dashboard_entrypoint.run_script", "/app/zmq_subscriber.py", "-n", "m"
    )
    state = layout["state"]
    answering = []  # whether MISP's publisher accepts connections, as the probe finds it

    def probe() -> bool:
        return launcher.healthcheck(state, 8001, init_cmdline=subscriber, reachable=lambda: answering[-1])

    answering.append(True)
    assert probe() is False  # not started
    launcher.prepare(settings.load(env), "subscriber")
    assert probe() is True  # a start counts
    heartbeat = state / "subscriber.alive"
    silent = time.time() - launcher.SUBSCRIBER_SILENCE_SECONDS - 1
    os.utime(heartbeat, (silent, silent))
    assert probe() is False  # silent while MISP answers: stuck on a dead connection
    answering.append(False)
    assert probe() is True  # MISP is down: a restart would not help, libzmq reconnects by itself
    heartbeat.touch()  # what the hook does at each message
    answering.append(True)
    assert probe() is True


def test_publisher_reachability_is_a_real_tcp_connection():
    with socket.create_server(("127.0.0.1", 0)) as listening:
        port = listening.getsockname()[1]
        assert launcher.publisher_reachable({"DASHBOARD_MISP_ZMQ_URL": f"tcp://127.0.0.1:{port}"}) is True
    assert launcher.publisher_reachable({"DASHBOARD_MISP_ZMQ_URL": f"tcp://127.0.0.1:{port}"}) is False  # closed
    assert launcher.publisher_reachable({}) is False


LOGGING_DISPATCHER = """\
import logging, os, sys
log = sys.argv[1]
os.makedirs("helpers", exist_ok=True)
logging.basicConfig(filename=log, filemode="a", level=logging.INFO)  # as upstream's zmq_dispatcher.py
logger = logging.getLogger("zmq_dispatcher")
helper = logging.getLogger("helpers.live_helper")  # as upstream's helpers/live_helper.py: its own handler
handler = logging.FileHandler(log)
handler.setFormatter(logging.Formatter("%(asctime)s:%(levelname)s:%(name)s:%(message)s"))
helper.setLevel(logging.INFO)
helper.addHandler(handler)
updates = logging.getLogger("updates")  # as upstream's updates.py
updates.addHandler(logging.FileHandler(log))
updates.setLevel(logging.INFO)
helper.info("helper line")
updates.info("update line")
logger.info("Processed 0 message(s) since last sleep.")
logger.info("Processed 3 message(s) since last sleep.")
logger.info("Handling attribute")
"""


def test_dispatcher_logs_each_line_once_and_not_when_idle(tmp_path):
    script = tmp_path / "zmq_dispatcher.py"
    script.write_text(LOGGING_DISPATCHER)
    log = tmp_path / "out.log"
    subprocess.run(
        [sys.executable, "-m", "dashboard_entrypoint.run_script", str(script), str(log)],
        env={"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(ENTRYPOINT_DIR)},
        cwd=tmp_path,
        check=True,
        timeout=30,
    )
    lines = log.read_text().splitlines()
    assert [line.endswith("helper line") for line in lines].count(True) == 1, lines
    assert [line.endswith("update line") for line in lines].count(True) == 1, lines
    assert not [line for line in lines if "Processed 0 message(s)" in line]
    assert [line for line in lines if line.endswith("Processed 3 message(s) since last sleep.")]
    assert [line for line in lines if line.endswith("Handling attribute")]
