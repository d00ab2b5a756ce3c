"""--destroy: a safe order, data kept, and a re-run that resumes."""

from __future__ import annotations

import boto3
import pytest

from misp_eks import naming
from misp_eks.provision import destroy, gitops
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


def test_a_second_destroy_resumes_and_finds_nothing_left(running: Run, tools: FakeTools) -> None:
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
