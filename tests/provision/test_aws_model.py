"""The request checker rejects what AWS rejects or ignores, and every test's requests go through it."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest

from misp_eks.provision.aws.calls import Call, CallLog
from tests.provision.aws_model import ModelChecker, check, check_recorded
from tests.provision.conftest import Run

ROLE_TRUST = json.dumps({"Version": "2012-10-17", "Statement": []})


@pytest.mark.parametrize(
    ("service", "operation", "params", "expected"),
    [
        (
            "rds",
            "DescribeDBParameterGroups",
            {"Filters": [{"Name": "db-parameter-group-name", "Values": ["misp-prod-misp"]}]},
            "rds:DescribeDBParameterGroups Filters: the model documents it as not currently supported",
        ),
        (
            "elasticache",
            "CreateReplicationGroup",
            {"ReplicationGroupId": "g", "ReplicationGroupDescription": "d", "ClusterMode": "on"},
            "ClusterMode: 'on' is not one of enabled, disabled, compatible",
        ),
        (
            "iam",
            "CreateRole",
            {"RoleName": "r" * 65, "AssumeRolePolicyDocument": ROLE_TRUST},
            "RoleName: 65 characters, more than the maximum 64",
        ),
        (
            "rds",
            "DescribeDBInstances",
            {"DBInstanceId": "x"},
            "DBInstanceId: not a member of DescribeDBInstancesMessage",
        ),
        ("s3", "CreateBucket", {}, "Bucket: required, missing"),
        ("kms", "CreateAlias", {"AliasName": "alias/a b", "TargetKeyId": "k"}, "AliasName: 'alias/a b' does not match"),
        ("rds", "DescribeDBEngineVersions", {"MaxRecords": "20"}, "MaxRecords: expected an integer, got str"),
        ("kms", "ScheduleKeyDeletion", {"KeyId": "k", "PendingWindowInDays": 366}, "366 is above the maximum 365"),
        (
            "cloudwatch",
            "DescribeAlarms",
            {"AlarmNames": ["a"] * 101},
            "AlarmNames: 101 items, more than the maximum 100",
        ),
        (
            "ec2",
            "RevokeSecurityGroupIngress",
            {"IpPermissions": [{"IpProtocol": "tcp", "UserIdGroupPairs": [{"GroupIdd": "sg-1"}]}]},
            "IpPermissions[0].UserIdGroupPairs[0].GroupIdd: not a member of UserIdGroupPair",
        ),
        ("rds", "DescribeNothing", {}, "rds: no operation DescribeNothing"),
        (
            "rds",
            "DescribeDBProxies",
            {"Filters": [{"Name": "n", "Values": ["v"]}]},
            "rds:DescribeDBProxies Filters: the model documents it as not currently supported",
        ),
        ("eks", "TagResource", {"resourceArn": "arn", "tags": {}}, "tags: 0 entries, fewer than the minimum 1"),
        (
            "eks",
            "TagResource",
            {"resourceArn": "arn", "tags": {f"k{index}": "v" for index in range(51)}},
            "tags: 51 entries, more than the maximum 50",
        ),
    ],
    ids=[
        "unsupported",
        "enum",
        "too-long",
        "unknown",
        "required",
        "pattern",
        "type",
        "maximum",
        "count",
        "nested",
        "operation",
        "unsupported-is-not",
        "map-minimum",
        "map-maximum",
    ],
)
def test_each_rule_catches_its_mistake(service: str, operation: str, params: dict, expected: str) -> None:
    problems = check(service, operation, params)
    assert any(expected in problem for problem in problems), problems


def test_a_well_formed_request_passes() -> None:
    assert check("rds", "DescribeDBParameterGroups", {"DBParameterGroupName": "misp-prod-misp"}) == []
    # Its documentation says one value ("False is not currently supported"), not the member, is unsupported.
    increase = {"ReplicationGroupId": "g", "ApplyImmediately": True, "NewReplicaCount": 2}
    assert check("elasticache", "IncreaseReplicaCount", increase) == []
    assert check("eks", "TagResource", {"resourceArn": "arn", "tags": {"k": "v"}}) == []
    assert check("iam", "CreateRole", {"RoleName": "r" * 64, "AssumeRolePolicyDocument": ROLE_TRUST}) == []


def test_the_tests_own_clients_are_checked(moto: None, model_checker: ModelChecker) -> None:
    rds = boto3.client("rds")
    with pytest.raises(AssertionError, match="Filters: the model documents it as not currently supported"):
        rds.describe_db_parameter_groups(Filters=[{"Name": "db-parameter-group-name", "Values": ["x"]}])
    assert len(model_checker.problems) == 1
    model_checker.problems.clear()


def test_the_bootstraps_clients_are_checked(run: Run, model_checker: ModelChecker) -> None:
    with pytest.raises(AssertionError, match="RoleName: 65 characters"):
        run.ctx.client("iam").create_role(RoleName="r" * 65, AssumeRolePolicyDocument=ROLE_TRUST)
    model_checker.problems.clear()


def test_the_call_log_records_what_the_checker_needs(moto: None, tmp_path: Path) -> None:
    log = CallLog(path=tmp_path / "calls.jsonl")
    session = boto3.Session(region_name="eu-west-1")
    log.attach(session.events)
    session.client("secretsmanager").create_secret(Name="n", SecretString="not-a-secret")  # pragma: allowlist secret
    session.client("cloudwatch").describe_alarms(AlarmNames=["a"])
    recorded = [json.loads(line) for line in (tmp_path / "calls.jsonl").read_text().splitlines()]
    assert [(call["service"], call["api"], call["operation"]) for call in recorded] == [
        ("secretsmanager", "secretsmanager", "CreateSecret"),
        ("monitoring", "cloudwatch", "DescribeAlarms"),
    ]
    assert recorded[0]["params"]["SecretString"] == "<redacted>"
    assert check_recorded(tmp_path / "calls.jsonl") == []


def test_recorded_calls_are_checked_with_secrets_redacted(tmp_path: Path) -> None:
    path = tmp_path / "calls.jsonl"
    calls = [
        # over the 65536-character maximum, but redacted in the log: not checked there
        Call("secretsmanager", "CreateSecret", {"Name": "n", "SecretString": "x" * 70000}, "secretsmanager"),
        Call("iam", "CreateRole", {"RoleName": "r" * 65, "AssumeRolePolicyDocument": ROLE_TRUST}, "iam"),
        Call("monitoring", "DescribeAlarms", {"AlarmNames": ["a"], "Filters": "x"}, "cloudwatch"),
    ]
    path.write_text("".join(json.dumps(call.as_json()) + "\n" for call in calls))
    assert check_recorded(path) == [
        "iam:CreateRole RoleName: 65 characters, more than the maximum 64",
        "cloudwatch:DescribeAlarms Filters: not a member of DescribeAlarmsInput",
    ]
