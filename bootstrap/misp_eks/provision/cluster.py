"""The EKS cluster, made by eksctl from clusters/<env>/cluster.yaml: created once, completed after an interruption.

eksctl refuses to create a cluster whose stack exists, so the state is read first: the
``eksctl-<name>-cluster`` CloudFormation stack and the EKS cluster. If eksctl was interrupted after
the control plane, the missing add-ons, node groups and pod identity associations are created with
``eksctl create addon|nodegroup|podidentityassociation -f -``, each of which leaves existing ones alone.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import yaml
from botocore.exceptions import ClientError

from misp_eks.provision import hosted_zone, kms
from misp_eks.provision.context import Context
from misp_eks.provision.errors import BootstrapError, MissingPrerequisite, ToolFailed, error_code
from misp_eks.provision.tools import EKSCTL
from misp_eks.provision.waiting import Poll

KIND = "EKS cluster"
STACK_DONE = frozenset({"CREATE_COMPLETE", "UPDATE_COMPLETE", "UPDATE_ROLLBACK_COMPLETE"})
STACK_BUSY = frozenset(
    {
        "CREATE_IN_PROGRESS",
        "UPDATE_IN_PROGRESS",
        "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS",
        "UPDATE_ROLLBACK_IN_PROGRESS",
        "UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS",
        "REVIEW_IN_PROGRESS",
    }
)


@dataclass(frozen=True)
class ClusterState:
    stack_status: str | None
    cluster_status: str | None

    @property
    def absent(self) -> bool:
        return self.stack_status is None and self.cluster_status is None


def stack(cfn: Any, name: str) -> dict[str, Any] | None:
    try:
        stacks = cfn.describe_stacks(StackName=name)["Stacks"]
    except ClientError as error:
        if error_code(error) == "ValidationError" and "does not exist" in str(error):
            return None
        raise
    return stacks[0] if stacks else None


def describe(eks: Any, name: str) -> dict[str, Any] | None:
    try:
        return eks.describe_cluster(name=name)["cluster"]  # type: ignore[no-any-return]
    except ClientError as error:
        if error_code(error) == "ResourceNotFoundException":
            return None
        raise


def inspect(ctx: Context) -> ClusterState:
    found_stack = stack(ctx.client("cloudformation"), ctx.names.cluster_stack)
    found_cluster = describe(ctx.client("eks"), ctx.names.cluster)
    return ClusterState(
        stack_status=found_stack["StackStatus"] if found_stack else None,
        cluster_status=found_cluster["status"] if found_cluster else None,
    )


def template_values(ctx: Context, key_arn: str) -> dict[str, str]:
    """The values of cluster.yaml's placeholders (misp_eks.environment.CLUSTER_TEMPLATE_VARS)."""
    names = ctx.names
    return {
        "cluster_name": names.cluster,
        "aws_region": names.region,
        "aws_account_id": names.account,
        "hosted_zone_id": hosted_zone.require(ctx).id,
        "secrets_prefix": names.secrets_prefix,
        "attachments_bucket": names.attachments_bucket,
        "eks_kms_key_arn": key_arn,
    }


def ensure(ctx: Context) -> None:
    key = kms.ensure(ctx)
    rendered = ctx.env.render_cluster_config(template_values(ctx, key.arn))
    state = inspect(ctx)
    name, stack_name = ctx.names.cluster, ctx.names.cluster_stack
    if state.absent:
        ctx.progress.info(f"creating {KIND} {name} with eksctl (20 to 40 minutes)")
        ctx.tools.run(
            EKSCTL,
            # The bootstrap makes its own kubeconfig; eksctl would otherwise rewrite the operator's
            # ~/.kube/config and switch its current context (pkg/ctl/create/cluster.go: --write-kubeconfig
            # and --set-kubeconfig-context default to true).
            ["create", "cluster", "-f", "-", "--write-kubeconfig=false"],
            stdin=rendered,
            timeout=ctx.timing.eksctl,
            stream=True,
            what=f"eksctl create cluster {name}",
        )
        ctx.record(KIND, name, "created", f"stack {stack_name}")
    elif state.stack_status is None:
        raise BootstrapError(
            f"{KIND} {name} exists but has no {stack_name} stack: it was not made by eksctl from this repository; "
            "pick another metadata.name or delete that cluster"
        )
    elif state.stack_status in STACK_BUSY:
        _wait_for_stack(ctx, stack_name)
        ctx.record(KIND, name, "exists", f"stack {stack_name} finished after an interrupted run")
    elif state.stack_status not in STACK_DONE:
        raise BootstrapError(
            f"stack {stack_name} is {state.stack_status}: eksctl could not create the cluster; see its events in "
            f"CloudFormation, run `eksctl delete cluster --name {name} --region {ctx.names.region} --wait` "
            "(no data lives there yet), then re-run"
        )
    else:
        ctx.record(KIND, name, "exists", f"stack {stack_name} {state.stack_status}")
    _wait_active(ctx)
    complete(ctx, rendered)
    _check_encryption(ctx, key.arn)


