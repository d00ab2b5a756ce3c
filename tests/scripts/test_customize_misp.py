"""apps/misp/base/files/customize_misp.sh, misp-docker's customisation hook, with MISP stood in for.

In the pod the hook calls MISP's ``cake`` and ``tests/modify_config.php`` through ``sudo -u www-data``
and ``supervisorctl``; here those record their arguments. What it writes for php-fpm is read back.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml

RECORDER = '#!/bin/bash\nprintf "%s\\n" "$(basename "$0") $*" >> "$MISP_EKS_TEST_LOG"\n'


def run(repo: Path, tmp_path: Path, role: str = "web", email: str = "disabled", **extra: str):
    bin_dir, pool = tmp_path / "bin", tmp_path / "pool.d"
    bin_dir.mkdir(exist_ok=True)
    pool.mkdir(exist_ok=True)
    for tool in ("sudo", "supervisorctl"):
        (bin_dir / tool).write_text(RECORDER)
        (bin_dir / tool).chmod(0o755)
    log = tmp_path / "calls.log"
    log.write_text("")
    env = {
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "MISP_EKS_TEST_LOG": str(log),
        "MISP_EKS_FPM_POOL_DIR": str(pool),
        "MISP_EKS_ROLE": role,
        "MISP_EKS_EMAIL": email,
        "MISP_EKS_S3_BUCKET": "misp-prod-attachments-111122223333",
        "AWS_REGION": "eu-west-1",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI": "http://169.254.170.23/v1/credentials",
        **extra,
    }
    result = subprocess.run(
        ["/bin/bash", str(repo / "apps/misp/base/files/customize_misp.sh")],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    conf = pool / "zz-misp-eks.conf"
    return result, log.read_text().splitlines(), conf.read_text() if conf.exists() else ""


def sections(conf: str) -> dict[str, dict[str, str]]:
    """php-fpm's INI: [section] then key = value lines."""
    found: dict[str, dict[str, str]] = {}
    current: dict[str, str] = {}
    for line in conf.splitlines():
        if match := re.fullmatch(r"\[(\w+)\]", line):
            current = found.setdefault(match[1], {})
        elif line.strip():
            key, value = (part.strip() for part in line.split("=", 1))
            current[key] = value
    return found


def test_php_fpm_answers_its_pod_only_and_locks_sessions(repo, tmp_path):
    result, _, conf = run(repo, tmp_path)
    assert result.returncode == 0, result.stderr
    pool = sections(conf)["www"]
    assert pool["listen"] == "127.0.0.1:9002"
    assert pool["listen.allowed_clients"] == "127.0.0.1"
    assert pool["php_admin_value[redis.session.locking_enabled]"] == "1"
    # No lock_expire of its own: phpredis then lets a lock live as long as its request may run,
    # max_execution_time (PHP_MAX_EXECUTION_TIME; phpredis redis_session.c, lock_acquire).
    assert not [key for key in pool if "lock_expire" in key or "max_execution_time" in key]
    waited = int(pool["php_admin_value[redis.session.lock_wait_time]"]) * int(
        pool["php_admin_value[redis.session.lock_retries]"]
    )
    assert waited == 30_000_000  # microseconds
    assert pool["env[AWS_CONTAINER_CREDENTIALS_FULL_URI]"] == "$AWS_CONTAINER_CREDENTIALS_FULL_URI"
    assert "env[AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE]" not in pool  # only what the pod has


@pytest.mark.parametrize("manifest", ["apps/misp/base/web/web.yaml", "apps/misp/base/backend/workers.yaml"])
def test_php_fpm_drains_for_as_long_as_the_stop_script_waits(repo, tmp_path, manifest):
    result, _, conf = run(repo, tmp_path)
    assert result.returncode == 0, result.stderr
    deployment = next(d for d in yaml.safe_load_all((repo / manifest).read_text()) if d["kind"] == "Deployment")
    core = next(c for c in deployment["spec"]["template"]["spec"]["containers"] if c["name"] == "misp-core")
    fpm_budget = int(core["lifecycle"]["preStop"]["exec"]["command"][4])
    assert int(sections(conf)["global"]["process_control_timeout"]) >= fpm_budget


