"""The end state: every Flux Kustomization Ready, and MISP and the dashboard answering over verified HTTPS.

The HTTPS check verifies certificates with the system trust store. ``MISP_EKS_VERIFY_CONNECT_TO``
(``host:port``, like curl's --connect-to) sends the checks to another address while still verifying
the certificate against the real hostname: a test aid.
"""

from __future__ import annotations

import http.client
import socket
import ssl
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

from misp_eks.provision import cluster, flux_wait, kube
from misp_eks.provision.context import Context
from misp_eks.provision.errors import BootstrapError, format_duration
from misp_eks.provision.waiting import Poll
from misp_eks.settings import Hostnames

CONNECT_TO_ENV = "MISP_EKS_VERIFY_CONNECT_TO"
FLUX_NAMESPACE = "flux-system"
HttpGet = Callable[[str, float], int]


class _ConnectTo(http.client.HTTPSConnection):
    """An HTTPS connection to ``address`` that verifies the certificate of the URL's host."""

    def __init__(self, host: str, address: tuple[str, int], context: ssl.SSLContext, timeout: float) -> None:
        super().__init__(host, context=context, timeout=timeout)
        self._address = address
        self._ssl = context

    def connect(self) -> None:
        sock = socket.create_connection(self._address, self.timeout)
        self.sock = self._ssl.wrap_socket(sock, server_hostname=self.host)


def https_get(environ: Mapping[str, str]) -> HttpGet:
    """GET over HTTPS with certificate and hostname verification; returns the status (no redirects)."""
    connect_to = environ.get(CONNECT_TO_ENV, "")

    def get(url: str, timeout: float) -> int:
        parsed = urlsplit(url)
        context = ssl.create_default_context()
        host = parsed.hostname or ""
        if connect_to:
            address, _, port = connect_to.rpartition(":")
            connection: http.client.HTTPSConnection = _ConnectTo(host, (address, int(port)), context, timeout)
        else:
            connection = http.client.HTTPSConnection(host, parsed.port or 443, context=context, timeout=timeout)
        try:
            connection.request("GET", parsed.path or "/", headers={"User-Agent": "misp-eks-bootstrap"})
            return connection.getresponse().status
        finally:
            connection.close()

    return get


def endpoints(hostnames: Hostnames) -> dict[str, str]:
    return {
        "MISP": f"https://{hostnames.misp}/users/heartbeat",
        "MISP Dashboard": f"https://{hostnames.dashboard}/healthz",
    }


def suspended(items: list[dict[str, Any]]) -> list[str]:
    """Kustomizations with spec.suspend: Flux leaves their status as it was, so their Ready says nothing."""
    return [item.get("metadata", {}).get("name", "?") for item in items if item.get("spec", {}).get("suspend") is True]


def not_ready(items: list[dict[str, Any]]) -> list[str]:
    """Those not Ready for their current spec: suspended, no Ready=True, or a status older than the spec
    (status.observedGeneration behind metadata.generation: fluxcd/kustomize-controller api/v1
    KustomizationStatus.ObservedGeneration, the generation it last reconciled)."""
    stopped = set(suspended(items))
    waiting = []
    for item in items:
        meta, status = item.get("metadata", {}), item.get("status", {})
        conditions = status.get("conditions", [])
        ready = next((c for c in conditions if c.get("type") == "Ready"), None)
        current = status.get("observedGeneration") == meta.get("generation")
        if meta.get("name", "?") in stopped or ready is None or ready.get("status") != "True" or not current:
            waiting.append(meta.get("name", "?"))
    return waiting


def kustomizations_timeout(ctx: Context) -> float:
    """The timing's, or as long as the repository's Flux Kustomizations may take (flux_wait)."""
    if ctx.timing.kustomizations is not None:
        return ctx.timing.kustomizations
    return flux_wait.flux_chain_seconds(ctx.env.root, ctx.env.name)


def wait_kustomizations(ctx: Context) -> None:
    timeout = kustomizations_timeout(ctx)

    def probe() -> Poll[None]:
        items = kube.kustomizations(ctx, FLUX_NAMESPACE)
        if not items:
            return Poll(False, "no Kustomizations yet")
        stopped = suspended(items)
        if stopped:  # waiting would not help: Flux does nothing with them until they are resumed
            raise BootstrapError(
                f"Flux Kustomizations suspended in {FLUX_NAMESPACE}: {', '.join(stopped)} (by flux suspend, or by "
                f"an interrupted --destroy); resume them with `flux resume kustomization -n {FLUX_NAMESPACE} "
                f"{' '.join(stopped)}` and run the verify phase again (--only verify)"
            )
        waiting = not_ready(items)
        return Poll(not waiting, f"not ready: {', '.join(waiting)}" if waiting else "all ready")

    what = f"every Flux Kustomization in {FLUX_NAMESPACE} to be Ready (up to {format_duration(timeout)})"
    ctx.wait(what, probe, timeout=timeout)
    ctx.record("Flux Kustomizations", FLUX_NAMESPACE, "exists", "all Ready")


def wait_endpoints(ctx: Context) -> None:
    get: HttpGet = ctx.services.get("http_get") or https_get(ctx.environ)
    for label, url in endpoints(ctx.settings.hostnames).items():

        def probe(url: str = url) -> Poll[None]:
            try:
                status = get(url, ctx.timing.http)
            except (OSError, http.client.HTTPException) as error:
                return Poll(False, f"{type(error).__name__}: {error}")
            return Poll(status == 200, f"HTTP {status}")

        ctx.wait(f"{url} to answer 200 over verified HTTPS", probe, timeout=ctx.timing.endpoints)
        ctx.record("endpoint", label, "exists", f"{url}: HTTP 200")


def run(ctx: Context) -> None:
    cluster.require_active(ctx)
    wait_kustomizations(ctx)
    wait_endpoints(ctx)
