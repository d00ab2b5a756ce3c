"""Before anything is created: the tools, the AWS identity, three zones, the engine versions RDS and
ElastiCache offer (for what a run would create), and the hosted zone."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from misp_eks.environment import REQUIRED_ZONES
from misp_eks.provision import caches, cluster, database, engine_versions, gitops, hosted_zone
from misp_eks.provision.context import Context
from misp_eks.provision.errors import InputError
from misp_eks.provision.tools import ALL_TOOLS, format_version


def check_tools(ctx: Context) -> None:
    for spec in ALL_TOOLS:
        found = ctx.tools.require(spec)
        ctx.record("tool", spec.name, "exists", f"{format_version(found.version)} at {found.path}")


def available_zones(ctx: Context) -> list[str]:
    answer = ctx.client("ec2").describe_availability_zones(
        Filters=[
            {"Name": "zone-type", "Values": ["availability-zone"]},
            {"Name": "state", "Values": ["available"]},
        ]
    )
    return sorted(zone["ZoneName"] for zone in answer.get("AvailabilityZones", []))


def check_zones(ctx: Context) -> None:
    zones = available_zones(ctx)
    region = ctx.names.region
    if len(zones) < REQUIRED_ZONES:
        raise InputError(
            f"region {region} has {len(zones)} available zone(s) ({', '.join(zones) or 'none'}): "
            f"MISP needs {REQUIRED_ZONES}; pick another region in clusters/{ctx.env.name}/cluster.yaml"
        )
    wanted = ctx.env.cluster.availabilityZones
    missing = [zone for zone in wanted if zone not in zones]
    if missing:
        raise InputError(
            f"clusters/{ctx.env.name}/cluster.yaml: availabilityZones: {', '.join(missing)} not available in "
            f"{region} (available: {', '.join(zones)})"
        )
    ctx.record("availability zones", region, "exists", ", ".join(wanted))


def existing_database(rds: Any, identifier: str) -> list[str]:
    """The RDS instance, if it exists: it keeps its engine version."""
    return [identifier] if database.find(rds, identifier) is not None else []


def existing_caches(elasticache: Any, group_ids: list[str]) -> list[str]:
    """The replication groups if all exist (one missing would be created with the configured version)."""
    return group_ids if all(caches.find(elasticache, group) is not None for group in group_ids) else []


def check_engine_versions(ctx: Context) -> None:
    names = ctx.names
    groups = [names.cache_group(app) for app in caches.APPS]
    engine_versions.check(
        ctx,
        database_exists=lambda: existing_database(ctx.client("rds"), names.db_instance),
        caches_exist=lambda: existing_caches(ctx.client("elasticache"), groups),
    )


def run(ctx: Context, phases: Iterable[str]) -> None:
    check_tools(ctx)
    identity = ctx.aws.identity()
    ctx.record("AWS identity", identity.arn, "exists", f"account {identity.account}")
    check_zones(ctx)
    check_engine_versions(ctx)
    zone = hosted_zone.require(ctx)
    ctx.record("Route53 hosted zone", zone.name, "exists", zone.id)
    # A new cluster will need flux bootstrap github: say so now, not after an hour of cluster creation.
    # An existing one may be bootstrapped already; the gitops phase asks for the token only if not.
    if (
        "gitops" in phases
        and ctx.settings.gitops.provider == "github"
        and not ctx.environ.get(gitops.GITHUB_TOKEN_ENV)
        and cluster.describe(ctx.client("eks"), ctx.names.cluster) is None
    ):
        raise InputError(
            f"{gitops.GITHUB_TOKEN_ENV} is not set: the gitops phase runs flux bootstrap github, and "
            + gitops.github_token_needs(ctx.settings.gitops.url, ctx.settings.gitops.branch)
        )
