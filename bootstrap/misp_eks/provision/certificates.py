"""ACM certificates for MISP's and the dashboard's hostnames, validated through Route53.

A certificate is found again by its domain and the cluster tag; its validation record is kept in
the hosted zone, which ACM also needs for automatic renewal.
"""

from __future__ import annotations

import hashlib
from typing import Any

from botocore.exceptions import ClientError

from misp_eks import naming
from misp_eks.provision import hosted_zone
from misp_eks.provision import tags as tagging
from misp_eks.provision.context import Context
from misp_eks.provision.errors import BootstrapError, MissingPrerequisite, error_code
from misp_eks.provision.waiting import Poll

KIND = "ACM certificate"
LIVE = ["PENDING_VALIDATION", "ISSUED"]


def hostnames(ctx: Context) -> dict[str, str]:
    return {"misp": ctx.settings.hostnames.misp, "dashboard": ctx.settings.hostnames.dashboard}


def find(acm: Any, domain: str, cluster: str) -> dict[str, Any] | None:
    """This cluster's certificate for ``domain`` (issued ones first)."""
    candidates = []
    for page in acm.get_paginator("list_certificates").paginate(CertificateStatuses=LIVE):
        for item in page.get("CertificateSummaryList", []):
            if item.get("DomainName") != domain:
                continue
            found_tags = tagging.as_dict(
                acm.list_tags_for_certificate(CertificateArn=item["CertificateArn"]).get("Tags")
            )
            if found_tags.get(naming.CLUSTER_TAG) == cluster:
                candidates.append(acm.describe_certificate(CertificateArn=item["CertificateArn"])["Certificate"])
    candidates.sort(key=lambda cert: cert.get("Status") != "ISSUED")
    return candidates[0] if candidates else None


def require(ctx: Context, app: str) -> str:
    domain = hostnames(ctx)[app]
    found = find(ctx.client("acm"), domain, ctx.names.cluster)
    if found is None or found.get("Status") != "ISSUED":
        raise MissingPrerequisite(f"{KIND} for {domain} (issued)", "dns")
    return str(found["CertificateArn"])


def _request(ctx: Context, domain: str) -> str:
    token = hashlib.sha256(f"{ctx.names.cluster}/{domain}".encode()).hexdigest()[:32]
    answer = ctx.client("acm").request_certificate(
        DomainName=domain,
        ValidationMethod="DNS",
        IdempotencyToken=token,
        Options={"CertificateTransparencyLoggingPreference": "ENABLED"},
        Tags=tagging.key_value(ctx.tags),
    )
    return str(answer["CertificateArn"])


def _validation_records(ctx: Context, arn: str, domain: str) -> list[dict[str, str]]:
    """ACM publishes the CNAME to create a few seconds after the request."""
    acm = ctx.client("acm")

    def probe() -> Poll[list[dict[str, str]]]:
        certificate = acm.describe_certificate(CertificateArn=arn)["Certificate"]
        options = certificate.get("DomainValidationOptions", [])
        records = [option["ResourceRecord"] for option in options if option.get("ResourceRecord")]
        done = (bool(options) and len(records) == len(options)) or certificate.get("Status") == "ISSUED"
        return Poll(done, "waiting for the validation record", records)

    return ctx.wait(f"the DNS validation record of {domain}", probe, timeout=ctx.timing.certificate) or []


def _ensure_record(ctx: Context, zone_id: str, record: dict[str, str]) -> bool:
    return hosted_zone.ensure_record(
        ctx.client("route53"),
        zone_id,
        record["Name"],
        record["Type"],
        record["Value"],
        "ACM DNS validation (MISP bootstrap)",
    )


def _wait_issued(ctx: Context, arn: str, domain: str) -> None:
    acm = ctx.client("acm")

    def probe() -> Poll[None]:
        status = acm.describe_certificate(CertificateArn=arn)["Certificate"].get("Status", "")
        if status in ("FAILED", "VALIDATION_TIMED_OUT", "REVOKED", "EXPIRED", "INACTIVE"):
            raise BootstrapError(f"{KIND} for {domain} is {status}: see ACM for the reason")
        return Poll(status == "ISSUED", status)

    ctx.wait(f"{KIND} for {domain} to be issued", probe, timeout=ctx.timing.certificate, interval=ctx.timing.poll_slow)


def ensure(ctx: Context, domain: str) -> str:
    acm = ctx.client("acm")
    zone = hosted_zone.require(ctx)
    found = find(acm, domain, ctx.names.cluster)
    if found is None:
        arn = _request(ctx, domain)
        action = "created"
    else:
        arn, action = found["CertificateArn"], "exists"
    issued = found is not None and found.get("Status") == "ISSUED"
    records = (
        [
            option["ResourceRecord"]
            for option in found.get("DomainValidationOptions", [])
            if option.get("ResourceRecord")
        ]
        if issued and found
        else _validation_records(ctx, arn, domain)
    )
    for record in records:
        if _ensure_record(ctx, zone.id, record):
            ctx.record("Route53 record", record["Name"], "created", f"ACM validation in {zone.name}")
    if not issued:
        _wait_issued(ctx, arn, domain)
    ctx.record(KIND, domain, action, arn)
    return arn


def ensure_all(ctx: Context) -> dict[str, str]:
    return {app: ensure(ctx, domain) for app, domain in hostnames(ctx).items()}


def delete_all(ctx: Context) -> None:
    acm = ctx.client("acm")
    for domain in hostnames(ctx).values():
        found = find(acm, domain, ctx.names.cluster)
        if found is None:
            ctx.record(KIND, domain, "skipped", "not found")
            continue
        try:
            acm.delete_certificate(CertificateArn=found["CertificateArn"])
        except ClientError as error:
            if error_code(error) != "ResourceInUseException":
                raise
            ctx.progress.warn(f"{KIND} for {domain} is still in use (by a load balancer?): kept")
            ctx.record(KIND, domain, "kept", "in use")
            continue
        ctx.record(KIND, domain, "deleted", found["CertificateArn"])
