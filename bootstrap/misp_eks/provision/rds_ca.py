"""The RDS certificate bundle of a region, for verifying the database's TLS certificate.

Downloaded from AWS's trust store (https://truststore.pki.rds.amazonaws.com/<region>/<region>-bundle.pem).
``MISP_EKS_RDS_TRUSTSTORE_URL`` replaces the base URL (tests serve a fake bundle locally).
"""

from __future__ import annotations

import urllib.request
from collections.abc import Mapping

from misp_eks.provision.errors import BootstrapError

TRUSTSTORE = "https://truststore.pki.rds.amazonaws.com"
TRUSTSTORE_ENV = "MISP_EKS_RDS_TRUSTSTORE_URL"
_MAXIMUM_BYTES = 2 * 1024 * 1024


def bundle_url(region: str, environ: Mapping[str, str]) -> str:
    base = environ.get(TRUSTSTORE_ENV, TRUSTSTORE).rstrip("/")
    return f"{base}/{region}/{region}-bundle.pem"


def download(region: str, environ: Mapping[str, str], timeout: float = 30.0) -> str:
    url = bundle_url(region, environ)
    if not url.startswith(("https://", "http://")):
        raise BootstrapError(f"{TRUSTSTORE_ENV} must be an http(s) URL, not {url}")
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (scheme checked above)
            body = response.read(_MAXIMUM_BYTES).decode("ascii")
    except (OSError, UnicodeDecodeError) as error:
        raise BootstrapError(f"cannot download the RDS CA bundle from {url}: {error}") from None
    if "-----BEGIN CERTIFICATE-----" not in body:
        raise BootstrapError(f"{url} holds no PEM certificates")
    return body
