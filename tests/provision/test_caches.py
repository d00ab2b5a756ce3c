"""The two ElastiCache replication groups, and the rules emulators do not enforce."""

from __future__ import annotations

from typing import Any

import boto3
import pytest

from misp_eks.provision import caches, network, secrets, security_groups
from misp_eks.provision.errors import BootstrapError, InputError
from misp_eks.provision.security_groups import Firewall
from misp_eks.provision.waiting import Timing
from tests.provision.conftest import Run, mutating

TOPIC = "arn:aws:sns:eu-west-1:123456789012:misp-prod-alarms"


def _request(run: Run, app: str, token: str = "A" * 64) -> dict[str, Any]:
    net = network.read(run.ctx)
    group = security_groups.ensure(run.ctx, net, Firewall("misp-prod-caches", "caches", 6379))
    return caches.create_request(
        run.ctx,
        app,
        network=net,
        subnet_group=caches.ensure_subnet_group(run.ctx, net),
        security_group=group,
        auth_token=token,
        topic_arn=TOPIC,
    )


def test_replication_group_fails_over_across_zones_with_tls_and_auth(run: Run, eks: dict[str, Any]) -> None:
    secrets.ensure(run.ctx, caches.secret_spec("misp"))
    token = secrets.read(run.ctx, caches.secret_spec("misp"))["auth_token"]
    request = _request(run, "misp", token)
    endpoint = caches.ensure(run.ctx, "misp-prod-misp", lambda: request)
    group = boto3.client("elasticache").describe_replication_groups(ReplicationGroupId="misp-prod-misp")[
        "ReplicationGroups"
    ][0]
    assert group["MultiAZ"] == "enabled" and group["AutomaticFailover"] == "enabled"
    assert group["TransitEncryptionEnabled"] and group["AtRestEncryptionEnabled"] and group["AuthTokenEnabled"]
    assert group["ClusterEnabled"] is False and group["Engine"] == "valkey" and group["SnapshotRetentionLimit"] == 7
    assert endpoint.address == group["NodeGroups"][0]["PrimaryEndpoint"]["Address"]
    sent = next(call.params for call in run.calls.calls if call.operation == "CreateReplicationGroup")
    assert sent["AuthToken"] == token  # the token of misp-prod/misp/redis, nothing else
    assert sent["NumCacheClusters"] == 2 and sent["PreferredCacheClusterAZs"] == ["eu-west-1a", "eu-west-1b"]
    assert sent["SecurityGroupIds"] == [
        security_groups.find_owned(boto3.client("ec2"), "misp-prod", "misp-prod-caches")["GroupId"]
    ]
    assert sent["NotificationTopicArn"] == TOPIC and sent["ClusterMode"] == "disabled"


def test_existing_group_needs_no_token_and_writes_nothing(run: Run, eks: dict[str, Any]) -> None:
    request = _request(run, "dashboard")
    caches.ensure(run.ctx, "misp-prod-dashboard", lambda: request)
    run.calls.calls.clear()

    def no_request() -> dict[str, Any]:
        raise AssertionError("the request (and the AUTH token) is not needed for an existing group")

    caches.ensure(run.ctx, "misp-prod-dashboard", no_request)
    assert mutating(run.calls) == []
    assert not [call for call in run.calls.calls if call.operation == "GetSecretValue"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"NumCacheClusters": 1, "PreferredCacheClusterAZs": ["eu-west-1a"]}, "automatic failover needs 2 nodes"),
        ({"PreferredCacheClusterAZs": ["eu-west-1a", "eu-west-1a"]}, "spread over two zones"),
        ({"AutomaticFailoverEnabled": False}, "Multi-AZ needs automatic failover"),
        ({"AuthToken": "short"}, "AUTH token must be 16 to 128"),
        ({"AuthToken": "a" * 30 + "@" + "b" * 30}, "AUTH token must be"),
        ({"TransitEncryptionEnabled": False}, "AUTH needs in-transit encryption"),
    ],
)
def test_rules_aws_enforces_are_checked_before_any_call(
    run: Run, eks: dict[str, Any], change: dict[str, Any], message: str
) -> None:
    request = {**_request(run, "misp"), **change}
    run.calls.calls.clear()
    with pytest.raises(InputError, match=message):
        caches.ensure(run.ctx, "misp-prod-misp", lambda: request)
    assert "CreateReplicationGroup" not in [call.operation for call in run.calls.calls]


def test_nodes_spread_round_robin_and_need_two_zones() -> None:
    assert caches.spread(("a", "b", "c"), 4) == ["a", "b", "c", "a"]
    with pytest.raises(BootstrapError, match="two zones"):
        caches.spread(("a",), 2)


class _StuckElastiCache:
    """An ElastiCache that never finishes creating."""

    def describe_replication_groups(self, **_: Any) -> dict[str, Any]:
        return {"ReplicationGroups": [{"ReplicationGroupId": "misp-prod-misp", "Status": "creating", "NodeGroups": []}]}


def test_a_wait_that_times_out_names_what_it_waited_for(run: Run) -> None:
    run.ctx.aws._clients["elasticache"] = _StuckElastiCache()
    run.ctx.timing = Timing.fast()
    with pytest.raises(BootstrapError) as caught:
        caches.ensure(run.ctx, "misp-prod-misp", dict)
    assert "timed out after" in caught.value.message
    assert "waiting for ElastiCache replication group misp-prod-misp to become available (last seen: creating)" in (
        caught.value.message
    )
    assert "re-run" in caught.value.message
