"""ACM certificates validated through Route53, and the alarms, topic and event subscription."""

from __future__ import annotations

import boto3

from misp_eks.provision import alarms, certificates
from tests.provision.conftest import Run, mutating


def test_certificates_are_dns_validated_in_the_hosted_zone(run: Run, zone_id: str) -> None:
    arns = certificates.ensure_all(run.ctx)
    acm = boto3.client("acm")
    for app, host in (("misp", "misp.example.org"), ("dashboard", "misp-dashboard.example.org")):
        certificate = acm.describe_certificate(CertificateArn=arns[app])["Certificate"]
        assert certificate["DomainName"] == host and certificate["Status"] == "ISSUED"
        assert certificate["DomainValidationOptions"][0]["ValidationMethod"] == "DNS"
        record = certificate["DomainValidationOptions"][0]["ResourceRecord"]
        records = boto3.client("route53").list_resource_record_sets(HostedZoneId=zone_id)["ResourceRecordSets"]
        assert any(item["Name"] == record["Name"] and item["Type"] == "CNAME" for item in records)
        tags = {tag["Key"]: tag["Value"] for tag in acm.list_tags_for_certificate(CertificateArn=arns[app])["Tags"]}
        assert tags["misp-eks/cluster"] == "misp-prod"
    assert certificates.require(run.ctx, "misp") == arns["misp"]


def test_certificates_are_found_again_by_domain_and_cluster_tag(run: Run, zone_id: str) -> None:
    acm = boto3.client("acm")
    other = acm.request_certificate(
        DomainName="misp.example.org",
        ValidationMethod="DNS",
        Tags=[{"Key": "misp-eks/cluster", "Value": "misp-staging"}],
    )["CertificateArn"]
    arns = certificates.ensure_all(run.ctx)
    assert arns["misp"] != other
    run.calls.calls.clear()
    assert certificates.ensure_all(run.ctx) == arns
    assert mutating(run.calls) == []


def test_alarms_topic_and_events_are_created_once(run: Run) -> None:
    topic = alarms.ensure_topic(run.ctx)
    alarms.ensure_alarms(run.ctx, topic)
    alarms.ensure_event_subscription(run.ctx, topic)
    sns = boto3.client("sns")
    (subscription,) = sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]
    assert (subscription["Protocol"], subscription["Endpoint"]) == ("email", "secops@example.org")
    found = {item["AlarmName"]: item for item in boto3.client("cloudwatch").describe_alarms()["MetricAlarms"]}
    assert {"misp-prod-misp-cpu", "misp-prod-misp-free-storage", "misp-prod-misp-freeable-memory"} <= set(found)
    for member in ("misp-prod-misp-001", "misp-prod-misp-002", "misp-prod-dashboard-001", "misp-prod-dashboard-002"):
        assert f"{member}-replication-lag" in found and f"{member}-engine-cpu" in found
        assert found[f"{member}-replication-lag"]["MetricName"] == "ReplicationLag"
    assert all(item["AlarmActions"] == [topic] for item in found.values())
    (events,) = boto3.client("rds").describe_event_subscriptions()["EventSubscriptionsList"]
    assert "failover" in events["EventCategoriesList"] and events["SourceIdsList"] == ["misp-prod-misp"]
    run.calls.calls.clear()
    alarms.ensure_topic(run.ctx)
    alarms.ensure_alarms(run.ctx, topic)
    alarms.ensure_event_subscription(run.ctx, topic)
    assert mutating(run.calls) == []


def test_a_changed_alarm_is_rewritten(run: Run) -> None:
    topic = alarms.ensure_topic(run.ctx)
    alarms.ensure_alarms(run.ctx, topic)
    cloudwatch = boto3.client("cloudwatch")
    current = cloudwatch.describe_alarms(AlarmNames=["misp-prod-misp-cpu"])["MetricAlarms"][0]
    cloudwatch.put_metric_alarm(
        **{
            key: current[key]
            for key in (
                "AlarmName",
                "Namespace",
                "MetricName",
                "Statistic",
                "Period",
                "EvaluationPeriods",
                "ComparisonOperator",
                "Dimensions",
            )
        },
        Threshold=99.0,
    )
    run.calls.calls.clear()
    alarms.ensure_alarms(run.ctx, topic)
    assert mutating(run.calls) == ["monitoring:PutMetricAlarm"]
    assert cloudwatch.describe_alarms(AlarmNames=["misp-prod-misp-cpu"])["MetricAlarms"][0]["Threshold"] == 80
