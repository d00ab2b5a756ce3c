"""EKS bearer tokens made from the run's AWS credentials, without the aws CLI or an exec plugin.

An EKS token is a presigned STS GetCallerIdentity URL that signs the header ``x-k8s-aws-id: <cluster>``,
encoded as ``k8s-aws-v1.`` + unpadded URL-safe base64 (kubernetes-sigs/aws-iam-authenticator
pkg/token/token.go at v0.7.18: ``GetWithSTS``, ``v1Prefix``, ``clusterIDHeader``, ``requestPresignParam = 60``).
STS ignores X-Amz-Expires: the token is good for 15 minutes after X-Amz-Date (``presignedURLExpiration``),
and the authenticator refuses tokens older than that, so callers refresh them well before.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from dataclasses import dataclass

import botocore.session
from botocore.auth import SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import ReadOnlyCredentials

PREFIX = "k8s-aws-v1."
CLUSTER_HEADER = "x-k8s-aws-id"
PRESIGN_SECONDS = 60  # aws-iam-authenticator sends 60 "for legacy reasons"; STS ignores it
LIFETIME_SECONDS = 15 * 60
REFRESH_AFTER_SECONDS = 10 * 60
"""A token is replaced once this old: well inside its 15 minutes, whatever the clock skew."""
STS_QUERY = "Action=GetCallerIdentity&Version=2011-06-15"


def wall_clock() -> float:
    """Seconds since the epoch: a token's age counts from its X-Amz-Date, which is wall-clock time (a machine
    asleep keeps ageing its tokens; a monotonic clock would not see that)."""
    return time.time()


def sts_host(region: str) -> str:
    """The regional STS endpoint of ``region``'s partition (the authenticator accepts sts.<region>.<suffix>)."""
    session = botocore.session.get_session()
    partition = session.get_partition_for_region(region)
    suffixes = {item["partition"]: item["dnsSuffix"] for item in session.get_data("endpoints")["partitions"]}
    return f"sts.{region}.{suffixes[partition]}"


def make_token(credentials: ReadOnlyCredentials, cluster: str, region: str) -> str:
    """A fresh token for ``cluster`` signed with ``credentials`` (SigV4 query signing, service sts)."""
    request = AWSRequest(
        method="GET", url=f"https://{sts_host(region)}/?{STS_QUERY}", headers={CLUSTER_HEADER: cluster}
    )
    SigV4QueryAuth(credentials, "sts", region, expires=PRESIGN_SECONDS).add_auth(request)
    encoded = base64.urlsafe_b64encode(str(request.url).encode()).decode().rstrip("=")
    return PREFIX + encoded


def presigned_url(token: str) -> str:
    """The URL inside a token (for tests and error messages)."""
    if not token.startswith(PREFIX):
        raise ValueError(f"not an EKS token: it does not start with {PREFIX}")
    body = token.removeprefix(PREFIX)
    return base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)).decode()


@dataclass
class TokenSource:
    """Hands out a token, making a new one when the last is REFRESH_AFTER_SECONDS old."""

    credentials: Callable[[], ReadOnlyCredentials]
    cluster: str
    region: str
    clock: Callable[[], float] = wall_clock
    _token: str = ""
    _made: float = 0.0

    def token(self) -> str:
        if not self._token or self.clock() - self._made >= REFRESH_AFTER_SECONDS:
            return self.fresh()
        return self._token

    def fresh(self) -> str:
        """A new token, whatever the age of the last (for a tool that may run for many minutes)."""
        self._token = make_token(self.credentials(), self.cluster, self.region)
        self._made = self.clock()
        return self._token
