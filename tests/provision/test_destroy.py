"""--destroy: a safe order, data kept, and a re-run that resumes."""

from __future__ import annotations

import boto3
import pytest

from misp_eks import naming
from misp_eks.provision import destroy, gitops
from misp_eks.provision.errors import BootstrapError, Cancelled
from tests.provision import emulate
from tests.provision.apiserver import Running
from tests.provision.conftest import FakeTools, Run

HOSTS = ["misp.example.org", "misp-dashboard.example.org"]


def leave_leftovers_to(apiserver: Running, zone_id: str, policy: str = "upsert-only") -> None:
    """When an Ingress goes, its load balancer goes; external-dns deletes records only with policy sync
    (prod runs upsert-only)."""
    apiserver.server.on_ingress_gone = lambda _ingress: emulate.remove_controller_leftovers(
        "eu-west-1", "misp-prod", zone_id, HOSTS, policy
    )


@pytest.fixture
def running(converged: Run, tools: FakeTools, zone_id: str, apiserver: Running) -> Run:
    gitops.ensure(converged.ctx, assume_yes=True)
    emulate.load_balancer("eu-west-1", "misp-prod")
    emulate.dns_records("eu-west-1", zone_id, HOSTS)
    leave_leftovers_to(apiserver, zone_id)
    tools.runs.clear()
    apiserver.server.requests.clear()
    converged.calls.calls.clear()
    return converged


def test_teardown_order_and_what_is_kept(running: Run, tools: FakeTools, apiserver: Running) -> None:
    destroy.run(running.ctx, destroy.DestroyOptions())
    writes = [(method, path) for method, path, status in apiserver.server.requests if method in ("PATCH", "DELETE")]
    suspended = [path for method, path in writes if path.startswith("/apis/kustomize.toolkit.fluxcd.io/")]
    ingresses = [path for method, path in writes if "/ingresses/" in path]
    scaled = [path for method, path in writes if path.endswith("/scale")]
    assert len(suspended) == 7 and sorted(ingresses) == [
        "/apis/networking.k8s.io/v1/namespaces/misp-dashboard/ingresses/misp-dashboard",
        "/apis/networking.k8s.io/v1/namespaces/misp/ingresses/misp",
    ]
    assert len(scaled) == 5  # every Deployment of both namespaces
    # Flux suspended, then the Ingresses, then the workloads; eksctl deletes the cluster last
    assert writes.index(("PATCH", suspended[-1])) < writes.index(("DELETE", ingresses[0]))
    assert writes.index(("DELETE", ingresses[-1])) < writes.index(("PATCH", scaled[0]))
    kustomizations = apiserver.server.items(
        apiserver.server.kind("kustomize.toolkit.fluxcd.io", "v1", "kustomizations")
    )
    assert {item["spec"].get("suspend") for item in kustomizations} == {True}
    assert [args[:2] for name, args, _ in tools.runs if name == "eksctl" and args[0] == "delete"] == [
        ["delete", "cluster"]
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
    assert boto3.client("s3").head_bucket(Bucket=running.ctx.names.attachments_bucket)
    sm = boto3.client("secretsmanager")
    for spec in naming.SECRETS:
        assert "DeletedDate" not in sm.describe_secret(SecretId=spec.name("misp-prod"))
    assert boto3.client("eks").list_clusters()["clusters"] == []


def test_destroy_waits_for_the_workloads_pods_not_for_a_finished_jobs(running: Run, apiserver: Running) -> None:
    server = apiserver.server
    pods = server.kind("", "v1", "pods")
    destroy.scale_to_zero(running.ctx)
    left = [pod["metadata"]["name"] for pod in server.items(pods, "misp")]
    assert left == ["misp-database-init-x7k2p"]  # Completed: scaling never deletes it
    assert server.items(pods, "misp-dashboard") == []
    deployments = server.items(server.kind("apps", "v1", "deployments"))
    assert len(deployments) == 5 and {item["spec"]["replicas"] for item in deployments} == {0}
    assert running.action("workloads", "misp") == "updated"


def test_destroy_names_the_pods_that_do_not_stop(running: Run, apiserver: Running) -> None:
    apiserver.server.termination_seconds = 3600  # a pod stuck terminating
    with pytest.raises(BootstrapError, match=r"waiting for the pods of misp's workloads to stop .*misp-modules-"):
        destroy.scale_to_zero(running.ctx)


def test_destroy_waits_for_the_ingresses_before_the_load_balancers(running: Run, apiserver: Running) -> None:
    apiserver.server.finalizer_seconds = 3600  # the load balancer controller never finishes
    with pytest.raises(BootstrapError, match=r"waiting for the Ingresses of misp-prod to be deleted .*2 left"):
        destroy.remove_ingresses(running.ctx)
    assert boto3.client("elbv2").describe_load_balancers()["LoadBalancers"]  # still there: nothing faked


def test_without_flux_there_is_nothing_to_suspend(running: Run, apiserver: Running) -> None:
    server = apiserver.server
    for item in server.items(server.kind("kustomize.toolkit.fluxcd.io", "v1", "kustomizations")):
        server.remove(
            server.kind("kustomize.toolkit.fluxcd.io", "v1", "kustomizations"), "flux-system", item["metadata"]["name"]
        )
    server.custom.clear()  # the CRD's group is no longer served
    destroy.suspend_flux(running.ctx)
    assert running.action("Flux", "misp-prod") == "skipped"


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


def test_records_external_dns_already_deleted_are_no_trouble(running: Run, apiserver: Running, zone_id: str) -> None:
    leave_leftovers_to(apiserver, zone_id, "sync")
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


def test_bucket_and_secrets_go_only_when_asked(running: Run, tools: FakeTools) -> None:
    s3 = boto3.client("s3")
    bucket = running.ctx.names.attachments_bucket
    neighbour = f"{bucket}-old"  # another bucket of the account, with a look-alike name
    s3.create_bucket(Bucket=neighbour, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    s3.put_object(Bucket=neighbour, Key="kept", Body=b"x")
    for body in (b"first", b"second"):  # two versions of one attachment, then a delete marker
        s3.put_object(Bucket=bucket, Key="files/1/attachment", Body=body)
    s3.delete_object(Bucket=bucket, Key="files/1/attachment")
    s3.put_object(Bucket=bucket, Key="files/2/attachment", Body=b"third")
    destroy.run(running.ctx, destroy.DestroyOptions(delete_bucket=True, delete_secrets=True))
    assert bucket not in {item["Name"] for item in s3.list_buckets()["Buckets"]}
    # two versions and a delete marker of one attachment, and the other attachment
    assert running.outcomes("S3 bucket")[-1].detail == "4 object versions"
    assert running.action("S3 bucket", bucket) == "deleted"
    assert [item["Key"] for item in s3.list_objects_v2(Bucket=neighbour)["Contents"]] == ["kept"]
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
