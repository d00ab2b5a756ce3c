"""GeoLite2-City for the dispatcher: MaxMind's documented download (account ID + license key, HTTP Basic auth),
checked against MaxMind's published .sha256 file, extracted to the state directory. Failure is never fatal."""

from __future__ import annotations

import base64
import hashlib
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

DOWNLOAD_URL = "https://download.maxmind.com/geoip/databases/GeoLite2-City/download?suffix={suffix}"
MAX_ARCHIVE_BYTES = 512 * 1024 * 1024
REUSE_SECONDS = 24 * 3600  # a restarted container reuses a recent download (MaxMind limits daily downloads)
TIMEOUT_SECONDS = 60


class DownloadError(Exception):
    pass


class _NoCredentialsOnRedirect(urllib.request.HTTPRedirectHandler):
    """MaxMind redirects to a pre-signed storage URL: the Basic credentials must not follow to another host, and
    a redirect may never leave https."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # noqa: ANN001 (urllib's signature)
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        if new is None:
            return None
        old_parts, new_parts = urlsplit(req.full_url), urlsplit(new.full_url)
        if old_parts.scheme == "https" and new_parts.scheme != "https":
            raise urllib.error.HTTPError(newurl, code, "refusing a redirect from https to http", headers, fp)
        if (old_parts.scheme, old_parts.netloc) != (new_parts.scheme, new_parts.netloc):
            new.remove_header("Authorization")
            new.unredirected_hdrs.pop("Authorization", None)
        return new


def default_opener() -> urllib.request.OpenerDirector:
    return urllib.request.build_opener(_NoCredentialsOnRedirect())


def _get(opener: urllib.request.OpenerDirector, url: str, auth: str, sink: Callable[[bytes], None]) -> None:
    request = urllib.request.Request(url, headers={"Authorization": auth, "User-Agent": "misp-dashboard-image"})  # noqa: S310 (https URL constant)
    total = 0
    with opener.open(request, timeout=TIMEOUT_SECONDS) as response:
        while chunk := response.read(1024 * 1024):
            total += len(chunk)
            if total > MAX_ARCHIVE_BYTES:
                raise DownloadError(f"more than {MAX_ARCHIVE_BYTES} bytes")
            sink(chunk)


def _expected_sha256(text: str) -> str:
    # MaxMind's file reads "<sha256>  GeoLite2-City_YYYYMMDD.tar.gz".
    token = text.strip().split()[0].lower() if text.strip() else ""
    if len(token) != 64 or any(c not in "0123456789abcdef" for c in token):
        raise DownloadError("the .sha256 file does not start with a SHA-256 digest")
    return token


def download(
    target: Path,
    account_id: str,
    license_key: str,
    *,
    url_template: str = DOWNLOAD_URL,
    opener: urllib.request.OpenerDirector | None = None,
) -> None:
    """Download, verify and extract GeoLite2-City.mmdb to target (atomically). Raises DownloadError."""
    opener = opener or default_opener()
    auth = "Basic " + base64.b64encode(f"{account_id}:{license_key}".encode()).decode("ascii")
    checksum_parts: list[bytes] = []
    try:
        _get(opener, url_template.format(suffix="tar.gz.sha256"), auth, checksum_parts.append)
        expected = _expected_sha256(b"".join(checksum_parts).decode("ascii", "replace"))
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=target.parent) as scratch:
            archive = Path(scratch) / "GeoLite2-City.tar.gz"
            digest = hashlib.sha256()
            with archive.open("wb") as handle:

                def sink(chunk: bytes) -> None:
                    digest.update(chunk)
                    handle.write(chunk)

                _get(opener, url_template.format(suffix="tar.gz"), auth, sink)
            if digest.hexdigest() != expected:
                raise DownloadError(f"SHA-256 mismatch (got {digest.hexdigest()}, MaxMind published {expected})")
            extracted = Path(scratch) / "GeoLite2-City.mmdb"
            with tarfile.open(archive, "r:gz") as tar:
                members = [m for m in tar.getmembers() if m.isfile() and Path(m.name).name == "GeoLite2-City.mmdb"]
                if len(members) != 1:
                    raise DownloadError("the archive does not contain exactly one GeoLite2-City.mmdb")
                source = tar.extractfile(members[0])
                if source is None:
                    raise DownloadError("GeoLite2-City.mmdb cannot be read from the archive")
                with source, extracted.open("wb") as out:
                    while chunk := source.read(1024 * 1024):
                        out.write(chunk)
            extracted.replace(target)
    except urllib.error.HTTPError as error:
        hint = " (check the account ID and license key)" if error.code in (401, 403) else ""
        raise DownloadError(f"HTTP {error.code} {error.reason}{hint}") from None
    except (urllib.error.URLError, OSError, tarfile.TarError, EOFError) as error:
        raise DownloadError(str(getattr(error, "reason", error))) from None


def ensure_database(
    target: Path,
    account_id: str | None,
    license_key: str | None,
    *,
    now: Callable[[], float] = time.time,
    log: Callable[[str], None] = lambda line: print(line, file=sys.stderr, flush=True),
    **download_options: object,
) -> bool:
    """True when target holds a database. Without credentials or on any failure the dashboard runs without one
    (the hook's stand-in Reader answers 'address not found'); a failure logs exactly one line."""
    if account_id is None or license_key is None:
        log("geoip: no MaxMind credentials; IP geolocation is off (phone-number locations still show on the map)")
        return target.is_file()
    if target.is_file() and now() - target.stat().st_mtime < REUSE_SECONDS:
        log(f"geoip: reusing {target} downloaded less than a day ago")
        return True
    try:
        download(target, account_id, license_key, **download_options)  # type: ignore[arg-type]
    except DownloadError as error:
        state = f"keeping the previous {target}" if target.is_file() else "IP geolocation is off"
        log(f"geoip: GeoLite2-City download failed: {error}; {state}")
        return target.is_file()
    log(f"geoip: GeoLite2-City downloaded and verified to {target}")
    return True
