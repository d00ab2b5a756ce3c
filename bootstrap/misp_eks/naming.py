"""Names shared by the bootstrap and the manifests: AWS resources, secrets and their keys.

Everything is derived from the cluster name (ClusterConfig ``metadata.name``) so that two
environments in one account never collide and nothing is configured twice.
"""

from __future__ import annotations

from dataclasses import dataclass

DATABASE_NAME = "misp"
DATABASE_APP_USER = "misp"
CACHE_PORT = 6379
ZMQ_PORT = 50000

# Kubernetes namespaces of the applications (infrastructure/configs creates them).
MISP_NAMESPACE = "misp"
DASHBOARD_NAMESPACE = "misp-dashboard"
SECRET_STORE = "aws-secrets-manager"  # noqa: S105  # pragma: allowlist secret (a name, not a secret)
"""The ClusterSecretStore every ExternalSecret reads through."""


# Tags the bootstrap puts on everything it creates, besides settings.tags.
PART_OF_TAG = "app.kubernetes.io/part-of"
PART_OF = "misp"
ENVIRONMENT_TAG = "environment"
CLUSTER_TAG = "misp-eks/cluster"
"""Names the owning cluster, so that lookups by tag never pick up another environment's resources."""

# What eksctl and the AWS Load Balancer Controller leave behind (eksctl pkg/cfn/manager/cluster.go;
# aws-load-balancer-controller docs: every load balancer it creates carries this tag).
LOAD_BALANCER_CLUSTER_TAG = "elbv2.k8s.aws/cluster"
EXTERNAL_SECRETS_SERVICE_ACCOUNT = "external-secrets"  # pragma: allowlist secret
RDS_MASTER_SECRET_POLICY = "rds-master-secret"  # noqa: S105  # pragma: allowlist secret (a policy name)
"""Inline policy the bootstrap adds to the External Secrets role once the database exists."""
DATABASE_MASTER_USER = "mispadmin"
"""RDS master user; its password lives in the RDS-managed secret (ManageMasterUserPassword)."""
DATABASE_PORT = 3306


def eks_kms_alias(cluster: str) -> str:
    return f"alias/{cluster}-eks"


def eksctl_cluster_stack(cluster: str) -> str:
    """The CloudFormation stack ``eksctl create cluster`` creates (MakeClusterStackNameFromName)."""
    return f"eksctl-{cluster}-cluster"


def db_subnet_group(cluster: str) -> str:
    return f"{cluster}-misp"


def db_parameter_group(cluster: str) -> str:
    return f"{cluster}-misp"


def db_security_group(cluster: str) -> str:
    return f"{cluster}-database"


def db_event_subscription(cluster: str) -> str:
    return f"{cluster}-database-events"


def db_monitoring_role(cluster: str) -> str:
    """IAM role RDS enhanced monitoring publishes with (only when settings enable it)."""
    return f"{cluster}-rds-monitoring"


def cache_subnet_group(cluster: str) -> str:
    return f"{cluster}-caches"


def cache_security_group(cluster: str) -> str:
    return f"{cluster}-caches"


def files_security_group(cluster: str) -> str:
    """Security group of the EFS mount targets that hold MISP's shared files."""
    return f"{cluster}-files"


def files_creation_token(cluster: str) -> str:
    """CreationToken of the EFS file system: how every run finds it again (unique per account and region)."""
    return f"{cluster}-misp-files"


def db_instance(cluster: str) -> str:
    return f"{cluster}-misp"


CACHE_APPS = ("misp", "dashboard")
"""The applications with an ElastiCache replication group each."""


def cache_group(cluster: str, app: str) -> str:
    """ElastiCache replication group of ``app``; never cut: misp_eks.provision.names checks its 40 characters."""
    return f"{cluster}-{app}"


def attachments_bucket(cluster: str, account: str) -> str:
    return f"{cluster}-attachments-{account}"


def alarm_topic(cluster: str) -> str:
    return f"{cluster}-alarms"


def secrets_prefix(cluster: str) -> str:
    return cluster


def ses_smtp_user(cluster: str) -> str:
    """IAM user whose access key, turned into an SES SMTP password, MISP sends e-mail with (settings email.enabled)."""
    return f"{cluster}-ses-smtp"


SMTP_PORT = 587
"""SES's SMTP interface with STARTTLS (SES developer guide, "Connecting to an Amazon SES SMTP endpoint")."""
SMTP_SECRET = "misp-smtp"  # noqa: S105  # pragma: allowlist secret (a name)
"""The Kubernetes Secret (and its ExternalSecret, apps/misp/base/backend/external-secrets.yaml) MISP reads
the SMTP credentials from."""


def role_name(cluster: str, service_account: str) -> str:
    """IAM role eksctl creates for a pod identity association (``roleName`` in cluster.yaml)."""
    return f"{cluster}-{service_account}"


@dataclass(frozen=True)
class SecretSpec:
    suffix: str
    """Path below the environment's prefix."""
    keys: tuple[str, ...]
    description: str
    operator_supplied: bool = False
    """Created with empty values; the operator fills them in (never generated, never overwritten)."""
    filled_by: str = ""
    """Created with empty values; this bootstrap phase fills them in once, when settings ask for it."""

    @property
    def starts_empty(self) -> bool:
        return self.operator_supplied or bool(self.filled_by)

    def name(self, prefix: str) -> str:
        return f"{prefix}/{self.suffix}"


MISP_APP = SecretSpec(
    "misp/app",
    (
        "BASE_URL",
        "ADMIN_EMAIL",
        "ADMIN_ORG",
        "ADMIN_ORG_UUID",
        "ADMIN_PASSWORD",
        "MISP_EMAIL",
        "ENCRYPTION_KEY",
        "SALT",
        "UUID",
        "GPG_PASSPHRASE",
        "SUPERVISOR_PASSWORD",
    ),
    "MISP instance identity: identical in every MISP pod (misp-docker README, High availability deployments)",
)
MISP_GPG = SecretSpec("misp/gpg", ("private_key", "public_key"), "MISP's one OpenPGP key (ASCII-armoured)")
MISP_DATABASE = SecretSpec(
    "misp/database", ("username", "password", "database"), "MISP's application database user (not the master)"
)
MISP_REDIS = SecretSpec("misp/redis", ("auth_token",), "AUTH token of MISP's ElastiCache replication group")
RDS_CA = SecretSpec("rds-ca", ("bundle",), "The RDS certificate bundle of this region, for MySQL TLS verification")
DASHBOARD_APP = SecretSpec("dashboard/app", ("session_secret",), "MISP Dashboard's Flask session secret")
DASHBOARD_REDIS = SecretSpec("dashboard/redis", ("auth_token",), "AUTH token of the dashboard's ElastiCache group")
DASHBOARD_MAXMIND = SecretSpec(
    "dashboard/maxmind",
    ("account_id", "license_key"),
    "Optional MaxMind GeoLite2 credentials; empty disables the dashboard's map geolocation",
    operator_supplied=True,
)
MISP_SMTP = SecretSpec(
    "misp/smtp",
    ("host", "port", "username", "password"),
    "MISP's SES SMTP credentials: empty while settings.yaml email.enabled is false",
    filled_by="dns",
)

SECRETS: tuple[SecretSpec, ...] = (
    MISP_APP,
    MISP_GPG,
    MISP_DATABASE,
    MISP_REDIS,
    RDS_CA,
    DASHBOARD_APP,
    DASHBOARD_REDIS,
    DASHBOARD_MAXMIND,
    MISP_SMTP,
)
