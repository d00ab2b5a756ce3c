"""The per-environment settings file, ``clusters/<env>/settings.yaml``.

Everything an operator chooses about an environment that is not part of the EKS cluster itself.
The cluster's name and region are read from the eksctl ClusterConfig beside it, never written here.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Literal

from pydantic import Field, StringConstraints, field_validator, model_validator

from misp_eks.cluster_vars import EmailDelivery
from misp_eks.models import StrictModel

Hostname = Annotated[
    str,
    StringConstraints(
        to_lower=True,
        max_length=253,
        pattern=r"^([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$",
    ),
]

# RDS: DBInstanceIdentifier and the like are lower-case; classes look like db.m7g.large.
DbInstanceClass = Annotated[str, StringConstraints(pattern=r"^db\.[a-z0-9]+\.[a-z0-9]+$")]
CacheNodeType = Annotated[str, StringConstraints(pattern=r"^cache\.[a-z0-9]+\.[a-z0-9]+$")]
MIN_PRODUCTION_BACKUP_DAYS = 7


class Hostnames(StrictModel):
    misp: Hostname
    dashboard: Hostname


class Ingress(StrictModel):
    scheme: Literal["internet-facing", "internal"] = "internet-facing"
    allowed_cidrs: list[str] = Field(default_factory=lambda: ["0.0.0.0/0"], min_length=1)
    """Source CIDRs the load balancers accept (alb.ingress.kubernetes.io/inbound-cidrs)."""
    waf_acl_arn: str | None = None
    """Regional WAFv2 web ACL attached to both load balancers."""

    @field_validator("allowed_cidrs")
    @classmethod
    def _cidrs(cls, values: list[str]) -> list[str]:
        for value in values:
            try:
                ipaddress.ip_network(value, strict=True)
            except ValueError as error:
                raise ValueError(f"{value!r} is not a CIDR: {error}") from None
        return values

    @field_validator("waf_acl_arn")
    @classmethod
    def _waf(cls, value: str | None) -> str | None:
        pattern = r"arn:aws[-a-z]*:wafv2:[a-z0-9-]+:\d{12}:regional/webacl/.+"
        if value is not None and not re.fullmatch(pattern, value):
            raise ValueError("must be the ARN of a regional WAFv2 web ACL")
        return value


class Database(StrictModel):
    engine: Literal["mariadb", "mysql"] = "mariadb"
    engine_version: Annotated[str, StringConstraints(pattern=r"^\d+\.\d+(\.\d+)?$")]
    instance_class: DbInstanceClass
    allocated_storage_gib: int = Field(ge=20, le=65536)
    max_allocated_storage_gib: int = Field(ge=20, le=65536)
    backup_retention_days: int = Field(default=30, ge=1, le=35)
    performance_insights: bool = True
    enhanced_monitoring_seconds: Literal[0, 1, 5, 10, 15, 30, 60] = 0
    """RDS enhanced monitoring interval; 0 turns it off (the bootstrap then creates no monitoring role)."""

    @model_validator(mode="after")
    def _storage(self) -> Database:
        if self.max_allocated_storage_gib < self.allocated_storage_gib:
            raise ValueError("max_allocated_storage_gib must be at least allocated_storage_gib")
        return self


class Cache(StrictModel):
    node_type: CacheNodeType
    nodes: int = Field(default=2, ge=2, le=6)
    """Primary plus replicas; at least two so that one can fail over to another zone."""


class Caches(StrictModel):
    engine: Literal["valkey", "redis"] = "valkey"
    engine_version: Annotated[str, StringConstraints(pattern=r"^\d+\.\d+$")]
    snapshot_retention_days: int = Field(default=7, ge=1, le=35)
    misp: Cache
    dashboard: Cache


Email = Annotated[str, StringConstraints(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")]


class Misp(StrictModel):
    admin_email: Email
    """MISP's first site admin (ADMIN_EMAIL)."""
    org: Annotated[str, StringConstraints(min_length=1, max_length=255)]
    """The host organisation (ADMIN_ORG)."""
    email: Email | None = None
    """MISP's sender address and its GPG key's identity (MISP_EMAIL); defaults to admin_email."""

    @property
    def sender(self) -> str:
        return self.email or self.admin_email


