"""The attachments bucket: private, versioned, encrypted, TLS-only, owned by the bucket owner.

Encryption is SSE-S3 (AES256) rather than SSE-KMS with the AWS-managed ``aws/s3`` key: the managed
key's policy lets any principal of the account that may use S3 decrypt, so it adds no access control
over SSE-S3, while it adds a KMS request (cost and request quota) to every object read and write.
Access is controlled by the bucket policy and the MISP pod identity role (cluster.yaml).
"""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from misp_eks.provision import tags as tagging
from misp_eks.provision.context import Context
from misp_eks.provision.errors import BootstrapError, error_code

KIND = "S3 bucket"
NONCURRENT_DAYS = 90
LIFECYCLE_RULE = "misp-noncurrent-versions"
PUBLIC_ACCESS_BLOCK = {
    "BlockPublicAcls": True,
    "IgnorePublicAcls": True,
    "BlockPublicPolicy": True,
    "RestrictPublicBuckets": True,
}
ENCRYPTION = {"Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}, "BucketKeyEnabled": True}]}
LIFECYCLE = {
    "Rules": [
        {
            "ID": LIFECYCLE_RULE,
            "Status": "Enabled",
            "Filter": {"Prefix": ""},
            "NoncurrentVersionExpiration": {"NoncurrentDays": NONCURRENT_DAYS},
            "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 7},
        }
    ]
}


def policy_statements(bucket: str, partition: str = "aws") -> list[dict[str, Any]]:
    resources = [f"arn:{partition}:s3:::{bucket}", f"arn:{partition}:s3:::{bucket}/*"]
    return [
        {
            "Sid": "DenyInsecureTransport",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:*",
            "Resource": resources,
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        },
        {
            "Sid": "DenyOutdatedTls",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:*",
            "Resource": resources,
            "Condition": {"NumericLessThan": {"s3:TlsVersion": "1.2"}},
        },
    ]


def exists(s3: Any, bucket: str) -> bool:
    try:
        s3.head_bucket(Bucket=bucket)
    except ClientError as error:
        code = error_code(error)
        if code in ("404", "NoSuchBucket", "NotFound"):
            return False
        if code in ("403", "AccessDenied"):
            raise BootstrapError(
                f"{KIND} {bucket} exists but is not accessible with these credentials (another account owns it?)"
            ) from None
        raise
    return True


def _get(call: Any, missing: tuple[str, ...], **kwargs: Any) -> dict[str, Any] | None:
    try:
        answer: dict[str, Any] = call(**kwargs)
    except ClientError as error:
        if error_code(error) in missing:
            return None
        raise
    return answer


def ensure(ctx: Context) -> str:
    """Create the bucket if missing and converge each setting, writing only what differs."""
    s3 = ctx.client("s3")
    bucket = ctx.names.attachments_bucket
    changed: list[str] = []
    created = False
    if not exists(s3, bucket):
        options: dict[str, Any] = {"Bucket": bucket, "ObjectOwnership": "BucketOwnerEnforced"}
        if ctx.names.region != "us-east-1":
            options["CreateBucketConfiguration"] = {"LocationConstraint": ctx.names.region}
        s3.create_bucket(**options)
        created = True
    # Tags are written when there are none, so that a run interrupted right after CreateBucket
    # still ends with a tagged bucket (tags changed by hand afterwards are left alone).
    if not (_get(s3.get_bucket_tagging, ("NoSuchTagSet",), Bucket=bucket) or {}).get("TagSet"):
        s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": tagging.key_value(ctx.tags)})
        changed.append("tags")
    ownership = _get(s3.get_bucket_ownership_controls, ("OwnershipControlsNotFoundError",), Bucket=bucket)
    rules = (ownership or {}).get("OwnershipControls", {}).get("Rules", [])
    if [rule.get("ObjectOwnership") for rule in rules] != ["BucketOwnerEnforced"]:
        s3.put_bucket_ownership_controls(
            Bucket=bucket, OwnershipControls={"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}
        )
        changed.append("owner enforced")
    block = _get(s3.get_public_access_block, ("NoSuchPublicAccessBlockConfiguration",), Bucket=bucket)
    if (block or {}).get("PublicAccessBlockConfiguration") != PUBLIC_ACCESS_BLOCK:
        s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration=PUBLIC_ACCESS_BLOCK)
        changed.append("public access blocked")
    encryption = _get(s3.get_bucket_encryption, ("ServerSideEncryptionConfigurationNotFoundError",), Bucket=bucket)
    algorithms = [
        rule.get("ApplyServerSideEncryptionByDefault", {}).get("SSEAlgorithm")
        for rule in (encryption or {}).get("ServerSideEncryptionConfiguration", {}).get("Rules", [])
    ]
    if not any(algorithm in ("AES256", "aws:kms", "aws:kms:dsse") for algorithm in algorithms):
        s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration=ENCRYPTION)
        changed.append("encryption")
    if s3.get_bucket_versioning(Bucket=bucket).get("Status") != "Enabled":
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
        changed.append("versioning")
    if _converge_policy(s3, bucket, ctx.names.partition):
        changed.append("TLS-only policy")
    if _converge_lifecycle(s3, bucket):
        changed.append("lifecycle")
    detail = f"versioned, SSE-S3, TLS only, noncurrent versions kept {NONCURRENT_DAYS} days"
    if created:
        ctx.record(KIND, bucket, "created", detail)
    elif changed:
        ctx.record(KIND, bucket, "updated", ", ".join(changed))
    else:
        ctx.record(KIND, bucket, "exists", detail)
    return bucket


