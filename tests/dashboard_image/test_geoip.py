"""GeoLite2 download at start: verified against MaxMind's .sha256, credentials kept off redirects, never fatal."""

from __future__ import annotations

import hashlib
import io
import tarfile
import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from dashboard_entrypoint import geoip

MMDB = b"\xab\xcd\xefMaxMind.com fake database"
AUTH = "Basic MTIzNDU2OmxpY2Vuc2Uta2V5"  # base64("123456:license-key")


def make_tarball(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


class FakeMaxMind:
    """download.maxmind.com's behaviour: Basic auth, then a redirect to storage on another host."""

    def __init__(self) -> None:
        self.tarball = make_tarball(
            {"GeoLite2-City_20260101/GeoLite2-City.mmdb": MMDB, "GeoLite2-City_20260101/LICENSE.txt": b"EULA"}
        )
        self.checksum: bytes | None = None
        self.requests: list[tuple[str, str, str | None]] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                host, auth = self.headers.get("Host", ""), self.headers.get("Authorization")
                fake.requests.append((host, self.path, auth))
                if self.path.startswith("/geoip/databases/GeoLite2-City/download"):
                    if auth != AUTH:
                        self.send_response(401)
                        self.end_headers()
                        return
                    suffix = self.path.rsplit("suffix=", 1)[1]
                    # storage is "another host": same server, other name
                    self.send_response(302)
                    self.send_header("Location", f"http://localhost:{fake.port}/storage/{suffix}?X-Amz-Signature=x")
                    self.end_headers()
                    return
                if self.path.startswith("/storage/"):
                    if auth is not None:  # pre-signed storage URLs reject a second credential
                        self.send_response(400)
                        self.end_headers()
                        return
                    suffix = self.path.split("/storage/", 1)[1].split("?", 1)[0]
                    if suffix == "tar.gz":
                        body = fake.tarball
                    else:
                        digest = hashlib.sha256(fake.tarball).hexdigest().encode()
                        body = fake.checksum or digest + b"  GeoLite2-City_20260101.tar.gz\n"
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return
                self.send_response(404)
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/geoip/databases/GeoLite2-City/download?suffix={{suffix}}"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def maxmind():
    fake = FakeMaxMind()
    yield fake
    fake.close()


def ensure(target: Path, maxmind: FakeMaxMind, key: str = "license-key", **kwargs) -> tuple[bool, list[str]]:
    lines: list[str] = []
    ok = geoip.ensure_database(target, "123456", key, log=lines.append, url_template=maxmind.url, **kwargs)
    return ok, lines


def test_download_verify_extract(tmp_path, maxmind):
    target = tmp_path / "geoip" / "GeoLite2-City.mmdb"
    ok, lines = ensure(target, maxmind)
    assert ok
    assert target.read_bytes() == MMDB
    assert lines == [f"geoip: GeoLite2-City downloaded and verified to {target}"]
    assert sorted(p.name for p in target.parent.iterdir()) == ["GeoLite2-City.mmdb"]  # no archive left behind
    # MaxMind got the credentials, the storage host did not
    assert {(path.split("?")[0], auth) for host, path, auth in maxmind.requests if host.startswith("127.0.0.1")} == {
        ("/geoip/databases/GeoLite2-City/download", AUTH)
    }
    assert all(auth is None for host, _, auth in maxmind.requests if host.startswith("localhost"))
    assert "license-key" not in " ".join(lines)


def test_checksum_mismatch_falls_back_with_one_line(tmp_path, maxmind):
    maxmind.checksum = b"0" * 64 + b"  GeoLite2-City_20260101.tar.gz\n"
    target = tmp_path / "GeoLite2-City.mmdb"
    ok, lines = ensure(target, maxmind)
    assert not ok
    assert not target.exists()
    assert len(lines) == 1
    assert lines[0].startswith("geoip: GeoLite2-City download failed: SHA-256 mismatch")
    assert lines[0].endswith("IP geolocation is off")


def test_malformed_checksum_file(tmp_path, maxmind):
    maxmind.checksum = b"<html>maintenance</html>"
    ok, lines = ensure(tmp_path / "GeoLite2-City.mmdb", maxmind)
    assert not ok
    assert lines == [
        "geoip: GeoLite2-City download failed: the .sha256 file does not start with a SHA-256 digest;"
        " IP geolocation is off"
    ]


def test_wrong_credentials(tmp_path, maxmind):
    ok, lines = ensure(tmp_path / "GeoLite2-City.mmdb", maxmind, key="wrong")
    assert not ok
    assert lines == [
        "geoip: GeoLite2-City download failed: HTTP 401 Unauthorized (check the account ID and license key);"
        " IP geolocation is off"
    ]
    assert "wrong" not in lines[0]


def test_archive_without_database(tmp_path, maxmind):
    maxmind.tarball = make_tarball({"GeoLite2-City_20260101/README.txt": b"x", "../../etc/passwd": b"x"})
    ok, lines = ensure(tmp_path / "GeoLite2-City.mmdb", maxmind)
    assert not ok
    assert "does not contain exactly one GeoLite2-City.mmdb" in lines[0]
    assert not (tmp_path.parent / "etc").exists()


def test_unreachable_host(tmp_path):
    lines: list[str] = []
    url = "http://127.0.0.1:9/nothing?suffix={suffix}"  # discard port: connection refused
    ok = geoip.ensure_database(tmp_path / "db.mmdb", "1", "k", log=lines.append, url_template=url)
    assert not ok
    assert len(lines) == 1
    assert lines[0].startswith("geoip: GeoLite2-City download failed: ")


def test_failure_keeps_a_previous_database(tmp_path, maxmind):
    target = tmp_path / "GeoLite2-City.mmdb"
    target.write_bytes(b"old")
    maxmind.checksum = b"f" * 64
    ok, lines = ensure(target, maxmind, now=lambda: target.stat().st_mtime + 2 * 86400)
    assert ok
    assert target.read_bytes() == b"old"
    assert lines[0].endswith(f"keeping the previous {target}")


def test_recent_database_is_reused_without_download(tmp_path, maxmind):
    target = tmp_path / "GeoLite2-City.mmdb"
    target.write_bytes(b"recent")
    ok, lines = ensure(target, maxmind, now=lambda: target.stat().st_mtime + 3600)
    assert ok
    assert maxmind.requests == []
    assert lines == [f"geoip: reusing {target} downloaded less than a day ago"]


def test_no_credentials_means_no_download(tmp_path):
    lines: list[str] = []
    assert geoip.ensure_database(tmp_path / "db.mmdb", None, None, log=lines.append) is False
    assert lines == [
        "geoip: no MaxMind credentials; IP geolocation is off (phone-number locations still show on the map)"
    ]


def test_production_url_is_maxminds_https_endpoint():
    assert geoip.DOWNLOAD_URL.format(suffix="tar.gz") == (
        "https://download.maxmind.com/geoip/databases/GeoLite2-City/download?suffix=tar.gz"
    )


def test_redirect_from_https_to_http_is_refused():
    handler = geoip._NoCredentialsOnRedirect()
    request = urllib.request.Request("https://download.maxmind.com/x", headers={"Authorization": AUTH})
    with pytest.raises(urllib.error.HTTPError, match="refusing a redirect from https to http"):
        handler.redirect_request(request, io.BytesIO(), 302, "Found", {}, "http://storage.example/x")
    same_host = handler.redirect_request(request, io.BytesIO(), 302, "Found", {}, "https://download.maxmind.com/y")
    assert same_host.get_header("Authorization") == AUTH
    other_host = handler.redirect_request(request, io.BytesIO(), 302, "Found", {}, "https://r2.example/y")
    assert other_host.get_header("Authorization") is None
