"""Every name of one environment, derived from the cluster name (and the account) by misp_eks.naming."""

from __future__ import annotations

from dataclasses import dataclass

from misp_eks import naming

UNKNOWN_ACCOUNT = "<account id>"


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
