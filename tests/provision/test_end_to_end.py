"""The whole bootstrap through its command line, against a moto server, with recording stand-ins.

One scenario: bootstrap prod, re-run it (no mutating AWS call allowed), destroy it. The bootstrap
runs as ``python bootstrap/bootstrap.py`` in a subprocess, with no aws CLI on PATH; eksctl and flux
are the stand-ins of standin.py, the cluster's Kubernetes API is tests.provision.apiserver; MISP's GPG
key is made by the real gpg; the RDS CA bundle and the HTTPS endpoints come from local servers, the
latter verified against a test CA (SSL_CERT_FILE).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest

from misp_eks import naming
from misp_eks.cluster_vars import ClusterVars
from misp_eks.provision.gitops import FLUX_DISTRIBUTION
from tests.provision import cli_tables, emulate, standin
from tests.provision.conftest import ACCOUNT, FAKE_PEM, REGION
from tests.provision.world import CLUSTER, HOSTS, World, world

RUN_TIMEOUT = 240


@dataclass
class Outcome:
    returncode: int
    stdout: str
    stderr: str
    calls: list[dict[str, Any]]


@dataclass
class Scenario:
    first: Outcome
    second: Outcome
    destroy: Outcome
    standins: list[dict[str, Any]]
    after_bootstrap: dict[str, Any] = field(default_factory=dict)
    after_destroy: dict[str, Any] = field(default_factory=dict)
    operator_kube: list[str] = field(default_factory=list)
    """What the operator's ~/.kube holds after the three runs (HOME is the world's directory)."""
    cluster_vars: dict[str, Any] = field(default_factory=dict)
    """The cluster-vars ConfigMap in the fake Kubernetes API after the first run."""
    destroy_requests: list[tuple[str, str, int]] = field(default_factory=list)
    """What the destroy run asked of the Kubernetes API: (method, path, status)."""
    home: Path = Path()
    """The operator's HOME in the runs."""


def _bootstrap(world: World, calls: Path, *args: str) -> Outcome:
    result = world.bootstrap(*args, calls=calls, timeout=RUN_TIMEOUT)
    recorded = [json.loads(line) for line in calls.read_text().splitlines()] if calls.exists() else []
    return Outcome(result.returncode, result.stdout, result.stderr, recorded)


def _snapshot_aws() -> dict[str, Any]:
    rds, ec = boto3.client("rds", region_name=REGION), boto3.client("elasticache", region_name=REGION)
    sm = boto3.client("secretsmanager", region_name=REGION)
    secrets = {}
    for page in sm.get_paginator("list_secrets").paginate():
        for item in page["SecretList"]:
            if item["Name"].startswith(f"{CLUSTER}/"):
                secrets[item["Name"]] = {
                    "value": json.loads(sm.get_secret_value(SecretId=item["Name"])["SecretString"]),
                    "tags": {tag["Key"]: tag["Value"] for tag in item.get("Tags", [])},
                }
    s3 = boto3.client("s3", region_name=REGION)
    buckets = [bucket["Name"] for bucket in s3.list_buckets()["Buckets"]]
    return {
        "databases": rds.describe_db_instances()["DBInstances"],
        "db_snapshots": [snap["DBSnapshotIdentifier"] for snap in rds.describe_db_snapshots()["DBSnapshots"]],
        "caches": ec.describe_replication_groups()["ReplicationGroups"],
        "cache_snapshots": [snap["SnapshotName"] for snap in ec.describe_snapshots()["Snapshots"]],
        "secrets": secrets,
        "buckets": buckets,
        "certificates": boto3.client("acm", region_name=REGION).list_certificates()["CertificateSummaryList"],
        "security_groups": {
            group["GroupName"]: group
            for group in boto3.client("ec2", region_name=REGION).describe_security_groups()["SecurityGroups"]
        },
        "cluster_security_group": emulate.stack_outputs(REGION, f"eksctl-{CLUSTER}-cluster").get(
            "ClusterSecurityGroupId"
        )
        if CLUSTER in boto3.client("eks", region_name=REGION).list_clusters()["clusters"]
        else None,
        "clusters": boto3.client("eks", region_name=REGION).list_clusters()["clusters"],
        "policy": _inline_policy(),
    }


def _inline_policy() -> list[str]:
    iam = boto3.client("iam", region_name=REGION)
    try:
        return list(iam.list_role_policies(RoleName=f"{CLUSTER}-external-secrets")["PolicyNames"])
    except iam.exceptions.NoSuchEntityException:
        return []


