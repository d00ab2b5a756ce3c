"""In an account another team shares: the bootstrap finds only its own resources, creates its own beside
theirs, leaves theirs exactly as they were, and a re-run changes nothing."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from moto.rds.models import rds_backends

from misp_eks import naming
from misp_eks.provision import bucket, data, db_parameters, destroy, gitops, kms, plan, secrets, security_groups
from misp_eks.provision.network import read as read_network
from misp_eks.provision.phases import Phase
from tests.provision import crowd, emulate
from tests.provision.apiserver import Running
from tests.provision.conftest import FakeTools, Run, mutating
from tests.provision.test_destroy import leave_leftovers_to

AWS_ROWS = ("KMS key", "secret", "security group", "DB subnet group", "DB parameter group", "cache subnet group")
AWS_ROWS += ("SNS topic", "S3 bucket", "RDS instance", "ElastiCache replication group", "CloudWatch alarms")


def _plan(run: Run) -> dict[tuple[str, str], str]:
    rows = plan.build(run.ctx.env, run.ctx.aws, run.ctx.tools, (Phase.CLUSTER, Phase.SECRETS, Phase.DATA))
    return {(row.kind, row.name): row.action for row in rows if row.kind in AWS_ROWS}


def test_the_plan_does_not_mistake_another_teams_resources_for_its_own(
    run: Run, crowded: crowd.Foreign, eks: dict[str, Any]
) -> None:
    before = _plan(run)
    assert set(AWS_ROWS) <= {kind for kind, _ in before}
    assert {row: action for row, action in before.items() if action != "create"} == {}
    secrets.ensure_all(run.ctx)
    data.run(run.ctx)
    after = _plan(run)
    assert {row: action for row, action in after.items() if action != "exists" and row[0] != "KMS key"} == {}


def test_the_data_phase_makes_its_own_beside_theirs_and_touches_none_of_theirs(
    run: Run, crowded: crowd.Foreign, eks: dict[str, Any]
) -> None:
    theirs = crowd.snapshot(crowded)
    data.run(run.ctx)
    assert run.action(db_parameters.KIND, "misp-prod-misp") == "created"
    rds = boto3.client("rds")
    stored = {
        item["ParameterName"]: item["ParameterValue"]
        for item in rds.describe_db_parameters(DBParameterGroupName="misp-prod-misp")["Parameters"]
    }
    assert stored["max_allowed_packet"] == "268435456"
    instance = rds.describe_db_instances(DBInstanceIdentifier="misp-prod-misp")["DBInstances"][0]
    assert instance["DBParameterGroups"][0]["DBParameterGroupName"] == "misp-prod-misp"
    vpc = read_network(run.ctx).vpc_id
    ours = [instance["VpcSecurityGroups"][0]["VpcSecurityGroupId"]]
    assert boto3.client("ec2").describe_security_groups(GroupIds=ours)["SecurityGroups"][0]["VpcId"] == vpc
    for name in crowd.SECURITY_GROUP_NAMES:
        assert run.action(security_groups.KIND, name) == "created"
    assert crowd.snapshot(crowded) == theirs
    run.calls.calls.clear()
    data.run(run.ctx)
    assert mutating(run.calls) == []
    assert crowd.snapshot(crowded) == theirs


def test_key_secrets_and_bucket_are_created_beside_look_alikes(run: Run, crowded: crowd.Foreign) -> None:
    theirs = crowd.snapshot(crowded)
    key = kms.ensure(run.ctx)
    secrets.ensure_all(run.ctx)
    bucket.ensure(run.ctx)
    assert run.action(kms.KIND, "alias/misp-prod-eks") == "created"
    assert key.alias == "alias/misp-prod-eks" and not key.key_id.startswith("alias/")
    assert {item.action for item in run.outcomes(secrets.KIND)} == {"created"}
    assert run.action(bucket.KIND, "misp-prod-attachments-123456789012") == "created"
    assert crowd.snapshot(crowded) == theirs
    run.calls.calls.clear()
    kms.ensure(run.ctx)
    secrets.ensure_all(run.ctx)
    bucket.ensure(run.ctx)
    assert mutating(run.calls) == []


def test_deleting_a_security_group_never_takes_the_other_vpcs_namesake(
    run: Run, crowded: crowd.Foreign, eks: dict[str, Any]
) -> None:
    theirs = crowd.snapshot(crowded)
    security_groups.delete(run.ctx, "misp-prod-database")
    assert run.action(security_groups.KIND, "misp-prod-database") == "skipped"
    data.run(run.ctx)
    ec2 = boto3.client("ec2")
    ours = security_groups.find(ec2, read_network(run.ctx).vpc_id, "misp-prod-database", "misp-prod")
    assert ours is not None
    assert security_groups.find_owned(ec2, "misp-prod", "misp-prod-database") == ours
    assert crowd.snapshot(crowded) == theirs


def test_destroy_with_everything_asked_leaves_theirs(
    crowded: crowd.Foreign, converged: Run, tools: FakeTools, zone_id: str, apiserver: Running
) -> None:
    gitops.ensure(converged.ctx, assume_yes=True)
    emulate.load_balancer("eu-west-1", "misp-prod")
    leave_leftovers_to(apiserver, zone_id, "sync")
    theirs = crowd.snapshot(crowded)
    destroy.run(converged.ctx, destroy.DestroyOptions(delete_bucket=True, delete_secrets=True))
    assert converged.action(bucket.KIND, "misp-prod-attachments-123456789012") == "deleted"
    assert converged.action(security_groups.KIND, "misp-prod-database") == "deleted"
    assert crowd.snapshot(crowded) == theirs


def _change_alarm(foreign: crowd.Foreign) -> None:
    cloudwatch = boto3.client("cloudwatch")
    alarm = cloudwatch.describe_alarms(AlarmNames=[crowd.ALARMS[0]])["MetricAlarms"][0]
    fields = ("AlarmName", "Namespace", "MetricName", "Dimensions", "Statistic", "Period", "EvaluationPeriods")
    request = {key: alarm[key] for key in fields}
    cloudwatch.put_metric_alarm(**request, Threshold=50, ComparisonOperator="GreaterThanThreshold")


def _subscribe(foreign: crowd.Foreign) -> None:
    arn = f"arn:aws:sns:{foreign.region}:{foreign.account}:{crowd.TOPICS[0]}"
    boto3.client("sns").subscribe(TopicArn=arn, Protocol="email", Endpoint="someone@example.org")


def _access_point(foreign: crowd.Foreign) -> None:
    efs = boto3.client("efs")
    (system,) = efs.describe_file_systems(CreationToken=crowd.FILES_TOKEN)["FileSystems"]
    (point,) = efs.describe_access_points(FileSystemId=system["FileSystemId"])["AccessPoints"]
    efs.delete_access_point(AccessPointId=point["AccessPointId"])


def _mount_target(foreign: crowd.Foreign) -> None:
    efs = boto3.client("efs")
    (system,) = efs.describe_file_systems(CreationToken=crowd.FILES_TOKEN)["FileSystems"]
    target = efs.describe_mount_targets(FileSystemId=system["FileSystemId"])["MountTargets"][0]
    efs.delete_mount_target(MountTargetId=target["MountTargetId"])


def _load_balancer_tag(foreign: crowd.Foreign) -> None:
    elbv2 = boto3.client("elbv2")
    arns = [item["LoadBalancerArn"] for item in elbv2.describe_load_balancers()["LoadBalancers"]]
    elbv2.remove_tags(ResourceArns=arns, TagKeys=[naming.LOAD_BALANCER_CLUSTER_TAG])


def _detach(foreign: crowd.Foreign) -> None:
    iam = boto3.client("iam")
    (policy,) = iam.list_attached_role_policies(RoleName=crowd.ROLES[0])["AttachedPolicies"]
    iam.detach_role_policy(RoleName=crowd.ROLES[0], PolicyArn=policy["PolicyArn"])


def _inline(foreign: crowd.Foreign) -> None:
    boto3.client("iam").delete_role_policy(RoleName=crowd.ROLES[2], PolicyName=naming.RDS_MASTER_SECRET_POLICY)


def _event_subscription(foreign: crowd.Foreign) -> None:
    # moto has no ModifyEventSubscription: its record is edited as RDS would change it.
    rds_backends[foreign.account][foreign.region].event_subscriptions[crowd.EVENT_SUBSCRIPTION].enabled = False


@pytest.mark.parametrize(
    "change",
    [
        _change_alarm,
        _subscribe,
        _access_point,
        _mount_target,
        _load_balancer_tag,
        _detach,
        _inline,
        _event_subscription,
    ],
)
def test_the_snapshot_sees_a_change_to_any_of_theirs(crowded: crowd.Foreign, change: Any) -> None:
    before = crowd.snapshot(crowded)
    change(crowded)
    assert crowd.snapshot(crowded) != before
