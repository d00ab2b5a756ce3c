"""A crowded account: another team's resources beside this environment's, in the same account and region.

Names are look-alikes of the bootstrap's own (same prefixes, same parameter group family, the same
security group names in another VPC, the same hostnames in the same zone), so that a lookup that
relies on an ignored filter, a prefix, "the first item of a list" or a name unique only per VPC
picks one of them up; the kinds destroy deletes by tag or name are there too (an EFS file system
with a look-alike Name, a load balancer tagged with the other cluster, roles named like the
bootstrap's). :func:`snapshot` describes them all in full (definitions, subscriptions, tags, attached
and inline policies), so that a test can prove that a run left them exactly as they were.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import boto3

from misp_eks import naming
from tests.provision import emulate

FOREIGN_CLUSTER = "misp-prod-old"
"""Another environment whose names start with this one's (misp-prod)."""
FOREIGN_CIDR = "10.30.0.0/16"
FOREIGN_TAGS = {naming.PART_OF_TAG: naming.PART_OF, naming.CLUSTER_TAG: FOREIGN_CLUSTER, "owner": "another-team"}
PARAMETER_GROUPS = ("misp-prod-old-misp", "other-team-mariadb", "misp-prod-misp-old")
"""All of the bootstrap's family (mariadb11.4), none of its name (misp-prod-misp)."""
SECURITY_GROUP_NAMES = ("misp-prod-database", "misp-prod-caches")
"""The bootstrap's own names, in the other VPC: EC2 group names are unique per VPC only."""
SECRETS = ("misp-prod-old/misp/app", "other/misp/app", "misp-prod-old/misp/redis")
KMS_ALIASES = ("alias/misp-prod-eks-old", "alias/misp-prod-old-eks")
TOPICS = ("misp-prod-alarms-old", "misp-prod-old-alarms")
ALARMS = ("misp-prod-misp-old-cpu", "misp-prod-misp-cpu-high-other-team")
HOSTNAMES = ("old.misp.example.org", "misp-old.example.org")
FAMILY = "mariadb11.4"
FOREIGN_DATABASE = "misp-prod-misp-old"
"""Starts with the bootstrap's own identifier (misp-prod-misp)."""
FOREIGN_CACHE = "misp-prod-old-misp"
NOT_SECRET = json.dumps({"note": "another team's secret"})
EVENT_SUBSCRIPTION = f"{FOREIGN_CLUSTER}-database-events"
SUBSCRIBER = "another-team@example.org"
FILES_TOKEN = naming.files_creation_token(FOREIGN_CLUSTER)
"""Another creation token; the file system's Name tag is this environment's own token
(misp-prod-misp-files), its access point's ClientToken a look-alike of it (EFS ClientTokens are
idempotency tokens: the same one would be refused, AccessPointAlreadyExists)."""
OWN_FILES_TOKEN = naming.files_creation_token("misp-prod")
ROLES = (
    naming.db_monitoring_role(FOREIGN_CLUSTER),
    f"{naming.db_monitoring_role('misp-prod')}-old",
    naming.role_name(FOREIGN_CLUSTER, naming.EXTERNAL_SECRETS_SERVICE_ACCOUNT),
)
"""Names destroy deletes for its own cluster (monitoring role; the External Secrets role's inline policy)."""


@dataclass(frozen=True)
class Foreign:
    region: str
    account: str
    zone_id: str | None

    @property
    def buckets(self) -> tuple[str, ...]:
        own = naming.attachments_bucket("misp-prod", self.account)
        return (f"{own}-old", naming.attachments_bucket(FOREIGN_CLUSTER, self.account))


def _foreign_cluster(region: str, zones: list[str]) -> dict[str, str]:
    """eksctl's leftovers for another cluster: its stack (VPC, subnets, security group) and the EKS cluster."""
    config = {
        "metadata": {"name": FOREIGN_CLUSTER, "region": region, "version": "1.34", "tags": FOREIGN_TAGS},
        "availabilityZones": zones,
        "vpc": {"cidr": FOREIGN_CIDR},
    }
    emulate.create_cluster(config, with_parts=False)
    return emulate.stack_outputs(region, naming.eksctl_cluster_stack(FOREIGN_CLUSTER))


