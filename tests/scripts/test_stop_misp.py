"""apps/misp/base/files/stop-misp.sh, the preStop hook of misp-core, against stand-in processes.

In the pod it stops supervisord's programs with supervisorctl and php-fpm's master (found by its
process title, "php-fpm: master process (…)") with SIGQUIT, and MISP's workers, which take job
after job and run each as a child process (MISP StartWorkerShell::main, BackgroundJob::run). Here
supervisorctl is a stand-in that answers ``status`` as supervisor 4 prints it and stops a process
as supervisord does (SIGTERM, then SIGKILL after stopwaitsecs), recording whether the process still
had a job running; each worker is a process that takes the next job from its queue the moment it
has finished one, as MISP's does; php-fpm's master records the signal it gets and finishes a
"request" before it exits.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

FPM_MASTER = """
import signal, sys, time
log = open(sys.argv[1], "a", buffering=1)
def stop(number, _frame):
    log.write(f"fpm got {signal.Signals(number).name} at {time.monotonic():.2f}\\n")
    if number == signal.SIGQUIT:
        time.sleep(1)  # the request in flight
    log.write(f"fpm exits at {time.monotonic():.2f}\\n")
    sys.exit(0)
signal.signal(signal.SIGQUIT, stop)
signal.signal(signal.SIGTERM, stop)
log.write("fpm ready\\n")
while True:
    time.sleep(0.1)
"""

# A MISP worker: takes the next job of its queue at once, runs it as a child, records both; no
# signal handler (SIGTERM ends it, as it ends MISP's).
WORKER = """
import os, subprocess, sys, time
name, queue, log = sys.argv[1:]
taken = os.path.join(queue, "taken")
def record(text):
    with open(log, "a") as out:
        out.write(f"{text} at {time.monotonic():.2f}\\n")
while True:
    for job in sorted(j for j in os.listdir(queue) if j != "taken"):
        try:
            os.rename(os.path.join(queue, job), os.path.join(taken, job))
        except FileNotFoundError:
            continue
        record(f"{name} starts {job}")
        seconds = open(os.path.join(taken, job)).read().strip()
        # The job, a child process, records its own end (its worker may be frozen by then).
        subprocess.run(["/bin/sh", "-c", f'sleep {seconds} && echo "{job} done at 0" >> {log}'], check=True)
        record(f"{name} finished {job}")
        break
    else:
        time.sleep(0.01)
"""

# supervisorctl: `status GROUP:*` and `stop NAME…|all` over the processes named in STATE/NAME.pid.
SUPERVISORCTL = """
import os, signal, sys, time
state, log = os.environ["SUPERVISOR_STATE"], os.environ["MISP_EKS_STOP_LOG"]
def alive(pid):
    try:
        return open(f"/proc/{pid}/stat").read().rsplit(") ", 1)[1][0] != "Z"
    except OSError:
        return False
def has_job(pid):
    children = open(f"/proc/{pid}/task/{pid}/children").read().split()
    return any(alive(int(child)) for child in children)
programs = {f[:-4]: int(open(os.path.join(state, f)).read()) for f in sorted(os.listdir(state))}
command, names = sys.argv[1], sys.argv[2:]
if command == "status":
    running = True
    for name, pid in programs.items():
        if alive(pid):
            print(f"{name:33}RUNNING   pid {pid}, uptime 0:00:05")
        else:
            running = False
            print(f"{name:33}STOPPED   Dec 08 04:00 AM")
    sys.exit(0 if running else 3)  # supervisor >= 4.2: 3 when a process is not running
with open(log, "a") as out:
    out.write(f"supervisorctl {command} {' '.join(names)} at {time.monotonic():.2f}\\n")
for name in programs if names == ["all"] else names:
    pid = programs[name]
    if not alive(pid):
        continue
    if has_job(pid):
        with open(log, "a") as out:
            out.write(f"cut {name} at {time.monotonic():.2f}\\n")
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 10  # stopwaitsecs
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if alive(pid):
        os.kill(pid, signal.SIGKILL)
"""


@pytest.fixture
def world(tmp_path) -> Iterator[dict[str, object]]:
    """PATH with supervisorctl, php-fpm's master, and a way to start workers and queue jobs."""
    bin_dir, state = tmp_path / "bin", tmp_path / "supervisor"
    bin_dir.mkdir()
    state.mkdir()
    log = tmp_path / "events.log"
    (tmp_path / "supervisorctl.py").write_text(SUPERVISORCTL)
    (bin_dir / "supervisorctl").write_text(f'#!/bin/bash\nexec {sys.executable} {tmp_path / "supervisorctl.py"} "$@"\n')
    (bin_dir / "supervisorctl").chmod(0o755)
    (tmp_path / "worker.py").write_text(WORKER)
    (tmp_path / "fpm.py").write_text(FPM_MASTER)
    master = subprocess.Popen(
        ["/bin/bash", "-c", f'exec -a "php-fpm: master process (test)" {sys.executable} {tmp_path / "fpm.py"} {log}']
    )
    started: list[subprocess.Popen[bytes]] = []

    def reaped(process: subprocess.Popen[bytes]) -> None:
        # Reaped as soon as it exits, as supervisord and tini reap theirs: a zombie would look alive.
        started.append(process)
        threading.Thread(target=process.wait, daemon=True).start()

    reaped(master)
    deadline = time.monotonic() + 10
    while "fpm ready" not in (log.read_text() if log.exists() else ""):
        assert time.monotonic() < deadline, "the stand-in master did not start"
        time.sleep(0.05)

    def worker(name: str, queue: str, *jobs: int) -> None:
        """misp-workers:NAME working on QUEUE, whose jobs last the given seconds, in order."""
        directory = tmp_path / "queues" / queue
        (directory / "taken").mkdir(parents=True, exist_ok=True)
        for number, seconds in enumerate(jobs, 1):
            (directory / f"{name}-job{number}").write_text(str(seconds))
        process = subprocess.Popen([sys.executable, str(tmp_path / "worker.py"), name, str(directory), str(log)])
        reaped(process)
        (state / f"{name}.pid").write_text(str(process.pid))
        if jobs:
            wait_for(log, f"{name} starts {name}-job1")

    try:
        yield {"tmp": tmp_path, "bin": bin_dir, "state": state, "log": log, "master": master, "worker": worker}
    finally:
        for process in started:
            if process.poll() is None:
                process.send_signal(signal.SIGCONT)
                process.send_signal(signal.SIGKILL)
            process.wait(timeout=10)


