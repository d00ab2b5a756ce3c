"""What eksctl and the in-cluster controllers leave in AWS, made in an emulator (moto).

Shared by the unit tests (in-process moto) and the recording stand-ins of the end-to-end test
(``standin.py``, which talks to a moto server through AWS_ENDPOINT_URL).
"""

from __future__ import annotations

import ipaddress
import json
from typing import Any

import boto3

from misp_eks import naming

NODE_ROLE = "eksctl-{cluster}-nodegroup-role"
CLUSTER_ROLE = "eksctl-{cluster}-cluster-role"
EKSCTL_POLICY = "eksctl-permissions"
TRUST = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "pods.eks.amazonaws.com"},
                "Action": ["sts:AssumeRole", "sts:TagSession"],
            }
        ],
    }
)


def stack_template(cidr: str, zones: list[str]) -> dict[str, Any]:
    """The parts of eksctl's cluster stack the bootstrap reads: VPC, subnets, cluster security group, outputs."""
    blocks = list(ipaddress.ip_network(cidr).subnets(new_prefix=19))
    resources: dict[str, Any] = {
        "VPC": {"Type": "AWS::EC2::VPC", "Properties": {"CidrBlock": cidr}},
        "ClusterSharedNodeSecurityGroup": {
            "Type": "AWS::EC2::SecurityGroup",
            "Properties": {"GroupDescription": "EKS created security group applied to ENI", "VpcId": {"Ref": "VPC"}},
        },
    }
    private, public = [], []
    for index, zone in enumerate(zones):
        letter = zone[-1].upper()
        for kind, block, bucket in (
            ("Private", blocks[index], private),
            ("Public", blocks[index + len(zones)], public),
        ):
            name = f"Subnet{kind}{letter}"
            resources[name] = {
                "Type": "AWS::EC2::Subnet",
                "Properties": {"VpcId": {"Ref": "VPC"}, "CidrBlock": str(block), "AvailabilityZone": zone},
            }
            bucket.append({"Ref": name})
    return {
        "Resources": resources,
        "Outputs": {
            "VPC": {"Value": {"Ref": "VPC"}},
            "SubnetsPrivate": {"Value": {"Fn::Join": [",", private]}},
            "SubnetsPublic": {"Value": {"Fn::Join": [",", public]}},
            "ClusterSecurityGroupId": {"Value": {"Fn::GetAtt": ["ClusterSharedNodeSecurityGroup", "GroupId"]}},
        },
    }


def stack_outputs(region: str, stack: str) -> dict[str, str]:
    found = boto3.client("cloudformation", region_name=region).describe_stacks(StackName=stack)["Stacks"][0]
    return {item["OutputKey"]: item["OutputValue"] for item in found.get("Outputs", [])}


def create_cluster(config: dict[str, Any], *, with_parts: bool = True) -> None:
    """``eksctl create cluster``: the stack, the EKS cluster, and (unless interrupted) its node groups and roles."""
    name, region = config["metadata"]["name"], config["metadata"]["region"]
    cfn = boto3.client("cloudformation", region_name=region)
    cfn.create_stack(
        StackName=naming.eksctl_cluster_stack(name),
        TemplateBody=json.dumps(
            stack_template(config.get("vpc", {}).get("cidr", "192.168.0.0/16"), config["availabilityZones"])
        ),
        EnableTerminationProtection=True,
        Tags=[{"Key": key, "Value": value} for key, value in config["metadata"].get("tags", {}).items()],
    )
    outputs = stack_outputs(region, naming.eksctl_cluster_stack(name))
    iam = boto3.client("iam", region_name=region)
    role = iam.create_role(RoleName=CLUSTER_ROLE.format(cluster=name), AssumeRolePolicyDocument=TRUST)["Role"]["Arn"]
    eks = boto3.client("eks", region_name=region)
    key = (config.get("secretsEncryption") or {}).get("keyARN")
    eks.create_cluster(
        name=name,
        version=config["metadata"]["version"],
        roleArn=role,
        resourcesVpcConfig={
            "subnetIds": outputs["SubnetsPrivate"].split(","),
            "securityGroupIds": [outputs["ClusterSecurityGroupId"]],
        },
        encryptionConfig=[{"resources": ["secrets"], "provider": {"keyArn": key}}] if key else [],
    )
    if with_parts:
        create_nodegroups(config)
        create_associations(config, config.get("iam", {}).get("podIdentityAssociations", []))


