"""The cluster's network, as eksctl reports it in its stack outputs: configured once, read everywhere.

The data layer lives in the cluster's VPC and private subnets and admits only the cluster security
group, so nothing here is configured twice: the VPC, the subnets and the security group are the
``VPC``, ``SubnetsPrivate`` and ``ClusterSecurityGroupId`` outputs of ``eksctl-<name>-cluster``
(eksctl pkg/cfn/outputs/api.go).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from misp_eks.provision import cluster
from misp_eks.provision.context import Context
from misp_eks.provision.errors import BootstrapError, MissingPrerequisite

OUTPUT_VPC = "VPC"
OUTPUT_PRIVATE_SUBNETS = "SubnetsPrivate"
OUTPUT_CLUSTER_SECURITY_GROUP = "ClusterSecurityGroupId"
MINIMUM_ZONES = 2
"""RDS subnet groups and Multi-AZ caches need subnets in at least two zones."""


@dataclass(frozen=True)
class Subnet:
    id: str
    zone: str


@dataclass(frozen=True)
class ClusterNetwork:
    vpc_id: str
    vpc_cidr: str
    private_subnets: tuple[Subnet, ...]
    cluster_security_group: str

    @property
    def zones(self) -> tuple[str, ...]:
        return tuple(sorted({subnet.zone for subnet in self.private_subnets}))

    @property
    def subnet_ids(self) -> list[str]:
        return [subnet.id for subnet in self.private_subnets]


def outputs(ctx: Context) -> dict[str, str]:
    found = cluster.stack(ctx.client("cloudformation"), ctx.names.cluster_stack)
    if found is None or found["StackStatus"] not in cluster.STACK_DONE:
        raise MissingPrerequisite(f"stack {ctx.names.cluster_stack}", "cluster")
    return {item["OutputKey"]: item["OutputValue"] for item in found.get("Outputs", [])}


def vpc_of(cfn: Any, stack_name: str) -> str | None:
    """The VPC eksctl's cluster stack made, or None where there is no such stack (yet, or any more)."""
    found = cluster.stack(cfn, stack_name)
    outputs = (found or {}).get("Outputs", [])
    return next((str(item["OutputValue"]) for item in outputs if item["OutputKey"] == OUTPUT_VPC), None)


def read(ctx: Context) -> ClusterNetwork:
    return ctx.fact("network", lambda: _read(ctx))


def _read(ctx: Context) -> ClusterNetwork:
    values = outputs(ctx)
    for key in (OUTPUT_VPC, OUTPUT_PRIVATE_SUBNETS, OUTPUT_CLUSTER_SECURITY_GROUP):
        if not values.get(key):
            raise BootstrapError(f"stack {ctx.names.cluster_stack} has no output {key}: was it made by eksctl?")
    ec2 = ctx.client("ec2")
    subnet_ids = [item for item in values[OUTPUT_PRIVATE_SUBNETS].split(",") if item]
    subnets = ec2.describe_subnets(SubnetIds=subnet_ids)["Subnets"]
    vpc = ec2.describe_vpcs(VpcIds=[values[OUTPUT_VPC]])["Vpcs"][0]
    network = ClusterNetwork(
        vpc_id=values[OUTPUT_VPC],
        vpc_cidr=vpc["CidrBlock"],
        private_subnets=tuple(
            sorted((Subnet(item["SubnetId"], item["AvailabilityZone"]) for item in subnets), key=lambda s: s.zone)
        ),
        cluster_security_group=values[OUTPUT_CLUSTER_SECURITY_GROUP],
    )
    if len(network.zones) < MINIMUM_ZONES:
        raise BootstrapError(
            f"the private subnets of {ctx.names.cluster} span {len(network.zones)} zone(s) "
            f"({', '.join(network.zones)}): a Multi-AZ database and caches need {MINIMUM_ZONES} or more"
        )
    return network