def populate_foreign(region: str, zone_id: str | None = None) -> Foreign:
    """Create the other team's resources (inside moto: in-process or a server through AWS_ENDPOINT_URL)."""
    account = boto3.client("sts", region_name=region).get_caller_identity()["Account"]
    tags = [{"Key": key, "Value": value} for key, value in FOREIGN_TAGS.items()]
    zones = [f"{region}{letter}" for letter in "abc"]
    outputs = _foreign_cluster(region, zones)
    vpc, subnets = outputs["VPC"], outputs["SubnetsPrivate"].split(",")

    ec2 = boto3.client("ec2", region_name=region)
    for name in SECURITY_GROUP_NAMES:
        ec2.create_security_group(
            GroupName=name,
            Description="another team's group",
            VpcId=vpc,
            TagSpecifications=[{"ResourceType": "security-group", "Tags": tags}],
        )

    rds = boto3.client("rds", region_name=region)
    for name in PARAMETER_GROUPS:
        rds.create_db_parameter_group(
            DBParameterGroupName=name, DBParameterGroupFamily=FAMILY, Description="another team's", Tags=tags
        )
        rds.modify_db_parameter_group(
            DBParameterGroupName=name,
            Parameters=[{"ParameterName": "max_allowed_packet", "ParameterValue": "1024", "ApplyMethod": "immediate"}],
        )
    rds.create_db_subnet_group(
        DBSubnetGroupName=f"{FOREIGN_CLUSTER}-misp",
        DBSubnetGroupDescription="another team's",
        SubnetIds=subnets,
        Tags=tags,
    )
    rds.create_db_instance(
        DBInstanceIdentifier=FOREIGN_DATABASE,
        DBInstanceClass="db.t4g.medium",
        Engine="mariadb",
        EngineVersion="11.4.5",
        MasterUsername="admin",
        ManageMasterUserPassword=True,
        AllocatedStorage=20,
        DBSubnetGroupName=f"{FOREIGN_CLUSTER}-misp",
        DBParameterGroupName=PARAMETER_GROUPS[0],
        Tags=tags,
    )
    rds.create_event_subscription(
        SubscriptionName=EVENT_SUBSCRIPTION,
        SnsTopicArn=f"arn:aws:sns:{region}:{account}:{TOPICS[1]}",
        SourceType="db-instance",
        Enabled=True,
    )

    elasticache = boto3.client("elasticache", region_name=region)
    elasticache.create_cache_subnet_group(
        CacheSubnetGroupName=f"{FOREIGN_CLUSTER}-caches",
        CacheSubnetGroupDescription="another team's",
        SubnetIds=subnets,
    )
    elasticache.create_replication_group(
        ReplicationGroupId=FOREIGN_CACHE,
        ReplicationGroupDescription="another team's",
        Engine="valkey",
        EngineVersion="8.0",
        CacheNodeType="cache.t4g.small",
        NumCacheClusters=2,
        CacheSubnetGroupName=f"{FOREIGN_CLUSTER}-caches",
        Tags=tags,
    )

    secretsmanager = boto3.client("secretsmanager", region_name=region)
    for name in SECRETS:
        secretsmanager.create_secret(Name=name, SecretString=NOT_SECRET, Tags=tags)

    s3 = boto3.client("s3", region_name=region)
    foreign = Foreign(region, account, zone_id)
    for bucket in foreign.buckets:
        s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": region})
        s3.put_object(Bucket=bucket, Key="keep-me", Body=b"another team's object")

    kms = boto3.client("kms", region_name=region)
    for alias in KMS_ALIASES:
        key = kms.create_key(Description="another team's key")["KeyMetadata"]["KeyId"]
        kms.create_alias(AliasName=alias, TargetKeyId=key)

    sns = boto3.client("sns", region_name=region)
    for topic in TOPICS:
        arn = sns.create_topic(Name=topic, Tags=tags)["TopicArn"]
        sns.subscribe(TopicArn=arn, Protocol="email", Endpoint=SUBSCRIBER)
    cloudwatch = boto3.client("cloudwatch", region_name=region)
    for alarm in ALARMS:
        cloudwatch.put_metric_alarm(
            AlarmName=alarm,
            Namespace="AWS/RDS",
            MetricName="CPUUtilization",
            Dimensions=[{"Name": "DBInstanceIdentifier", "Value": f"{FOREIGN_CLUSTER}-misp"}],
            Statistic="Average",
            Period=300,
            EvaluationPeriods=1,
            Threshold=90,
            ComparisonOperator="GreaterThanThreshold",
        )

    _foreign_files(region, subnets, tags)
    _foreign_roles(region, account, tags)
    emulate.load_balancer(region, FOREIGN_CLUSTER)

    if zone_id:
        emulate.dns_records(region, zone_id, list(HOSTNAMES), owner=FOREIGN_CLUSTER)
    return foreign