def create_nodegroups(config: dict[str, Any]) -> list[str]:
    name, region = config["metadata"]["name"], config["metadata"]["region"]
    eks = boto3.client("eks", region_name=region)
    iam = boto3.client("iam", region_name=region)
    node_role_name = NODE_ROLE.format(cluster=name)
    try:
        node_role = iam.get_role(RoleName=node_role_name)["Role"]["Arn"]
    except iam.exceptions.NoSuchEntityException:
        node_role = iam.create_role(RoleName=node_role_name, AssumeRolePolicyDocument=TRUST)["Role"]["Arn"]
    existing = set(eks.list_nodegroups(clusterName=name)["nodegroups"])
    private = stack_outputs(region, naming.eksctl_cluster_stack(name))["SubnetsPrivate"].split(",")
    zones = {
        subnet["AvailabilityZone"]: subnet["SubnetId"]
        for subnet in boto3.client("ec2", region_name=region).describe_subnets(SubnetIds=private)["Subnets"]
    }
    created = []
    for group in config.get("managedNodeGroups", []):
        if group["name"] in existing:
            continue
        eks.create_nodegroup(
            clusterName=name,
            nodegroupName=group["name"],
            subnets=[zones[zone] for zone in group["availabilityZones"]],
            nodeRole=node_role,
            scalingConfig={
                "minSize": group["minSize"],
                "maxSize": group["maxSize"],
                "desiredSize": group["desiredCapacity"],
            },
        )
        created.append(group["name"])
    return created


def create_associations(config: dict[str, Any], associations: list[dict[str, Any]]) -> list[dict[str, str]]:
    """The roles eksctl makes for pod identity associations (role name from cluster.yaml, one inline policy)."""
    region = config["metadata"]["region"]
    iam = boto3.client("iam", region_name=region)
    made = []
    for item in associations:
        role = iam.create_role(RoleName=item["roleName"], AssumeRolePolicyDocument=TRUST)["Role"]["Arn"]
        if item.get("permissionPolicy"):
            iam.put_role_policy(
                RoleName=item["roleName"], PolicyName=EKSCTL_POLICY, PolicyDocument=json.dumps(item["permissionPolicy"])
            )
        made.append({"Namespace": item["namespace"], "ServiceAccountName": item["serviceAccountName"], "RoleARN": role})
    return made


def data_layer_left(region: str, vpc_id: str, cluster: str) -> list[str]:
    """What would block the deletion of the VPC: databases, caches and extra security groups in it.

    moto's replication groups name no subnet group, so a cache counts as in the VPC by its cluster tag."""
    left = [
        f"RDS {db['DBInstanceIdentifier']}"
        for db in boto3.client("rds", region_name=region).describe_db_instances()["DBInstances"]
        if (db.get("DBSubnetGroup") or {}).get("VpcId") == vpc_id
    ]
    elasticache = boto3.client("elasticache", region_name=region)
    for group in elasticache.describe_replication_groups()["ReplicationGroups"]:
        tags = elasticache.list_tags_for_resource(ResourceName=group["ARN"])["TagList"]
        if {"Key": naming.CLUSTER_TAG, "Value": cluster} in tags:
            left.append(f"ElastiCache {group['ReplicationGroupId']}")
    groups = boto3.client("ec2", region_name=region).describe_security_groups(
        Filters=[{"Name": "vpc-id", "Values": [vpc_id]}]
    )["SecurityGroups"]
    left += [f"security group {group['GroupName']}" for group in groups if group["GroupName"].startswith(("misp-",))]
    return left


