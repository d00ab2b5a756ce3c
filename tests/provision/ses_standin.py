"""What moto's SES v2 leaves out of a domain identity with Easy DKIM: its three tokens, and a DKIM status
that waits for the CNAMEs.

Real SES answers CreateEmailIdentity and GetEmailIdentity for a domain with ``DkimAttributes.Tokens``
(botocore data/sesv2/2019-09-27/service-2.json, DkimAttributes: "the set of unique strings that you use
to create a set of CNAME records"; SES developer guide, "Easy DKIM": three of them) and reports the DKIM
status PENDING until it finds ``<token>._domainkey.<domain>`` CNAMEs pointing at
``<token>.dkim.amazonses.com``; moto returns no token and SUCCESS at once.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

import boto3
import pytest
from moto.sesv2.responses import SESV2Response


def tokens(domain: str) -> list[str]:
    """Three stable 32-character tokens of ``domain`` (SES's are opaque 32-character strings)."""
    return [hashlib.sha256(f"{domain}/{index}".encode()).hexdigest()[:32] for index in range(3)]


def _published(domain: str) -> bool:
    route53 = boto3.client("route53")
    found: set[tuple[str, str]] = set()
    for zone in route53.list_hosted_zones()["HostedZones"]:
        for page in route53.get_paginator("list_resource_record_sets").paginate(HostedZoneId=zone["Id"]):
            for item in page["ResourceRecordSets"]:
                for value in item.get("ResourceRecords", []):
                    if item["Type"] == "CNAME":
                        found.add((item["Name"], value["Value"]))
    return all((f"{token}._domainkey.{domain}.", f"{token}.dkim.amazonses.com") in found for token in tokens(domain))


def _with_dkim(original: Callable[[SESV2Response], str]) -> Callable[[SESV2Response], str]:
    def answer(self: SESV2Response) -> str:
        body: dict[str, Any] = json.loads(original(self))
        domain = self._get_param("EmailIdentity")
        if body.get("IdentityType") == "DOMAIN":
            status = "SUCCESS" if _published(domain) else "PENDING"
            body["DkimAttributes"] = {**body.get("DkimAttributes", {}), "Tokens": tokens(domain), "Status": status}
            body["VerifiedForSendingStatus"] = status == "SUCCESS"
            if "VerificationStatus" in body:
                body["VerificationStatus"] = status
        return json.dumps(body)

    return answer


def register(monkeypatch: pytest.MonkeyPatch) -> None:
    for operation in ("create_email_identity", "get_email_identity"):
        monkeypatch.setattr(SESV2Response, operation, _with_dkim(getattr(SESV2Response, operation)))
