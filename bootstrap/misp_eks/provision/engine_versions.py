"""The engine versions settings.yaml names, resolved against what RDS and ElastiCache offer today.

RDS withdraws MariaDB and MySQL minors as newer ones ship, and the instance upgrades its minor by
itself (AutoMinorVersionUpgrade), so settings name the major.minor (``11.4``) and a first run creates
the newest minor RDS offers for it; a full version (``11.4.5``) is used as it is while RDS offers it.
A version nobody offers is one clear error, listing what is offered, before anything is created.
Only creating needs an offered version: where the instance or the caches exist already, a version
AWS no longer offers is a warning (:func:`check_existing`), never a stop.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

from misp_eks.provision.context import Context
from misp_eks.provision.errors import InputError

DATABASE_KIND = "RDS engine version"
CACHE_KIND = "ElastiCache engine version"
# DBEngineVersion.Status: "either available or deprecated" (botocore rds service-2.json).
_AVAILABLE = "available"


def _key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", version))


def pick(configured: str, offered: Iterable[str]) -> str | None:
    """``configured`` itself when offered; for a major.minor, the newest offered minor of it; else None."""
    versions = set(offered)
    if configured in versions:
        return configured
    if configured.count(".") == 1:
        matching = [version for version in versions if version.startswith(f"{configured}.")]
        if matching:
            return max(matching, key=_key)
    return None


def offered_database(rds: Any, engine: str) -> list[str]:
    """Every version of ``engine`` RDS offers for new instances in this region.

    IncludeAll lists the deprecated versions too (botocore rds DescribeDBEngineVersions: "whether to
    also list the engine versions that aren't available"); they are left out here by their Status.
    """
    return sorted(
        (
            item["EngineVersion"]
            for page in rds.get_paginator("describe_db_engine_versions").paginate(Engine=engine, IncludeAll=True)
            for item in page.get("DBEngineVersions", [])
            if item.get("Status") == _AVAILABLE
        ),
        key=_key,
    )


def offered_cache(elasticache: Any, engine: str) -> list[str]:
    return sorted(
        (
            item["EngineVersion"]
            for page in elasticache.get_paginator("describe_cache_engine_versions").paginate(Engine=engine)
            for item in page.get("CacheEngineVersions", [])
        ),
        key=_key,
    )


def _resolve(configured: str, offered: list[str], *, what: str, where: str, region: str) -> str:
    found = pick(configured, offered)
    if found is None:
        raise InputError(
            f"{where}: {what} {configured} is not offered in {region}; "
            f"offered: {', '.join(offered) or 'none'} (a major.minor takes its newest offered minor)"
        )
    return found


def resolve_database(rds: Any, *, engine: str, configured: str, settings_file: str, region: str) -> str:
    return _resolve(
        configured,
        offered_database(rds, engine),
        what=f"RDS {engine}",
        where=f"{settings_file} database.engine_version",
        region=region,
    )


def resolve_cache(elasticache: Any, *, engine: str, configured: str, settings_file: str, region: str) -> str:
    return _resolve(
        configured,
        offered_cache(elasticache, engine),
        what=f"ElastiCache {engine}",
        where=f"{settings_file} caches.engine_version",
        region=region,
    )


def settings_file(ctx: Context) -> str:
    return f"clusters/{ctx.env.name}/settings.yaml"


def database(ctx: Context) -> str:
    """The RDS engine version this run creates the instance with (looked up once per run)."""
    settings = ctx.settings.database
    return ctx.fact(
        "database_engine_version",
        lambda: resolve_database(
            ctx.client("rds"),
            engine=settings.engine,
            configured=settings.engine_version,
            settings_file=settings_file(ctx),
            region=ctx.names.region,
        ),
    )


def cache(ctx: Context) -> str:
    """The ElastiCache engine version this run creates both replication groups with."""
    settings = ctx.settings.caches
    return ctx.fact(
        "cache_engine_version",
        lambda: resolve_cache(
            ctx.client("elasticache"),
            engine=settings.engine,
            configured=settings.engine_version,
            settings_file=settings_file(ctx),
            region=ctx.names.region,
        ),
    )


def check_existing(resolve: Callable[[], str], existing: Callable[[], list[str]]) -> tuple[str, str | None]:
    """What a run would create with (or what keeps running), and a warning.

    ``existing`` names the resources already running (none: a run would create them); it is asked only
    when the version does not resolve. A version AWS no longer offers stops only a run that creates
    something with it; existing resources keep theirs (and upgrade their minor by themselves).
    """
    try:
        return resolve(), None
    except InputError as error:
        running = existing()
        if not running:
            raise
        kept = ", ".join(running)
        return f"kept by {kept}", f"{error.message}; {kept} keep their version, only creating needs an offered one"


def check(ctx: Context, *, database_exists: Callable[[], list[str]], caches_exist: Callable[[], list[str]]) -> None:
    """Preflight: the versions a run would create with resolve, before anything is created.

    ``database_exists`` and ``caches_exist`` name what already runs (nothing where a run would create):
    with them, a version no longer offered is a warning.
    """
    db = ctx.settings.database
    used, warning = check_existing(lambda: database(ctx), database_exists)
    if warning:
        ctx.progress.warn(warning)
    ctx.record(DATABASE_KIND, f"{db.engine} {db.engine_version}", "exists", used)
    caches = ctx.settings.caches
    used, warning = check_existing(lambda: cache(ctx), caches_exist)
    if warning:
        ctx.progress.warn(warning)
    ctx.record(CACHE_KIND, f"{caches.engine} {caches.engine_version}", "exists", used)
