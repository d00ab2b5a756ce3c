"""The engine versions the emulated RDS and ElastiCache offer: moto 5.2 implements neither
DescribeDBEngineVersions nor DescribeCacheEngineVersions, so the test world registers them.

Answers have the shapes of botocore's service models (rds service-2.json ``DBEngineVersion``,
elasticache service-2.json ``CacheEngineVersion``); the version lists are this test world's own, with
a withdrawn minor (deprecated, listed only with IncludeAll) as RDS has them.
"""

from __future__ import annotations

from typing import Any

from moto.core.responses import PaginatedResult
from moto.elasticache.responses import ElastiCacheResponse
from moto.rds.responses import RDSResponse

DATABASE_VERSIONS: dict[str, dict[str, str]] = {
    "mariadb": {
        "10.6.20": "deprecated",
        "10.6.21": "available",
        "10.11.11": "available",
        "11.4.3": "deprecated",
        "11.4.5": "available",
        "11.4.7": "available",
        # A newer minor RDS has pulled again: listed with IncludeAll only, never to be created.
        "11.4.8": "deprecated",
        "11.8.3": "available",
    },
    "mysql": {"8.0.40": "available", "8.0.41": "available", "8.4.4": "available"},
}
NEWEST_MARIADB_11_4 = "11.4.7"
CACHE_VERSIONS: dict[str, dict[str, str]] = {
    "valkey": {"7.2": "valkey7", "8.0": "valkey8", "8.1": "valkey8"},
    "redis": {"6.2": "redis6.x", "7.0": "redis7", "7.1": "redis7"},
}
"""Version: CacheParameterGroupFamily."""


def _family(engine: str, version: str) -> str:
    return f"{engine}{'.'.join(version.split('.')[:2])}"


def database_versions(
    engine: str | None = None, version: str | None = None, include_all: bool = False
) -> list[dict[str, Any]]:
    found = []
    for name, versions in DATABASE_VERSIONS.items():
        for item, status in versions.items():
            if engine and name != engine:
                continue
            if version and not (item == version or item.startswith(f"{version}.")):
                continue
            if status != "available" and not include_all:
                continue
            found.append(
                {
                    "Engine": name,
                    "EngineVersion": item,
                    "MajorEngineVersion": ".".join(item.split(".")[:2]) if name == "mariadb" else item.split(".")[0],
                    "DBParameterGroupFamily": _family(name, item),
                    "DBEngineDescription": "MariaDB Community Edition"
                    if name == "mariadb"
                    else "MySQL Community Edition",
                    "Status": status,
                }
            )
    return found


def _describe_db_engine_versions(self: RDSResponse) -> PaginatedResult:
    # RDS lists only available versions unless IncludeAll (botocore rds DescribeDBEngineVersions IncludeAll).
    params = self.params
    return PaginatedResult(
        {
            "DBEngineVersions": database_versions(
                params.get("Engine"), params.get("EngineVersion"), bool(params.get("IncludeAll"))
            )
        }
    )


def _describe_cache_engine_versions(self: ElastiCacheResponse) -> PaginatedResult:
    engine, version = self._get_param("Engine"), self._get_param("EngineVersion")
    found = [
        {
            "Engine": name,
            "EngineVersion": item,
            "CacheParameterGroupFamily": family,
            "CacheEngineDescription": name,
        }
        for name, versions in CACHE_VERSIONS.items()
        for item, family in versions.items()
        if (not engine or name == engine) and (not version or item == version)
    ]
    return PaginatedResult({"CacheEngineVersions": found})


def register(monkeypatch: Any) -> None:
    monkeypatch.setattr(RDSResponse, "describe_db_engine_versions", _describe_db_engine_versions, raising=False)
    monkeypatch.setattr(
        ElastiCacheResponse, "describe_cache_engine_versions", _describe_cache_engine_versions, raising=False
    )