@pytest.fixture(scope="module")
def scenario(repo: Path, tmp_path_factory: pytest.TempPathFactory) -> Scenario:
    work = tmp_path_factory.mktemp("e2e")
    with world(repo, work) as emulated:
        first = _bootstrap(emulated, work / "calls-1.jsonl")
        after_bootstrap = _snapshot_aws()
        api = emulated.apis["prod"].server
        cluster_vars = api.get(api.kind("", "v1", "configmaps"), "flux-system", "cluster-vars") or {}
        second = _bootstrap(emulated, work / "calls-2.jsonl")
        emulate.dns_records(REGION, emulated.zone_id, HOSTS)
        api.requests.clear()
        destroy = _bootstrap(emulated, work / "calls-3.jsonl", "--destroy")
        destroy_requests = list(api.requests)
        after_destroy = _snapshot_aws()
        invocations = emulated.standins.invocations()
    kube_dir = Path(emulated.environ["HOME"]) / ".kube"
    operator_kube = sorted(str(path.relative_to(kube_dir)) for path in kube_dir.rglob("*")) if kube_dir.exists() else []
    return Scenario(
        first,
        second,
        destroy,
        invocations,
        after_bootstrap,
        after_destroy,
        operator_kube,
        cluster_vars,
        destroy_requests,
        Path(emulated.environ["HOME"]),
    )


def _tools(scenario: Scenario, tool: str) -> list[list[str]]:
    return [item["argv"] for item in scenario.standins if item["tool"] == tool]


def test_bootstrap_succeeds(scenario: Scenario) -> None:
    assert scenario.first.returncode == 0, scenario.first.stderr + scenario.first.stdout[-3000:]
    assert "Summary" in scenario.first.stdout
    assert "Traceback" not in scenario.first.stderr


def test_database_is_highly_available_and_protected(scenario: Scenario) -> None:
    (db,) = scenario.after_bootstrap["databases"]
    assert db["DBInstanceIdentifier"] == naming.db_instance(CLUSTER)
    assert db["MultiAZ"] and db["StorageEncrypted"] and db["DeletionProtection"] and db["CopyTagsToSnapshot"]
    assert not db["PubliclyAccessible"]
    assert db["BackupRetentionPeriod"] == 30
    assert db["CACertificateIdentifier"] == "rds-ca-rsa2048-g1"
    assert db["StorageType"] == "gp3" and db["AllocatedStorage"] == 100 and db["MaxAllocatedStorage"] == 500
    assert db["MasterUserSecret"]["SecretArn"]
    zones = {subnet["SubnetAvailabilityZone"]["Name"] for subnet in db["DBSubnetGroup"]["Subnets"]}
    assert zones == {"eu-west-1a", "eu-west-1b", "eu-west-1c"}
    assert db["DBParameterGroups"][0]["DBParameterGroupName"] == naming.db_parameter_group(CLUSTER)


def test_data_layer_is_reachable_only_from_the_cluster_security_group(scenario: Scenario) -> None:
    groups = scenario.after_bootstrap["security_groups"]
    cluster_group = scenario.after_bootstrap["cluster_security_group"]
    for name, port in ((f"{CLUSTER}-database", 3306), (f"{CLUSTER}-caches", 6379)):
        (rule,) = groups[name]["IpPermissions"]
        assert (rule["FromPort"], rule["ToPort"]) == (port, port)
        assert [pair["GroupId"] for pair in rule["UserIdGroupPairs"]] == [cluster_group]
        assert rule["IpRanges"] == [] and groups[name]["IpPermissionsEgress"] == []
    (db,) = scenario.after_bootstrap["databases"]
    assert [item["VpcSecurityGroupId"] for item in db["VpcSecurityGroups"]] == [
        groups[f"{CLUSTER}-database"]["GroupId"]
    ]


def test_caches_fail_over_across_zones_with_tls_and_auth(scenario: Scenario) -> None:
    groups = {group["ReplicationGroupId"]: group for group in scenario.after_bootstrap["caches"]}
    assert set(groups) == {naming.cache_group(CLUSTER, "misp"), naming.cache_group(CLUSTER, "dashboard")}
    requests = [call["params"] for call in scenario.first.calls if call["operation"] == "CreateReplicationGroup"]
    assert len(requests) == 2
    for group in groups.values():
        assert group["MultiAZ"] == "enabled" and group["AutomaticFailover"] == "enabled"
        assert group["TransitEncryptionEnabled"] and group["AtRestEncryptionEnabled"] and group["AuthTokenEnabled"]
        assert group["ClusterEnabled"] is False
    for request in requests:
        assert request["NumCacheClusters"] == 2
        assert len(set(request["PreferredCacheClusterAZs"])) == 2
        assert request["AuthToken"] == "<redacted>"  # the call log never holds a secret
        assert request["Engine"] == "valkey" and request["SnapshotRetentionLimit"] == 7


