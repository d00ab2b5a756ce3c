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
