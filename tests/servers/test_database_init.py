"""apps/misp/base/files/init-database.sh against a real MariaDB server that requires TLS.

The script is what the misp-database-init Job runs with the RDS master credentials; here the
server is Debian's mariadb-server, started by the test with certificates the test makes.
"""

from __future__ import annotations

import getpass
import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pymysql
import pytest

from misp_eks.provision import credentials
from tests.conftest import system_tool
from tests.servers.tls import Certificates, free_port, issue, make_certificates

pytestmark = pytest.mark.servers

MASTER_USER = "mispadmin"
APP_PASSWORD = "AppPassw0rd1"  # pragma: allowlist secret
ROTATED_PASSWORD = "RotatedPassw0rd2"  # pragma: allowlist secret
MASTER_PASSWORD = "Master pass: with $pecial, 'quotes' & \\ backslash"  # RDS generates such passwords


@dataclass
class Server:
    port: int
    socket: Path
    certificates: Certificates

    def sql(self, statement: str, user: str | None = None, password: str | None = None, tls: bool = True) -> str:
        """Run one statement; as the server's own superuser over the socket unless a user is given."""
        command = [system_tool("mariadb", "mariadb-client"), "--batch", "--skip-column-names", "-e", statement]
        env = dict(os.environ)
        if user is None:
            command += [f"--socket={self.socket}", "--user=root"]
        else:
            command += ["--host=127.0.0.1", f"--port={self.port}", f"--user={user}"]
            command += [f"--ssl-ca={self.certificates.ca}", "--ssl-verify-server-cert"] if tls else ["--skip-ssl"]
            env["MYSQL_PWD"] = password or ""
        result = subprocess.run(command, capture_output=True, text=True, env=env, check=False, timeout=30)
        if result.returncode != 0:
            raise RuntimeError(result.stderr.strip())
        return result.stdout


