"""The KMS key that envelope-encrypts the cluster's Kubernetes Secrets (eksctl secretsEncryption.keyARN).

Created before the cluster, found again by its alias, rotation on. eksctl gets the key ARN, never
the alias: EKS stores the resolved key and eksctl compares the two on later runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from misp_eks.provision import tags as tagging
from misp_eks.provision.context import Context
from misp_eks.provision.errors import BootstrapError, error_code

KIND = "KMS key"
DELETION_WINDOW_DAYS = 30


@dataclass(frozen=True)
class KmsKey:
    arn: str
    key_id: str
    alias: str


def find(kms: Any, alias: str) -> KmsKey | None:
    try:
        metadata = kms.describe_key(KeyId=alias)["KeyMetadata"]
    except ClientError as error:
        if error_code(error) == "NotFoundException":
            return None
        raise
    if metadata.get("KeyState") == "PendingDeletion":
        raise BootstrapError(
            f"{KIND} {alias} ({metadata['KeyId']}) is scheduled for deletion: run "
            f"`aws kms cancel-key-deletion --key-id {metadata['KeyId']}` and `aws kms enable-key "
            f"--key-id {metadata['KeyId']}` to keep it, then re-run"
        )
    return KmsKey(arn=metadata["Arn"], key_id=metadata["KeyId"], alias=alias)


def ensure(ctx: Context) -> KmsKey:
    kms = ctx.client("kms")
    alias = ctx.names.kms_alias
    key = find(kms, alias)
    if key is None:
        metadata = kms.create_key(
            Description=f"{ctx.names.cluster}: envelope encryption of EKS Secrets (created by the MISP bootstrap)",
            KeyUsage="ENCRYPT_DECRYPT",
            KeySpec="SYMMETRIC_DEFAULT",
            Tags=tagging.kms(ctx.tags),
        )["KeyMetadata"]
        kms.create_alias(AliasName=alias, TargetKeyId=metadata["KeyId"])
        kms.enable_key_rotation(KeyId=metadata["KeyId"])
        key = KmsKey(arn=metadata["Arn"], key_id=metadata["KeyId"], alias=alias)
        ctx.record(KIND, alias, "created", key.arn)
        return key
    if not kms.get_key_rotation_status(KeyId=key.key_id).get("KeyRotationEnabled"):
        kms.enable_key_rotation(KeyId=key.key_id)
        ctx.record(KIND, alias, "updated", "automatic rotation turned on")
    else:
        ctx.record(KIND, alias, "exists", key.arn)
    return key


def schedule_deletion(ctx: Context) -> None:
    """Only with --delete-secrets: the key becomes unusable after a 30-day window (cancellable)."""
    kms = ctx.client("kms")
    try:
        key = find(kms, ctx.names.kms_alias)
    except BootstrapError:
        ctx.record(KIND, ctx.names.kms_alias, "skipped", "already scheduled for deletion")
        return
    if key is None:
        ctx.record(KIND, ctx.names.kms_alias, "skipped", "not found")
        return
    kms.schedule_key_deletion(KeyId=key.key_id, PendingWindowInDays=DELETION_WINDOW_DAYS)
    ctx.record(KIND, ctx.names.kms_alias, "deleted", f"scheduled in {DELETION_WINDOW_DAYS} days (cancellable)")