def _converge_policy(s3: Any, bucket: str, partition: str) -> bool:
    answer = _get(s3.get_bucket_policy, ("NoSuchBucketPolicy",), Bucket=bucket)
    current = json.loads(answer["Policy"]) if answer else {"Version": "2012-10-17", "Statement": []}
    wanted = policy_statements(bucket, partition)
    ours = {statement["Sid"] for statement in wanted}
    kept = [statement for statement in current.get("Statement", []) if statement.get("Sid") not in ours]
    present = [statement for statement in current.get("Statement", []) if statement.get("Sid") in ours]
    if _canonical(present) == _canonical(wanted):
        return False
    policy = {"Version": "2012-10-17", "Statement": [*kept, *wanted]}
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy))
    return True


def _canonical(statements: list[dict[str, Any]]) -> list[str]:
    return sorted(json.dumps(statement, sort_keys=True) for statement in statements)


def _converge_lifecycle(s3: Any, bucket: str) -> bool:
    answer = _get(s3.get_bucket_lifecycle_configuration, ("NoSuchLifecycleConfiguration",), Bucket=bucket)
    rules = (answer or {}).get("Rules", [])
    wanted = LIFECYCLE["Rules"][0]
    ours = next((rule for rule in rules if rule.get("ID") == LIFECYCLE_RULE), None)
    if ours is not None and all(ours.get(key) == wanted[key] for key in ("Status", "NoncurrentVersionExpiration")):
        return False
    others = [rule for rule in rules if rule.get("ID") != LIFECYCLE_RULE]
    s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": [*others, wanted]})
    return True


def delete(ctx: Context) -> None:
    """Only with --delete-bucket: every object version and delete marker, then the bucket."""
    s3 = ctx.client("s3")
    bucket = ctx.names.attachments_bucket
    if not exists(s3, bucket):
        ctx.record(KIND, bucket, "skipped", "not found")
        return
    removed = 0
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
        objects = [
            {"Key": item["Key"], "VersionId": item["VersionId"]}
            for item in [*page.get("Versions", []), *page.get("DeleteMarkers", [])]
        ]
        for start in range(0, len(objects), 1000):
            s3.delete_objects(Bucket=bucket, Delete={"Objects": objects[start : start + 1000], "Quiet": True})
        removed += len(objects)
    s3.delete_bucket(Bucket=bucket)
    ctx.record(KIND, bucket, "deleted", f"{removed} object versions")