def test_secrets_have_the_right_names_keys_and_forms(scenario: Scenario) -> None:
    secrets = scenario.after_bootstrap["secrets"]
    assert set(secrets) == {spec.name(CLUSTER) for spec in naming.SECRETS}
    for spec in naming.SECRETS:
        item = secrets[spec.name(CLUSTER)]
        assert tuple(item["value"]) == spec.keys
        assert item["tags"][naming.PART_OF_TAG] == "misp" and item["tags"]["environment"] == "prod"
        assert item["tags"]["owner"] == "secops"
    app = secrets[f"{CLUSTER}/misp/app"]["value"]
    assert app["BASE_URL"] == "https://misp.example.org"
    assert re.fullmatch(r"[0-9a-f-]{36}", app["UUID"]) and re.fullmatch(r"[0-9a-f-]{36}", app["ADMIN_ORG_UUID"])
    assert len(app["ADMIN_PASSWORD"]) >= 12
    database = secrets[f"{CLUSTER}/misp/database"]["value"]
    assert database["username"] == naming.DATABASE_APP_USER and database["database"] == naming.DATABASE_NAME
    assert re.fullmatch(r"[A-Za-z0-9]+", database["password"])
    for name in ("misp/redis", "dashboard/redis"):
        assert re.fullmatch(r"[A-Za-z0-9]{64}", secrets[f"{CLUSTER}/{name}"]["value"]["auth_token"])
    assert secrets[f"{CLUSTER}/rds-ca"]["value"]["bundle"] == FAKE_PEM
    assert secrets[f"{CLUSTER}/dashboard/maxmind"]["value"] == {"account_id": "", "license_key": ""}
    gpg = secrets[f"{CLUSTER}/misp/gpg"]["value"]
    assert gpg["private_key"].startswith("-----BEGIN PGP PRIVATE KEY BLOCK-----")  # pragma: allowlist secret
    assert gpg["public_key"].startswith("-----BEGIN PGP PUBLIC KEY BLOCK-----")


def test_certificates_and_master_secret_access(scenario: Scenario) -> None:
    issued = {cert["DomainName"]: cert["Status"] for cert in scenario.after_bootstrap["certificates"]}
    assert issued == dict.fromkeys(HOSTS, "ISSUED")
    assert sorted(scenario.after_bootstrap["policy"]) == sorted(
        [emulate.EKSCTL_POLICY, naming.RDS_MASTER_SECRET_POLICY]
    )
    (put,) = [call["params"] for call in scenario.first.calls if call["operation"] == "PutRolePolicy"]
    document = json.loads(put["PolicyDocument"])
    (db,) = scenario.after_bootstrap["databases"]
    assert document["Statement"][0]["Resource"] == db["MasterUserSecret"]["SecretArn"]


def test_eksctl_got_the_rendered_config(scenario: Scenario) -> None:
    creates = [
        item for item in scenario.standins if item["tool"] == "eksctl" and item["argv"][:2] == ["create", "cluster"]
    ]
    assert len(creates) == 1
    found = standin.command(creates[0]["argv"], cli_tables.EKSCTL, cli_tables.EKSCTL_ALIASES, standin.fail)
    assert found is not None
    _, parsed = found
    assert parsed.get("config-file") == "-" and parsed.get("write-kubeconfig") is False
    # eksctl (the stand-in too) would have written ~/.kube/config, flux its discovery cache in ~/.kube/cache
    assert scenario.operator_kube == []
    assert "${" not in creates[0]["stdin"]
    assert f"arn:aws:kms:{REGION}:{ACCOUNT}:key/" in creates[0]["stdin"]