def delete_cluster(name: str, region: str, roles: list[str]) -> None:
    """``eksctl delete cluster``: fails, as CloudFormation would, while the data layer still sits in the VPC."""
    stack = naming.eksctl_cluster_stack(name)
    vpc = stack_outputs(region, stack)["VPC"]
    left = data_layer_left(region, vpc, name)
    if left:
        raise SystemExit(f"DependencyViolation: the VPC {vpc} still holds {', '.join(left)}")
    iam = boto3.client("iam", region_name=region)
    for role in roles:
        policies = iam.list_role_policies(RoleName=role)["PolicyNames"]
        extra = [policy for policy in policies if policy != EKSCTL_POLICY]
        if extra:
            raise SystemExit(f"DeleteConflict: role {role} still has inline policies {extra}")
        for policy in policies:
            iam.delete_role_policy(RoleName=role, PolicyName=policy)
        iam.delete_role(RoleName=role)
    eks = boto3.client("eks", region_name=region)
    for group in eks.list_nodegroups(clusterName=name)["nodegroups"]:
        eks.delete_nodegroup(clusterName=name, nodegroupName=group)
    eks.delete_cluster(name=name)
    cfn = boto3.client("cloudformation", region_name=region)
    # eksctl turns termination protection off first (moto neither implements nor enforces it).
    cfn.delete_stack(StackName=stack)


def load_balancer(region: str, cluster: str) -> str:
    """An ALB as the AWS Load Balancer Controller makes it (tagged with the cluster), in a VPC of its own."""
    ec2 = boto3.client("ec2", region_name=region)
    vpc = ec2.create_vpc(CidrBlock="10.99.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.99.{index}.0/24", AvailabilityZone=f"{region}{letter}")["Subnet"][
            "SubnetId"
        ]
        for index, letter in enumerate("ab")
    ]
    return str(
        boto3.client("elbv2", region_name=region).create_load_balancer(
            Name=f"k8s-misp-{cluster}"[:32],
            Subnets=subnets,
            Scheme="internet-facing",
            Type="application",
            Tags=[{"Key": naming.LOAD_BALANCER_CLUSTER_TAG, "Value": cluster}],
        )["LoadBalancers"][0]["LoadBalancerArn"]
    )


def dns_records(
    region: str, zone_id: str, hostnames: list[str], *, owner: str = "misp-prod", action: str = "UPSERT"
) -> None:
    """The A records external-dns writes for the hostnames, and its TXT registry's ownership records
    (external-dns registry/txt: ``a-<host>``, labels ``heritage=external-dns,external-dns/owner=…``)."""
    changes = []
    for host in hostnames:
        labels = f'"heritage=external-dns,external-dns/owner={owner},external-dns/resource=ingress/misp/{host}"'
        for name, kind, value in ((host, "A", "203.0.113.10"), (f"a-{host}", "TXT", labels)):
            changes.append(
                {
                    "Action": action,
                    "ResourceRecordSet": {
                        "Name": f"{name}.",
                        "Type": kind,
                        "TTL": 60,
                        "ResourceRecords": [{"Value": value}],
                    },
                }
            )
    boto3.client("route53", region_name=region).change_resource_record_sets(
        HostedZoneId=zone_id, ChangeBatch={"Changes": changes}
    )


def remove_controller_leftovers(
    region: str, cluster: str, zone_id: str | None, hostnames: list[str], dns_policy: str
) -> None:
    """What the AWS Load Balancer Controller and external-dns do when the Ingresses go: the load balancers
    go; the records go only with external-dns policy sync (upsert-only never deletes)."""
    elbv2 = boto3.client("elbv2", region_name=region)
    for balancer in elbv2.describe_load_balancers()["LoadBalancers"]:
        tags = elbv2.describe_tags(ResourceArns=[balancer["LoadBalancerArn"]])["TagDescriptions"][0]["Tags"]
        if {"Key": naming.LOAD_BALANCER_CLUSTER_TAG, "Value": cluster} in tags:
            elbv2.delete_load_balancer(LoadBalancerArn=balancer["LoadBalancerArn"])
    if zone_id and dns_policy == "sync":
        route53 = boto3.client("route53", region_name=region)
        wanted = {f"{host}." for host in hostnames} | {f"a-{host}." for host in hostnames}
        records = route53.list_resource_record_sets(HostedZoneId=zone_id)["ResourceRecordSets"]
        changes = [
            {"Action": "DELETE", "ResourceRecordSet": record}
            for record in records
            if record["Name"] in wanted and record["Type"] in ("A", "TXT")
        ]
        if changes:
            route53.change_resource_record_sets(HostedZoneId=zone_id, ChangeBatch={"Changes": changes})