def wait_for(log: Path, text: str, seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while text not in (log.read_text() if log.exists() else ""):
        assert time.monotonic() < deadline, f"never logged: {text}"
        time.sleep(0.02)


def stop(
    repo: Path, world: dict[str, object], role: str, *budgets: int
) -> tuple[subprocess.CompletedProcess[str], float]:
    env = {
        "PATH": f"{world['bin']}{os.pathsep}{os.environ['PATH']}",
        "MISP_EKS_ROLE": role,
        "MISP_EKS_STOP_LOG": str(world["log"]),
        "SUPERVISOR_STATE": str(world["state"]),
    }
    began = time.monotonic()
    result = subprocess.run(
        ["/bin/bash", str(repo / "apps/misp/base/files/stop-misp.sh"), *map(str, budgets)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return result, time.monotonic() - began


def events(world: dict[str, object]) -> list[str]:
    return [line.split(" at ")[0] for line in Path(str(world["log"])).read_text().splitlines()]


def test_web_pods_pause_then_php_fpm_finishes_its_requests(repo, world):
    result, took = stop(repo, world, "web", 1, 0, 10)
    assert result.returncode == 0, result.stderr
    assert events(world) == [
        "fpm ready",
        "supervisorctl stop all",
        "stop-misp: supervisord's programs stopped",
        "fpm got SIGQUIT",  # graceful, never SIGTERM
        "fpm exits",
        "stop-misp: php-fpm stopped",
    ]
    assert world["master"].wait(timeout=5) == 0
    assert 2 <= took < 8  # the pause, then the request in flight, and no longer


def test_the_workers_pod_lets_running_jobs_finish_and_starts_no_new_one(repo, world):
    world["worker"]("misp-workers:scheduler_00", "scheduler")
    world["worker"]("misp-workers:prio_00", "prio")  # idle: stopped at once
    world["worker"]("misp-workers:default_00", "default", 2, 2)  # a job running, the next one queued
    result, took = stop(repo, world, "workers", 0, 30, 10)
    assert result.returncode == 0, result.stderr
    happened = events(world)
    assert happened.index("supervisorctl stop misp-workers:scheduler_00") < happened.index(
        "supervisorctl stop misp-workers:prio_00"
    )
    assert happened.index("supervisorctl stop misp-workers:prio_00") < happened.index(
        "misp-workers:default_00-job1 done"
    )
    assert happened.index("misp-workers:default_00-job1 done") < happened.index(
        "supervisorctl stop misp-workers:default_00"
    )
    assert not [e for e in happened if e.startswith("cut ")]  # no job was cut
    assert "misp-workers:default_00 starts misp-workers:default_00-job2" not in happened  # nor a new one begun
    assert (world["tmp"] / "queues/default/misp-workers:default_00-job2").exists()  # left for the next pod
    assert happened[-5:] == [
        "supervisorctl stop all",
        "stop-misp: supervisord's programs stopped",
        "fpm got SIGQUIT",
        "fpm exits",
        "stop-misp: php-fpm stopped",
    ]
    assert 1 <= took < 8  # waited for the job, and for no other


def test_a_job_that_outlasts_its_budget_is_cut_at_the_deadline(repo, world):
    world["worker"]("misp-workers:default_00", "default", 60)
    result, took = stop(repo, world, "workers", 0, 2, 10)
    assert result.returncode == 0, result.stderr
    happened = events(world)
    assert "stop-misp: jobs still running after 2s, cut: misp-workers:default_00" in happened
    assert "cut misp-workers:default_00" in happened
    assert "fpm got SIGQUIT" in happened
    assert took < 8


def test_php_fpm_that_does_not_stop_in_time_is_left_to_the_kubelet(repo, world, tmp_path):
    world["master"].send_signal(signal.SIGSTOP)  # a master that cannot react
    try:
        result, took = stop(repo, world, "web", 0, 0, 2)
    finally:
        world["master"].send_signal(signal.SIGCONT)
    assert result.returncode == 0, result.stderr
    assert 2 <= took < 10


def test_usage(repo, world):
    result, _ = stop(repo, world, "web", 1)
    assert result.returncode != 0
    assert "usage: stop-misp.sh PAUSE JOBS FPM" in result.stderr