class EmailSettings(StrictModel):
    enabled: bool = False
    """Whether MISP sends e-mail, through Amazon SES (misp_eks.provision.ses). Off, MISP.disable_emailing
    is set, so its e-mail worker runs its jobs as no-ops (apps/misp/README.md, E-mail). While the account's
    SES is in its sandbox, SES delivers only to verified addresses: request production access first."""
    domain: Hostname | None = None
    """The SES sending domain (Easy DKIM records go into the hosted zone): settings domain or a subdomain
    of it; misp.email (the sender) must be an address of it. Defaults to settings domain."""

    @property
    def delivery(self) -> EmailDelivery:
        """The ``cluster-vars`` value ``misp_email_delivery``, which the MISP pods read."""
        return "ses" if self.enabled else "disabled"


class Gitops(StrictModel):
    provider: Literal["github", "git"] = "github"
    """``flux bootstrap github`` (token in GITHUB_TOKEN) or ``flux bootstrap git`` (SSH key)."""
    url: Annotated[str, StringConstraints(pattern=r"^(https://|ssh://)[^\s]+$")]
    """The repository Flux reads: https://github.com/OWNER/REPO for github, ssh://... for git."""
    branch: Annotated[str, StringConstraints(min_length=1)] = "main"
    personal: bool = False
    """github only: the repository belongs to a user, not an organisation (``flux bootstrap github --personal``)."""

    @model_validator(mode="after")
    def _url(self) -> Gitops:
        if self.provider == "github" and not re.fullmatch(r"https://github\.com/[^/\s]+/[^/\s]+?(\.git)?/?", self.url):
            raise ValueError("gitops.url: provider github needs https://github.com/OWNER/REPOSITORY")
        return self

    def github_repository(self) -> tuple[str, str]:
        """OWNER and REPOSITORY of a github URL."""
        owner, name = self.url.removeprefix("https://github.com/").rstrip("/").split("/")[:2]
        return owner, name.removesuffix(".git")


class Settings(StrictModel):
    tier: Literal["production", "staging"]
    domain: Hostname
    """The public Route53 hosted zone; both hostnames must lie inside it."""
    hostnames: Hostnames
    ingress: Ingress = Field(default_factory=Ingress)
    database: Database
    caches: Caches
    misp: Misp
    email: EmailSettings = Field(default_factory=EmailSettings)
    gitops: Gitops
    alarm_email: Email
    tags: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _rules(self) -> Settings:
        for name in ("misp", "dashboard"):
            host = getattr(self.hostnames, name)
            if not host.endswith("." + self.domain):
                raise ValueError(f"hostnames.{name}: {host} is not inside the domain {self.domain}")
        if self.hostnames.misp == self.hostnames.dashboard:
            raise ValueError("hostnames: misp and dashboard must differ")
        self._email_rules()
        if self.tier == "production" and self.database.backup_retention_days < MIN_PRODUCTION_BACKUP_DAYS:
            raise ValueError(
                f"database.backup_retention_days: production keeps at least {MIN_PRODUCTION_BACKUP_DAYS} days"
            )
        return self

    @property
    def email_domain(self) -> str:
        """The SES identity MISP sends from (settings email.domain, else domain)."""
        return self.email.domain or self.domain

    def _email_rules(self) -> None:
        if not self.email.enabled:
            return
        domain = self.email_domain
        if domain != self.domain and not domain.endswith("." + self.domain):
            raise ValueError(f"email.domain: {domain} is not {self.domain} nor inside it (its hosted zone)")
        if self.misp.sender.rpartition("@")[2].lower() != domain:
            raise ValueError(f"misp.email: the sender {self.misp.sender} must be an address of {domain} (email.domain)")
