"""MISP's database: a Multi-AZ, encrypted, deletion-protected RDS instance in the cluster's private subnets.

The master password never leaves AWS: RDS manages it in Secrets Manager (ManageMasterUserPassword),
and only the schema-initialisation Job reads it, through External Secrets.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from misp_eks import naming
from misp_eks.provision import engine_versions
from misp_eks.provision import tags as tagging
from misp_eks.provision.context import Context
from misp_eks.provision.errors import BootstrapError, MissingPrerequisite, error_code, unless_missing
from misp_eks.provision.network import ClusterNetwork
from misp_eks.provision.waiting import Poll

KIND = "RDS instance"
SUBNET_GROUP_KIND = "DB subnet group"
CA_CERTIFICATE = "rds-ca-rsa2048-g1"
PERFORMANCE_INSIGHTS_RETENTION_DAYS = 7  # the free tier of Performance Insights
LOG_EXPORTS = ["error", "slowquery"]
ENHANCED_MONITORING_POLICY = "arn:{partition}:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole"
FAILED = frozenset(
    {
        "failed",
        "incompatible-network",
        "incompatible-option-group",
        "incompatible-parameters",
        "incompatible-restore",
        "inaccessible-encryption-credentials",
        "storage-full",
        "deleting",
        "deleted",
    }
)


@dataclass(frozen=True)
class DatabaseEndpoint:
    identifier: str
    address: str
    port: int
    master_secret_arn: str


def find(rds: Any, identifier: str) -> dict[str, Any] | None:
    try:
        return rds.describe_db_instances(DBInstanceIdentifier=identifier)["DBInstances"][0]  # type: ignore[no-any-return]
    except ClientError as error:
        if error_code(error) in ("DBInstanceNotFound", "DBInstanceNotFoundFault"):
            return None
        raise


SUBNET_GROUP_MISSING = "DBSubnetGroupNotFoundFault"


def find_subnet_group(rds: Any, name: str) -> dict[str, Any] | None:
    return unless_missing(
        lambda: rds.describe_db_subnet_groups(DBSubnetGroupName=name)["DBSubnetGroups"][0], SUBNET_GROUP_MISSING
    )


def endpoint(instance: dict[str, Any]) -> DatabaseEndpoint:
    address = instance.get("Endpoint", {})
    return DatabaseEndpoint(
        identifier=instance["DBInstanceIdentifier"],
        address=address.get("Address", ""),
        port=int(address.get("Port", naming.DATABASE_PORT)),
        master_secret_arn=instance.get("MasterUserSecret", {}).get("SecretArn", ""),
    )


def require(ctx: Context) -> DatabaseEndpoint:
    found = find(ctx.client("rds"), ctx.names.db_instance)
    if found is None or found.get("DBInstanceStatus") != "available" or not found.get("Endpoint"):
        raise MissingPrerequisite(f"{KIND} {ctx.names.db_instance} (available)", "data")
    return endpoint(found)


def ensure_subnet_group(ctx: Context, network: ClusterNetwork) -> str:
    rds = ctx.client("rds")
    name = ctx.names.db_subnet_group
    group = find_subnet_group(rds, name)
    zones = ", ".join(network.zones)
    if group is None:
        rds.create_db_subnet_group(
            DBSubnetGroupName=name,
            DBSubnetGroupDescription=f"MISP database of {ctx.names.cluster}: the cluster's private subnets",
            SubnetIds=network.subnet_ids,
            Tags=tagging.key_value(ctx.tags),
        )
        ctx.record(SUBNET_GROUP_KIND, name, "created", zones)
        return name
    current = {subnet["SubnetIdentifier"] for subnet in group.get("Subnets", [])}
    if current != set(network.subnet_ids):
        rds.modify_db_subnet_group(
            DBSubnetGroupName=name,
            DBSubnetGroupDescription=group.get("DBSubnetGroupDescription", name),
            SubnetIds=network.subnet_ids,
        )
        ctx.record(SUBNET_GROUP_KIND, name, "updated", zones)
    else:
        ctx.record(SUBNET_GROUP_KIND, name, "exists", zones)
    return name


def ensure_monitoring_role(ctx: Context) -> str | None:
    """The role RDS enhanced monitoring publishes with; only when settings turn it on."""
    if not ctx.settings.database.enhanced_monitoring_seconds:
        return None
    iam = ctx.client("iam")
    name = ctx.names.db_monitoring_role
    try:
        arn = iam.get_role(RoleName=name)["Role"]["Arn"]
        ctx.record("IAM role", name, "exists", "RDS enhanced monitoring")
    except ClientError as error:
        if error_code(error) != "NoSuchEntity":
            raise
        trust = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": "monitoring.rds.amazonaws.com"},
                    "Action": "sts:AssumeRole",
                }
            ],
        }
        arn = iam.create_role(
            RoleName=name,
            AssumeRolePolicyDocument=json.dumps(trust),
            Description=f"RDS enhanced monitoring of {ctx.names.db_instance}",
            Tags=tagging.key_value(ctx.tags),
        )["Role"]["Arn"]
        iam.attach_role_policy(
            RoleName=name, PolicyArn=ENHANCED_MONITORING_POLICY.format(partition=ctx.names.partition)
        )
        ctx.record("IAM role", name, "created", "RDS enhanced monitoring")
    return str(arn)


def engine_version(ctx: Context) -> str:
    """The version the instance runs, or (no instance yet) the one a first run creates it with."""
    instance = find(ctx.client("rds"), ctx.names.db_instance)
    if instance is not None and instance.get("EngineVersion"):
        return str(instance["EngineVersion"])
    return engine_versions.database(ctx)


def create_request(
    ctx: Context,
    *,
    engine_version: str,
    subnet_group: str,
    security_group: str,
    parameter_group: str,
    monitoring_role: str | None,
) -> dict[str, Any]:
    """The CreateDBInstance request: every high-availability and security property in one place."""
    database = ctx.settings.database
    request: dict[str, Any] = {
        "DBInstanceIdentifier": ctx.names.db_instance,
        "DBInstanceClass": database.instance_class,
        "Engine": database.engine,
        "EngineVersion": engine_version,
        "DBName": naming.DATABASE_NAME,
        "Port": naming.DATABASE_PORT,
        "MasterUsername": naming.DATABASE_MASTER_USER,
        "ManageMasterUserPassword": True,
        "MultiAZ": True,
        "StorageType": "gp3",
        "AllocatedStorage": database.allocated_storage_gib,
        "MaxAllocatedStorage": database.max_allocated_storage_gib,
        "StorageEncrypted": True,
        "DeletionProtection": True,
        "BackupRetentionPeriod": database.backup_retention_days,
        "CopyTagsToSnapshot": True,
        "PubliclyAccessible": False,
        "DBSubnetGroupName": subnet_group,
        "VpcSecurityGroupIds": [security_group],
        "DBParameterGroupName": parameter_group,
        "CACertificateIdentifier": CA_CERTIFICATE,
        "AutoMinorVersionUpgrade": True,
        "EnableCloudwatchLogsExports": LOG_EXPORTS,
        "EnablePerformanceInsights": database.performance_insights,
        "Tags": tagging.key_value(ctx.tags),
    }
    if database.performance_insights:
        request["PerformanceInsightsRetentionPeriod"] = PERFORMANCE_INSIGHTS_RETENTION_DAYS
    if monitoring_role:
        request["MonitoringInterval"] = database.enhanced_monitoring_seconds
        request["MonitoringRoleArn"] = monitoring_role
    return request


DRIFT_FIELDS = (
    "MultiAZ",
    "StorageType",
    "StorageEncrypted",
    "DeletionProtection",
    "PubliclyAccessible",
    "BackupRetentionPeriod",
    "CopyTagsToSnapshot",
    "CACertificateIdentifier",
)
"""DescribeDBInstances fields compared with the CreateDBInstance request member of the same name."""
DRIFT_SECURITY_GROUPS = "VpcSecurityGroups"
DRIFT_PARAMETER_GROUPS = "DBParameterGroups"
"""The parameter group makes TLS mandatory and carries MISP's settings."""
DRIFT_MANAGED_MASTER = "MasterUserSecret"
"""Present only while RDS manages the master password (ManageMasterUserPassword)."""
DRIFT_REPORTED = (*DRIFT_FIELDS, DRIFT_SECURITY_GROUPS, DRIFT_PARAMETER_GROUPS, DRIFT_MANAGED_MASTER)
"""Everything the drift report reads."""


