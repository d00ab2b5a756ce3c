"""Every name of one environment, derived from the cluster name (and the account) by misp_eks.naming."""

from __future__ import annotations

import re
from dataclasses import dataclass

from misp_eks import naming
from misp_eks.eksctl import ClusterConfig
from misp_eks.environment import CLUSTER_FILE, CLUSTERS_DIR, Environment, cluster_template_examples, parse_model
from misp_eks.problems import Problem
from misp_eks.yamlio import parse_documents

UNKNOWN_ACCOUNT = "<account id>"
_ACCOUNT_EXAMPLE = "0" * 12  # every AWS account ID has 12 digits
# RDS and ElastiCache identifiers derived from the name allow no upper case and no "--".
_CLUSTER_NAME = re.compile(r"^[a-z](?:[a-z0-9]|-(?!-))*[a-z0-9]$")


@dataclass(frozen=True)
class NameRule:
    """How long a kind of AWS name may be, and the request member that carries it (where AWS documents it)."""

    what: str
    limit: int
    service: str
    operation: str
    member: str


# Each limit is the member's own in botocore's service models (service-2.json: its "max", or its
# documentation's "Constraints"); S3's bucket names are limited by S3's bucket naming rules.
IAM_ROLE = NameRule("IAM role name", 64, "iam", "CreateRole", "RoleName")
IAM_USER = NameRule("IAM user name", 64, "iam", "CreateUser", "UserName")
RDS_INSTANCE = NameRule("RDS DB instance identifier", 63, "rds", "CreateDBInstance", "DBInstanceIdentifier")
RDS_PARAMETER_GROUP = NameRule(
    "RDS DB parameter group name", 255, "rds", "CreateDBParameterGroup", "DBParameterGroupName"
)
RDS_SUBNET_GROUP = NameRule("RDS DB subnet group name", 255, "rds", "CreateDBSubnetGroup", "DBSubnetGroupName")
RDS_EVENT_SUBSCRIPTION = NameRule(
    "RDS event subscription name", 254, "rds", "CreateEventSubscription", "SubscriptionName"
)
CACHE_GROUP = NameRule(
    "ElastiCache replication group ID", 40, "elasticache", "CreateReplicationGroup", "ReplicationGroupId"
)
CACHE_SUBNET_GROUP = NameRule(
    "ElastiCache cache subnet group name", 255, "elasticache", "CreateCacheSubnetGroup", "CacheSubnetGroupName"
)
BUCKET = NameRule("S3 bucket name", 63, "s3", "CreateBucket", "Bucket")
SECURITY_GROUP = NameRule("EC2 security group name", 255, "ec2", "CreateSecurityGroup", "GroupName")
SECRET = NameRule("Secrets Manager secret name", 512, "secretsmanager", "CreateSecret", "Name")
KMS_ALIAS = NameRule("KMS alias", 256, "kms", "CreateAlias", "AliasName")
TOPIC = NameRule("SNS topic name", 256, "sns", "CreateTopic", "Name")
STACK = NameRule("CloudFormation stack name", 128, "cloudformation", "CreateStack", "StackName")
EKS_CLUSTER = NameRule("EKS cluster name", 100, "eks", "CreateCluster", "name")
EFS_TOKEN = NameRule("EFS creation token", 64, "efs", "CreateFileSystem", "CreationToken")
RULES = (
    IAM_ROLE,
    IAM_USER,
    RDS_INSTANCE,
    RDS_PARAMETER_GROUP,
    RDS_SUBNET_GROUP,
    RDS_EVENT_SUBSCRIPTION,
    CACHE_GROUP,
    CACHE_SUBNET_GROUP,
    BUCKET,
    SECURITY_GROUP,
    SECRET,
    KMS_ALIAS,
    TOPIC,
    STACK,
    EKS_CLUSTER,
    EFS_TOKEN,
)


