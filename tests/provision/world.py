"""An emulated AWS account with everything around the bootstrap: used by the end-to-end test and the benchmark.

A moto server on 127.0.0.1 (in this process, so that its known gaps can be patched), the hosted
zone, a load balancer as the AWS Load Balancer Controller leaves it, the stand-ins for eksctl, flux
and kubectl, a local RDS trust store, and an HTTPS server for MISP and the dashboard with a test CA.
"""

from __future__ import annotations

import logging
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest
from moto.server import ThreadedMotoServer

from tests.provision import emulate
from tests.provision.conftest import FAKE_PEM, REGION, StandIns, fake_aws_environment, install_standins, patch_moto_gaps
from tests.provision.servers import file_server, https_server
from tests.servers.tls import make_certificates

CLUSTER = "misp-prod"
HOSTS = ["misp.example.org", "misp-dashboard.example.org"]


@dataclass(frozen=True)
class World:
    repo: Path
    work: Path
    environ: dict[str, str]
    zone_id: str
    standins: StandIns

    def bootstrap(
        self, *args: str, calls: Path | None = None, timeout: float = 240
    ) -> subprocess.CompletedProcess[str]:
        """``python bootstrap/bootstrap.py --env prod --yes --plain ARGS`` against this world."""
        environ = dict(self.environ)
        if calls is not None:
            environ["MISP_EKS_RECORD_CALLS"] = str(calls)
        return subprocess.run(
            [sys.executable, str(self.repo / "bootstrap" / "bootstrap.py"), "--env", "prod", "--yes", "--plain", *args],
            env=environ,
            cwd=self.repo,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )


@contextmanager
def world(repo: Path, work: Path) -> Iterator[World]:
    with pytest.MonkeyPatch.context() as patch:
        patch_moto_gaps(patch)
        base = fake_aws_environment()
        for key, value in base.items():
            patch.setenv(key, value)
        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per emulated request
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        try:
            endpoint = f"http://127.0.0.1:{server.get_host_and_port()[1]}"
            patch.setenv("AWS_ENDPOINT_URL", endpoint)
            zone = boto3.client("route53", region_name=REGION).create_hosted_zone(
                Name="example.org", CallerReference="w"
            )
            zone_id = zone["HostedZone"]["Id"].split("/")[-1]
            emulate.load_balancer(REGION, CLUSTER)
            tls = make_certificates(work, tuple(HOSTS))
            standins = install_standins(work / "bin", repo)
            bundle = {f"/{REGION}/{REGION}-bundle.pem": FAKE_PEM.encode()}
            with https_server(tls) as https_port, file_server(bundle) as truststore:
                environ = {
                    **standins.environ(base),
                    "AWS_ENDPOINT_URL": endpoint,
                    "MISP_EKS_TIMING": "fast",
                    "MISP_EKS_RDS_TRUSTSTORE_URL": truststore,
                    "MISP_EKS_VERIFY_CONNECT_TO": f"127.0.0.1:{https_port}",
                    "SSL_CERT_FILE": str(tls.ca),
                    "GITHUB_TOKEN": "test-token-not-real",
                    "STANDIN_ZONE_ID": zone_id,
                    "HOME": str(work),
                }
                yield World(repo, work, environ, zone_id, standins)
        finally:
            server.stop()
