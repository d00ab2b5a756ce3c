"""Security groups of the database and the caches: one port, reachable only from the cluster security group."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from misp_eks import naming
from misp_eks.provision import network
from misp_eks.provision import tags as tagging
from misp_eks.provision.context import Context
from misp_eks.provision.errors import BootstrapError, error_code
from misp_eks.provision.network import ClusterNetwork
from misp_eks.provision.waiting import Poll

KIND = "security group"


@dataclass(frozen=True)
class Firewall:
    name: str
    description: str
    port: int


def _owned_by(group: dict[str, Any], cluster: str) -> bool:
    return any(tag["Key"] == naming.CLUSTER_TAG and tag["Value"] == cluster for tag in group.get("Tags", []))


def find(ec2: Any, vpc_id: str, name: str, cluster: str) -> dict[str, Any] | None:
    """The group ``name`` of the cluster's VPC, if this cluster created it (it carries the cluster tag).

    A group of that name in the VPC without the tag is someone else's: adopting it would revoke its
    rules, so it is an error naming it (group names are unique within a VPC: it must be renamed or removed).
    """
    groups = ec2.describe_security_groups(
        Filters=[{"Name": "vpc-id", "Values": [vpc_id]}, {"Name": "group-name", "Values": [name]}]
    )["SecurityGroups"]
    foreign = [group["GroupId"] for group in groups if not _owned_by(group, cluster)]
    if foreign:
        raise BootstrapError(
            f"{KIND} {name} in {vpc_id} ({', '.join(foreign)}) lacks the tag {naming.CLUSTER_TAG}={cluster}: "
            "it was not created for this cluster and is left alone; rename or delete it, or tag it if it is this "
            "cluster's"
        )
    return groups[0] if groups else None


def find_owned(ec2: Any, cluster: str, name: str, vpc_id: str | None = None) -> dict[str, Any] | None:
    """The group ``name`` this cluster created, in the cluster's VPC (``None``: no stack to tell it,
    any VPC). Group names are unique only within a VPC, so another team's group of the same name is told
    apart by the cluster tag the bootstrap puts on its own."""
    filters = [
        {"Name": "group-name", "Values": [name]},
        {"Name": f"tag:{naming.CLUSTER_TAG}", "Values": [cluster]},
    ]
    if vpc_id:
        filters.append({"Name": "vpc-id", "Values": [vpc_id]})
    groups = [
        group
        for page in ec2.get_paginator("describe_security_groups").paginate(Filters=filters)
        for group in page.get("SecurityGroups", [])
    ]
    if len(groups) > 1:
        ids = ", ".join(group["GroupId"] for group in groups)
        raise BootstrapError(f"{KIND} {name}: {len(groups)} groups carry {naming.CLUSTER_TAG}={cluster} ({ids})")
    return groups[0] if groups else None


def desired_ingress(firewall: Firewall, network: ClusterNetwork) -> dict[str, Any]:
    return {
        "IpProtocol": "tcp",
        "FromPort": firewall.port,
        "ToPort": firewall.port,
        "UserIdGroupPairs": [{"GroupId": network.cluster_security_group, "Description": "EKS cluster security group"}],
    }


def _rules(permissions: list[dict[str, Any]]) -> set[tuple[str, int, int, str]]:
    """Every (protocol, from, to, source) a list of IpPermissions allows."""
    found = set()
    for permission in permissions:
        key = (
            str(permission.get("IpProtocol")),
            int(permission.get("FromPort", -1)),
            int(permission.get("ToPort", -1)),
        )
        for pair in permission.get("UserIdGroupPairs", []):
            found.add((*key, pair["GroupId"]))
        for item in permission.get("IpRanges", []):
            found.add((*key, item["CidrIp"]))
        for item in permission.get("Ipv6Ranges", []):
            found.add((*key, item["CidrIpv6"]))
        for item in permission.get("PrefixListIds", []):
            found.add((*key, item["PrefixListId"]))
    return found


def ensure(ctx: Context, network: ClusterNetwork, firewall: Firewall) -> str:
    """The group's id; its rules converge to exactly the one ingress rule and no egress."""
    ec2 = ctx.client("ec2")
    group = find(ec2, network.vpc_id, firewall.name, ctx.names.cluster)
    action = "exists"
    if group is None:
        group_id = ec2.create_security_group(
            GroupName=firewall.name,
            Description=firewall.description,
            VpcId=network.vpc_id,
            TagSpecifications=tagging.ec2_specification("security-group", ctx.tags, firewall.name),
        )["GroupId"]
        # What EC2 gives a new group: no ingress, all egress (not read back: EC2 is eventually consistent).
        all_egress = {"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}
        group = {"GroupId": group_id, "IpPermissions": [], "IpPermissionsEgress": [all_egress]}
        action = "created"
    group_id = group["GroupId"]
    wanted = _rules([desired_ingress(firewall, network)])
    current = _rules(group.get("IpPermissions", []))
    # Only the differences are written: the one wanted rule is never removed, even for a moment.
    extra, missing = current - wanted, wanted - current
    if extra:
        ec2.revoke_security_group_ingress(GroupId=group_id, IpPermissions=[_permission(rule) for rule in sorted(extra)])
    if missing:
        ec2.authorize_security_group_ingress(GroupId=group_id, IpPermissions=[desired_ingress(firewall, network)])
    # A database or cache starts no connection of its own: no egress at all.
    egress = _rules(group.get("IpPermissionsEgress", []))
    if egress:
        ec2.revoke_security_group_egress(GroupId=group_id, IpPermissions=[_permission(rule) for rule in sorted(egress)])
    if (extra or missing or egress) and action == "exists":
        action = "updated"
    ctx.record(KIND, firewall.name, action, f"{group_id}: tcp/{firewall.port} from {network.cluster_security_group}")
    return str(group_id)


def _permission(rule: tuple[str, int, int, str]) -> dict[str, Any]:
    """One (protocol, from, to, source) rule as an IpPermission, for revoke."""
    protocol, start, end, source = rule
    permission: dict[str, Any] = {"IpProtocol": protocol}
    if protocol != "-1":
        permission.update(FromPort=start, ToPort=end)
    if source.startswith("sg-"):
        permission["UserIdGroupPairs"] = [{"GroupId": source}]
    elif source.startswith("pl-"):
        permission["PrefixListIds"] = [{"PrefixListId": source}]
    elif ":" in source:
        permission["Ipv6Ranges"] = [{"CidrIpv6": source}]
    else:
        permission["IpRanges"] = [{"CidrIp": source}]
    return permission


def delete(ctx: Context, name: str) -> None:
    """Delete a group by name; the network interfaces of a deleted database linger a while, so retry."""
    ec2 = ctx.client("ec2")
    vpc_id = network.vpc_of(ctx.client("cloudformation"), ctx.names.cluster_stack)
    group = find_owned(ec2, ctx.names.cluster, name, vpc_id)
    if group is None:
        ctx.record(KIND, name, "skipped", "not found")
        return

    def attempt() -> Poll[None]:
        try:
            ec2.delete_security_group(GroupId=group["GroupId"])
        except ClientError as error:
            if error_code(error) == "DependencyViolation":
                return Poll(False, "still in use by network interfaces")
            if error_code(error) == "InvalidGroup.NotFound":
                return Poll(True, "gone")
            raise
        return Poll(True, "deleted")

    ctx.wait(f"{KIND} {name} to be deleted", attempt, timeout=ctx.timing.teardown)
    ctx.record(KIND, name, "deleted", group["GroupId"])
