"""The KMS key and the EKS cluster (eksctl runs in-process: standin.py's logic on the in-process moto)."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest
import yaml

from misp_eks.provision import cluster, kms
from misp_eks.provision.errors import BootstrapError
from tests.provision import emulate, standin
from tests.provision.conftest import REGION, FakeTools, Run, mutating, rendered_config


def test_kms_key_is_created_with_alias_rotation_and_tags(run: Run) -> None:
    key = kms.ensure(run.ctx)
    client = boto3.client("kms")
    assert client.describe_key(KeyId="alias/misp-prod-eks")["KeyMetadata"]["Arn"] == key.arn
    assert ":key/" in key.arn
    assert client.get_key_rotation_status(KeyId=key.key_id)["KeyRotationEnabled"]
    tags = {tag["TagKey"]: tag["TagValue"] for tag in client.list_resource_tags(KeyId=key.key_id)["Tags"]}
    assert tags["app.kubernetes.io/part-of"] == "misp" and tags["environment"] == "prod" and tags["owner"] == "secops"


def test_kms_key_is_found_again_without_writing(run: Run) -> None:
    first = kms.ensure(run.ctx)
    run.calls.calls.clear()
    assert kms.ensure(run.ctx) == first
    assert mutating(run.calls) == []


def test_kms_key_pending_deletion_is_a_clear_error(run: Run) -> None:
    key = kms.ensure(run.ctx)
    boto3.client("kms").schedule_key_deletion(KeyId=key.key_id, PendingWindowInDays=7)
    with pytest.raises(BootstrapError, match=r"scheduled for deletion.*cancel-key-deletion"):
        kms.ensure(run.ctx)


def test_cluster_is_created_by_eksctl_from_the_rendered_config(run: Run, tools: FakeTools, zone_id: str) -> None:
    cluster.ensure(run.ctx)
    (create,) = [(args, stdin) for name, args, stdin in tools.runs if args[:2] == ["create", "cluster"]]
    assert create[0][2:4] == ["-f", "-"]  # the config comes on stdin, as the stand-in (eksctl) reads it
    config = yaml.safe_load(create[1])
    assert "${" not in create[1]
    assert config["secretsEncryption"]["keyARN"] == kms.find(boto3.client("kms"), "alias/misp-prod-eks").arn
    external_dns = next(
        item for item in config["iam"]["podIdentityAssociations"] if item["serviceAccountName"] == "external-dns"
    )
    assert external_dns["permissionPolicy"]["Statement"][0]["Resource"] == f"arn:aws:route53:::hostedzone/{zone_id}"
    assert run.action("EKS cluster", "misp-prod") == "created"
    assert boto3.client("eks").describe_cluster(name="misp-prod")["cluster"]["status"] == "ACTIVE"


def test_eksctl_leaves_the_operators_kubeconfig_alone(
    run: Run, tools: FakeTools, zone_id: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The stand-in, like eksctl, writes $HOME/.kube/config and switches its context unless told not to.
    monkeypatch.delenv("KUBECONFIG", raising=False)
    home = tmp_path / "operator"
    config = home / ".kube" / "config"
    config.parent.mkdir(parents=True)
    config.write_text("apiVersion: v1\nkind: Config\ncurrent-context: their-cluster\n")
    tools.environ["HOME"] = str(home)
    cluster.ensure(run.ctx)
    assert run.action("EKS cluster", "misp-prod") == "created"
    assert config.read_text() == "apiVersion: v1\nkind: Config\ncurrent-context: their-cluster\n"
    assert [path.name for path in config.parent.iterdir()] == ["config"]


def test_existing_cluster_is_not_created_again(run: Run, tools: FakeTools, zone_id: str) -> None:
    cluster.ensure(run.ctx)
    tools.runs.clear()
    run.calls.calls.clear()
    cluster.ensure(run.ctx)
    assert [args[:2] for _, args, _ in tools.runs if args[0] == "create"] == []
    assert mutating(run.calls) == []
    assert run.action("EKS cluster", "misp-prod") == "exists"


def test_interrupted_eksctl_is_completed_with_only_the_missing_parts(run: Run, tools: FakeTools, zone_id: str) -> None:
    key = kms.ensure(run.ctx)
    emulate.create_cluster(rendered_config(run, key.arn), with_parts=False)  # control plane only
    tools.runs.clear()
    cluster.ensure(run.ctx)
    creates = {args[1]: stdin for _, args, stdin in tools.runs if args[0] == "create"}
    assert set(creates) == {"addon", "nodegroup", "podidentityassociation"}
    associations = yaml.safe_load(creates["podidentityassociation"])["iam"]["podIdentityAssociations"]
    assert len(associations) == 5
    assert len(boto3.client("eks").list_nodegroups(clusterName="misp-prod")["nodegroups"]) == 3
    tools.runs.clear()
    cluster.ensure(run.ctx)
    assert [args for _, args, _ in tools.runs if args[0] == "create"] == []


def test_an_interruption_after_some_associations_creates_only_the_others(
    run: Run, tools: FakeTools, zone_id: str
) -> None:
    key = kms.ensure(run.ctx)
    config = rendered_config(run, key.arn)
    emulate.create_cluster(config, with_parts=False)
    emulate.create_nodegroups(config)
    first_two = config["iam"]["podIdentityAssociations"][:2]
    parts = {
        "addons": config["addons"],
        "associations": [standin._with_id(item) for item in emulate.create_associations(config, first_two)],
        "roles": [item["roleName"] for item in first_two],
    }
    Path(tools.environ["STANDIN_STATE"]).write_text(json.dumps({"eksctl": {f"{REGION}/misp-prod": parts}}))
    tools.runs.clear()
    cluster.ensure(run.ctx)  # the stand-in, like EKS, refuses an association that exists
    creates = {args[1]: stdin for _, args, stdin in tools.runs if args[0] == "create"}
    assert set(creates) == {"podidentityassociation"}
    sent = yaml.safe_load(creates["podidentityassociation"])["iam"]["podIdentityAssociations"]
    wanted = config["iam"]["podIdentityAssociations"][2:]
    assert [item["serviceAccountName"] for item in sent] == [item["serviceAccountName"] for item in wanted]


def test_failed_cluster_stack_is_a_clear_error(
    run: Run, tools: FakeTools, zone_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cluster, "stack", lambda _cfn, _name: {"StackStatus": "ROLLBACK_COMPLETE"})
    with pytest.raises(
        BootstrapError, match=r"ROLLBACK_COMPLETE.*eksctl delete cluster --name misp-prod --region eu-west-1"
    ):
        cluster.ensure(run.ctx)
    assert not [args for _, args, _ in tools.runs if args[0] == "create"]


def test_cluster_without_an_eksctl_stack_is_refused(run: Run, tools: FakeTools, zone_id: str) -> None:
    iam = boto3.client("iam")
    role = iam.create_role(RoleName="other", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    boto3.client("eks").create_cluster(name="misp-prod", roleArn=role, resourcesVpcConfig={})
    with pytest.raises(BootstrapError, match="not made by eksctl"):
        cluster.ensure(run.ctx)
