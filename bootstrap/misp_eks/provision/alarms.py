"""Alarms on the database and the caches, and failover events, all to one SNS topic with an e-mail subscription.

Each alarm is written only when it is missing or differs, so a converged re-run writes nothing.
ElastiCache events (failovers included) reach the topic through the replication groups'
NotificationTopicArn, RDS events through an RDS event subscription.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from misp_eks.provision import caches as cache_module
from misp_eks.provision import tags as tagging
from misp_eks.provision.context import Context
from misp_eks.provision.errors import unless_missing

TOPIC_KIND = "SNS topic"
ALARM_KIND = "CloudWatch alarm"
EVENTS_KIND = "RDS event subscription"
GIB = 1024**3
RDS_EVENT_CATEGORIES = ["availability", "failover", "failure", "low storage"]


@dataclass(frozen=True)
class Alarm:
    name: str
    namespace: str
    metric: str
    dimensions: tuple[tuple[str, str], ...]
    statistic: str
    comparison: str
    threshold: float
    periods: int = 3
    period: int = 300
    missing: str = "missing"
    description: str = ""

    def request(self, topic_arn: str, tags: dict[str, str]) -> dict[str, Any]:
        return {
            "AlarmName": self.name,
            "AlarmDescription": self.description,
            "Namespace": self.namespace,
            "MetricName": self.metric,
            "Dimensions": [{"Name": key, "Value": value} for key, value in self.dimensions],
            "Statistic": self.statistic,
            "Period": self.period,
            "EvaluationPeriods": self.periods,
            "Threshold": self.threshold,
            "ComparisonOperator": self.comparison,
            "TreatMissingData": self.missing,
            "ActionsEnabled": True,
            "AlarmActions": [topic_arn],
            "OKActions": [topic_arn],
            "Tags": tagging.key_value(tags),
        }


def database_alarms(ctx: Context) -> list[Alarm]:
    return database_alarms_of(ctx.names.db_instance, ctx.settings.database.allocated_storage_gib)


def database_alarms_of(db: str, storage: int) -> list[Alarm]:
    """The alarms of the RDS instance ``db`` with ``storage`` GiB allocated."""
    dims = (("DBInstanceIdentifier", db),)
    return [
        Alarm(
            f"{db}-cpu",
            "AWS/RDS",
            "CPUUtilization",
            dims,
            "Average",
            "GreaterThanThreshold",
            80,
            description=f"{db}: CPU above 80% for 15 minutes",
        ),
        Alarm(
            f"{db}-free-storage",
            "AWS/RDS",
            "FreeStorageSpace",
            dims,
            "Minimum",
            "LessThanThreshold",
            max(10.0, storage * 0.1) * GIB,
            periods=1,
            description=f"{db}: less than 10% of {storage} GiB free (storage autoscaling may be at its maximum)",
        ),
        Alarm(
            f"{db}-freeable-memory",
            "AWS/RDS",
            "FreeableMemory",
            dims,
            "Average",
            "LessThanThreshold",
            256 * 1024**2,
            description=f"{db}: less than 256 MiB freeable memory for 15 minutes",
        ),
    ]


def cache_alarms(ctx: Context, app: str) -> list[Alarm]:
    group = ctx.names.cache_group(app)
    nodes = getattr(ctx.settings.caches, app).nodes
    members = [f"{group}-{index:03d}" for index in range(1, nodes + 1)]
    alarms = []
    for member in members:
        dims = (("CacheClusterId", member),)
        alarms += [
            Alarm(
                f"{member}-engine-cpu",
                "AWS/ElastiCache",
                "EngineCPUUtilization",
                dims,
                "Average",
                "GreaterThanThreshold",
                80,
                description=f"{member}: engine CPU above 80% for 15 minutes",
            ),
            Alarm(
                f"{member}-memory",
                "AWS/ElastiCache",
                "DatabaseMemoryUsagePercentage",
                dims,
                "Average",
                "GreaterThanThreshold",
                85,
                description=f"{member}: more than 85% of memory used",
            ),
            # Only replicas report ReplicationLag; the primary's missing data is not an alarm.
            Alarm(
                f"{member}-replication-lag",
                "AWS/ElastiCache",
                "ReplicationLag",
                dims,
                "Maximum",
                "GreaterThanThreshold",
                30,
                missing="notBreaching",
                description=f"{member}: a replica more than 30 s behind its primary",
            ),
        ]
    return alarms


def all_alarms(ctx: Context) -> list[Alarm]:
    return [*database_alarms(ctx), *(alarm for app in cache_module.APPS for alarm in cache_alarms(ctx, app))]


TOPIC_MISSING = "NotFound"
SUBSCRIPTION_MISSING = "SubscriptionNotFound"


def topic_exists(sns: Any, arn: str) -> bool:
    return unless_missing(lambda: sns.get_topic_attributes(TopicArn=arn), TOPIC_MISSING) is not None


def find_event_subscription(rds: Any, name: str) -> dict[str, Any] | None:
    return unless_missing(
        lambda: rds.describe_event_subscriptions(SubscriptionName=name)["EventSubscriptionsList"][0],
        SUBSCRIPTION_MISSING,
    )


def ensure_topic(ctx: Context) -> str:
    """The topic and its e-mail subscription (the recipient confirms it from the e-mail AWS sends)."""
    sns = ctx.client("sns")
    arn = ctx.names.alarm_topic_arn
    if topic_exists(sns, arn):
        ctx.record(TOPIC_KIND, ctx.names.alarm_topic, "exists", arn)
    else:
        arn = sns.create_topic(Name=ctx.names.alarm_topic, Tags=tagging.key_value(ctx.tags))["TopicArn"]
        ctx.record(TOPIC_KIND, ctx.names.alarm_topic, "created", arn)
    email = ctx.settings.alarm_email
    subscribed = any(
        item.get("Protocol") == "email" and item.get("Endpoint", "").lower() == email.lower()
        for page in sns.get_paginator("list_subscriptions_by_topic").paginate(TopicArn=arn)
        for item in page.get("Subscriptions", [])
    )
    if not subscribed:
        sns.subscribe(TopicArn=arn, Protocol="email", Endpoint=email)
        ctx.record("SNS subscription", email, "created", "confirm it from the e-mail AWS sends")
    else:
        ctx.record("SNS subscription", email, "exists")
    return str(arn)


def _same(current: dict[str, Any], wanted: dict[str, Any]) -> bool:
    keys = (
        "Namespace",
        "MetricName",
        "Statistic",
        "Period",
        "EvaluationPeriods",
        "Threshold",
        "ComparisonOperator",
        "TreatMissingData",
        "AlarmActions",
        "OKActions",
        "AlarmDescription",
    )
    if any(current.get(key) != wanted.get(key) for key in keys):
        return False
    return sorted(map(str, current.get("Dimensions", []))) == sorted(map(str, wanted["Dimensions"]))


def ensure_alarms(ctx: Context, topic_arn: str) -> None:
    cloudwatch = ctx.client("cloudwatch")
    alarms = all_alarms(ctx)
    current: dict[str, dict[str, Any]] = {}
    names = [alarm.name for alarm in alarms]
    for start in range(0, len(names), 100):
        answer = cloudwatch.describe_alarms(AlarmNames=names[start : start + 100], AlarmTypes=["MetricAlarm"])
        current.update({item["AlarmName"]: item for item in answer.get("MetricAlarms", [])})
    written = 0
    for alarm in alarms:
        request = alarm.request(topic_arn, ctx.tags)
        if alarm.name in current and _same(current[alarm.name], request):
            continue
        cloudwatch.put_metric_alarm(**request)
        written += 1
    action = "exists" if not written else ("created" if not current else "updated")
    ctx.record(ALARM_KIND + "s", f"{len(alarms)} alarms", action, "CPU, storage, memory, replication lag")


def ensure_event_subscription(ctx: Context, topic_arn: str) -> None:
    rds = ctx.client("rds")
    name = ctx.names.db_event_subscription
    found = find_event_subscription(rds, name)
    if found is None:
        rds.create_event_subscription(
            SubscriptionName=name,
            SnsTopicArn=topic_arn,
            SourceType="db-instance",
            SourceIds=[ctx.names.db_instance],
            EventCategories=RDS_EVENT_CATEGORIES,
            Enabled=True,
            Tags=tagging.key_value(ctx.tags),
        )
        ctx.record(EVENTS_KIND, name, "created", ", ".join(RDS_EVENT_CATEGORIES))
    else:
        ctx.record(EVENTS_KIND, name, "exists", ", ".join(found.get("EventCategoriesList", [])))


def remove(ctx: Context) -> None:
    """Mirror of creation, for --destroy: alarms, the event subscription, then the topic."""
    cloudwatch = ctx.client("cloudwatch")
    names = [alarm.name for alarm in all_alarms(ctx)]
    existing: list[str] = []
    for start in range(0, len(names), 100):
        answer = cloudwatch.describe_alarms(AlarmNames=names[start : start + 100])
        existing += [item["AlarmName"] for item in answer.get("MetricAlarms", [])]
    for start in range(0, len(existing), 100):
        cloudwatch.delete_alarms(AlarmNames=existing[start : start + 100])
    ctx.record(ALARM_KIND + "s", f"{len(existing)} alarms", "deleted" if existing else "skipped")
    rds = ctx.client("rds")
    name = ctx.names.db_event_subscription
    if unless_missing(lambda: rds.delete_event_subscription(SubscriptionName=name), SUBSCRIPTION_MISSING) is None:
        ctx.record(EVENTS_KIND, name, "skipped", "not found")
    else:
        ctx.record(EVENTS_KIND, name, "deleted")
    sns = ctx.client("sns")
    if not topic_exists(sns, ctx.names.alarm_topic_arn):
        ctx.record(TOPIC_KIND, ctx.names.alarm_topic, "skipped", "not found")
        return
    sns.delete_topic(TopicArn=ctx.names.alarm_topic_arn)
    ctx.record(TOPIC_KIND, ctx.names.alarm_topic, "deleted")
