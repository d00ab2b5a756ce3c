"""EKS tokens: what aws-iam-authenticator makes, checked as aws-iam-authenticator and STS check them."""

from __future__ import annotations

import base64
import time
from urllib.parse import parse_qs, urlsplit

import pytest
from botocore.auth import SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import ReadOnlyCredentials

from misp_eks.provision import eks_token
from misp_eks.provision.waiting import Timing
from tests.provision.apiserver import verify_token

CREDENTIALS = ReadOnlyCredentials("AKIDEXAMPLE", "example-secret-not-real", None)  # pragma: allowlist secret
SECRETS = {"AKIDEXAMPLE": "example-secret-not-real"}  # pragma: allowlist secret


def test_the_token_is_a_presigned_sts_url_that_signs_the_cluster_header() -> None:
    token = eks_token.make_token(CREDENTIALS, "misp-prod", "eu-west-1")
    assert token.startswith("k8s-aws-v1.") and "=" not in token  # unpadded URL-safe base64
    url = urlsplit(eks_token.presigned_url(token))
    assert (url.scheme, url.netloc, url.path) == ("https", "sts.eu-west-1.amazonaws.com", "/")
    query = {key: values[0] for key, values in parse_qs(url.query).items()}
    assert query["Action"] == "GetCallerIdentity" and query["Version"] == "2011-06-15"
    assert "x-k8s-aws-id" in query["X-Amz-SignedHeaders"].split(";")
    assert query["X-Amz-Expires"] == "60"
    assert (
        query["X-Amz-Credential"].startswith("AKIDEXAMPLE/")
        and "/eu-west-1/sts/aws4_request" in query["X-Amz-Credential"]
    )
    assert verify_token(token, "misp-prod", SECRETS) == "AKIDEXAMPLE"


def test_a_token_for_another_cluster_or_signed_with_other_keys_is_refused() -> None:
    token = eks_token.make_token(CREDENTIALS, "misp-staging", "eu-west-1")
    with pytest.raises(ValueError, match="SignatureDoesNotMatch"):
        verify_token(token, "misp-prod", SECRETS)
    with pytest.raises(ValueError, match="SignatureDoesNotMatch"):
        verify_token(token, "misp-staging", {"AKIDEXAMPLE": "another-secret"})  # pragma: allowlist secret


def test_an_expired_or_malformed_token_is_refused() -> None:
    token = eks_token.make_token(CREDENTIALS, "misp-prod", "eu-west-1")
    with pytest.raises(ValueError, match="expired"):
        verify_token(token, "misp-prod", SECRETS, now=time.time() + 16 * 60)
    with pytest.raises(ValueError, match="prefix"):
        verify_token(token.removeprefix("k8s-aws-v1."), "misp-prod", SECRETS)
    with pytest.raises(ValueError, match="padded"):
        verify_token(token + "==", "misp-prod", SECRETS)


def test_other_partitions_use_their_sts_domain() -> None:
    url = eks_token.presigned_url(eks_token.make_token(CREDENTIALS, "misp-prod", "cn-north-1"))
    assert urlsplit(url).netloc == "sts.cn-north-1.amazonaws.com.cn"


def test_tokens_are_refreshed_before_they_expire() -> None:
    now = [1000.0]
    made: list[str] = []

    def credentials() -> ReadOnlyCredentials:
        made.append("call")
        return CREDENTIALS

    source = eks_token.TokenSource(credentials, "misp-prod", "eu-west-1", clock=lambda: now[0])
    first = source.token()
    now[0] += eks_token.REFRESH_AFTER_SECONDS - 1
    assert source.token() == first and len(made) == 1
    now[0] += 1
    time.sleep(1.1)  # X-Amz-Date has a resolution of one second
    assert source.token() != first and len(made) == 2
    assert eks_token.REFRESH_AFTER_SECONDS < eks_token.LIFETIME_SECONDS


def test_a_tokens_age_is_wall_clock_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """EKS counts 15 minutes from X-Amz-Date, wall-clock time; a machine that slept has a monotonic clock
    that did not move (aws-iam-authenticator v0.7.18 pkg/token/token.go Verify, presignedURLExpiration)."""
    source = eks_token.TokenSource(lambda: CREDENTIALS, "misp-prod", "eu-west-1")
    first = source.token()
    woke = time.time() + eks_token.REFRESH_AFTER_SECONDS
    monkeypatch.setattr(time, "time", lambda: woke)  # asleep for ten minutes: time.monotonic() stood still
    assert source.clock() == woke
    source.credentials = lambda: ReadOnlyCredentials(
        "AKIDOTHER", "other-secret-not-real", None
    )  # pragma: allowlist secret
    assert source.token() != first


def test_the_sts_host_and_the_signing_region_must_agree() -> None:
    """The host is sts.<region>.<the partition's domain> (token.go verifySTSHostnameFormat) and STS wants
    the credential scoped to that region (us-east-1 for the global sts.amazonaws.com)."""
    token = eks_token.make_token(CREDENTIALS, "misp-prod", "eu-west-1")
    assert verify_token(token, "misp-prod", SECRETS, partition="aws") == "AKIDEXAMPLE"
    with pytest.raises(ValueError, match=r"partition \{aws-cn\} does not support hostname sts.eu-west-1.amazonaws.com"):
        verify_token(token, "misp-prod", SECRETS, partition="aws-cn")
    china = eks_token.make_token(CREDENTIALS, "misp-prod", "cn-north-1")
    assert verify_token(china, "misp-prod", SECRETS, partition="aws-cn") == "AKIDEXAMPLE"
    with pytest.raises(ValueError, match="does not support hostname"):
        verify_token(china, "misp-prod", SECRETS)
    elsewhere = _presigned(host="sts.eu-west-1.amazonaws.com", region="us-west-2")
    with pytest.raises(ValueError, match=r"scoped to region 'us-west-2', the endpoint's is 'eu-west-1'"):
        verify_token(elsewhere, "misp-prod", SECRETS)
    assert verify_token(_presigned(host="sts.amazonaws.com", region="us-east-1"), "misp-prod", SECRETS)
    with pytest.raises(ValueError, match="scoped to region 'eu-west-1', the endpoint's is 'us-east-1'"):
        verify_token(_presigned(host="sts.amazonaws.com", region="eu-west-1"), "misp-prod", SECRETS)
    with pytest.raises(ValueError, match="unexpected hostname"):
        verify_token(_presigned(host="sts.example.org", region="eu-west-1"), "misp-prod", SECRETS, partition="aws")


def _presigned(*, host: str, region: str) -> str:
    """A token signed as make_token signs, for any host and signing region."""
    request = AWSRequest(
        method="GET", url=f"https://{host}/?{eks_token.STS_QUERY}", headers={eks_token.CLUSTER_HEADER: "misp-prod"}
    )
    SigV4QueryAuth(CREDENTIALS, "sts", region, expires=eks_token.PRESIGN_SECONDS).add_auth(request)
    return eks_token.PREFIX + base64.urlsafe_b64encode(str(request.url).encode()).decode().rstrip("=")


def test_a_flux_command_ends_before_its_token_expires() -> None:
    """flux gets a token made just before it starts (kube.kubeconfig) and has no way to refresh it."""
    margin = 2 * 60  # clock skew, and the time between the token and flux's first request
    assert Timing().flux <= eks_token.LIFETIME_SECONDS - margin
