"""apps/misp/base/files/nginx.conf served by a real nginx (Debian's, as in misp-core).

In the pod nginx serves MISP's webroot from the image and hands PHP to php-fpm on 127.0.0.1:9002;
here the test gives it a webroot of its own and no php-fpm, so whatever nginx would hand to PHP
answers 502.
"""

from __future__ import annotations

import http.client
import os
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from misp_eks.cluster_vars import ClusterVars
from misp_eks.envsubst import substitute
from tests.conftest import system_tool
from tests.servers.tls import free_port

pytestmark = pytest.mark.servers

WEBROOT = "/var/www/MISP/app/webroot"


@dataclass(frozen=True)
class Nginx:
    port: int
    config: Path
    binary: str


def _config(repo: Path, base: Path, port: int) -> str:
    """The ConfigMap's file as Flux substitutes it, with the pod's paths moved under ``base``."""
    text = substitute((repo / "apps/misp/base/files/nginx.conf").read_text(), ClusterVars.example().data()).text
    moved = {  # in this order: base itself may lie under /tmp
        "/tmp/": f"{base / 'tmp'}/",
        "listen 8080;": f"listen 127.0.0.1:{port};",
        f"root {WEBROOT};": f"root {base / 'webroot'};",
        "/etc/misp-gpg/public_key": str(base / "gpg/public_key"),
    }
    for old, new in moved.items():
        assert old in text, old
        text = text.replace(old, new)
    return text


@pytest.fixture(scope="module")
def nginx(repo, tmp_path_factory) -> Iterator[Nginx]:
    binary = system_tool("nginx", "nginx-light")
    base = tmp_path_factory.mktemp("nginx")
    for directory in ("webroot/js", "webroot/css", "gpg", "tmp"):
        (base / directory).mkdir(parents=True)
    (base / "webroot/js/module.mjs").write_text("export const misp = 1;\n")
    (base / "webroot/js/script.js").write_text("var misp = 1;\n")
    (base / "webroot/css/main.css").write_text("body {}\n")
    (base / "gpg/public_key").write_text("-----BEGIN PGP PUBLIC KEY BLOCK-----\n")
    port = free_port()
    config = base / "nginx.conf"
    config.write_text(_config(repo, base, port))
    # As root here, nginx would hand its workers to "nobody"; in the pod it runs as www-data.
    user = "user root;" if os.geteuid() == 0 else ""
    process = subprocess.Popen(
        [binary, "-e", "stderr", "-c", str(config), "-g", f"daemon off; {user}"],
        stdout=subprocess.DEVNULL,
        stderr=(base / "stderr.log").open("w"),
    )
    server = Nginx(port, config, binary)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                get(server, "/css/main.css")
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    pytest.fail("nginx did not start:\n" + (base / "stderr.log").read_text()[-2000:])
                time.sleep(0.2)
        yield server
    finally:
        process.terminate()
        process.wait(timeout=30)


def get(server: Nginx, path: str) -> tuple[int, dict[str, str], bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def test_the_configuration_is_valid(nginx):
    result = subprocess.run(
        [nginx.binary, "-e", "stderr", "-t", "-c", str(nginx.config)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr


def test_javascript_modules_are_javascript(nginx):
    status, headers, body = get(nginx, "/js/module.mjs")
    assert status == 200 and body == b"export const misp = 1;\n"
    # Browsers run a module served with any JavaScript MIME type (HTML's "JavaScript MIME type").
    assert headers["Content-Type"] == "application/javascript"
    assert get(nginx, "/js/script.js")[1]["Content-Type"] in ("application/javascript", "text/javascript")


def test_stylesheets_are_files_or_nothing(nginx):
    assert get(nginx, "/css/main.css")[0] == 200
    status, _, body = get(nginx, "/css/missing.css")
    assert status == 404, body  # not handed to MISP's index.php (which would answer 502 here)
    assert get(nginx, "/events/index")[0] == 502  # pages still go to php-fpm


def test_public_key_and_headers(nginx):
    status, headers, body = get(nginx, "/gpg.asc")
    assert status == 200 and body.startswith(b"-----BEGIN PGP PUBLIC KEY BLOCK-----")
    assert headers["Content-Type"] == "text/plain"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert "Server" not in headers or headers["Server"] == "nginx"  # server_tokens off


def test_the_pre_stop_hook_stops_nginx_gracefully(repo, tmp_path):
    """web.yaml's preStop of nginx, with its pause cut short: nginx quits and the hook returns."""
    manifest = yaml.safe_load_all((repo / "apps/misp/base/web/web.yaml").read_text())
    web = next(d for d in manifest if d["kind"] == "Deployment")
    nginx = next(c for c in web["spec"]["template"]["spec"]["containers"] if c["name"] == "nginx")
    command = nginx["lifecycle"]["preStop"]["exec"]["command"]
    assert command[:2] == ["/bin/sh", "-c"] and command[2].startswith("sleep 20;")
    for directory in ("webroot", "gpg", "tmp"):
        (tmp_path / directory).mkdir()
    config = tmp_path / "nginx.conf"
    config.write_text(_config(repo, tmp_path, free_port()))
    binary = system_tool("nginx", "nginx-light")
    user = "user root;" if os.geteuid() == 0 else ""
    server = subprocess.Popen([binary, "-e", "stderr", "-c", str(config), "-g", f"daemon off; {user}"])
    pid_file = tmp_path / "tmp/nginx.pid"
    deadline = time.monotonic() + 10
    while not pid_file.exists():
        assert time.monotonic() < deadline and server.poll() is None, "nginx did not start"
        time.sleep(0.1)
    script = (
        command[2]
        .replace("sleep 20;", "sleep 0;")
        .replace("/etc/nginx/misp/nginx.conf", str(config))
        .replace("/tmp/nginx.pid", str(pid_file))
        .replace("nginx -e", f"{binary} -e")
    )
    try:
        hook = subprocess.run(["/bin/sh", "-c", script], capture_output=True, text=True, timeout=30, check=False)
        assert hook.returncode == 0, hook.stderr
        assert server.wait(timeout=10) == 0  # SIGQUIT: a graceful exit
        assert not pid_file.exists()
    finally:
        if server.poll() is None:
            server.kill()
            server.wait(timeout=10)
