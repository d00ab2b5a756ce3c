"""An emulated AWS account with everything around the bootstrap: used by the end-to-end test and the benchmark.

A moto server on 127.0.0.1 (in this process, so that its known gaps can be patched), the hosted
zone, a load balancer as the AWS Load Balancer Controller leaves it, a Kubernetes API server per
environment (tests.provision.apiserver), the stand-ins for eksctl and flux, no aws CLI on PATH, a
local RDS trust store, and an HTTPS server for MISP and the dashboard with a test CA.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import boto3
import pytest
from moto.moto_api._internal.models import moto_api_backend
from moto.server import ThreadedMotoServer

from tests.provision import crowd, emulate
from tests.provision.apiserver import Running
from tests.provision.aws_model import check_recorded
from tests.provision.cluster_api import kubernetes_apis
from tests.provision.conftest import FAKE_PEM, REGION, StandIns, fake_aws_environment, install_standins, patch_moto_gaps
from tests.provision.servers import file_server, https_server
from tests.servers.tls import make_certificates

CLUSTER = "misp-prod"
HOSTS = ["misp.example.org", "misp-dashboard.example.org"]
STAGING_HOSTS = ["misp.staging.example.org", "misp-dashboard.staging.example.org"]


@dataclass(frozen=True)
class World:
    repo: Path
    work: Path
    environ: dict[str, str]
    zone_id: str
    standins: StandIns
    apis: dict[str, Running] = field(default_factory=dict)
    """The Kubernetes API server of each environment (tests.provision.apiserver)."""

    def bootstrap(
        self, *args: str, env: str = "prod", calls: Path | None = None, timeout: float = 240
    ) -> subprocess.CompletedProcess[str]:
        """``python bootstrap/bootstrap.py --env ENV --yes --plain ARGS`` against this world.

        Every AWS request of the run is recorded (in ``calls``, or a file of its own) and checked against
        botocore's service models (tests/provision/aws_model.py): a departure fails the test.
        """
        if calls is None:
            handle, name = tempfile.mkstemp(prefix="calls-", suffix=".jsonl", dir=self.work)
            os.close(handle)
            calls = Path(name)
        environ = {**self.environ, "MISP_EKS_RECORD_CALLS": str(calls)}
        done = subprocess.run(
            [sys.executable, str(self.repo / "bootstrap" / "bootstrap.py"), "--env", env, "--yes", "--plain", *args],
            env=environ,
            cwd=self.repo,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        problems = check_recorded(calls)
        assert problems == [], f"requests departing from botocore's service models: {problems}"
        return done


def without_aws_cli(path: str) -> str:
    """``path`` without the directories that hold an ``aws`` executable: the bootstrap must not need it."""
    return os.pathsep.join(
        entry for entry in path.split(os.pathsep) if entry and not os.access(Path(entry) / "aws", os.X_OK)
    )


@contextmanager
def world(repo: Path, work: Path, *, crowded: bool = False, staging: bool = False) -> Iterator[World]:
    """The emulated account; ``crowded`` adds another team's look-alike resources (tests/provision/crowd.py);
    ``staging`` what staging needs beside prod (its hosted zone, its load balancer, its hostnames' certificate)."""
    with pytest.MonkeyPatch.context() as patch:
        patch_moto_gaps(patch)
        base = fake_aws_environment()
        for key, value in base.items():
            patch.setenv(key, value)
        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per emulated request
        # moto's server keeps its accounts in this process's backends: start from an empty account,
        # whatever an earlier world of the same test session left there.
        moto_api_backend.reset()
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        try:
            endpoint = f"http://127.0.0.1:{server.get_host_and_port()[1]}"
            patch.setenv("AWS_ENDPOINT_URL", endpoint)
            zone = boto3.client("route53", region_name=REGION).create_hosted_zone(
                Name="example.org", CallerReference="w"
            )
            zone_id = zone["HostedZone"]["Id"].split("/")[-1]
            if crowded:
                crowd.populate_foreign(REGION, zone_id)
            emulate.load_balancer(REGION, CLUSTER)
            if staging:
                boto3.client("route53", region_name=REGION).create_hosted_zone(
                    Name="staging.example.org", CallerReference="w-staging"
                )
                emulate.load_balancer(REGION, "misp-staging")
            tls = make_certificates(work, tuple(HOSTS + (STAGING_HOSTS if staging else [])))
            standins = install_standins(work / "bin", repo)
            bundle = {f"/{REGION}/{REGION}-bundle.pem": FAKE_PEM.encode()}
            with (
                https_server(tls) as https_port,
                file_server(bundle) as truststore,
                kubernetes_apis(repo, work, REGION, zone_id) as apis,
            ):
                environ = {
                    **standins.environ({**base, "PATH": without_aws_cli(base.get("PATH", os.defpath))}),
                    "AWS_ENDPOINT_URL": endpoint,
                    "MISP_EKS_TIMING": "fast",
                    "MISP_EKS_RDS_TRUSTSTORE_URL": truststore,
                    "MISP_EKS_VERIFY_CONNECT_TO": f"127.0.0.1:{https_port}",
                    "SSL_CERT_FILE": str(tls.ca),
                    "GITHUB_TOKEN": "test-token-not-real",
                    "HOME": str(work),
                }
                yield World(repo, work, environ, zone_id, standins, apis)
        finally:
            server.stop()