def drift(instance: dict[str, Any], request: dict[str, Any]) -> list[str]:
    """Where an existing instance departs from what the bootstrap would create (reported, never changed)."""
    found = [
        f"{key}={instance[key]}"
        for key in DRIFT_FIELDS
        if instance.get(key) is not None and instance[key] != request[key]
    ]
    groups = {item.get("VpcSecurityGroupId") for item in instance.get(DRIFT_SECURITY_GROUPS, [])}
    if groups != set(request["VpcSecurityGroupIds"]):
        found.append(f"{DRIFT_SECURITY_GROUPS}={sorted(groups)}")
    parameter_groups = {item.get("DBParameterGroupName") for item in instance.get(DRIFT_PARAMETER_GROUPS, [])}
    if parameter_groups != {request["DBParameterGroupName"]}:
        found.append(f"{DRIFT_PARAMETER_GROUPS}={sorted(str(name) for name in parameter_groups)}")
    if request["ManageMasterUserPassword"] and not instance.get(DRIFT_MANAGED_MASTER, {}).get("SecretArn"):
        found.append(f"{DRIFT_MANAGED_MASTER}=none (the master password is not managed by RDS)")
    return found


def ensure(ctx: Context, make_request: Callable[[str], dict[str, Any]]) -> DatabaseEndpoint:
    """Create the instance if missing, then wait until it is available.

    ``make_request`` takes the engine version: the one a first run resolves against what RDS offers,
    or the existing instance's own (an existing instance never needs its version to be offered still).
    """
    rds = ctx.client("rds")
    identifier = ctx.names.db_instance
    instance = find(rds, identifier)
    if instance is None:
        request = make_request(engine_versions.database(ctx))
        rds.create_db_instance(**request)
        ctx.record(KIND, identifier, "created", f"Multi-AZ {request['Engine']} {request['EngineVersion']}")
    else:
        status = instance.get("DBInstanceStatus", "")
        if status in FAILED:
            raise BootstrapError(f"{KIND} {identifier} is {status}: see its events in the RDS console")
        differences = drift(instance, make_request(str(instance.get("EngineVersion", ""))))
        if differences:
            ctx.progress.warn(
                f"{KIND} {identifier} differs from the bootstrap's settings: {', '.join(differences)} "
                "(not changed automatically: modify it deliberately)"
            )
        ctx.record(KIND, identifier, "exists", status)

    def probe() -> Poll[dict[str, Any]]:
        current = find(rds, identifier)
        status = current.get("DBInstanceStatus", "") if current else "missing"
        if status in FAILED or status == "missing":
            raise BootstrapError(f"{KIND} {identifier} became {status}: see its events in the RDS console")
        return Poll(status == "available" and bool(current and current.get("Endpoint")), status, current)

    ready = ctx.wait(
        f"{KIND} {identifier} to become available",
        probe,
        timeout=ctx.timing.database,
        interval=ctx.timing.poll_slow,
    )
    assert ready is not None
    return endpoint(ready)
