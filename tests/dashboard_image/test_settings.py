"""The environment contract: what starts, and every refusal with its one-line reason."""

from __future__ import annotations

import pytest
from dashboard_entrypoint import ConfigError, settings

from .support import SECRET


def test_complete_environment_and_defaults(env):
    loaded = settings.load(env)
    assert loaded.misp_url == "https://misp.example.org"  # upstream appends "/users/login": no trailing slash
    assert loaded.misp_name == "misp.example.org"
    assert loaded.redis_port == 6379
    assert loaded.redis_tls is True
    assert loaded.redis_ca_file is None
    assert loaded.port == 8001
    assert loaded.session_secret == SECRET
    assert (loaded.web_workers, loaded.web_threads) == (2, 32)
    assert loaded.insecure_redis is False
    assert loaded.maxmind_account_id is None


def test_image_layout_defaults():
    loaded = settings.load(
        {
            "DASHBOARD_MISP_URL": "https://misp",
            "DASHBOARD_REDIS_HOST": "redis",
            "DASHBOARD_REDIS_PASSWORD": "x",
            "DASHBOARD_SESSION_SECRET": SECRET,
        }
    )
    assert str(loaded.app_dir) == "/opt/misp-dashboard/app"
    assert str(loaded.state_dir) == "/var/lib/misp-dashboard"
    assert loaded.misp_zmq_url is None  # only the subscriber role requires it


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"DASHBOARD_MISP_URL": None}, "DASHBOARD_MISP_URL is required"),
        ({"DASHBOARD_MISP_URL": "http://misp.example.org"}, "DASHBOARD_MISP_URL must be an https:// URL"),
        (
            # pragma: allowlist nextline secret
            {"DASHBOARD_MISP_URL": "https://user:pw@misp.example.org"},
            "must not contain credentials",
        ),  # pragma: allowlist secret
        ({"DASHBOARD_MISP_URL": "misp.example.org"}, "must be an https:// URL"),
        ({"DASHBOARD_MISP_ZMQ_URL": "http://misp:50000"}, "DASHBOARD_MISP_ZMQ_URL must look like tcp://HOST:PORT"),
        ({"DASHBOARD_MISP_ZMQ_URL": "tcp://misp"}, "DASHBOARD_MISP_ZMQ_URL must look like tcp://HOST:PORT"),
        ({"DASHBOARD_REDIS_HOST": None}, "DASHBOARD_REDIS_HOST is required"),
        ({"DASHBOARD_REDIS_HOST": "redis host"}, "DASHBOARD_REDIS_HOST must be a host name"),
        ({"DASHBOARD_REDIS_PORT": "six"}, "DASHBOARD_REDIS_PORT must be an integer"),
        ({"DASHBOARD_REDIS_PORT": "70000"}, "DASHBOARD_REDIS_PORT must be between 1 and 65535"),
        ({"DASHBOARD_REDIS_PASSWORD": None}, "DASHBOARD_REDIS_PASSWORD is required"),
        ({"DASHBOARD_REDIS_PASSWORD": ""}, "DASHBOARD_REDIS_PASSWORD is required"),
        ({"DASHBOARD_REDIS_TLS": "false"}, "DASHBOARD_REDIS_TLS=false is refused"),
        ({"DASHBOARD_REDIS_TLS": "maybe"}, "DASHBOARD_REDIS_TLS must be true or false"),
        ({"DASHBOARD_REDIS_CA_FILE": "/nonexistent/ca.pem"}, "DASHBOARD_REDIS_CA_FILE points to /nonexistent/ca.pem"),
        ({"DASHBOARD_SESSION_SECRET": None}, "DASHBOARD_SESSION_SECRET is required"),
        ({"DASHBOARD_SESSION_SECRET": "short"}, "at least 32 characters"),  # pragma: allowlist secret
        ({"DASHBOARD_SESSION_SECRET": "**Change_Me**"}, "at least 32 characters"),
        ({"DASHBOARD_SESSION_SECRET": " " + SECRET}, "must not start or end with whitespace"),
        ({"DASHBOARD_SESSION_SECRET": SECRET + "\n[Auth]"}, "must be a single line"),
        ({"DASHBOARD_MAXMIND_ACCOUNT_ID": "123"}, "must be set together"),
        ({"DASHBOARD_MAXMIND_LICENSE_KEY": "key"}, "must be set together"),
        ({"DASHBOARD_MAXMIND_ACCOUNT_ID": "abc", "DASHBOARD_MAXMIND_LICENSE_KEY": "k"}, "numeric MaxMind account ID"),
        ({"DASHBOARD_SETTINGS_FILE": "/nonexistent.ini"}, "DASHBOARD_SETTINGS_FILE points to /nonexistent.ini"),
        ({"DASHBOARD_RANKING_FILE": "/nonexistent.cfg"}, "DASHBOARD_RANKING_FILE points to /nonexistent.cfg"),
        ({"DASHBOARD_PORT": "80"}, "DASHBOARD_PORT must be between 1024 and 65535"),
        ({"DASHBOARD_PORT": "tcp://10.0.0.1:8001"}, "enableServiceLinks: false"),
        ({"DASHBOARD_WEB_THREADS": "5"}, "DASHBOARD_WEB_THREADS must be between 6 and 1000"),
        # Authentication cannot be switched off or weakened through the environment: such variables are refused.
        ({"DASHBOARD_AUTH_ENABLED": "false"}, "unknown environment variable DASHBOARD_AUTH_ENABLED"),
        ({"DASHBOARD_SSL_VERIFY": "false"}, "unknown environment variable DASHBOARD_SSL_VERIFY"),
        ({"DASHBOARD_SESSION_COOKIE_SECURE": "false"}, "unknown environment variable DASHBOARD_SESSION_COOKIE_SECURE"),
    ],
)
def test_refusals(env, change, message):
    for name, value in change.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    with pytest.raises(ConfigError) as refused:
        settings.load(env)
    text = str(refused.value)
    assert message in text
    assert "\n" not in text


def test_insecure_redis_only_with_the_test_flag(env):
    env.update(DASHBOARD_REDIS_TLS="false", DASHBOARD_REDIS_PASSWORD="", DASHBOARD_TEST_ONLY_INSECURE_REDIS="true")
    loaded = settings.load(env)
    assert (loaded.redis_tls, loaded.redis_password, loaded.insecure_redis) == (False, None, True)


def test_optional_values(env, tmp_path):
    ca = tmp_path / "ca.pem"
    ca.write_text("CA")
    env.update(
        DASHBOARD_REDIS_PORT="6380",
        DASHBOARD_REDIS_TLS="TRUE",
        DASHBOARD_REDIS_CA_FILE=str(ca),
        DASHBOARD_MAXMIND_ACCOUNT_ID="123456",
        DASHBOARD_MAXMIND_LICENSE_KEY="lic",
        DASHBOARD_PORT="9000",
        DASHBOARD_WEB_WORKERS="4",
        DASHBOARD_WEB_THREADS="64",
    )
    loaded = settings.load(env)
    assert (loaded.redis_port, loaded.redis_ca_file, loaded.port) == (6380, ca, 9000)
    assert (loaded.maxmind_account_id, loaded.maxmind_license_key) == ("123456", "lic")
    assert (loaded.web_workers, loaded.web_threads) == (4, 64)


def test_unrelated_variables_are_ignored(env):
    expected = settings.load(env)
    env.update(PATH="/usr/bin", MISP_DASHBOARD_SERVICE_HOST="10.0.0.1", HOME="/tmp", XDASHBOARD_PORT="1")
    assert settings.load(env) == expected  # only DASHBOARD_* names are read, and only known ones accepted
