"""The tags on everything the bootstrap creates: settings.tags plus ownership and environment."""

from __future__ import annotations

from collections.abc import Mapping

from misp_eks import naming
from misp_eks.provision.names import Names


def common_tags(names: Names, extra: Mapping[str, str]) -> dict[str, str]:
    """settings.tags, then the project's own keys (which win: lookups rely on them)."""
    return {
        **dict(extra),
        naming.PART_OF_TAG: naming.PART_OF,
        naming.ENVIRONMENT_TAG: names.environment,
        naming.CLUSTER_TAG: names.cluster,
    }


def key_value(tags: Mapping[str, str]) -> list[dict[str, str]]:
    """[{"Key": ..., "Value": ...}]: RDS, ElastiCache, EC2, S3, SNS, CloudWatch, ACM, Secrets Manager, IAM."""
    return [{"Key": key, "Value": value} for key, value in tags.items()]


def kms(tags: Mapping[str, str]) -> list[dict[str, str]]:
    return [{"TagKey": key, "TagValue": value} for key, value in tags.items()]


def ec2_specification(resource: str, tags: Mapping[str, str], name: str) -> list[dict[str, object]]:
    return [{"ResourceType": resource, "Tags": key_value({**tags, "Name": name})}]


def as_dict(items: list[dict[str, str]] | None, key: str = "Key", value: str = "Value") -> dict[str, str]:
    return {item[key]: item[value] for item in items or []}
