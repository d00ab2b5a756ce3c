"""Prod and staging in one account and region, beside another team's look-alike resources.

One scenario, through the command line against a moto server (tests.provision.world): bootstrap
prod, then staging; re-run each; destroy staging. Both converge, each run touches only its own
environment's resources (and none of the other team's), a converged re-run makes no mutating call,
and destroying staging leaves prod and the other team exactly as they were.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest

from misp_eks import naming
from tests.provision import crowd, emulate
from tests.provision.conftest import ACCOUNT, REGION
from tests.provision.world import World, world

RUN_TIMEOUT = 300
ENVIRONMENTS = {"prod": "misp-prod", "staging": "misp-staging"}
FOREIGN_NAMES = (
    crowd.FOREIGN_CLUSTER,
    *crowd.PARAMETER_GROUPS,
    *crowd.SECRETS,
    *crowd.KMS_ALIASES,
    *crowd.TOPICS,
    *crowd.ALARMS,
    *crowd.HOSTNAMES,
)


@dataclass
class Run:
    returncode: int
    output: str
    calls: list[dict[str, Any]]

    def mutating(self) -> list[dict[str, Any]]:
        return [call for call in self.calls if call["mutating"]]


def own(cluster: str) -> dict[str, Any]:
    """One environment's resources as AWS describes them (what another environment's run must not change)."""
    rds, elasticache = boto3.client("rds", region_name=REGION), boto3.client("elasticache", region_name=REGION)
    secrets, eks = boto3.client("secretsmanager", region_name=REGION), boto3.client("eks", region_name=REGION)
    ec2, s3 = boto3.client("ec2", region_name=REGION), boto3.client("s3", region_name=REGION)
    kms = boto3.client("kms", region_name=REGION)
    clusters = eks.list_clusters()["clusters"]
    vpc = emulate.stack_outputs(REGION, naming.eksctl_cluster_stack(cluster))["VPC"] if cluster in clusters else None
    return {
        "databases": sorted(
            (db["DBInstanceIdentifier"], db["DBInstanceStatus"], db["DBInstanceArn"], db["DBParameterGroups"][0])
            for db in rds.describe_db_instances()["DBInstances"]
            if db["DBInstanceIdentifier"] == naming.db_instance(cluster)
        ),
        "caches": sorted(
            (group["ReplicationGroupId"], group["Status"], group["ARN"])
            for group in elasticache.describe_replication_groups()["ReplicationGroups"]
            if group["ReplicationGroupId"] in {naming.cache_group(cluster, app) for app in ("misp", "dashboard")}
        ),
        "secrets": sorted(
            (item["Name"], item["ARN"], json.dumps(item.get("SecretVersionsToStages"), sort_keys=True))
            for page in secrets.get_paginator("list_secrets").paginate(IncludePlannedDeletion=True)
            for item in page["SecretList"]
            if item["Name"] in {spec.name(cluster) for spec in naming.SECRETS}
        ),
        "cluster": eks.describe_cluster(name=cluster)["cluster"]["status"] if cluster in clusters else None,
        "security groups": sorted(
            (group["GroupName"], group["GroupId"], json.dumps(group["IpPermissions"], sort_keys=True))
            for group in ec2.describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["SecurityGroups"]
        )
        if vpc
        else [],
        "buckets": sorted(
            bucket["Name"]
            for bucket in s3.list_buckets()["Buckets"]
            if bucket["Name"] == naming.attachments_bucket(cluster, ACCOUNT)
        ),
        "key": kms.describe_key(KeyId=f"alias/{cluster}-eks")["KeyMetadata"]["KeyState"],
    }


@dataclass
class Scenario:
    prod: Run
    staging: Run
    prod_again: Run
    staging_again: Run
    destroy_staging: Run
    foreign: list[dict[str, Any]]
    """The other team's resources before everything, after the bootstraps and re-runs, after the destroy."""
    prod_states: list[dict[str, Any]]
    """Prod's resources after its bootstrap, after staging's bootstrap and re-run, after staging's destroy."""
    staging_after_destroy: dict[str, Any]


def _run(emulated: World, env: str, calls: Path, *args: str) -> Run:
    done = emulated.bootstrap(*args, env=env, calls=calls, timeout=RUN_TIMEOUT)
    recorded = [json.loads(line) for line in calls.read_text().splitlines()] if calls.exists() else []
    return Run(done.returncode, done.stderr + done.stdout[-3000:], recorded)


@pytest.fixture(scope="module")
def scenario(repo: Path, tmp_path_factory: pytest.TempPathFactory) -> Scenario:
    work = tmp_path_factory.mktemp("two-environments")
    with world(repo, work, crowded=True, staging=True) as emulated:
        foreign = crowd.Foreign(REGION, ACCOUNT, emulated.zone_id)
        foreign_states = [crowd.snapshot(foreign)]
        prod = _run(emulated, "prod", work / "prod-1.jsonl")
        prod_states = [own("misp-prod")]
        staging = _run(emulated, "staging", work / "staging-1.jsonl")
        prod_again = _run(emulated, "prod", work / "prod-2.jsonl")
        staging_again = _run(emulated, "staging", work / "staging-2.jsonl")
        foreign_states.append(crowd.snapshot(foreign))
        prod_states.append(own("misp-prod"))
        destroy = _run(emulated, "staging", work / "staging-3.jsonl", "--destroy")
        foreign_states.append(crowd.snapshot(foreign))
        prod_states.append(own("misp-prod"))
        staging_after = own("misp-staging")
    return Scenario(prod, staging, prod_again, staging_again, destroy, foreign_states, prod_states, staging_after)


def test_both_environments_converge(scenario: Scenario) -> None:
    for run in (scenario.prod, scenario.staging, scenario.prod_again, scenario.staging_again):
        assert run.returncode == 0, run.output
        assert "Traceback" not in run.output
    assert scenario.prod_states[0]["cluster"] == "ACTIVE" and len(scenario.prod_states[0]["databases"]) == 1


@pytest.mark.parametrize(("env", "other"), [("prod", "staging"), ("staging", "prod")])
def test_each_run_writes_only_its_own_resources(scenario: Scenario, env: str, other: str) -> None:
    runs = [scenario.prod] if env == "prod" else [scenario.staging, scenario.destroy_staging]
    for run in runs:
        written = json.dumps([call["params"] for call in run.mutating()])
        assert run.mutating(), "the run wrote nothing"
        assert ENVIRONMENTS[other] not in written
        assert [name for name in FOREIGN_NAMES if name in written] == []


def test_a_converged_rerun_of_either_writes_nothing(scenario: Scenario) -> None:
    for run in (scenario.prod_again, scenario.staging_again):
        assert run.calls, "the re-run recorded no AWS call"
        assert [f"{call['service']}:{call['operation']}" for call in run.mutating()] == []


def test_staging_leaves_prod_and_the_other_team_untouched(scenario: Scenario) -> None:
    assert scenario.destroy_staging.returncode == 0, scenario.destroy_staging.output
    assert scenario.staging_after_destroy["cluster"] is None
    assert scenario.staging_after_destroy["databases"] == [] and scenario.staging_after_destroy["caches"] == []
    first, *later = scenario.prod_states
    assert all(state == first for state in later)
    before, *after = scenario.foreign
    assert all(state == before for state in after)