def _foreign_files(region: str, subnets: list[str], tags: list[dict[str, str]]) -> None:
    """An EFS file system of the other team's, with a look-alike Name, an access point and mount targets."""
    efs = boto3.client("efs", region_name=region)
    system = efs.create_file_system(
        CreationToken=FILES_TOKEN,
        Encrypted=True,
        Tags=[*tags, {"Key": "Name", "Value": OWN_FILES_TOKEN}],
    )["FileSystemId"]
    efs.create_access_point(
        ClientToken=f"{OWN_FILES_TOKEN}-old",
        FileSystemId=system,
        PosixUser={"Uid": 1000, "Gid": 1000},
        RootDirectory={"Path": "/other"},
        Tags=tags,
    )
    for subnet in subnets:
        efs.create_mount_target(FileSystemId=system, SubnetId=subnet)


def _foreign_roles(region: str, account: str, tags: list[dict[str, str]]) -> None:
    """Roles named like the bootstrap's, each with an attached policy and the inline policy it removes."""
    iam = boto3.client("iam", region_name=region)
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "monitoring.rds.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
    document = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "rds:Describe*", "Resource": "*"}]}
    policy = iam.create_policy(PolicyName=f"{FOREIGN_CLUSTER}-read", PolicyDocument=json.dumps(document))
    for role in ROLES:
        iam.create_role(RoleName=role, AssumeRolePolicyDocument=json.dumps(trust), Tags=tags)
        iam.attach_role_policy(RoleName=role, PolicyArn=policy["Policy"]["Arn"])
        iam.put_role_policy(
            RoleName=role, PolicyName=naming.RDS_MASTER_SECRET_POLICY, PolicyDocument=json.dumps(document)
        )


def _tags_of_bucket(s3: Any, bucket: str) -> list[dict[str, str]]:
    try:
        return list(s3.get_bucket_tagging(Bucket=bucket)["TagSet"])
    except s3.exceptions.ClientError:
        return []


