"""MISP's and the dashboard's ElastiCache replication groups: Multi-AZ with automatic failover, encrypted, AUTH.

ElastiCache emulators accept combinations AWS rejects (failover with one node, every node in one
zone); :func:`check_request` applies AWS's rules before any call.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from misp_eks import naming
from misp_eks.provision import engine_versions
from misp_eks.provision import tags as tagging
from misp_eks.provision.context import Context
from misp_eks.provision.errors import BootstrapError, InputError, MissingPrerequisite, error_code, unless_missing
from misp_eks.provision.network import ClusterNetwork
from misp_eks.provision.waiting import Poll

KIND = "ElastiCache replication group"
SUBNET_GROUP_KIND = "cache subnet group"
APPS = naming.CACHE_APPS
FAILED = frozenset({"create-failed", "deleting", "deleted"})
# ElastiCache AUTH tokens: 16 to 128 printable characters without @, " or / (CreateReplicationGroup docs).
_AUTH_TOKEN = re.compile(r"^[!#-.0-?A-~]{16,128}$")


@dataclass(frozen=True)
class CacheEndpoint:
    group_id: str
    address: str
    port: int


def secret_spec(app: str) -> naming.SecretSpec:
    return naming.MISP_REDIS if app == "misp" else naming.DASHBOARD_REDIS


def spread(zones: tuple[str, ...], nodes: int) -> list[str]:
    """One zone per node, round robin over the cluster's zones: the primary and a replica never share one."""
    if len(zones) < 2:
        raise BootstrapError(f"caches need subnets in two zones or more, the cluster has {', '.join(zones) or 'none'}")
    return [zones[index % len(zones)] for index in range(nodes)]


def find(elasticache: Any, group_id: str) -> dict[str, Any] | None:
    try:
        return elasticache.describe_replication_groups(ReplicationGroupId=group_id)["ReplicationGroups"][0]  # type: ignore[no-any-return]
    except ClientError as error:
        if error_code(error) in ("ReplicationGroupNotFoundFault", "ReplicationGroupNotFound"):
            return None
        raise


SUBNET_GROUP_MISSING = "CacheSubnetGroupNotFoundFault"


def find_subnet_group(elasticache: Any, name: str) -> dict[str, Any] | None:
    return unless_missing(
        lambda: elasticache.describe_cache_subnet_groups(CacheSubnetGroupName=name)["CacheSubnetGroups"][0],
        SUBNET_GROUP_MISSING,
    )


def primary_endpoint(group: dict[str, Any]) -> CacheEndpoint | None:
    for node_group in group.get("NodeGroups", []):
        primary = node_group.get("PrimaryEndpoint")
        if primary and primary.get("Address"):
            return CacheEndpoint(group["ReplicationGroupId"], primary["Address"], int(primary.get("Port", 0)))
    return None


def require(ctx: Context, app: str) -> CacheEndpoint:
    group_id = ctx.names.cache_group(app)
    found = find(ctx.client("elasticache"), group_id)
    endpoint = primary_endpoint(found) if found and found.get("Status") == "available" else None
    if endpoint is None:
        raise MissingPrerequisite(f"{KIND} {group_id} (available)", "data")
    return endpoint


def ensure_subnet_group(ctx: Context, network: ClusterNetwork) -> str:
    elasticache = ctx.client("elasticache")
    name = ctx.names.cache_subnet_group
    group = find_subnet_group(elasticache, name)
    zones = ", ".join(network.zones)
    if group is None:
        elasticache.create_cache_subnet_group(
            CacheSubnetGroupName=name,
            CacheSubnetGroupDescription=f"MISP caches of {ctx.names.cluster}: the cluster's private subnets",
            SubnetIds=network.subnet_ids,
            Tags=tagging.key_value(ctx.tags),
        )
        ctx.record(SUBNET_GROUP_KIND, name, "created", zones)
        return name
    current = {subnet["SubnetIdentifier"] for subnet in group.get("Subnets", [])}
    if current != set(network.subnet_ids):
        elasticache.modify_cache_subnet_group(CacheSubnetGroupName=name, SubnetIds=network.subnet_ids)
        ctx.record(SUBNET_GROUP_KIND, name, "updated", zones)
    else:
        ctx.record(SUBNET_GROUP_KIND, name, "exists", zones)
    return name