def test_email_off_disables_emailing(repo, tmp_path):
    result, calls, _ = run(repo, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "sudo -u www-data /var/www/MISP/app/Console/cake Admin setSetting -q MISP.disable_emailing true" in calls


def test_an_unknown_email_mode_is_refused(repo, tmp_path):
    result, calls, _ = run(repo, tmp_path, email="smtp")
    assert result.returncode == 2
    assert "unknown MISP_EKS_EMAIL 'smtp'" in result.stderr
    assert not any("ZeroMQ_enable" in call for call in calls)  # stopped before going on


def test_the_workers_pod_starts_the_publisher(repo, tmp_path):
    result, calls, _ = run(repo, tmp_path, role="workers")
    assert result.returncode == 0, result.stderr
    assert calls[-1] == "supervisorctl start mispzmq"
    assert "sudo -u www-data /var/www/MISP/app/Console/cake Admin setSetting -q Plugin.ZeroMQ_host 0.0.0.0" in calls


FAKE_KEY_ID = "AKIA" + "TESTTESTTESTTEST"  # the form of an access key id, assembled so no key stands here
SES = {
    "MISP_EKS_SMTP_HOST": "email-smtp.eu-west-1.amazonaws.com",
    "MISP_EKS_SMTP_PORT": "587",
    "MISP_EKS_SMTP_USERNAME": FAKE_KEY_ID,
    "MISP_EKS_SMTP_PASSWORD": "Bx+/" + "t" * 40,  # pragma: allowlist secret (the form of an SMTP password, made up)
}


def test_ses_writes_the_smtp_transport_with_starttls(repo, tmp_path):
    config = tmp_path / "Config"
    config.mkdir()
    (config / "email.php").write_text("<?php /* the image's, without credentials */")
    (config / "email.php").chmod(0o600)
    result, calls, _ = run(repo, tmp_path, email="ses", MISP_EKS_CONFIG_DIR=str(config), **SES)
    assert result.returncode == 0, result.stderr
    assert "sudo -u www-data /var/www/MISP/app/Console/cake Admin setSetting -q MISP.disable_emailing false" in calls
    php = (config / "email.php").read_text()
    assert (config / "email.php").stat().st_mode & 0o777 == 0o600
    for name in ("default", "smtp"):
        (body,) = re.findall(rf"public \${name} = array\((.*?)\);", php, re.S)
        pairs = dict(re.findall(r"'(\w+)' => ('[^']*'|\w+)", body))
        assert pairs == {
            "transport": "'Smtp'",
            "host": "'email-smtp.eu-west-1.amazonaws.com'",
            "port": "587",
            "tls": "true",
            "username": f"'{FAKE_KEY_ID}'",
            "password": f"'{SES['MISP_EKS_SMTP_PASSWORD']}'",
            "timeout": "30",
        }


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("MISP_EKS_SMTP_PASSWORD", "x'); system('id"),
        ("MISP_EKS_SMTP_PASSWORD", ""),
        ("MISP_EKS_SMTP_HOST", "mail.example.org"),
        ("MISP_EKS_SMTP_PORT", "25"),
    ],
)
def test_ses_refuses_malformed_credentials(repo, tmp_path, name, value):
    config = tmp_path / "Config"
    config.mkdir()
    result, calls, _ = run(repo, tmp_path, email="ses", MISP_EKS_CONFIG_DIR=str(config), **{**SES, name: value})
    assert result.returncode == 2 and f"{name} is missing or malformed" in result.stderr
    assert not (config / "email.php").exists()
    assert not any("disable_emailing" in call for call in calls)