@pytest.fixture(scope="module")
def mariadb(tmp_path_factory) -> Iterator[Server]:
    base = tmp_path_factory.mktemp("mariadb")
    data, run = base / "data", base / "run"
    run.mkdir()
    user = getpass.getuser()
    subprocess.run(
        [system_tool("mariadb-install-db", "mariadb-server"), f"--datadir={data}", f"--user={user}", "--skip-test-db"],
        check=True,
        capture_output=True,
        timeout=120,
    )
    certificates = make_certificates(base / "tls")
    port = free_port()
    server = Server(port, run / "mysqld.sock", certificates)
    process = subprocess.Popen(
        [
            system_tool("mariadbd", "mariadb-server"),
            "--no-defaults",
            f"--datadir={data}",
            f"--socket={server.socket}",
            f"--pid-file={run / 'mysqld.pid'}",
            f"--user={user}",
            "--bind-address=127.0.0.1",
            f"--port={port}",
            f"--ssl-ca={certificates.ca}",
            f"--ssl-cert={certificates.cert}",
            f"--ssl-key={certificates.key}",
            "--require-secure-transport=ON",  # as the RDS parameter group sets it
            "--skip-log-bin",
        ],
        stdout=subprocess.DEVNULL,
        stderr=(base / "error.log").open("w"),
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                server.sql("SELECT 1")
                break
            except RuntimeError:
                if time.monotonic() > deadline or process.poll() is not None:
                    pytest.fail("mariadbd did not start:\n" + (base / "error.log").read_text()[-2000:])
                time.sleep(0.3)
        escaped = MASTER_PASSWORD.replace("\\", "\\\\").replace("'", "\\'")
        server.sql(f"CREATE USER '{MASTER_USER}'@'%' IDENTIFIED BY '{escaped}'")
        server.sql(f"GRANT ALL PRIVILEGES ON *.* TO '{MASTER_USER}'@'%' WITH GRANT OPTION")
        yield server
    finally:
        process.terminate()
        process.wait(timeout=60)


def _secret(directory: Path, **keys: str) -> Path:
    """A Secret as Kubernetes mounts it: one file per key, no trailing newline."""
    directory.mkdir(parents=True, exist_ok=True)
    for key, value in keys.items():
        (directory / key).write_text(value)
    return directory


APP_KEYS = {"DB_NAME": "database", "APP_USER": "username", "APP_PASSWORD": "password"}  # pragma: allowlist secret


def run_script(repo: Path, server: Server, **overrides: str) -> subprocess.CompletedProcess[str]:
    """Run the Job's script; DB_NAME, APP_USER and APP_PASSWORD override the misp-database Secret."""
    secrets = Path(server.socket).parent / "secrets"
    master = _secret(secrets / "master", username=MASTER_USER, password=MASTER_PASSWORD)
    app_keys = {"database": "misp", "username": "misp", "password": APP_PASSWORD}
    app_keys.update({APP_KEYS[k]: overrides.pop(k) for k in list(overrides) if k in APP_KEYS})
    app = _secret(secrets / "app", **app_keys)
    env = {
        "PATH": os.environ["PATH"] + os.pathsep + str(Path(system_tool("mariadb", "mariadb-client")).parent),
        "DB_HOST": "127.0.0.1",
        "DB_PORT": str(server.port),
        "DB_CA_FILE": str(server.certificates.ca),
        "MASTER_CREDENTIALS": str(master),
        "APP_CREDENTIALS": str(app),
        **overrides,
    }
    return subprocess.run(
        [shutil.which("bash") or "/bin/bash", str(repo / "apps/misp/base/files/init-database.sh")],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_creates_the_schema_and_user_and_is_idempotent(repo, mariadb):
    for _ in range(2):
        result = run_script(repo, mariadb)
        assert result.returncode == 0, result.stderr
    assert mariadb.sql(
        "SELECT DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME FROM information_schema.SCHEMATA "
        "WHERE SCHEMA_NAME = 'misp'"
    ).split() == ["utf8mb4", "utf8mb4_unicode_ci"]
    grants = mariadb.sql("SHOW GRANTS FOR 'misp'@'%'")
    assert "GRANT ALL PRIVILEGES ON `misp`.* TO `misp`@`%`" in grants
    assert "REQUIRE SSL" in grants
    assert "*.*" not in grants.replace("GRANT USAGE ON *.*", "")  # nothing beyond its own schema
    assert mariadb.sql("SELECT COUNT(*) FROM mysql.user WHERE User = 'misp'").strip() == "1"


def test_the_application_user_owns_its_schema_only(repo, mariadb):
    assert run_script(repo, mariadb).returncode == 0
    mariadb.sql("CREATE DATABASE IF NOT EXISTS other; CREATE TABLE IF NOT EXISTS other.t (id INT)")
    app = {"user": "misp", "password": APP_PASSWORD}
    mariadb.sql(
        "CREATE TABLE IF NOT EXISTS misp.attributes (id INT); ALTER TABLE misp.attributes ADD COLUMN x INT; "
        "DROP TABLE misp.attributes",
        **app,
    )
    for statement in (
        "SELECT * FROM other.t",
        "CREATE DATABASE intruder",
        "CREATE USER 'x'@'%'",
        "SELECT * FROM mysql.user",
    ):
        with pytest.raises(RuntimeError, match="denied"):
            mariadb.sql(statement, **app)


def test_the_application_user_needs_tls(repo, mariadb):
    """REQUIRE SSL on the user itself, not only the server's require_secure_transport (a parameter group
    can change): with that switched off, the user still cannot log in without TLS."""
    assert run_script(repo, mariadb).returncode == 0
    mariadb.sql("SET GLOBAL require_secure_transport = OFF")
    try:
        with pytest.raises(RuntimeError, match="Access denied"):
            mariadb.sql("SELECT 1", user="misp", password=APP_PASSWORD, tls=False)
    finally:
        mariadb.sql("SET GLOBAL require_secure_transport = ON")


def test_a_rerun_applies_a_rotated_password(repo, mariadb):
    assert run_script(repo, mariadb, APP_PASSWORD=ROTATED_PASSWORD).returncode == 0
    assert mariadb.sql("SELECT 1", user="misp", password=ROTATED_PASSWORD).strip() == "1"
    with pytest.raises(RuntimeError, match="denied"):
        mariadb.sql("SELECT 1", user="misp", password=APP_PASSWORD)
    assert run_script(repo, mariadb).returncode == 0  # back to the password the other tests use


@pytest.mark.parametrize("name", ["APP_PASSWORD", "APP_USER", "DB_NAME"])
def test_refuses_what_it_would_splice_into_sql(repo, mariadb, name):
    result = run_script(repo, mariadb, **{name: "x'; DROP DATABASE misp; --"})
    assert result.returncode == 2
    assert f"{name} must be alphanumeric" in result.stderr
    assert "misp" in mariadb.sql("SHOW DATABASES")


def test_verifies_the_servers_certificate(repo, mariadb, tmp_path):
    stranger = make_certificates(tmp_path / "other")
    result = run_script(repo, mariadb, DB_CA_FILE=str(stranger.ca))
    assert result.returncode != 0
    assert "TLS/SSL error" in result.stderr, result.stderr
    assert "ready" not in result.stdout


def test_verifies_the_servers_name(repo, mariadb, tmp_path):
    """A certificate from the trusted CA but for another host is refused (--ssl-verify-server-cert)."""
    served = mariadb.certificates
    backup = tmp_path / "cert.pem", tmp_path / "key.pem"
    shutil.copy(served.cert, backup[0])
    shutil.copy(served.key, backup[1])
    issue(served, ("misp-db.example.org",), served.cert, served.key)
    mariadb.sql("FLUSH SSL")
    try:
        result = run_script(repo, mariadb)
        assert result.returncode != 0
        assert "ready" not in result.stdout
        assert "Validation of SSL server certificate failed" in result.stderr, result.stderr
    finally:
        shutil.copy(backup[0], served.cert)
        shutil.copy(backup[1], served.key)
        mariadb.sql("FLUSH SSL")
    assert run_script(repo, mariadb).returncode == 0  # and the restored certificate is accepted again


def _connect(server: Server, user: str, password: str) -> pymysql.Connection:
    return pymysql.connect(
        host="127.0.0.1",
        port=server.port,
        user=user,
        password=password,
        ssl={"ca": str(server.certificates.ca)},
        connect_timeout=10,
    )


def test_generated_secrets_survive_sql_literals(mariadb):
    """init-database.sh splices the password into '...' literals: many draws of every generator,
    read back unchanged by the real server."""
    values = [make() for make in (credentials.database_password, credentials.admin_password) for _ in range(1000)]
    values += [credentials.redis_auth_token() for _ in range(500)]
    literals = ", ".join(f"'{value}'" for value in values)
    with _connect(mariadb, MASTER_USER, MASTER_PASSWORD) as connection, connection.cursor() as cursor:
        cursor.execute(f"SELECT JSON_ARRAY({literals})")
        assert json.loads(cursor.fetchone()[0]) == values


def test_generated_database_passwords_log_in(repo, mariadb):
    """The Job creates the user with a generated password; MISP then logs in with it (PyMySQL here)."""
    try:
        for _ in range(5):
            password = credentials.database_password()
            result = run_script(repo, mariadb, APP_PASSWORD=password)
            assert result.returncode == 0, result.stderr
            with _connect(mariadb, "misp", password) as connection, connection.cursor() as cursor:
                cursor.execute("SELECT CURRENT_USER()")
                assert cursor.fetchone()[0] == "misp@%"
    finally:
        assert run_script(repo, mariadb).returncode == 0  # back to the password the other tests use