def create_request(
    ctx: Context,
    app: str,
    *,
    network: ClusterNetwork,
    subnet_group: str,
    security_group: str,
    auth_token: str,
    topic_arn: str,
) -> dict[str, Any]:
    caches = ctx.settings.caches
    cache = getattr(caches, app)
    return {
        "ReplicationGroupId": ctx.names.cache_group(app),
        "ReplicationGroupDescription": f"{'MISP' if app == 'misp' else 'MISP Dashboard'} on {ctx.names.cluster}",
        "Engine": caches.engine,
        "EngineVersion": engine_versions.cache(ctx),
        "CacheNodeType": cache.node_type,
        "ClusterMode": "disabled",
        "NumCacheClusters": cache.nodes,
        "PreferredCacheClusterAZs": spread(network.zones, cache.nodes),
        "MultiAZEnabled": True,
        "AutomaticFailoverEnabled": True,
        "TransitEncryptionEnabled": True,
        "AtRestEncryptionEnabled": True,
        "AuthToken": auth_token,
        "Port": naming.CACHE_PORT,
        "CacheSubnetGroupName": subnet_group,
        "SecurityGroupIds": [security_group],
        "SnapshotRetentionLimit": caches.snapshot_retention_days,
        "NotificationTopicArn": topic_arn,
        "AutoMinorVersionUpgrade": True,
        "Tags": tagging.key_value(ctx.tags),
    }


def check_request(request: dict[str, Any]) -> None:
    """AWS's high-availability rules, checked here because emulators do not enforce them."""
    name = request["ReplicationGroupId"]
    nodes = request["NumCacheClusters"]
    zones = request["PreferredCacheClusterAZs"]
    if request["AutomaticFailoverEnabled"] and nodes < 2:
        raise InputError(f"{name}: automatic failover needs 2 nodes or more (settings has {nodes})")
    if request["MultiAZEnabled"] and not request["AutomaticFailoverEnabled"]:
        raise InputError(f"{name}: Multi-AZ needs automatic failover")
    if len(zones) != nodes or len(set(zones)) < 2:
        raise InputError(f"{name}: the {nodes} nodes must spread over two zones or more (got {zones})")
    if not _AUTH_TOKEN.match(request["AuthToken"]):
        raise InputError(f'{name}: the AUTH token must be 16 to 128 printable characters without @, " or /')
    if not request["TransitEncryptionEnabled"]:
        raise InputError(f"{name}: AUTH needs in-transit encryption")


DRIFT_WANTED: dict[str, object] = {
    "MultiAZ": "enabled",
    "AutomaticFailover": "enabled",
    "TransitEncryptionEnabled": True,
    "AtRestEncryptionEnabled": True,
    "AuthTokenEnabled": True,
}
"""DescribeReplicationGroups fields the drift report reads, and the value the bootstrap creates."""


def drift(group: dict[str, Any]) -> list[str]:
    return [
        f"{key}={group[key]}"
        for key, wanted in DRIFT_WANTED.items()
        if group.get(key) is not None and group[key] != wanted
    ]


def ensure(ctx: Context, group_id: str, make_request: Callable[[], dict[str, Any]]) -> CacheEndpoint:
    """Create the group if missing (after checking the request), then wait until it is available.

    ``make_request`` is called only to create: it reads the AUTH token, which a converged run never needs.
    """
    elasticache = ctx.client("elasticache")
    group = find(elasticache, group_id)
    if group is None:
        request = make_request()
        check_request(request)
        elasticache.create_replication_group(**request)
        ctx.record(
            KIND,
            group_id,
            "created",
            f"{request['Engine']} {request['EngineVersion']}, {request['NumCacheClusters']} nodes",
        )
    else:
        status = group.get("Status", "")
        if status in FAILED:
            raise BootstrapError(f"{KIND} {group_id} is {status}: see its events in the ElastiCache console")
        differences = drift(group)
        if differences:
            ctx.progress.warn(
                f"{KIND} {group_id} differs from the bootstrap's settings: {', '.join(differences)} "
                "(not changed automatically)"
            )
        ctx.record(KIND, group_id, "exists", status)

    def probe() -> Poll[CacheEndpoint]:
        current = find(elasticache, group_id)
        status = current.get("Status", "") if current else "missing"
        if status in FAILED or status == "missing":
            raise BootstrapError(f"{KIND} {group_id} became {status}: see its events in the ElastiCache console")
        endpoint = primary_endpoint(current) if status == "available" and current else None
        return Poll(endpoint is not None, status, endpoint)

    ready = ctx.wait(
        f"{KIND} {group_id} to become available", probe, timeout=ctx.timing.cache, interval=ctx.timing.poll_slow
    )
    assert ready is not None
    return ready
