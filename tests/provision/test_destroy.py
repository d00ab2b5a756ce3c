"""--destroy: a safe order, data kept, and a re-run that resumes."""

from __future__ import annotations

import boto3
import pytest

from misp_eks import naming
from misp_eks.provision import destroy, gitops
from misp_eks.provision.errors import BootstrapError, Cancelled
from tests.provision import emulate
from tests.provision.conftest import FakeTools, Run

HOSTS = ["misp.example.org", "misp-dashboard.example.org"]


@pytest.fixture
def running(converged: Run, tools: FakeTools, zone_id: str) -> Run:
    gitops.ensure(converged.ctx, assume_yes=True)
    emulate.load_balancer("eu-west-1", "misp-prod")
    emulate.dns_records("eu-west-1", zone_id, HOSTS)
    tools.environ["STANDIN_ZONE_ID"] = zone_id
    tools.runs.clear()
    converged.calls.calls.clear()
    return converged


def test_teardown_order_and_what_is_kept(running: Run, tools: FakeTools) -> None:
    destroy.run(running.ctx, destroy.DestroyOptions())
    steps = [
        " ".join(args[:2])
        for _, args, _ in tools.runs
        if args[:2]
        in (["suspend", "kustomization"], ["delete", "ingress"], ["scale", "--replicas=0"], ["delete", "cluster"])
    ]
    assert steps == [
        "suspend kustomization",
        "delete ingress",
        "scale --replicas=0",
        "scale --replicas=0",
        "delete cluster",
    ]
    operations = [call.operation for call in running.calls.calls if call.mutating]
    # the data layer (and the inline policy) go before eksctl deletes the VPC's stack
    assert operations.index("DeleteDBInstance") < operations.index("DeleteRolePolicy")
    assert boto3.client("elbv2").describe_load_balancers()["LoadBalancers"] == []
    rds, elasticache = boto3.client("rds"), boto3.client("elasticache")
    assert rds.describe_db_instances()["DBInstances"] == []
    assert [
        snap["DBSnapshotIdentifier"]
        for snap in rds.describe_db_snapshots(SnapshotType="manual")["DBSnapshots"]
        if snap["DBSnapshotIdentifier"].startswith("misp-prod-misp-final-")
    ]
    finals = [snap["SnapshotName"] for snap in elasticache.describe_snapshots()["Snapshots"]]
    assert sorted(name.rsplit("-final-", 1)[0] for name in finals) == ["misp-prod-dashboard", "misp-prod-misp"]
    delete = next(call.params for call in running.calls.calls if call.operation == "DeleteDBInstance")
    assert delete["DeleteAutomatedBackups"] is False and delete["SkipFinalSnapshot"] is False
    modify = next(call.params for call in running.calls.calls if call.operation == "ModifyDBInstance")
    assert modify == {"DBInstanceIdentifier": "misp-prod-misp", "DeletionProtection": False, "ApplyImmediately": True}
    for operation in ("DeleteSecret", "DeleteBucket", "ScheduleKeyDeletion", "DeleteDBSnapshot", "DeleteSnapshot"):
        assert operation not in operations
    assert boto3.client("s3").head_bucket(Bucket="misp-prod-attachments-123456789012")
    sm = boto3.client("secretsmanager")
    for spec in naming.SECRETS:
        assert "DeletedDate" not in sm.describe_secret(SecretId=spec.name("misp-prod"))
    assert boto3.client("eks").list_clusters()["clusters"] == []


def _zone_records(zone_id: str) -> list[tuple[str, str]]:
    """The records external-dns would make for the two hostnames (not the certificates' validation records)."""
    names = {f"{prefix}{host}." for host in HOSTS for prefix in ("", "a-")}
    records = boto3.client("route53").list_resource_record_sets(HostedZoneId=zone_id)["ResourceRecordSets"]
    return sorted((r["Name"], r["Type"]) for r in records if r["Name"] in names)


def test_production_dns_records_are_deleted_by_the_bootstrap(running: Run, zone_id: str) -> None:
    """external-dns runs upsert-only in production and never deletes: the bootstrap deletes what it made."""
    assert len(_zone_records(zone_id)) == 4  # an A record and its ownership TXT record per hostname
    destroy.run(running.ctx, destroy.DestroyOptions())
    assert _zone_records(zone_id) == []
    actions = {(item.kind, item.action) for item in running.ctx.progress.outcomes}
    assert ("DNS records", "deleted") in actions


