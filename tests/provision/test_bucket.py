"""The attachments bucket: private, versioned, encrypted, TLS only, converged without rewriting."""

from __future__ import annotations

import json

import boto3
import pytest
from botocore.exceptions import ClientError

from misp_eks.provision import bucket
from tests.provision.conftest import Run, mutating

BUCKET = "misp-prod-attachments-123456789012"


def test_bucket_is_private_versioned_encrypted_and_tls_only(run: Run) -> None:
    assert bucket.ensure(run.ctx) == BUCKET
    s3 = boto3.client("s3")
    assert s3.get_bucket_versioning(Bucket=BUCKET)["Status"] == "Enabled"
    rule = s3.get_bucket_encryption(Bucket=BUCKET)["ServerSideEncryptionConfiguration"]["Rules"][0]
    assert rule["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    assert s3.get_public_access_block(Bucket=BUCKET)["PublicAccessBlockConfiguration"] == bucket.PUBLIC_ACCESS_BLOCK
    assert s3.get_bucket_ownership_controls(Bucket=BUCKET)["OwnershipControls"]["Rules"] == [
        {"ObjectOwnership": "BucketOwnerEnforced"}
    ]
    policy = json.loads(s3.get_bucket_policy(Bucket=BUCKET)["Policy"])
    deny = next(item for item in policy["Statement"] if item["Sid"] == "DenyInsecureTransport")
    assert deny["Effect"] == "Deny" and deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert f"arn:aws:s3:::{BUCKET}/*" in deny["Resource"]
    (lifecycle,) = s3.get_bucket_lifecycle_configuration(Bucket=BUCKET)["Rules"]
    assert lifecycle["NoncurrentVersionExpiration"] == {"NoncurrentDays": 90} and lifecycle["Status"] == "Enabled"
    tags = {tag["Key"]: tag["Value"] for tag in s3.get_bucket_tagging(Bucket=BUCKET)["TagSet"]}
    assert tags["environment"] == "prod" and tags["misp-eks/cluster"] == "misp-prod"


def test_converged_bucket_is_not_written(run: Run) -> None:
    bucket.ensure(run.ctx)
    run.calls.calls.clear()
    bucket.ensure(run.ctx)
    assert mutating(run.calls) == []
    assert run.action("S3 bucket", BUCKET) == "exists"


def test_drift_is_repaired_and_foreign_policy_statements_kept(run: Run) -> None:
    bucket.ensure(run.ctx)
    s3 = boto3.client("s3")
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Suspended"})
    extra = {
        "Sid": "AuditRead",
        "Effect": "Allow",
        "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
        "Action": "s3:GetObject",
        "Resource": f"arn:aws:s3:::{BUCKET}/*",
    }
    s3.put_bucket_policy(Bucket=BUCKET, Policy=json.dumps({"Version": "2012-10-17", "Statement": [extra]}))
    bucket.ensure(run.ctx)
    assert s3.get_bucket_versioning(Bucket=BUCKET)["Status"] == "Enabled"
    sids = {item["Sid"] for item in json.loads(s3.get_bucket_policy(Bucket=BUCKET)["Policy"])["Statement"]}
    assert sids == {"AuditRead", "DenyInsecureTransport", "DenyOutdatedTls"}
    assert run.action("S3 bucket", BUCKET) == "updated"


def test_a_bucket_left_untagged_by_an_interruption_gets_its_tags(run: Run) -> None:
    boto3.client("s3").create_bucket(
        Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
    )  # what CreateBucket left before an interruption
    bucket.ensure(run.ctx)
    tags = {tag["Key"]: tag["Value"] for tag in boto3.client("s3").get_bucket_tagging(Bucket=BUCKET)["TagSet"]}
    assert tags["misp-eks/cluster"] == "misp-prod"
    assert run.action("S3 bucket", BUCKET) == "updated"


def test_delete_removes_every_version(run: Run) -> None:
    # moto applies the TLS-only policy even to its own HTTPS requests, so this bucket has none.
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    s3.put_object(Bucket=BUCKET, Key="a", Body=b"1")
    s3.put_object(Bucket=BUCKET, Key="a", Body=b"2")
    bucket.delete(run.ctx)
    assert BUCKET not in [item["Name"] for item in s3.list_buckets()["Buckets"]]


def test_the_policy_admits_tls_1_2_clients_and_a_tighter_one_would_not(run: Run) -> None:
    # The emulated S3 sees every request as TLS 1.2, the floor the policy promises (conftest.py).
    bucket.ensure(run.ctx)
    s3 = boto3.client("s3")
    s3.put_object(Bucket=BUCKET, Key="attachment", Body=b"x")
    assert s3.get_object(Bucket=BUCKET, Key="attachment")["Body"].read() == b"x"
    policy = json.loads(s3.get_bucket_policy(Bucket=BUCKET)["Policy"])
    tls = next(item for item in policy["Statement"] if item["Sid"] == "DenyOutdatedTls")
    tls["Condition"] = {"NumericLessThan": {"s3:TlsVersion": "1.3"}}
    s3.put_bucket_policy(Bucket=BUCKET, Policy=json.dumps(policy))
    with pytest.raises(ClientError) as refused:
        s3.get_object(Bucket=BUCKET, Key="attachment")
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
