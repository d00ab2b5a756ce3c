"""Every field a drift report reads, changed in the emulator, is reported; nothing is changed back.

The lists of fields are the production code's own (database.DRIFT_REPORTED, caches.DRIFT_WANTED): a
field added there without a way to change it here fails ``test_every_field_has_a_change``.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

import boto3
import pytest
from moto.elasticache.models import elasticache_backends
from moto.rds.models import rds_backends

from misp_eks.provision import caches, database, network
from tests.provision.conftest import ACCOUNT, REGION, Run, mutating
from tests.provision.test_caches import _request as cache_request
from tests.provision.test_database import _create as create_database

DB = "misp-prod-misp"
CACHE = "misp-prod-misp"


def _modify_db(**changes: Any) -> Callable[[Run], None]:
    def change(_run: Run) -> None:
        boto3.client("rds").modify_db_instance(DBInstanceIdentifier=DB, ApplyImmediately=True, **changes)

    return change


def _unencrypted_storage(_run: Run) -> None:
    # Storage encryption cannot be changed on an instance (RDS: only through a snapshot copy and a
    # restore), so the emulator's record is edited.
    rds_backends[ACCOUNT][REGION].databases[DB].storage_encrypted = False


def _other_security_group(run: Run) -> None:
    ec2 = boto3.client("ec2")
    vpc = network.read(run.ctx).vpc_id
    other = ec2.create_security_group(GroupName="someone-elses", Description="x", VpcId=vpc)["GroupId"]
    _modify_db(VpcSecurityGroupIds=[other])(run)


def _other_parameter_group(run: Run) -> None:
    rds = boto3.client("rds")
    rds.create_db_parameter_group(
        DBParameterGroupName="hand-made", DBParameterGroupFamily="mariadb11.4", Description="without TLS"
    )
    _modify_db(DBParameterGroupName="hand-made")(run)


def _unmanaged_master_password(run: Run) -> None:
    # RDS: turning ManageMasterUserPassword off takes a MasterUserPassword and deletes the managed secret.
    _modify_db(ManageMasterUserPassword=False, MasterUserPassword=secrets.token_urlsafe(24))(run)


DATABASE_CHANGES: dict[str, Callable[[Run], None]] = {
    "MultiAZ": _modify_db(MultiAZ=False),
    "StorageType": _modify_db(StorageType="gp2"),
    "DBParameterGroups": _other_parameter_group,
    "MasterUserSecret": _unmanaged_master_password,
    "StorageEncrypted": _unencrypted_storage,
    "DeletionProtection": _modify_db(DeletionProtection=False),
    "PubliclyAccessible": _modify_db(PubliclyAccessible=True),
    "BackupRetentionPeriod": _modify_db(BackupRetentionPeriod=7),
    "CopyTagsToSnapshot": _modify_db(CopyTagsToSnapshot=False),
    "CACertificateIdentifier": _modify_db(CACertificateIdentifier="rds-ca-ecc384-g1"),
    "VpcSecurityGroups": _other_security_group,
}


def _modify_cache(**changes: Any) -> Callable[[], None]:
    return lambda: boto3.client("elasticache").modify_replication_group(
        ReplicationGroupId=CACHE, ApplyImmediately=True, **changes
    )


def _cache_record(**attributes: Any) -> Callable[[], None]:
    """moto's ModifyReplicationGroup changes only failover and Multi-AZ: the rest is edited in its record
    (AWS: TransitEncryptionEnabled and AuthTokenUpdateStrategy=DELETE change them; at-rest never)."""

    def change() -> None:
        group = elasticache_backends[ACCOUNT][REGION].replication_groups[CACHE]
        for key, value in attributes.items():
            setattr(group, key, value)

    return change


CACHE_CHANGES: dict[str, Callable[[], None]] = {
    "MultiAZ": _modify_cache(MultiAZEnabled=False),
    "AutomaticFailover": _modify_cache(AutomaticFailoverEnabled=False),
    "TransitEncryptionEnabled": _cache_record(transit_encryption_enabled=False),
    "AtRestEncryptionEnabled": _cache_record(at_rest_encryption_enabled=False),
    "AuthTokenEnabled": _cache_record(auth_token_enabled=False, auth_token=None),
}


def test_every_field_has_a_change() -> None:
    assert set(DATABASE_CHANGES) == set(database.DRIFT_REPORTED)
    assert set(CACHE_CHANGES) == set(caches.DRIFT_WANTED)


@pytest.mark.parametrize("field", database.DRIFT_REPORTED)
def test_database_drift_is_reported(run: Run, eks: dict[str, Any], field: str) -> None:
    create_database(run)
    assert "differs from the bootstrap's settings" not in run.output.getvalue()
    DATABASE_CHANGES[field](run)
    run.calls.calls.clear()
    create_database(run)
    warning = next(line for line in run.output.getvalue().splitlines() if "differs from the bootstrap's" in line)
    assert f"{field}=" in warning
    assert [item for item in database.DRIFT_REPORTED if f"{item}=" in warning] == [field]
    assert mutating(run.calls) == []
    assert run.action(database.KIND, DB) == "exists"


@pytest.mark.parametrize("field", list(caches.DRIFT_WANTED))
def test_cache_drift_is_reported(run: Run, eks: dict[str, Any], field: str) -> None:
    request = cache_request(run, "misp")
    caches.ensure(run.ctx, CACHE, lambda: request)
    assert "differs from the bootstrap's settings" not in run.output.getvalue()
    CACHE_CHANGES[field]()
    run.calls.calls.clear()
    caches.ensure(run.ctx, CACHE, lambda: request)
    warning = next(line for line in run.output.getvalue().splitlines() if "differs from the bootstrap's" in line)
    assert [item for item in caches.DRIFT_WANTED if f" {item}=" in warning or f", {item}=" in warning] == [field]
    assert mutating(run.calls) == []
    assert run.action(caches.KIND, CACHE) == "exists"
