"""The phases of a bootstrap, in order; each is idempotent and can run alone (--only) or last (--until).

Order and why:

1. preflight: tools, credentials, three zones, engine versions RDS and ElastiCache offer, hosted zone;
   nothing is created.
2. cluster: the KMS key first (eksctl needs its ARN), then the cluster.
3. secrets: before data, because the caches are created with AUTH tokens
   that must already be in Secrets Manager (an AUTH token cannot be added to a running group
   without a rotation), and they must be generated exactly once. The data phase still makes the two
   token secrets itself if they are missing, so ``--only data`` works alone.
4. data: VPC, subnets and security group come from the cluster's stack, so it follows the cluster;
   the database, both caches and the file system are created concurrently.
5. dns: certificates only need the hosted zone; they come before gitops because cluster-vars
   carries their ARNs. Then SES (settings email.enabled): its DKIM records, and the SMTP secret
   that MISP's pods read.
6. gitops: cluster-vars needs every fact above; Flux then reconciles the applications. Switching
   e-mail on in a running cluster: the Secret misp-smtp is synced from Secrets Manager (force-sync)
   before cluster-vars changes, or MISP's pods would restart with the empty placeholder.
7. verify: Flux's Kustomizations and the two public endpoints.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from misp_eks.provision import certificates, cluster, data, gitops, preflight, secrets, ses, verify
from misp_eks.provision.context import Context


class Phase(StrEnum):
    PREFLIGHT = "preflight"
    CLUSTER = "cluster"
    SECRETS = "secrets"  # pragma: allowlist secret
    DATA = "data"
    DNS = "dns"
    GITOPS = "gitops"
    VERIFY = "verify"


ORDER: tuple[Phase, ...] = tuple(Phase)


@dataclass(frozen=True)
class RunOptions:
    assume_yes: bool = False


def select(only: str | None = None, until: str | None = None) -> tuple[Phase, ...]:
    if only:
        return (Phase(only),)
    if until:
        return ORDER[: ORDER.index(Phase(until)) + 1]
    return ORDER


def _dns(ctx: Context) -> None:
    certificates.ensure_all(ctx)
    ses.ensure(ctx)


def _runners(phases: tuple[Phase, ...], options: RunOptions) -> dict[Phase, Callable[[Context], None]]:
    return {
        Phase.PREFLIGHT: lambda ctx: preflight.run(ctx, [str(phase) for phase in phases]),
        Phase.CLUSTER: cluster.ensure,
        Phase.SECRETS: secrets.ensure_all,
        Phase.DATA: data.run,
        Phase.DNS: _dns,
        Phase.GITOPS: lambda ctx: gitops.ensure(ctx, assume_yes=options.assume_yes),
        Phase.VERIFY: verify.run,
    }


def run(ctx: Context, phases: tuple[Phase, ...], options: RunOptions) -> None:
    runners = _runners(phases, options)
    for phase in phases:
        if ctx.cancel.is_set():
            break
        with ctx.progress.phase(str(phase)):
            runners[phase](ctx)