def test_cluster_vars_hold_every_field_and_no_secret(scenario: Scenario) -> None:
    configmap = scenario.cluster_vars
    assert (configmap["metadata"]["name"], configmap["metadata"]["namespace"]) == ("cluster-vars", "flux-system")
    assert configmap["metadata"]["labels"] == {"app.kubernetes.io/managed-by": "misp-eks-bootstrap"}
    data = configmap["data"]
    assert set(data) == set(ClusterVars.names())
    ClusterVars(**data)  # every value valid
    (db,) = scenario.after_bootstrap["databases"]
    assert data["db_endpoint"] == db["Endpoint"]["Address"] and db["Endpoint"]["Port"] == naming.DATABASE_PORT
    assert data["db_master_secret_arn"] == db["MasterUserSecret"]["SecretArn"]
    assert data["vpc_cidr"] == "10.20.0.0/16" and data["vpc_id"].startswith("vpc-")
    assert data["aws_account_id"] == ACCOUNT and data["cluster_name"] == CLUSTER and data["environment"] == "prod"
    assert data["waf_acl_arn"] == "none" and data["ingress_allowed_cidrs"] == "0.0.0.0/0"
    assert data["attachments_bucket"] == f"{CLUSTER}-attachments-{ACCOUNT}"
    assert (
        data["misp_certificate_arn"].startswith("arn:aws:acm:")
        and data["dashboard_certificate_arn"] != data["misp_certificate_arn"]
    )
    secret_values = {
        value
        for item in scenario.after_bootstrap["secrets"].values()
        for value in item["value"].values()
        if len(value) > 8
    }
    assert not secret_values & set(data.values())
    for item in scenario.standins:
        for value in secret_values:
            assert value not in json.dumps(item["argv"])


def test_flux_was_bootstrapped_from_github_with_a_deploy_key(scenario: Scenario) -> None:
    (argv,) = [argv for argv in _tools(scenario, "flux") if argv[:1] == ["bootstrap"]]
    found = standin.command(argv, cli_tables.FLUX, cli_tables.FLUX_ALIASES, standin.flux_fail)
    assert found is not None
    key, parsed = found
    assert key == ("bootstrap", "github")
    assert (parsed.get("owner"), parsed.get("repository"), parsed.get("branch")) == ("example-org", "misp-eks", "main")
    assert (parsed.get("path"), parsed.get("version")) == ("clusters/prod", FLUX_DISTRIBUTION)
    assert not parsed.flag("token-auth", False) and not parsed.flag("read-write-key", False)
    (used,) = [item for item in scenario.standins if item["tool"] == "flux" and item["argv"] == argv]
    kubeconfig = Path(used["kubeconfig"])
    assert not kubeconfig.is_relative_to(scenario.home)  # the run's private folder, never the operator's
    assert used["kubeconfig_folder_mode"] == "0o700"  # what flux read, while it ran
    assert not kubeconfig.parent.exists()  # removed at the end of the run
    assert parsed.get("cache-dir") == str(kubeconfig.parent / "cache")  # flux's discovery cache too


def test_rerun_on_a_converged_environment_changes_nothing(scenario: Scenario) -> None:
    assert scenario.second.returncode == 0, scenario.second.stderr
    assert scenario.second.calls, "the re-run recorded no AWS call"
    assert [f"{call['service']}:{call['operation']}" for call in scenario.second.calls if call["mutating"]] == []
    assert not [line for line in scenario.second.stdout.splitlines() if ": created" in line]


def test_destroy_keeps_the_data_and_runs_in_a_safe_order(scenario: Scenario) -> None:
    assert scenario.destroy.returncode == 0, scenario.destroy.stderr + scenario.destroy.stdout[-3000:]
    after = scenario.after_destroy
    assert after["databases"] == [] and after["caches"] == [] and after["clusters"] == []
    assert any(name.startswith(f"{CLUSTER}-misp-final-") for name in after["db_snapshots"])
    assert (
        sum(
            name.startswith((f"{CLUSTER}-misp-final-", f"{CLUSTER}-dashboard-final-"))
            for name in after["cache_snapshots"]
        )
        == 2
    )
    assert f"{CLUSTER}-attachments-{ACCOUNT}" in after["buckets"]
    assert set(after["secrets"]) == {spec.name(CLUSTER) for spec in naming.SECRETS}
    delete = next(call["params"] for call in scenario.destroy.calls if call["operation"] == "DeleteDBInstance")
    assert delete["DeleteAutomatedBackups"] is False and delete["SkipFinalSnapshot"] is False
    operations = [call["operation"] for call in scenario.destroy.calls if call["mutating"]]
    assert (
        "DeleteSecret" not in operations
        and "DeleteBucket" not in operations
        and "ScheduleKeyDeletion" not in operations
    )
    # Flux suspended, then Ingresses, then workloads (the Kubernetes API), then (AWS) data, then the cluster.
    steps = [
        "suspend" if "/kustomizations/" in path else "delete ingress" if "/ingresses/" in path else "scale"
        for method, path, status in scenario.destroy_requests
        if method in ("PATCH", "DELETE") and status < 400
    ]
    assert steps == ["suspend"] * 7 + ["delete ingress"] * 2 + ["scale"] * 5
    assert [argv[:2] for argv in _tools(scenario, "eksctl") if argv[:1] == ["delete"]] == [["delete", "cluster"]]
    assert operations.index("DeleteDBInstance") < operations.index("DeleteRolePolicy")
