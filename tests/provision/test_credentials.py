"""Every generated secret survives every place it is handed on, over many draws.

The consumers that run here run for real (bash, sed, Python's URL and JSON parsers); the database
is in tests/servers/test_database_init.py (a real MariaDB); PHP does not run here, so CakePHP's
argument rule is modelled below, with its source.
"""

from __future__ import annotations

import json
import re
import subprocess
import urllib.parse
from collections.abc import Callable

import pytest

from misp_eks.provision import credentials

DRAWS = 2000
GENERATORS: dict[str, Callable[[], str]] = {
    "admin_password": credentials.admin_password,
    "database_password": credentials.database_password,
    "redis_auth_token": credentials.redis_auth_token,
    "encryption_key": credentials.encryption_key,
    "salt": credentials.salt,
    "gpg_passphrase": credentials.gpg_passphrase,
    "session_secret": credentials.session_secret,
    "supervisor_password": lambda: credentials.alphanumeric(32),
}


@pytest.fixture(scope="module")
def drawn() -> dict[str, list[str]]:
    return {name: [make() for _ in range(DRAWS)] for name, make in GENERATORS.items()}


def cake_takes_as_argument(token: str) -> bool:
    """CakePHP 2 ``lib/Cake/Console/ConsoleOptionParser.php`` ``parse()`` (MISP's app/Lib/cakephp,
    branch 2.x): a token starting with ``--`` is a long option, one starting with ``-`` a short
    option (unknown ones raise ConsoleException); only the rest are arguments. No ``--`` ends options."""
    return not token.startswith("-")


def _bash(script: str, values: list[str]) -> list[str]:
    """Run ``script`` once per value (in $v, read from stdin as misp-docker reads the environment)."""
    result = subprocess.run(
        ["/bin/bash", "-c", f"while IFS= read -r v; do {script}; done"],
        input="".join(f"{value}\n" for value in values),
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    return result.stdout.splitlines()


def test_cakes_rule_as_modelled():
    assert not cake_takes_as_argument("-Xy12")  # the admin password that kept 'admin'
    assert not cake_takes_as_argument("--x")
    assert cake_takes_as_argument("Xy-12")


@pytest.mark.parametrize("name", GENERATORS)
def test_a_cake_argument_never_an_option(drawn, name):
    """configure_misp.sh ``cake User change_pw "$ADMIN_EMAIL" "$ADMIN_PASSWORD"``, ``cake Admin
    setSetting KEY "$VALUE"`` (salt, keys, passphrases) and the runbooks' ``cake user create``."""
    assert all(cake_takes_as_argument(value) for value in drawn[name])


@pytest.mark.parametrize("name", GENERATORS)
def test_json_sql_php_and_shell_literals_hold_them_unchanged(drawn, name):
    for value in drawn[name]:
        assert json.loads('{"v": "' + value + '"}')["v"] == value  # misp-docker's envsubst'ed JSON
        assert not set(value) & set("'\\$\"`")  # PHP and SQL single quotes, shell double quotes
        assert not set(value) & set(" \t\n*?[]{}~<>|&;()#!%+=/@:,")  # word splitting, globs, URLs, sed


@pytest.mark.parametrize("name", GENERATORS)
def test_unquoted_shell_words(drawn, name):
    """misp-docker entrypoint.sh: ``MYSQL_CMD="mysql … -p$MYSQL_PASSWORD …"``, then ``$MYSQL_CMD``."""
    values = drawn[name][:1000]
    out = _bash('cmd="mysql -p$v -h db"; set -- $cmd; printf "%s|%s\\n" "$#" "$2"', values)
    assert out == [f"4|-p{value}" for value in values]


@pytest.mark.parametrize("name", ["database_password", "admin_password", "gpg_passphrase"])
def test_sed_replacement_in_database_php(drawn, name):
    """misp-docker entrypoint_nginx.sh ``init_misp_data_files``: ``s/db\\s*password/$MYSQL_PASSWORD/``
    on MISP's app/Config/database.default.php line."""
    values = drawn[name][:1000]
    out = _bash('printf "%s\\n" "\'password\' => \'db password\'," | sed "s/db\\s*password/$v/"', values)
    assert out == [f"'password' => '{value}'," for value in values]


def test_redis_token_in_php_session_save_path(drawn):
    """misp-docker entrypoint_fpm.sh ``change_php_vars``: the token is sed-escaped, spliced into a
    sed replacement, and becomes the ``auth`` query value of phpredis' ``session.save_path``."""
    values = drawn["redis_auth_token"][:1000]
    script = (
        "ESCAPED=$(printf '%s\\n' \"$v\" | sed -e 's/[\\/&]/\\\\&/g'); "
        "printf '%s\\n' ';session.save_path = \"/var/lib/php/sessions\"' | "
        "sed \"s|.*session.save_path = .*|session.save_path = 'tls://master.example:6379?auth=${ESCAPED}'|\""
    )
    for value, line in zip(values, _bash(script, values), strict=True):
        url = re.fullmatch(r"session\.save_path = '(.*)'", line)
        assert url, line
        assert urllib.parse.parse_qs(urllib.parse.urlsplit(url[1]).query, strict_parsing=True)["auth"] == [value]


@pytest.mark.parametrize("name", ["supervisor_password", "admin_password"])
def test_http_credentials_and_forms(drawn, name):
    """HTTP credentials in their strictest form, a URL's userinfo, where ``/ ? #`` end the authority
    early (RFC 3986 section 3.2) and the value parses to another host; and, unencoded, in a form
    posted as a login (``application/x-www-form-urlencoded``: no ``& + = %``)."""
    for value in drawn[name]:
        url = urllib.parse.urlsplit(f"http://supervisor:{value}@misp-supervisor.misp:9001/RPC2")
        assert (url.username, url.password, url.hostname, url.port) == (
            "supervisor",
            value,
            "misp-supervisor.misp",
            9001,
        )
        assert urllib.parse.parse_qs(f"data[User][password]={value}")["data[User][password]"] == [value]


def test_the_credentials_check_can_fail():
    for value in ("pass/word", "pass#word", "pass?word"):
        url = urllib.parse.urlsplit(f"http://supervisor:{value}@misp-supervisor.misp:9001/RPC2")
        assert (url.username, url.password, url.hostname) != ("supervisor", value, "misp-supervisor.misp")


def test_admin_password_always_starts_with_a_letter(drawn):
    assert all(value[0].isalpha() for value in drawn["admin_password"])
    assert {value[0] for value in drawn["admin_password"]} > set("aZ")  # drawn, not fixed


@pytest.mark.parametrize("name", [n for n in GENERATORS if n != "admin_password"])
def test_everything_else_is_alphanumeric(drawn, name):
    assert all(re.fullmatch(r"[A-Za-z0-9]+", value) for value in drawn[name])