def _wait_for_stack(ctx: Context, stack_name: str) -> None:
    cfn = ctx.client("cloudformation")

    def probe() -> Poll[None]:
        found = stack(cfn, stack_name)
        status = found["StackStatus"] if found else "gone"
        if status in STACK_DONE:
            return Poll(True, status)
        if status not in STACK_BUSY:
            raise BootstrapError(f"stack {stack_name} ended {status}: see its events in CloudFormation")
        return Poll(False, status)

    ctx.wait(f"CloudFormation stack {stack_name}", probe, timeout=ctx.timing.stack, interval=ctx.timing.poll_slow)


def _wait_active(ctx: Context) -> None:
    eks = ctx.client("eks")
    name = ctx.names.cluster
    found = describe(eks, name)
    if found is not None and found["status"] == "ACTIVE":
        return

    def probe() -> Poll[None]:
        current = describe(eks, name)
        status = current["status"] if current else "missing"
        if status in ("FAILED", "DELETING", "missing"):
            raise BootstrapError(f"{KIND} {name} is {status}")
        return Poll(status == "ACTIVE", status)

    ctx.wait(f"{KIND} {name} to become ACTIVE", probe, timeout=ctx.timing.stack, interval=ctx.timing.poll_slow)


def _eksctl_list(ctx: Context, what: str) -> list[dict[str, Any]]:
    output = ctx.tools.run(
        EKSCTL,
        ["get", what, "--cluster", ctx.names.cluster, "--region", ctx.names.region, "-o", "json"],
        timeout=ctx.timing.tool,
    ).strip()
    if not output:
        return []
    try:
        items = json.loads(output)
    except ValueError:
        raise ToolFailed(f"`eksctl get {what}` printed no JSON: {output[:80]!r}") from None
    return items if isinstance(items, list) else []


def missing_parts(ctx: Context) -> dict[str, list[str]]:
    """What cluster.yaml asks for that the cluster lacks: add-ons, managed node groups, pod identity associations."""
    config = ctx.env.cluster
    eks = ctx.client("eks")
    groups: set[str] = set()
    for page in eks.get_paginator("list_nodegroups").paginate(clusterName=ctx.names.cluster):
        groups.update(page.get("nodegroups", []))
    addons = {item.get("Name") for item in _eksctl_list(ctx, "addon")}
    associations = {
        (item.get("Namespace"), item.get("ServiceAccountName")) for item in _eksctl_list(ctx, "podidentityassociation")
    }
    return {
        "addon": [addon.name for addon in config.addons if addon.name not in addons],
        "nodegroup": [group.name for group in config.managedNodeGroups if group.name not in groups],
        "podidentityassociation": [
            f"{item.namespace}/{item.serviceAccountName}"
            for item in config.iam.podIdentityAssociations
            if (item.namespace, item.serviceAccountName) not in associations
        ],
    }


def only_associations(rendered: str, wanted: list[str]) -> str:
    """The rendered config with just the pod identity associations in ``wanted`` (namespace/name)."""
    document = yaml.safe_load(rendered)
    document["iam"]["podIdentityAssociations"] = [
        item
        for item in document.get("iam", {}).get("podIdentityAssociations", [])
        if f"{item['namespace']}/{item['serviceAccountName']}" in wanted
    ]
    return yaml.safe_dump(document, sort_keys=False)


def complete(ctx: Context, rendered: str) -> None:
    """Create what an interrupted ``eksctl create cluster`` left out (in eksctl's own order)."""
    missing = missing_parts(ctx)
    for what in ("addon", "nodegroup", "podidentityassociation"):
        names = missing[what]
        if not names:
            continue
        config = only_associations(rendered, names) if what == "podidentityassociation" else rendered
        ctx.progress.info(f"cluster lacks {what} {', '.join(names)}: creating with eksctl")
        ctx.tools.run(
            EKSCTL,
            ["create", what, "-f", "-"],
            stdin=config,
            timeout=ctx.timing.eksctl,
            stream=True,
            what=f"eksctl create {what}",
        )
        for item in names:
            ctx.record(f"EKS {what}", item, "created", "after an interrupted cluster creation")


def _check_encryption(ctx: Context, key_arn: str) -> None:
    found = describe(ctx.client("eks"), ctx.names.cluster) or {}
    keys = [item.get("provider", {}).get("keyArn") for item in found.get("encryptionConfig", []) or []]
    if key_arn not in keys:
        ctx.progress.warn(
            f"{KIND} {ctx.names.cluster} does not envelope-encrypt Secrets with {key_arn} (has {keys or 'none'})"
        )


def require_active(ctx: Context) -> dict[str, Any]:
    found = describe(ctx.client("eks"), ctx.names.cluster)
    if found is None or found.get("status") != "ACTIVE":
        raise MissingPrerequisite(f"{KIND} {ctx.names.cluster}", "cluster")
    return found