@dataclass(frozen=True)
class DerivedName:
    rule: NameRule
    name: str
    cluster: str

    @property
    def too_long(self) -> bool:
        return len(self.name) > self.rule.limit

    @property
    def longest_cluster_name(self) -> int:
        """The longest cluster name that keeps this name within its limit."""
        return self.rule.limit - (len(self.name) - len(self.cluster))


def _role_names(environment: Environment) -> list[str]:
    """The IAM role names cluster.yaml gives eksctl (roleName of every pod identity association),
    rendered for this cluster name."""
    where = f"{CLUSTERS_DIR}/{environment.name}/{CLUSTER_FILE}"
    rendered = environment.render_cluster_config(
        cluster_template_examples(environment.cluster_name, environment.region)
    )
    config = parse_model(ClusterConfig, parse_documents(rendered, where)[0], where, "ClusterConfig")
    roles = [item.roleName for item in config.iam.podIdentityAssociations]
    roles += [item.roleName for addon in config.addons for item in addon.podIdentityAssociations or []]
    return [role for role in roles if role]


def derived_names(environment: Environment) -> list[DerivedName]:
    """Every AWS name the environment derives from its cluster name, with the rule it must fit."""
    names = Names(environment.name, environment.cluster_name, environment.region, account=_ACCOUNT_EXAMPLE)
    pairs = [
        (RDS_INSTANCE, names.db_instance),
        (RDS_PARAMETER_GROUP, names.db_parameter_group),
        (RDS_SUBNET_GROUP, names.db_subnet_group),
        (RDS_EVENT_SUBSCRIPTION, names.db_event_subscription),
        (IAM_ROLE, names.db_monitoring_role),
        (IAM_USER, names.ses_smtp_user),
        (CACHE_SUBNET_GROUP, names.cache_subnet_group),
        *((CACHE_GROUP, names.cache_group(app)) for app in naming.CACHE_APPS),
        (BUCKET, names.attachments_bucket),
        (SECURITY_GROUP, names.db_security_group),
        (SECURITY_GROUP, names.cache_security_group),
        (SECURITY_GROUP, names.files_security_group),
        (EFS_TOKEN, names.files_creation_token),
        *((SECRET, names.secret(spec)) for spec in naming.SECRETS),
        (KMS_ALIAS, names.kms_alias),
        (TOPIC, names.alarm_topic),
        (STACK, names.cluster_stack),
        (EKS_CLUSTER, names.cluster),
        *((IAM_ROLE, role) for role in _role_names(environment)),
    ]
    return [DerivedName(rule, name, environment.cluster_name) for rule, name in pairs]


def name_problems(environment: Environment) -> list[Problem]:
    """The cluster name must make valid AWS names, each within its service's limit, for everything derived
    from it: one problem naming the field to change (bootstrap, plan and scripts/validate all use this)."""
    name = environment.cluster_name
    where = f"{CLUSTERS_DIR}/{environment.name}/{CLUSTER_FILE}"
    if not _CLUSTER_NAME.match(name):
        return [
            Problem(
                where,
                f"{name!r} must be lower-case letters, digits and single hyphens (it names the S3 bucket, the "
                "database and the caches)",
                obj="ClusterConfig",
                field="metadata.name",
            )
        ]
    over = [item for item in derived_names(environment) if item.too_long]
    if not over:
        return []
    longest = min(item.longest_cluster_name for item in over)
    listed = "; ".join(f"{item.rule.what} {item.name} ({len(item.name)} > {item.rule.limit})" for item in over)
    return [
        Problem(
            where,
            f"{name!r} is too long for the AWS names made from it: {listed}; shorten it to {longest} characters "
            "or fewer",
            obj="ClusterConfig",
            field="metadata.name",
        )
    ]


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

    @property
    def files_security_group(self) -> str:
        return naming.files_security_group(self.cluster)

    @property
    def files_creation_token(self) -> str:
        return naming.files_creation_token(self.cluster)

    @property
    def ses_smtp_user(self) -> str:
        return naming.ses_smtp_user(self.cluster)

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
