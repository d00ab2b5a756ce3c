"""Read access for External Secrets to the RDS-managed master secret, and nothing else.

eksctl creates the External Secrets role (cluster.yaml) before the database exists; once RDS has
made the master secret, the bootstrap adds this inline policy naming exactly its ARN.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import unquote

from botocore.exceptions import ClientError

from misp_eks import naming
from misp_eks.provision.context import Context
from misp_eks.provision.errors import MissingPrerequisite, error_code

KIND = "IAM inline policy"


def document(secret_arn: str) -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "ReadRdsMasterSecret",
                "Effect": "Allow",
                "Action": ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"],
                "Resource": secret_arn,
            }
        ],
    }


def _current(iam: Any, role: str) -> dict[str, Any] | None:
    try:
        policy = iam.get_role_policy(RoleName=role, PolicyName=naming.RDS_MASTER_SECRET_POLICY)["PolicyDocument"]
    except ClientError as error:
        if error_code(error) == "NoSuchEntity":
            return None
        raise
    return json.loads(unquote(policy)) if isinstance(policy, str) else policy


def ensure(ctx: Context, secret_arn: str) -> None:
    iam = ctx.client("iam")
    role = ctx.names.external_secrets_role
    label = f"{role}/{naming.RDS_MASTER_SECRET_POLICY}"
    try:
        iam.get_role(RoleName=role)
    except ClientError as error:
        if error_code(error) == "NoSuchEntity":
            raise MissingPrerequisite(f"IAM role {role} (eksctl pod identity association)", "cluster") from None
        raise
    wanted = document(secret_arn)
    current = _current(iam, role)
    if current == wanted:
        ctx.record(KIND, label, "exists", secret_arn)
        return
    iam.put_role_policy(RoleName=role, PolicyName=naming.RDS_MASTER_SECRET_POLICY, PolicyDocument=json.dumps(wanted))
    ctx.record(KIND, label, "created" if current is None else "updated", secret_arn)


def remove(ctx: Context) -> None:
    iam = ctx.client("iam")
    role = ctx.names.external_secrets_role
    label = f"{role}/{naming.RDS_MASTER_SECRET_POLICY}"
    try:
        iam.delete_role_policy(RoleName=role, PolicyName=naming.RDS_MASTER_SECRET_POLICY)
    except ClientError as error:
        if error_code(error) == "NoSuchEntity":
            ctx.record(KIND, label, "skipped", "not found")
            return
        raise
    ctx.record(KIND, label, "deleted")
