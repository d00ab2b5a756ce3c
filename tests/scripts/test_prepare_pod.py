"""apps/misp/base/files/prepare-pod.sh, the init container of every MISP pod, with a real GnuPG.

In the pod the script reads the image's supervisor configuration and the misp-gpg Secret; here the
test gives it stand-ins shaped like them (misp-docker core/files/etc/supervisor/conf.d at 6d915d5).
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
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
UPSTREAM_WORKERS = """# Workers are set to NOT auto start so we have time to enforce permissions on the cache first

[group:misp-workers]
programs=default,email,cache,prio,update,scheduler

[program:default]
command=/var/www/MISP/app/Console/cake start_worker default
numprocs=%(ENV_NUM_WORKERS_DEFAULT)s

[program:email]
command=/var/www/MISP/app/Console/cake start_worker email
numprocs=%(ENV_NUM_WORKERS_EMAIL)s
user=www-data

[program:cache]
command=/var/www/MISP/app/Console/cake start_worker cache

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


@pytest.fixture
def open_tmp() -> Iterator[Path]:
    """A scratch directory that www-data can reach (pytest's own is root's alone)."""
    path = Path(tempfile.mkdtemp(prefix="misp-files-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def files_dist(root: Path) -> Path:
    """app/files.dist as misp-docker's image holds it (core/Dockerfile: www-data, files 0550, dirs
    0770), with what MISP ships in the directories the pods share (MISP app/files/)."""
    dist = root / "files.dist"
    for path, content in SHIPPED.items():
        (dist / path).parent.mkdir(parents=True, exist_ok=True)
        (dist / path).write_bytes(content)
    for path in dist.rglob("*"):
        path.chmod(0o770 if path.is_dir() else 0o550)
    subprocess.run(["chown", "-R", "33:33", str(dist)], check=True)
    return dist


SHIPPED = {
    "img/orgs/ADMIN.png": b"shipped logo",
    "img/custom/empty": b"",
    "certs/empty": b"",
    "terms/empty": b"",
    "scripts/mispzmq/mispzmq.py": b"print()",
}
SHARED_DIRS = ("img/orgs", "img/custom", "certs", "terms")


def run(
    repo: Path,
    tmp_path: Path,
    role: str,
    key: Path,
    supervisor: str = UPSTREAM_SUPERVISOR,
    passphrase: str = PASSPHRASE,
    workers: str = UPSTREAM_WORKERS,
    user: int = 0,
    shared: Path | None = None,
):
    """prepare-pod.sh as the pod runs it; as ``user`` 33 it runs as every call reaches EFS through
    the access point (aws-efs-csi-driver docs: all file system requests use its POSIX user)."""
    source, prepared = tmp_path / "upstream", tmp_path / "prepared"
    source.mkdir(parents=True, exist_ok=True)
    (source / "10-supervisor.conf.kubernetes").write_text(supervisor)
    (source / "50-workers.conf.kubernetes").write_text(workers)
    for name in ("supervisor", "gnupg"):
        (prepared / name).mkdir(parents=True, exist_ok=True)
    shared = shared or tmp_path / "misp-files"
    shared.mkdir(exist_ok=True)
    dist = tmp_path / "files.dist" if (tmp_path / "files.dist").is_dir() else files_dist(tmp_path)
    drop: list[str] = []
    if user:
        subprocess.run(["chown", "-R", f"{user}:{user}", str(prepared), str(source), str(shared)], check=True)
        key = Path(shutil.copy(key, tmp_path / "private_key"))
        key.chmod(0o644)
        drop = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups"]
    env = {
        "PATH": os.environ["PATH"],
        "GPG_PASSPHRASE": passphrase,
        "MISP_EKS_SUPERVISOR_SOURCE": str(source),
        "MISP_EKS_PREPARED_DIR": str(prepared),
        "MISP_EKS_GPG_KEY_FILE": str(key),
        "MISP_EKS_FILES_DIST": str(dist),
        "MISP_EKS_SHARED_FILES": str(shared),
    }
    result = subprocess.run(
        [*drop, "/bin/bash", str(repo / "apps/misp/base/files/prepare-pod.sh"), role],
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


def test_the_workers_keep_every_queue_including_email(repo, tmp_path, armored_key):
    """MISP queues e-mail jobs even with e-mail off (Post, Event, User: EMAIL_QUEUE), and runs them
    as no-ops then (User::sendEmail): the e-mail worker stays, as upstream ships it."""
    result, prepared = run(repo, tmp_path, "workers", armored_key)
    assert result.returncode == 0, result.stderr
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


# What misp-docker's kubernetes/entrypoint_fpm.sh (6d915d5) does first, under `bash -e`: rename the
# supervisor files, then init_misp_data_files (entrypoint_nginx.sh), which copies files.dist over
# app/files unless app/files/INIT exists.
ENTRYPOINT = """#!/bin/bash -e
mv {conf}/10-supervisor.conf{{.kubernetes,}}
mv {conf}/50-workers.conf{{.kubernetes,}}
init_misp_data_files(){{
    MISP_APP_FILES_PATH={files}
    if [ ! -f ${{MISP_APP_FILES_PATH}}/INIT ]; then
        cp -R ${{MISP_APP_FILES_PATH}}.dist/* ${{MISP_APP_FILES_PATH}}
        touch ${{MISP_APP_FILES_PATH}}/INIT
    fi
}}
echo "INIT | Initialize MISP files and configurations ..." && init_misp_data_files
"""


def misp_core(repo: Path) -> dict:
    manifest = yaml.safe_load((repo / "apps/misp/base/core-pod/core-pod.yaml").read_text())
    return next(c for c in manifest["spec"]["template"]["spec"]["containers"] if c["name"] == "misp-core")


def start(repo: Path, tmp_path: Path, name: str, prepared: Path, shared: Path, user: int = 0):
    """misp-core's command from core-pod.yaml, in a fresh container file system: app/files as the
    image holds it (files.dist's content and VERSION, no INIT; misp-docker core/Dockerfile) with the
    shared directories bind-mounted from the misp-files volume, as its subPath mounts are. As
    ``user`` 33 it acts on the volume as root does through an EFS access point; in its own layer
    root overrides file modes, which owner-writable copies stand for."""
    core = misp_core(repo)
    root = tmp_path / name
    conf, files = root / "conf.d", root / "app/files"
    conf.mkdir(parents=True)
    files.parent.mkdir()
    subprocess.run(["cp", "-a", f"{tmp_path / 'files.dist'}/.", str(files)], check=True)
    subprocess.run(["chmod", "-R", "u+w", str(files)], check=True)
    (files / "VERSION").write_text("6d915d5")
    subprocess.run(["cp", "-a", str(tmp_path / "files.dist"), str(root / "app/files.dist")], check=True)
    entrypoint = root / "entrypoint_fpm.sh"
    entrypoint.write_text(ENTRYPOINT.format(conf=conf, files=files))
    entrypoint.chmod(0o755)
    subprocess.run(["chown", "-R", f"{user}:{user}", str(conf), str(files), str(entrypoint)], check=True)
    command = (
        core["command"][-1]
        .replace("/prepared/supervisor", str(prepared / "supervisor"))
        .replace("/etc/supervisor/conf.d", str(conf))
        .replace("/var/www/MISP/app/files", str(files))
        .replace("/kubernetes/entrypoint_fpm.sh", str(entrypoint))
    )
    mounts = " && ".join(f"mount --bind {shared / d} {files / d}" for d in SHARED_DIRS)
    drop = f"setpriv --reuid={user} --regid={user} --clear-groups" if user else ""
    inner = f"{mounts} && exec {drop} {' '.join(map(shlex.quote, [*core['command'][:-1], command]))}"
    return subprocess.run(
        ["unshare", "-m", "/bin/bash", "-c", inner], capture_output=True, text=True, check=False
    ), conf


def test_misp_core_starts_again_after_a_restart(repo, tmp_path, armored_key):
    """The container's command at a first start and at a restart.

    A restart renews the container's file system but keeps the pod's volumes: the entrypoint's
    renames must never touch what the init container prepared.
    """
    result, prepared = run(repo, tmp_path, "workers", armored_key)
    assert result.returncode == 0, result.stderr
    mounts = {m["mountPath"]: m for m in misp_core(repo)["volumeMounts"]}
    assert mounts["/prepared/supervisor"]["name"] == "supervisor" and mounts["/prepared/supervisor"]["readOnly"]
    assert "/etc/supervisor/conf.d" not in mounts
    before = {p.name: p.read_bytes() for p in (prepared / "supervisor").iterdir()}
    for name in ("first", "restart"):
        started, conf = start(repo, tmp_path, name, prepared, tmp_path / "misp-files")
        assert started.returncode == 0, f"{name}: {started.stderr}"
        assert (conf / "10-supervisor.conf").is_file() and (conf / "60-mispzmq.conf").is_file()
        assert {p.name: p.read_bytes() for p in (prepared / "supervisor").iterdir()} == before


def test_the_shared_files_are_seeded_once_writable_and_never_overwritten(repo, open_tmp, armored_key):
    """Through EFS every call is www-data's (uid 33), root's too: seeding twice, as every pod does."""
    tmp_path = open_tmp
    shared = tmp_path / "misp-files"
    result, _ = run(repo, tmp_path, "web", armored_key, user=33)
    assert result.returncode == 0, result.stderr
    logo = shared / "img/orgs/ADMIN.png"
    assert logo.read_bytes() == b"shipped logo"
    for directory in SHARED_DIRS:
        assert (shared / directory).is_dir()
    for path in [shared, *shared.rglob("*")]:
        assert path.stat().st_mode & 0o200, f"{path} is read-only for www-data"  # not files.dist's 0550
        assert (path.stat().st_uid, path.stat().st_gid) == (33, 33)
    logo.write_bytes(b"uploaded in MISP")
    result, _ = run(repo, tmp_path, "workers", armored_key, user=33)  # the next pod
    assert result.returncode == 0, result.stderr
    assert logo.read_bytes() == b"uploaded in MISP"
    assert not (shared / "scripts").exists()  # only the shared directories


def test_the_shared_files_go_to_www_data_where_root_is_root(repo, tmp_path, armored_key):
    """kind's volume is local: what root copies is handed over to www-data, which runs MISP."""
    result, _ = run(repo, tmp_path, "web", armored_key)
    assert result.returncode == 0, result.stderr
    shared = tmp_path / "misp-files"
    assert {(p.stat().st_uid, p.stat().st_gid) for p in [shared, *shared.rglob("*")]} == {(33, 33)}


def test_every_pod_starts_on_shared_files_a_first_pod_left_read_only(repo, open_tmp, armored_key):
    """A first start copies files.dist, read-only (0550), onto the shared volume, where, as www-data,
    no later copy may overwrite it: the entrypoint (bash -e) would stop every later pod. Two starts
    of misp-core's command as www-data, on a volume left so, both succeed."""
    tmp_path = open_tmp
    shared = tmp_path / "misp-files"
    files_dist(tmp_path)
    (shared / "img/orgs").mkdir(parents=True)
    subprocess.run(["cp", "-R", str(tmp_path / "files.dist/img/orgs/ADMIN.png"), str(shared / "img/orgs")], check=True)
    assert (shared / "img/orgs/ADMIN.png").stat().st_mode & 0o777 == 0o550
    result, prepared = run(repo, tmp_path, "workers", armored_key, user=33)
    assert result.returncode == 0, result.stderr
    for name in ("first", "second"):
        started, _ = start(repo, tmp_path, name, prepared, shared, user=33)
        assert started.returncode == 0, f"{name} start: {started.stderr}"


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
