"""MISP's MariaDB/MySQL settings, as an RDS DB parameter group.

The list is pure data with its sources; :func:`converge` applies it to a parameter group, only
where a value differs, and only parameters the engine has and lets RDS change.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

from misp_eks.provision import database as database_module
from misp_eks.provision import tags as tagging
from misp_eks.provision.context import Context
from misp_eks.provision.errors import InputError, unless_missing
from misp_eks.settings import Database

KIND = "DB parameter group"
ApplyMethod = Literal["immediate", "pending-reboot"]
SQL_MODE = "STRICT_TRANS_TABLES,NO_ZERO_IN_DATE,NO_ZERO_DATE,ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION"
MAX_PARAMETERS_PER_CALL = 20  # ModifyDBParameterGroup accepts at most 20 parameters per call.


@dataclass(frozen=True)
class DbParameter:
    name: str
    value: str
    apply: ApplyMethod
    source: str
    required: bool = False
    """A promise of this project's (TLS required): an engine that lacks it is an error, not a skip."""


def family(database: Database) -> str:
    """The parameter group family: mariadb11.4, mysql8.0, ..."""
    major, minor = database.engine_version.split(".")[:2]
    return f"{database.engine}{major}.{minor}"


def _version(engine_version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", engine_version))


def misp_parameters(engine: str, engine_version: str) -> tuple[DbParameter, ...]:
    """What MISP wants from its database server, for this engine and full version (the instance's, or
    the one a first run creates: settings may name only the major.minor, which cannot tell 8.0.30 apart)."""
    version = _version(engine_version)
    recommended = "MISP app/Model/Table/ServersTable.php MYSQL_RECOMMENDED_SETTINGS"
    compose = "misp-docker docker-compose.yml db command"
    items = [
        # MYSQL_RECOMMENDED_SETTINGS: "in a dedicated server it should be around 3/4 of all the available RAM".
        DbParameter("innodb_buffer_pool_size", "{DBInstanceClassMemory*3/4}", "pending-reboot", recommended),
        # MYSQL_RECOMMENDED_SETTINGS and misp-docker: 1000 background IOPS.
        DbParameter("innodb_io_capacity", "1000", "immediate", f"{recommended}; {compose}"),
        # MYSQL_RECOMMENDED_SETTINGS and misp-docker: 2000 when flushing falls behind.
        DbParameter("innodb_io_capacity_max", "2000", "immediate", f"{recommended}; {compose}"),
        # MYSQL_RECOMMENDED_SETTINGS and misp-docker: persisted index statistics, stable query plans.
        DbParameter("innodb_stats_persistent", "ON", "immediate", f"{recommended}; {compose}"),
        # MYSQL_RECOMMENDED_SETTINGS and misp-docker: 16 read I/O threads.
        DbParameter("innodb_read_io_threads", "16", "pending-reboot", f"{recommended}; {compose}"),
        # MYSQL_RECOMMENDED_SETTINGS and misp-docker: 4 write I/O threads.
        DbParameter("innodb_write_io_threads", "4", "pending-reboot", f"{recommended}; {compose}"),
        # MISP issues #2156, #3444, #5817: "Got a packet bigger than 'max_allowed_packet'" on large events.
        DbParameter("max_allowed_packet", "268435456", "immediate", "MISP issues #2156, #3444, #5817"),
        # Full Unicode for new schemas and tables (misp-docker picks MariaDB for "the expected collations").
        DbParameter("character_set_server", "utf8mb4", "immediate", compose),
        # The collation that goes with utf8mb4 above.
        DbParameter("collation_server", "utf8mb4_unicode_ci", "immediate", compose),
        # MISP issues #1732, #6218: MISP's GROUP BY queries fail under ONLY_FULL_GROUP_BY (error 1055).
        DbParameter("sql_mode", SQL_MODE, "immediate", "MISP issues #1732, #6218"),
        # Every client must use TLS (misp-core MYSQL_TLS with the RDS CA bundle from Secrets Manager).
        DbParameter(
            "require_secure_transport", "ON", "immediate", "AWS RDS: requiring SSL/TLS for all connections", True
        ),
    ]
    # MYSQL_RECOMMENDED_SETTINGS and misp-docker: change buffering off. MariaDB 11.0 removed the
    # change buffer and the variable (ignored since 10.9), so it is set only where it exists.
    if engine == "mysql" or version < (10, 9):
        items.append(DbParameter("innodb_change_buffering", "none", "immediate", f"{recommended}; {compose}"))
    # MYSQL_RECOMMENDED_SETTINGS and misp-docker: 600 MiB redo logs. MySQL 8.0.30+ sizes redo logs
    # with innodb_redo_log_capacity instead; RDS decides whether it is modifiable (see converge).
    if engine == "mariadb" or version < (8, 0, 30):
        items.append(DbParameter("innodb_log_file_size", "629145600", "pending-reboot", f"{recommended}; {compose}"))
    return tuple(items)


def _normalise(value: str, allowed: str | None) -> str:
    """ON/OFF or 1/0, whichever the engine's parameter accepts."""
    if not allowed:
        return value
    choices = {item.strip() for item in allowed.split(",")}
    swap = {"ON": "1", "OFF": "0", "1": "ON", "0": "OFF"}
    if value not in choices and swap.get(value) in choices:
        return swap[value]
    return value


GROUP_MISSING = "DBParameterGroupNotFound"  # botocore rds service-2.json: DBParameterGroupNotFoundFault's code


def find(rds: Any, name: str) -> dict[str, Any] | None:
    """The group named ``name``, or None.

    By name, never with ``Filters``: botocore's RDS model documents DescribeDBParameterGroups' Filters
    as "This parameter isn't currently supported", and RDS answers with every group of the account.
    """
    answer = unless_missing(lambda: rds.describe_db_parameter_groups(DBParameterGroupName=name), GROUP_MISSING)
    groups = (answer or {}).get("DBParameterGroups", [])
    return next((group for group in groups if group.get("DBParameterGroupName") == name), None)


def _catalogue(rds: Any, group: str) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for page in rds.get_paginator("describe_db_parameters").paginate(DBParameterGroupName=group):
        for item in page.get("Parameters", []):
            found[item["ParameterName"]] = item
    return found


def plan_changes(
    wanted: tuple[DbParameter, ...], catalogue: dict[str, dict[str, Any]]
) -> tuple[list[dict[str, str]], list[str]]:
    """The ModifyDBParameterGroup entries still needed, and the parameters skipped (with why).

    When RDS lists the engine's own parameters (anything not user-set), that list is authoritative:
    a parameter it lacks or marks not modifiable is skipped instead of failing the whole call.
    """
    authoritative = any(item.get("Source") not in (None, "user") for item in catalogue.values())
    changes: list[dict[str, str]] = []
    skipped: list[str] = []
    for parameter in wanted:
        known = catalogue.get(parameter.name)
        reason = None
        if authoritative and known is None:
            reason = "not a parameter of this engine"
        elif known is not None and known.get("IsModifiable") is False:
            reason = "not modifiable on RDS"
        if reason and parameter.required:
            raise InputError(
                f"settings.yaml database: {parameter.name} is {reason}, and it is required "
                f"({parameter.source}); choose an engine version that has it"
            )
        if reason:
            skipped.append(f"{parameter.name} ({reason})")
            continue
        value = _normalise(parameter.value, (known or {}).get("AllowedValues"))
        if known is not None and str(known.get("ParameterValue", "")) == value:
            continue
        apply = parameter.apply
        if known is not None and known.get("ApplyType") == "static":
            apply = "pending-reboot"
        changes.append({"ParameterName": parameter.name, "ParameterValue": value, "ApplyMethod": apply})
    return changes, skipped


def converge(ctx: Context) -> str:
    """The parameter group, created if missing, with MISP's values; returns its name."""
    rds = ctx.client("rds")
    name = ctx.names.db_parameter_group
    database = ctx.settings.database
    existing = find(rds, name)
    action = "exists"
    if existing is None:
        rds.create_db_parameter_group(
            DBParameterGroupName=name,
            DBParameterGroupFamily=family(database),
            Description=f"MISP on {ctx.names.cluster}: MYSQL_RECOMMENDED_SETTINGS and misp-docker",
            Tags=tagging.key_value(ctx.tags),
        )
        action = "created"
    else:
        current_family = existing.get("DBParameterGroupFamily")
        if current_family and current_family != family(database):
            ctx.progress.warn(
                f"{KIND} {name} is for {current_family}, settings say {family(database)}: "
                "an engine upgrade needs a new group (not done automatically)"
            )
    wanted = misp_parameters(database.engine, database_module.engine_version(ctx))
    changes, skipped = plan_changes(wanted, _catalogue(rds, name))
    for start in range(0, len(changes), MAX_PARAMETERS_PER_CALL):
        rds.modify_db_parameter_group(
            DBParameterGroupName=name, Parameters=changes[start : start + MAX_PARAMETERS_PER_CALL]
        )
    if changes and action == "exists":
        action = "updated"
    detail = f"{family(database)}, {len(wanted) - len(skipped)} MISP settings"
    if skipped:
        detail += f"; skipped {', '.join(skipped)}"
    ctx.record(KIND, name, action, detail)
    return name
