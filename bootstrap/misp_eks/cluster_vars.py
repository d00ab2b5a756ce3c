"""The per-cluster variables that Flux substitutes: the ``cluster-vars`` ConfigMap, defined once.

The bootstrap fills a :class:`ClusterVars` from the environment's settings and from what AWS
reports, and writes it into ``flux-system``. ``scripts/validate`` substitutes the example values
below into every tree whose Flux Kustomization reads ``cluster-vars``. Nothing secret belongs
here: the ConfigMap is readable by anything in ``flux-system`` and is printed in plans.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

NAME = "cluster-vars"
NAMESPACE = "flux-system"

# What MISP's pods accept as MISP_EKS_EMAIL (apps/misp/base/files/customize_misp.sh).
EmailDelivery = Literal["disabled", "ses"]


def _var(description: str, example: str) -> Any:
    return Field(description=description, examples=[example], min_length=1)


class ClusterVars(BaseModel):
    """Every key of the ``cluster-vars`` ConfigMap. Values are strings, as Flux requires."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # The cluster (from the eksctl ClusterConfig and the eksctl-<name>-cluster stack).
    environment: str = _var("Environment name: the folder under clusters/", "prod")
    cluster_name: str = _var("EKS cluster name (ClusterConfig metadata.name)", "misp-prod")
    aws_region: str = _var("AWS region (ClusterConfig metadata.region)", "eu-west-1")
    aws_account_id: str = _var("AWS account that holds the environment", "111122223333")
    vpc_id: str = _var("VPC that eksctl created", "vpc-0example0000000000")
    vpc_cidr: str = _var("CIDR of that VPC: load balancers and managed services live in it", "10.20.0.0/16")

    # DNS and TLS (from settings.yaml, Route53 and ACM).
    domain: str = _var("Public hosted zone that external-dns may write to", "example.org")
    hosted_zone_id: str = _var("Route53 id of that hosted zone", "Z0EXAMPLE0000000000")
    misp_hostname: str = _var("MISP's public hostname", "misp.example.org")
    dashboard_hostname: str = _var("MISP Dashboard's public hostname", "dashboard.example.org")
    misp_certificate_arn: str = _var(
        "ACM certificate for misp_hostname",
        "arn:aws:acm:eu-west-1:111122223333:certificate/00000000-0000-0000-0000-000000000001",
    )
    dashboard_certificate_arn: str = _var(
        "ACM certificate for dashboard_hostname",
        "arn:aws:acm:eu-west-1:111122223333:certificate/00000000-0000-0000-0000-000000000002",
    )

    # Ingress exposure (from settings.yaml).
    ingress_scheme: str = _var("ALB scheme: internet-facing or internal", "internet-facing")
    ingress_allowed_cidrs: str = _var("Comma-separated source CIDRs the ALBs accept", "0.0.0.0/0")
    waf_acl_arn: str = _var("Regional WAFv2 web ACL for the ALBs, or 'none'", "none")

    # Secrets Manager (names only; the values never leave AWS except through External Secrets).
    secrets_prefix: str = _var("Path under which every application secret of this environment lives", "misp-prod")
    db_master_secret_arn: str = _var(
        "RDS-managed secret of the database master user (used only by the schema-initialisation Job)",
        "arn:aws:secretsmanager:eu-west-1:111122223333:secret:rds!db-00000000-0000-0000-0000-000000000000-AbCdEf",
    )

    # The data layer (from RDS, ElastiCache, S3 and EFS).
    db_endpoint: str = _var("RDS endpoint hostname", "misp-prod.c0example0000.eu-west-1.rds.amazonaws.com")
    misp_redis_endpoint: str = _var(
        "Primary endpoint of MISP's ElastiCache replication group",
        "master.misp-prod-misp.example.euw1.cache.amazonaws.com",
    )
    dashboard_redis_endpoint: str = _var(
        "Primary endpoint of the dashboard's ElastiCache replication group",
        "master.misp-prod-dashboard.example.euw1.cache.amazonaws.com",
    )
    attachments_bucket: str = _var("S3 bucket for MISP attachments", "misp-prod-attachments-111122223333")
    efs_file_system_id: str = _var(
        "EFS file system of MISP's shared files (org logos, uploaded images): the volume misp-files",
        "fs-0example00000000",
    )
    efs_access_point_id: str = _var(
        "EFS access point of that file system under which MISP's files live: the volume misp-files",
        "fsap-0example000000000",
    )

    # MISP (from settings.yaml).
    misp_email_delivery: EmailDelivery = _var(
        "MISP's e-mail: disabled, or ses through Amazon SES's SMTP interface (settings.yaml email.enabled)", "disabled"
    )

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(cls.model_fields)

    @classmethod
    def example(cls) -> ClusterVars:
        """The documented example values: what scripts/validate substitutes."""
        return cls(**{name: field.examples[0] for name, field in cls.model_fields.items()})  # type: ignore[index]

    def data(self) -> dict[str, str]:
        return self.model_dump()

    def configmap(self) -> dict[str, Any]:
        return {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": NAME,
                "namespace": NAMESPACE,
                "labels": {"app.kubernetes.io/managed-by": "misp-eks-bootstrap"},
            },
            "data": self.data(),
        }
