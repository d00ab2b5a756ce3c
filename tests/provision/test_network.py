"""The cluster's network from eksctl's stack outputs, and the data layer's security groups."""

from __future__ import annotations

from typing import Any

import boto3
import pytest

from misp_eks.provision import network, security_groups
from misp_eks.provision.errors import BootstrapError, MissingPrerequisite
from misp_eks.provision.security_groups import Firewall
from tests.provision import emulate
from tests.provision.conftest import Run, mutating, rendered_config

DATABASE = Firewall("misp-prod-database", "MISP database", 3306)


def test_network_comes_from_the_stack_outputs(run: Run, eks: dict[str, Any]) -> None:
    outputs = emulate.stack_outputs("eu-west-1", "eksctl-misp-prod-cluster")
    net = network.read(run.ctx)
    assert net.vpc_id == outputs["VPC"] and net.vpc_cidr == "10.20.0.0/16"
    assert net.cluster_security_group == outputs["ClusterSecurityGroupId"]
    assert [subnet.zone for subnet in net.private_subnets] == ["eu-west-1a", "eu-west-1b", "eu-west-1c"]
    assert set(net.subnet_ids) == set(outputs["SubnetsPrivate"].split(","))
    assert net.zones == ("eu-west-1a", "eu-west-1b", "eu-west-1c")


def test_network_needs_the_cluster(run: Run) -> None:
    with pytest.raises(MissingPrerequisite, match=r"eksctl-misp-prod-cluster does not exist yet.*--until cluster"):
        network.read(run.ctx)


def test_private_subnets_in_one_zone_are_refused(run: Run, zone_id: str) -> None:
    config = rendered_config(run)
    config["availabilityZones"] = ["eu-west-1a"]
    config["managedNodeGroups"] = config["managedNodeGroups"][:1]
    emulate.create_cluster(config)
    with pytest.raises(BootstrapError, match=r"span 1 zone.*need 2 or more"):
        network.read(run.ctx)


def test_security_group_admits_only_the_cluster_security_group(run: Run, eks: dict[str, Any]) -> None:
    net = network.read(run.ctx)
    group_id = security_groups.ensure(run.ctx, net, DATABASE)
    group = boto3.client("ec2").describe_security_groups(GroupIds=[group_id])["SecurityGroups"][0]
    assert group["VpcId"] == net.vpc_id
    (rule,) = group["IpPermissions"]
    assert (rule["IpProtocol"], rule["FromPort"], rule["ToPort"]) == ("tcp", 3306, 3306)
    assert [pair["GroupId"] for pair in rule["UserIdGroupPairs"]] == [net.cluster_security_group]
    assert rule["IpRanges"] == [] and rule.get("Ipv6Ranges", []) == []
    assert group["IpPermissionsEgress"] == []
    assert {tag["Key"]: tag["Value"] for tag in group["Tags"]}["environment"] == "prod"


def test_security_group_converges_and_then_writes_nothing(run: Run, eks: dict[str, Any]) -> None:
    net = network.read(run.ctx)
    group_id = security_groups.ensure(run.ctx, net, DATABASE)
    ec2 = boto3.client("ec2")
    ec2.authorize_security_group_ingress(
        GroupId=group_id,
        IpPermissions=[{"IpProtocol": "tcp", "FromPort": 3306, "ToPort": 3306, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}],
    )
    security_groups.ensure(run.ctx, net, DATABASE)
    rules = ec2.describe_security_groups(GroupIds=[group_id])["SecurityGroups"][0]["IpPermissions"]
    assert all(rule["IpRanges"] == [] for rule in rules)
    assert run.action("security group", DATABASE.name) == "updated"
    run.calls.calls.clear()
    security_groups.ensure(run.ctx, net, DATABASE)
    assert mutating(run.calls) == []


def test_an_untagged_namesake_in_the_vpc_is_refused_not_adopted(run: Run, eks: dict[str, Any]) -> None:
    net = network.read(run.ctx)
    ec2 = boto3.client("ec2")
    theirs = ec2.create_security_group(GroupName=DATABASE.name, Description="someone's", VpcId=net.vpc_id)["GroupId"]
    rule = {"IpProtocol": "tcp", "FromPort": 5432, "ToPort": 5432, "IpRanges": [{"CidrIp": "10.0.0.0/8"}]}
    ec2.authorize_security_group_ingress(GroupId=theirs, IpPermissions=[rule])
    before = ec2.describe_security_groups(GroupIds=[theirs])["SecurityGroups"][0]
    run.calls.calls.clear()
    with pytest.raises(BootstrapError) as raised:
        security_groups.ensure(run.ctx, net, DATABASE)
    assert raised.value.message.startswith(
        f"security group misp-prod-database in {net.vpc_id} ({theirs}) lacks the tag misp-eks/cluster=misp-prod"
    )
    assert mutating(run.calls) == []
    assert ec2.describe_security_groups(GroupIds=[theirs])["SecurityGroups"][0] == before


def test_delete_takes_the_group_of_the_clusters_vpc_only(run: Run, eks: dict[str, Any]) -> None:
    net = network.read(run.ctx)
    ec2 = boto3.client("ec2")
    other_vpc = ec2.create_vpc(CidrBlock="10.98.0.0/16")["Vpc"]["VpcId"]
    tags = [{"Key": "misp-eks/cluster", "Value": "misp-prod"}]  # a copy of the tag, in a VPC of its own
    copy = ec2.create_security_group(
        GroupName=DATABASE.name,
        Description="a copy",
        VpcId=other_vpc,
        TagSpecifications=[{"ResourceType": "security-group", "Tags": tags}],
    )["GroupId"]
    ours = security_groups.ensure(run.ctx, net, DATABASE)
    security_groups.delete(run.ctx, DATABASE.name)
    assert run.action("security group", DATABASE.name) == "deleted"
    remaining = [group["GroupId"] for group in ec2.describe_security_groups()["SecurityGroups"]]
    assert copy in remaining and ours not in remaining
