"""MISP's database: parameter group, subnet group, the Multi-AZ instance and access to its master secret."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from misp_eks.provision import database, db_parameters, master_secret, network, security_groups
from misp_eks.provision.db_parameters import DbParameter, misp_parameters, plan_changes
from misp_eks.provision.errors import InputError, MissingPrerequisite
from misp_eks.provision.security_groups import Firewall
from misp_eks.settings import Database
from tests.provision import engines
from tests.provision.conftest import Run, last_params, mutating

MARIADB = Database(
    engine="mariadb",
    engine_version="11.4.5",
    instance_class="db.m7g.large",
    allocated_storage_gib=100,
    max_allocated_storage_gib=500,
)


def _values(database_settings: Database) -> dict[str, str]:
    return {
        item.name: item.value for item in misp_parameters(database_settings.engine, database_settings.engine_version)
    }


def test_misp_settings_follow_mysql_recommended_settings() -> None:
    values = _values(MARIADB)
    assert values["innodb_buffer_pool_size"] == "{DBInstanceClassMemory*3/4}"
    assert values["innodb_io_capacity"] == "1000" and values["innodb_io_capacity_max"] == "2000"
    assert values["innodb_read_io_threads"] == "16" and values["innodb_write_io_threads"] == "4"
    assert values["innodb_stats_persistent"] == "ON"
    assert int(values["max_allowed_packet"]) >= 268435456
    assert values["character_set_server"] == "utf8mb4" and values["collation_server"] == "utf8mb4_unicode_ci"
    assert values["require_secure_transport"] == "ON"
    modes = values["sql_mode"].split(",")
    assert "ONLY_FULL_GROUP_BY" not in modes
    assert modes == [
        "STRICT_TRANS_TABLES",
        "NO_ZERO_IN_DATE",
        "NO_ZERO_DATE",
        "ERROR_FOR_DIVISION_BY_ZERO",
        "NO_ENGINE_SUBSTITUTION",
    ]
    assert all(item.source for item in misp_parameters(MARIADB.engine, MARIADB.engine_version))


def test_settings_are_per_engine_and_version() -> None:
    assert "innodb_change_buffering" not in _values(MARIADB)  # removed in MariaDB 11.0
    assert _values(MARIADB.model_copy(update={"engine_version": "10.6.18"}))["innodb_change_buffering"] == "none"
    mysql = MARIADB.model_copy(update={"engine": "mysql", "engine_version": "8.0.39"})
    assert _values(mysql)["innodb_change_buffering"] == "none"
    assert "innodb_log_file_size" not in _values(mysql)  # innodb_redo_log_capacity since 8.0.30
    assert _values(MARIADB)["innodb_log_file_size"] == "629145600"
    assert db_parameters.family(MARIADB) == "mariadb11.4" and db_parameters.family(mysql) == "mysql8.0"


def test_an_authoritative_catalogue_decides_what_is_applied() -> None:
    wanted = (
        DbParameter("innodb_log_file_size", "629145600", "pending-reboot", "x"),
        DbParameter("require_secure_transport", "ON", "immediate", "x"),
        DbParameter("gone_parameter", "1", "immediate", "x"),
        DbParameter("max_allowed_packet", "268435456", "immediate", "x"),
        DbParameter("innodb_io_capacity", "1000", "immediate", "x"),
    )
    catalogue = {
        "innodb_log_file_size": {
            "ParameterName": "innodb_log_file_size",
            "IsModifiable": False,
            "Source": "engine-default",
        },
        "require_secure_transport": {
            "ParameterName": "require_secure_transport",
            "AllowedValues": "0,1",
            "IsModifiable": True,
            "Source": "engine-default",
            "ApplyType": "dynamic",
        },
        "max_allowed_packet": {
            "ParameterName": "max_allowed_packet",
            "ParameterValue": "268435456",
            "IsModifiable": True,
            "Source": "user",
        },
        "innodb_io_capacity": {
            "ParameterName": "innodb_io_capacity",
            "IsModifiable": True,
            "Source": "engine-default",
            "ApplyType": "static",
        },
    }
    changes, skipped = plan_changes(wanted, catalogue)
    assert changes == [
        {"ParameterName": "require_secure_transport", "ParameterValue": "1", "ApplyMethod": "immediate"},
        {"ParameterName": "innodb_io_capacity", "ParameterValue": "1000", "ApplyMethod": "pending-reboot"},
    ]
    assert skipped == [
        "innodb_log_file_size (not modifiable on RDS)",
        "gone_parameter (not a parameter of this engine)",
    ]


@pytest.mark.parametrize(
    "catalogue",
    [
        {"max_allowed_packet": {"ParameterName": "max_allowed_packet", "Source": "engine-default"}},
        {"require_secure_transport": {"ParameterName": "require_secure_transport", "IsModifiable": False}},
    ],
    ids=["absent", "not-modifiable"],
)
def test_an_engine_that_cannot_require_tls_is_refused(catalogue: dict[str, dict[str, object]]) -> None:
    wanted = (DbParameter("require_secure_transport", "ON", "immediate", "x", required=True),)
    with pytest.raises(InputError, match=r"require_secure_transport is not .* and it is required"):
        plan_changes(wanted, catalogue)


def test_parameter_group_holds_misps_values_and_is_written_once(run: Run) -> None:
    name = db_parameters.converge(run.ctx)
    rds = boto3.client("rds")
    group = rds.describe_db_parameter_groups(DBParameterGroupName=name)["DBParameterGroups"][0]
    assert group["DBParameterGroupFamily"] == "mariadb11.4"
    stored = {
        item["ParameterName"]: item["ParameterValue"]
        for item in rds.describe_db_parameters(DBParameterGroupName=name)["Parameters"]
    }
    assert stored == _values(run.ctx.settings.database)
    run.calls.calls.clear()
    db_parameters.converge(run.ctx)
    assert mutating(run.calls) == []


def _create(run: Run) -> database.DatabaseEndpoint:
    net = network.read(run.ctx)
    subnets = database.ensure_subnet_group(run.ctx, net)
    group = security_groups.ensure(run.ctx, net, Firewall("misp-prod-database", "db", 3306))
    parameter_group = db_parameters.converge(run.ctx)
    return database.ensure(
        run.ctx,
        lambda version: database.create_request(
            run.ctx,
            engine_version=version,
            subnet_group=subnets,
            security_group=group,
            parameter_group=parameter_group,
            monitoring_role=None,
        ),
    )


def test_database_is_multi_az_encrypted_protected_and_private(run: Run, eks: dict[str, Any]) -> None:
    endpoint = _create(run)
    db = boto3.client("rds").describe_db_instances(DBInstanceIdentifier="misp-prod-misp")["DBInstances"][0]
    assert db["MultiAZ"] and db["StorageEncrypted"] and db["DeletionProtection"] and db["CopyTagsToSnapshot"]
    assert not db["PubliclyAccessible"]
    assert db["BackupRetentionPeriod"] == 30
    assert (
        db["Engine"] == "mariadb"
        and db["EngineVersion"] == engines.NEWEST_MARIADB_11_4
        and db["DBInstanceClass"] == "db.m7g.large"
    )
    assert (db["StorageType"], db["AllocatedStorage"], db["MaxAllocatedStorage"]) == ("gp3", 100, 500)
    assert db["CACertificateIdentifier"] == "rds-ca-rsa2048-g1"
    assert {subnet["SubnetAvailabilityZone"]["Name"] for subnet in db["DBSubnetGroup"]["Subnets"]} == {
        "eu-west-1a",
        "eu-west-1b",
        "eu-west-1c",
    }
    assert endpoint.master_secret_arn == db["MasterUserSecret"]["SecretArn"]
    request = last_params(run.calls, "CreateDBInstance")
    assert request["ManageMasterUserPassword"] is True and "MasterUserPassword" not in request
    assert request["EnablePerformanceInsights"] is True and request["PerformanceInsightsRetentionPeriod"] == 7
    assert {tag["Key"]: tag["Value"] for tag in db["TagList"]}["app.kubernetes.io/part-of"] == "misp"


def test_existing_database_is_left_alone_and_drift_reported(run: Run, eks: dict[str, Any]) -> None:
    _create(run)
    boto3.client("rds").modify_db_instance(
        DBInstanceIdentifier="misp-prod-misp", BackupRetentionPeriod=7, ApplyImmediately=True
    )
    run.calls.calls.clear()
    _create(run)
    assert mutating(run.calls) == []
    assert "BackupRetentionPeriod=7" in run.output.getvalue()
    assert run.action("RDS instance", "misp-prod-misp") == "exists"


def test_master_secret_policy_names_exactly_the_rds_secret(run: Run, eks: dict[str, Any]) -> None:
    endpoint = _create(run)
    master_secret.ensure(run.ctx, endpoint.master_secret_arn)
    document = boto3.client("iam").get_role_policy(
        RoleName="misp-prod-external-secrets", PolicyName="rds-master-secret"
    )["PolicyDocument"]
    (statement,) = document["Statement"]
    assert statement["Resource"] == endpoint.master_secret_arn
    assert sorted(statement["Action"]) == ["secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue"]
    run.calls.calls.clear()
    master_secret.ensure(run.ctx, endpoint.master_secret_arn)
    assert mutating(run.calls) == []
    master_secret.remove(run.ctx)
    assert boto3.client("iam").list_role_policies(RoleName="misp-prod-external-secrets")["PolicyNames"] == [
        "eksctl-permissions"
    ]


def test_master_secret_policy_needs_the_eksctl_role(run: Run) -> None:
    with pytest.raises(MissingPrerequisite, match="misp-prod-external-secrets"):
        master_secret.ensure(run.ctx, "arn:aws:secretsmanager:eu-west-1:123456789012:secret:rds!db-x")


def test_enhanced_monitoring_role_only_when_asked(run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")  # the AWS-managed monitoring policy
    assert database.ensure_monitoring_role(run.ctx) is None
    settings = run.ctx.env.settings.model_copy(
        update={"database": run.ctx.settings.database.model_copy(update={"enhanced_monitoring_seconds": 60})}
    )
    run.ctx.env = type(run.ctx.env)(**{**run.ctx.env.__dict__, "settings": settings})
    arn = database.ensure_monitoring_role(run.ctx)
    assert arn and arn.endswith(":role/misp-prod-rds-monitoring")
    trust = boto3.client("iam").get_role(RoleName="misp-prod-rds-monitoring")["Role"]["AssumeRolePolicyDocument"]
    assert json.dumps(trust).count("monitoring.rds.amazonaws.com") == 1