def test_dns_records_another_owner_made_are_kept(running: Run, zone_id: str) -> None:
    emulate.dns_records("eu-west-1", zone_id, HOSTS, owner="someone-else")
    destroy.run(running.ctx, destroy.DestroyOptions())
    assert len(_zone_records(zone_id)) == 4
    kept = [item for item in running.ctx.progress.outcomes if item.kind == "DNS record" and item.action == "kept"]
    assert sorted(item.name for item in kept) == ["misp-dashboard.example.org A", "misp.example.org A"]


def test_records_external_dns_already_deleted_are_no_trouble(running: Run, tools: FakeTools, zone_id: str) -> None:
    tools.environ["STANDIN_DNS_POLICY"] = "sync"
    destroy.run(running.ctx, destroy.DestroyOptions())
    assert _zone_records(zone_id) == []
    assert "ChangeResourceRecordSets" not in [call.operation for call in running.calls.calls if call.mutating]


def test_an_interrupted_destroy_resumes_where_it_stopped(running: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    real = destroy.delete_cluster

    def interrupted(ctx: object) -> None:
        raise Cancelled

    monkeypatch.setattr(destroy, "delete_cluster", interrupted)
    with pytest.raises(Cancelled):
        destroy.run(running.ctx, destroy.DestroyOptions())
    assert boto3.client("eks").list_clusters()["clusters"] == ["misp-prod"]
    assert boto3.client("rds").describe_db_instances()["DBInstances"] == []  # the data layer went first
    monkeypatch.setattr(destroy, "delete_cluster", real)
    running.ctx.progress.outcomes.clear()
    destroy.run(running.ctx, destroy.DestroyOptions())
    assert boto3.client("eks").list_clusters()["clusters"] == []
    actions = {(item.kind, item.name): item.action for item in running.ctx.progress.outcomes}
    assert actions[("RDS instance", "misp-prod-misp")] == "skipped"


def test_a_second_destroy_finds_nothing_left_to_do(running: Run, tools: FakeTools) -> None:
    destroy.run(running.ctx, destroy.DestroyOptions())
    running.ctx.progress.outcomes.clear()
    destroy.run(running.ctx, destroy.DestroyOptions())
    actions = {(item.kind, item.name): item.action for item in running.ctx.progress.outcomes}
    assert actions[("RDS instance", "misp-prod-misp")] == "skipped"
    assert actions[("EKS cluster", "misp-prod")] == "skipped"


def test_bucket_and_secrets_go_only_when_asked(running: Run, tools: FakeTools, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("misp_eks.provision.bucket.exists", lambda _s3, _bucket: True)
    deleted: list[str] = []
    monkeypatch.setattr("misp_eks.provision.bucket.delete", lambda ctx: deleted.append(ctx.names.attachments_bucket))
    destroy.run(running.ctx, destroy.DestroyOptions(delete_bucket=True, delete_secrets=True))
    assert deleted == ["misp-prod-attachments-123456789012"]
    sm = boto3.client("secretsmanager")
    for spec in naming.SECRETS:
        assert sm.describe_secret(SecretId=spec.name("misp-prod")).get("DeletedDate")
    key = boto3.client("kms").describe_key(KeyId="alias/misp-prod-eks")["KeyMetadata"]
    assert key["KeyState"] == "PendingDeletion"


def test_a_failed_database_stops_the_teardown_with_what_to_do(running: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(destroy.database, "find", lambda _rds, _id: {"DBInstanceStatus": "failed"})
    with pytest.raises(BootstrapError, match=r"misp-prod-misp is failed: RDS cannot take its final snapshot"):
        destroy._delete_database(running.ctx, 0)
    assert "DeleteDBInstance" not in [call.operation for call in running.calls.calls]


def test_a_cache_whose_creation_failed_is_deleted_without_a_snapshot(
    running: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = destroy.caches.find
    monkeypatch.setattr(
        destroy.caches, "find", lambda client, group: real(client, group) and {"Status": "create-failed"}
    )
    assert destroy._delete_cache(running.ctx, "misp", 0) == ""
    delete = next(call.params for call in running.calls.calls if call.operation == "DeleteReplicationGroup")
    assert delete == {"ReplicationGroupId": "misp-prod-misp", "RetainPrimaryCluster": False}