def snapshot(foreign: Foreign) -> dict[str, Any]:
    """Everything of the other team's, as AWS describes it: equal before and after a run that touched none of it."""
    region = foreign.region
    ec2 = boto3.client("ec2", region_name=region)
    rds = boto3.client("rds", region_name=region)
    elasticache = boto3.client("elasticache", region_name=region)
    s3 = boto3.client("s3", region_name=region)
    kms = boto3.client("kms", region_name=region)
    secretsmanager = boto3.client("secretsmanager", region_name=region)
    vpc = emulate.stack_outputs(region, naming.eksctl_cluster_stack(FOREIGN_CLUSTER))["VPC"]
    state: dict[str, Any] = {
        "security groups": sorted(
            (group["GroupName"], json.dumps(group, sort_keys=True, default=str))
            for group in ec2.describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["SecurityGroups"]
        ),
        "parameter groups": {
            name: (
                rds.describe_db_parameter_groups(DBParameterGroupName=name)["DBParameterGroups"],
                rds.describe_db_parameters(DBParameterGroupName=name)["Parameters"],
            )
            for name in PARAMETER_GROUPS
        },
        "db subnet group": rds.describe_db_subnet_groups(DBSubnetGroupName=f"{FOREIGN_CLUSTER}-misp")["DBSubnetGroups"],
        "database": [
            (item["DBInstanceStatus"], item["DBParameterGroups"], item["DeletionProtection"], item["MultiAZ"])
            for item in rds.describe_db_instances(DBInstanceIdentifier=FOREIGN_DATABASE)["DBInstances"]
        ],
        "cache": [
            (item["Status"], item["MultiAZ"], item["AutomaticFailover"])
            for item in elasticache.describe_replication_groups(ReplicationGroupId=FOREIGN_CACHE)["ReplicationGroups"]
        ],
        "cache subnet group": elasticache.describe_cache_subnet_groups(
            CacheSubnetGroupName=f"{FOREIGN_CLUSTER}-caches"
        )["CacheSubnetGroups"],
        "secrets": {
            name: (
                secretsmanager.get_secret_value(SecretId=name)["SecretString"],
                secretsmanager.describe_secret(SecretId=name).get("DeletedDate"),
            )
            for name in SECRETS
        },
        "buckets": {
            bucket: (
                [item["Key"] for item in s3.list_objects_v2(Bucket=bucket).get("Contents", [])],
                _tags_of_bucket(s3, bucket),
            )
            for bucket in foreign.buckets
        },
        "kms": {alias: kms.describe_key(KeyId=alias)["KeyMetadata"]["KeyState"] for alias in KMS_ALIASES},
        "event subscription": rds.describe_event_subscriptions(SubscriptionName=EVENT_SUBSCRIPTION)[
            "EventSubscriptionsList"
        ],
        "topics": _topics(region, foreign.account),
        "alarms": boto3.client("cloudwatch", region_name=region).describe_alarms(AlarmNames=list(ALARMS))[
            "MetricAlarms"
        ],
        "files": _files(region),
        "load balancer": _load_balancer(region),
        "roles": _roles(region),
        "cluster": boto3.client("eks", region_name=region).describe_cluster(name=FOREIGN_CLUSTER)["cluster"]["status"],
    }
    if foreign.zone_id:
        records = boto3.client("route53", region_name=region).list_resource_record_sets(HostedZoneId=foreign.zone_id)
        state["records"] = sorted(
            record["Name"]
            for record in records["ResourceRecordSets"]
            if any(host in record["Name"] for host in HOSTNAMES)
        )
    return state


def _topics(region: str, account: str) -> dict[str, Any]:
    sns = boto3.client("sns", region_name=region)
    found = {}
    for topic in TOPICS:
        arn = f"arn:aws:sns:{region}:{account}:{topic}"
        found[topic] = (
            sns.get_topic_attributes(TopicArn=arn)["Attributes"],
            sns.list_subscriptions_by_topic(TopicArn=arn)["Subscriptions"],
            sns.list_tags_for_resource(ResourceArn=arn)["Tags"],
        )
    return found


def _files(region: str) -> dict[str, Any]:
    efs = boto3.client("efs", region_name=region)
    (system,) = efs.describe_file_systems(CreationToken=FILES_TOKEN)["FileSystems"]
    system_id = system["FileSystemId"]
    return {
        "file system": {key: value for key, value in system.items() if key != "SizeInBytes"},  # metered by AWS
        "access points": efs.describe_access_points(FileSystemId=system_id)["AccessPoints"],
        "mount targets": efs.describe_mount_targets(FileSystemId=system_id)["MountTargets"],
        "lifecycle": efs.describe_lifecycle_configuration(FileSystemId=system_id)["LifecyclePolicies"],
    }


def _load_balancer(region: str) -> dict[str, Any]:
    elbv2 = boto3.client("elbv2", region_name=region)
    found = [
        item
        for item in elbv2.describe_load_balancers()["LoadBalancers"]
        if item["LoadBalancerName"] == f"k8s-misp-{FOREIGN_CLUSTER}"[:32]
    ]
    tags = (
        elbv2.describe_tags(ResourceArns=[item["LoadBalancerArn"] for item in found])["TagDescriptions"]
        if found
        else []
    )
    return {"load balancers": found, "tags": tags}


def _roles(region: str) -> dict[str, Any]:
    iam = boto3.client("iam", region_name=region)
    return {
        role: (
            iam.get_role(RoleName=role)["Role"],
            iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"],
            {
                name: iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"]
                for name in iam.list_role_policies(RoleName=role)["PolicyNames"]
            },
        )
        for role in ROLES
    }
