"""apps/misp/base/files/prepare-pod.sh, the init container of every MISP pod, with a real GnuPG.

In the pod the script reads the image's supervisor configuration and the misp-gpg Secret; here the
test gives it stand-ins shaped like them (misp-docker core/files/etc/supervisor/conf.d at 6d915d5).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.conftest import system_tool

PASSPHRASE = "Passphrase0fTheKey"
UPSTREAM_SUPERVISOR = """[supervisord]
nodaemon=true
user=root

[inet_http_server]
port=127.0.0.1:9001
username=%(ENV_SUPERVISOR_USERNAME)s
password=%(ENV_SUPERVISOR_PASSWORD)s
"""
UPSTREAM_WORKERS = """[group:misp-workers]
programs=default,scheduler

[program:default]
command=/var/www/MISP/app/Console/cake start_worker default

[program:scheduler]
command=/var/www/MISP/app/Console/cake scheduler_worker
"""


@pytest.fixture(scope="module")
def armored_key(tmp_path_factory) -> Path:
    """A passphrase-protected secret key, armoured, as the misp-gpg Secret holds it."""
    home = tmp_path_factory.mktemp("keygen")
    home.chmod(0o700)
    gpg = [system_tool("gpg", "gnupg"), "--homedir", str(home), "--batch", "--pinentry-mode", "loopback"]
    subprocess.run(
        [
            *gpg,
            "--passphrase",
            PASSPHRASE,
            "--quick-gen-key",
            "MISP <misp@example.org>",
            "rsa3072",
            "sign,encrypt",
            "never",
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    exported = subprocess.run(
        [*gpg, "--passphrase", PASSPHRASE, "--armor", "--export-secret-keys", "misp@example.org"],
        check=True,
        capture_output=True,
        timeout=60,
    ).stdout
    path = home / "private_key"
    path.write_bytes(exported)
    subprocess.run([system_tool("gpgconf", "gnupg"), "--homedir", str(home), "--kill", "all"], check=False)
    return path


def run(
    repo: Path,
    tmp_path: Path,
    role: str,
    key: Path,
    supervisor: str = UPSTREAM_SUPERVISOR,
    passphrase: str = PASSPHRASE,
):
    source, prepared = tmp_path / "upstream", tmp_path / "prepared"
    source.mkdir(parents=True, exist_ok=True)
    (source / "10-supervisor.conf.kubernetes").write_text(supervisor)
    (source / "50-workers.conf.kubernetes").write_text(UPSTREAM_WORKERS)
    for name in ("supervisor", "gnupg"):
        (prepared / name).mkdir(parents=True, exist_ok=True)
    env = {
        "PATH": os.environ["PATH"],
        "GPG_PASSPHRASE": passphrase,
        "MISP_EKS_SUPERVISOR_SOURCE": str(source),
        "MISP_EKS_PREPARED_DIR": str(prepared),
        "MISP_EKS_GPG_KEY_FILE": str(key),
    }
    result = subprocess.run(
        ["/bin/bash", str(repo / "apps/misp/base/files/prepare-pod.sh"), role],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return result, prepared


def test_web_pods_run_no_workers(repo, tmp_path, armored_key):
    result, prepared = run(repo, tmp_path, "web", armored_key)
    assert result.returncode == 0, result.stderr
    workers = (prepared / "supervisor/50-workers.conf.kubernetes").read_text()
    assert "[program:" not in workers and "[group:" not in workers
    assert (prepared / "supervisor/10-supervisor.conf.kubernetes").read_text() == UPSTREAM_SUPERVISOR


def test_the_workers_pod_publishes_its_status(repo, tmp_path, armored_key):
    result, prepared = run(repo, tmp_path, "workers", armored_key)
    assert result.returncode == 0, result.stderr
    supervisor = (prepared / "supervisor/10-supervisor.conf.kubernetes").read_text()
    assert "port=0.0.0.0:9001" in supervisor and "127.0.0.1" not in supervisor
    assert (prepared / "supervisor/50-workers.conf.kubernetes").read_text() == UPSTREAM_WORKERS


def test_only_the_workers_pod_has_the_zeromq_publisher(repo, tmp_path, armored_key):
    result, prepared = run(repo, tmp_path / "workers", "workers", armored_key)
    assert result.returncode == 0, result.stderr
    program = (prepared / "supervisor/60-mispzmq.conf").read_text()
    assert "[program:mispzmq]" in program
    assert "command=python3 /var/www/MISP/app/files/scripts/mispzmq/mispzmq.py" in program
    # Started by customize_misp.sh once MISP has written the publisher's settings; restarted if it dies.
    assert "autostart=false" in program and "autorestart=true" in program and "user=www-data" in program
    result, prepared = run(repo, tmp_path / "web", "web", armored_key)
    assert result.returncode == 0, result.stderr
    assert not (prepared / "supervisor/60-mispzmq.conf").exists()


# The two lines of misp-docker's kubernetes/entrypoint_fpm.sh (6d915d5) that edit the supervisor files.
ENTRYPOINT = """#!/bin/bash -e
mv {conf}/10-supervisor.conf{{.kubernetes,}}
mv {conf}/50-workers.conf{{.kubernetes,}}
"""


def test_misp_core_starts_again_after_a_restart(repo, tmp_path, armored_key):
    """The container's command, from core-pod.yaml, run at a first start and at a restart.

    A restart renews the container's file system but keeps the pod's volumes: the entrypoint's
    renames must never touch what the init container prepared.
    """
    result, prepared = run(repo, tmp_path, "workers", armored_key)
    assert result.returncode == 0, result.stderr
    manifest = yaml.safe_load((repo / "apps/misp/base/core-pod/core-pod.yaml").read_text())
    core = next(c for c in manifest["spec"]["template"]["spec"]["containers"] if c["name"] == "misp-core")
    mounts = {m["mountPath"]: m for m in core["volumeMounts"]}
    assert mounts["/prepared/supervisor"]["name"] == "supervisor" and mounts["/prepared/supervisor"]["readOnly"]
    assert "/etc/supervisor/conf.d" not in mounts
    before = {p.name: p.read_bytes() for p in (prepared / "supervisor").iterdir()}
    for start in ("first", "restart"):
        conf = tmp_path / start / "conf.d"  # the container's own, fresh at each start
        conf.mkdir(parents=True)
        entrypoint = tmp_path / start / "entrypoint_fpm.sh"
        entrypoint.write_text(ENTRYPOINT.format(conf=conf))
        entrypoint.chmod(0o755)
        command = (
            core["command"][-1]
            .replace("/prepared/supervisor", str(prepared / "supervisor"))
            .replace("/etc/supervisor/conf.d", str(conf))
            .replace("/kubernetes/entrypoint_fpm.sh", str(entrypoint))
        )
        started = subprocess.run([*core["command"][:-1], command], capture_output=True, text=True, check=False)
        assert started.returncode == 0, f"{start}: {started.stderr}"
        assert (conf / "10-supervisor.conf").is_file() and (conf / "60-mispzmq.conf").is_file()
        assert {p.name: p.read_bytes() for p in (prepared / "supervisor").iterdir()} == before


def test_an_unexpected_upstream_configuration_stops_the_pod(repo, tmp_path, armored_key):
    result, _ = run(repo, tmp_path, "workers", armored_key, supervisor=UPSTREAM_SUPERVISOR.replace("9001", "9101"))
    assert result.returncode == 1
    assert "unexpected upstream supervisor configuration" in result.stderr


def test_an_unknown_role_is_refused(repo, tmp_path, armored_key):
    result, _ = run(repo, tmp_path, "cron", armored_key)
    assert result.returncode == 2
    assert "unknown role 'cron'" in result.stderr


def test_imports_the_one_key_with_ultimate_trust(repo, tmp_path, armored_key):
    result, prepared = run(repo, tmp_path, "web", armored_key)
    assert result.returncode == 0, result.stderr
    home = prepared / "gnupg"
    assert (home / "trustdb.gpg").is_file()  # misp-core's configure_gnupg then generates no key of its own
    assert {p.stat().st_uid for p in home.rglob("*")} | {home.stat().st_uid} == {33}  # www-data
    assert not list(home.glob("S.*"))  # no agent sockets left behind
    gpg = [system_tool("gpg", "gnupg"), "--homedir", str(home), "--batch", "--with-colons"]
    listing = subprocess.run([*gpg, "--list-secret-keys"], capture_output=True, text=True, check=True).stdout
    fingerprint = next(line.split(":")[9] for line in listing.splitlines() if line.startswith("fpr:"))
    assert "misp@example.org" in listing
    trust = subprocess.run([*gpg, "--export-ownertrust"], capture_output=True, text=True, check=True).stdout
    assert f"{fingerprint}:6:" in trust


def test_a_wrong_passphrase_fails_the_pod(repo, tmp_path, armored_key):
    result, _ = run(repo, tmp_path, "web", armored_key, passphrase="not-the-passphrase")
    assert result.returncode == 1
    assert "GPG_PASSPHRASE does not unlock the misp-gpg key" in result.stderr
