"""The data layer in the cluster's VPC: firewalls, subnet and parameter groups, the database, the caches,
the attachments bucket, the shared-files file system, read access to the master secret, and alarms.

The database and both caches take 10 to 30 minutes each, so they are created and waited on
concurrently, with the file system and its mount targets. The caches' AUTH tokens come from Secrets
Manager (the secrets phase runs before this one; ``--only data`` makes the two token secrets itself
if they are missing).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from misp_eks import naming
from misp_eks.provision import (
    alarms,
    bucket,
    caches,
    database,
    db_parameters,
    efs,
    master_secret,
    network,
    secrets,
    security_groups,
)
from misp_eks.provision.context import Context
from misp_eks.provision.security_groups import Firewall


def _cache_task(ctx: Context, app: str, **groups: Any) -> Callable[[], caches.CacheEndpoint]:
    def make_request() -> dict[str, Any]:
        token = secrets.read(ctx, caches.secret_spec(app))["auth_token"]
        return caches.create_request(ctx, app, auth_token=token, **groups)

    return lambda: caches.ensure(ctx, ctx.names.cache_group(app), make_request)


def run(ctx: Context) -> None:
    net = network.read(ctx)
    names = ctx.names
    db_firewall = Firewall(names.db_security_group, f"MISP database of {names.cluster}", naming.DATABASE_PORT)
    cache_firewall = Firewall(names.cache_security_group, f"MISP caches of {names.cluster}", naming.CACHE_PORT)
    db_group = security_groups.ensure(ctx, net, db_firewall)
    cache_group = security_groups.ensure(ctx, net, cache_firewall)
    files_group = security_groups.ensure(ctx, net, efs.firewall(names))
    db_subnets = database.ensure_subnet_group(ctx, net)
    parameter_group = db_parameters.converge(ctx)
    monitoring_role = database.ensure_monitoring_role(ctx)
    cache_subnets = caches.ensure_subnet_group(ctx, net)
    topic = alarms.ensure_topic(ctx)
    bucket.ensure(ctx)
    for app in caches.APPS:
        secrets.ensure(ctx, caches.secret_spec(app))

    def db_request(engine_version: str) -> dict[str, Any]:
        return database.create_request(
            ctx,
            engine_version=engine_version,
            subnet_group=db_subnets,
            security_group=db_group,
            parameter_group=parameter_group,
            monitoring_role=monitoring_role,
        )

    groups = {"network": net, "subnet_group": cache_subnets, "security_group": cache_group, "topic_arn": topic}
    tasks: dict[str, Callable[[], Any]] = {
        "database": lambda: database.ensure(ctx, db_request),
        **{app: _cache_task(ctx, app, **groups) for app in caches.APPS},
        "files": lambda: efs.ensure(ctx, net, files_group),
    }
    ready = ctx.concurrently(tasks)
    db: database.DatabaseEndpoint = ready["database"]
    master_secret.ensure(ctx, db.master_secret_arn)
    alarms.ensure_event_subscription(ctx, topic)
    alarms.ensure_alarms(ctx, topic)
    ctx.record("endpoint", "database", "exists", f"{db.address}:{db.port}")
    for app in caches.APPS:
        endpoint: caches.CacheEndpoint = ready[app]
        ctx.record("endpoint", f"{app} cache", "exists", f"{endpoint.address}:{endpoint.port} (TLS, AUTH)")
    files: efs.FileSystem = ready["files"]
    ctx.record(
        "endpoint", "shared files", "exists", f"{files.id}::{files.access_point_id} (NFS over TLS, volume misp-files)"
    )
