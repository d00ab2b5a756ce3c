"""The public Route53 hosted zone of settings.domain: looked up, never created (the domain is the operator's)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from misp_eks.provision.context import Context
from misp_eks.provision.errors import InputError


@dataclass(frozen=True)
class HostedZone:
    id: str
    """Without the ``/hostedzone/`` prefix, as IAM ARNs and cluster-vars want it."""
    name: str


def find(route53: Any, domain: str) -> HostedZone | None:
    """The one public zone named ``domain``; an error if there are several (ambiguous for external-dns)."""
    wanted = domain.rstrip(".") + "."
    answer = route53.list_hosted_zones_by_name(DNSName=wanted, MaxItems="20")
    zones = [
        zone
        for zone in answer.get("HostedZones", [])
        if zone["Name"] == wanted and not zone.get("Config", {}).get("PrivateZone", False)
    ]
    if len(zones) > 1:
        ids = ", ".join(zone["Id"].split("/")[-1] for zone in zones)
        raise InputError(f"settings.yaml: domain: {domain} has {len(zones)} public hosted zones ({ids}); keep one")
    if not zones:
        return None
    return HostedZone(id=zones[0]["Id"].split("/")[-1], name=domain)


def require(ctx: Context) -> HostedZone:
    def lookup() -> HostedZone:
        zone = find(ctx.client("route53"), ctx.settings.domain)
        if zone is None:
            raise InputError(
                f"clusters/{ctx.env.name}/settings.yaml: domain: no public Route53 hosted zone {ctx.settings.domain} "
                "in this account: create or delegate it first"
            )
        return zone

    return ctx.fact("hosted_zone", lookup)


def _change(route53: Any, zone_id: str, action: str, record: dict[str, Any], comment: str) -> None:
    route53.change_resource_record_sets(
        HostedZoneId=zone_id,
        ChangeBatch={"Comment": comment, "Changes": [{"Action": action, "ResourceRecordSet": record}]},
    )


def _found(route53: Any, zone_id: str, name: str, kind: str) -> dict[str, Any] | None:
    answer = route53.list_resource_record_sets(
        HostedZoneId=zone_id, StartRecordName=name, StartRecordType=kind, MaxItems="1"
    )
    for item in answer.get("ResourceRecordSets", []):
        if item["Name"] == name and item["Type"] == kind:
            return dict(item)
    return None


def ensure_record(route53: Any, zone_id: str, name: str, kind: str, value: str, comment: str) -> bool:
    """UPSERT the one-value record ``name`` unless it already holds ``value``; True if it was written."""
    name = name if name.endswith(".") else name + "."
    found = _found(route53, zone_id, name, kind)
    if found and value in [entry.get("Value") for entry in found.get("ResourceRecords", [])]:
        return False
    record = {"Name": name, "Type": kind, "TTL": 300, "ResourceRecords": [{"Value": value}]}
    _change(route53, zone_id, "UPSERT", record, comment)
    return True


def delete_record(route53: Any, zone_id: str, name: str, kind: str, value: str, comment: str) -> bool:
    """DELETE ``name`` only while it holds exactly ``value`` (ours); True if it was deleted."""
    name = name if name.endswith(".") else name + "."
    found = _found(route53, zone_id, name, kind)
    if not found or [entry.get("Value") for entry in found.get("ResourceRecords", [])] != [value]:
        return False
    _change(route53, zone_id, "DELETE", found, comment)
    return True
