"""One boto3 session per run, with adaptive retries everywhere and every call recorded."""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import botocore.session
from botocore.config import Config

from misp_eks.provision.aws.calls import CallLog

RECORD_CALLS_ENV = "MISP_EKS_RECORD_CALLS"
# Throttling and transient errors are retried with client-side rate limiting (botocore "adaptive").
RETRIES = Config(
    retries={"mode": "adaptive", "max_attempts": 10},
    connect_timeout=10,
    read_timeout=70,
    user_agent_appid="misp-eks-bootstrap",
)
# The instance metadata provider probes 169.254.169.254 when nothing else has credentials.
_INSTANCE_METADATA_PROVIDER = "iam-role"


@dataclass(frozen=True)
class Identity:
    account: str
    arn: str

    @property
    def partition(self) -> str:
        return self.arn.split(":")[1] if self.arn.startswith("arn:") else "aws"


class Aws:
    """Clients for one region, created once each (clients are thread-safe; sessions are not)."""

    def __init__(self, region: str, calls: CallLog, *, instance_metadata: bool = True) -> None:
        core = botocore.session.get_session()
        if not instance_metadata:
            core.get_component("credential_provider").remove(_INSTANCE_METADATA_PROVIDER)
        self.region = region
        self.calls = calls
        self.session = boto3.Session(botocore_session=core, region_name=region)
        calls.attach(self.session.events)
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._identity: Identity | None = None

    def client(self, service: str) -> Any:
        with self._lock:
            if service not in self._clients:
                self._clients[service] = self.session.client(service, config=RETRIES)
            return self._clients[service]

    def has_credentials(self) -> bool:
        """Whether the credential chain finds anything (no AWS call is made)."""
        return self.session.get_credentials() is not None

    def identity(self) -> Identity:
        if self._identity is None:
            answer = self.client("sts").get_caller_identity()
            self._identity = Identity(account=answer["Account"], arn=answer["Arn"])
        return self._identity


def call_log_from_environment(environ: dict[str, str] | os._Environ[str]) -> CallLog:
    path = environ.get(RECORD_CALLS_ENV)
    return CallLog(path=Path(path) if path else None)
