"""Every name of one environment, derived from the cluster name (and the account) by misp_eks.naming."""

from __future__ import annotations

import re
from dataclasses import dataclass

from misp_eks import naming
from misp_eks.environment import CLUSTER_FILE, CLUSTERS_DIR, Environment
from misp_eks.problems import Problem

UNKNOWN_ACCOUNT = "<account id>"
# The bucket name <cluster>-attachments-<12-digit account> must fit S3's 63 lower-case characters;
# RDS and ElastiCache identifiers derived from the name allow no upper case and no "--" either.
MAX_CLUSTER_NAME = 63 - len(naming.attachments_bucket("", "0" * 12))
_CLUSTER_NAME = re.compile(r"^[a-z](?:[a-z0-9]|-(?!-))*[a-z0-9]$")


def name_problems(environment: Environment) -> list[Problem]:
    """The cluster name must make valid AWS names for everything derived from it."""
    name = environment.cluster_name
    where = f"{CLUSTERS_DIR}/{environment.name}/{CLUSTER_FILE}"
    if len(name) > MAX_CLUSTER_NAME or not _CLUSTER_NAME.match(name):
        return [
            Problem(
                where,
                f"{name!r} must be lower-case letters, digits and single hyphens, at most {MAX_CLUSTER_NAME} "
                "characters (it names the S3 bucket, the database and the caches)",
                obj="ClusterConfig",
                field="metadata.name",
            )
        ]
    return []


@dataclass(frozen=True)
class Names:
    environment: str
    cluster: str
    region: str
    account: str = UNKNOWN_ACCOUNT
    partition: str = "aws"

    @property
    def kms_alias(self) -> str:
        return naming.eks_kms_alias(self.cluster)

    @property
    def cluster_stack(self) -> str:
        return naming.eksctl_cluster_stack(self.cluster)

    @property
    def db_instance(self) -> str:
        return naming.db_instance(self.cluster)

    @property
    def db_subnet_group(self) -> str:
        return naming.db_subnet_group(self.cluster)

    @property
    def db_parameter_group(self) -> str:
        return naming.db_parameter_group(self.cluster)

    @property
    def db_security_group(self) -> str:
        return naming.db_security_group(self.cluster)

    @property
    def db_event_subscription(self) -> str:
        return naming.db_event_subscription(self.cluster)

    @property
    def db_monitoring_role(self) -> str:
        return naming.db_monitoring_role(self.cluster)

    @property
    def cache_subnet_group(self) -> str:
        return naming.cache_subnet_group(self.cluster)

    @property
    def cache_security_group(self) -> str:
        return naming.cache_security_group(self.cluster)

    def cache_group(self, app: str) -> str:
        return naming.cache_group(self.cluster, app)

    @property
    def attachments_bucket(self) -> str:
        return naming.attachments_bucket(self.cluster, self.account)

    @property
    def alarm_topic(self) -> str:
        return naming.alarm_topic(self.cluster)

    @property
    def alarm_topic_arn(self) -> str:
        return f"arn:{self.partition}:sns:{self.region}:{self.account}:{self.alarm_topic}"

    @property
    def secrets_prefix(self) -> str:
        return naming.secrets_prefix(self.cluster)

    def secret(self, spec: naming.SecretSpec) -> str:
        return spec.name(self.secrets_prefix)

    @property
    def external_secrets_role(self) -> str:
        return naming.role_name(self.cluster, naming.EXTERNAL_SECRETS_SERVICE_ACCOUNT)
