"""Amazon SES for MISP's e-mail: identity, DKIM records, the sending user and the SMTP secret, teardown."""

from __future__ import annotations

import base64
import json
from dataclasses import replace
from typing import Any

import boto3
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from pydantic import ValidationError

from misp_eks import naming
from misp_eks.environment import Environment
from misp_eks.provision import plan, secrets, ses
from misp_eks.provision.errors import BootstrapError, InputError
from misp_eks.provision.phases import Phase
from misp_eks.settings import Settings
from tests.provision.conftest import Run, mutating
from tests.provision.ses_standin import tokens

SMTP_SECRET = "misp-prod/misp/smtp"  # pragma: allowlist secret (a name)
USER = "misp-prod-ses-smtp"


def _settings(run: Run, **email: Any) -> Settings:
    dumped = run.ctx.settings.model_dump()
    return Settings.model_validate({**dumped, "email": {"enabled": True, **email}})


@pytest.fixture
def enabled(run: Run, zone_id: str) -> Run:
    run.ctx.env = replace(run.ctx.env, settings=_settings(run))
    return run


def _secret() -> dict[str, str]:
    value: dict[str, str] = json.loads(
        boto3.client("secretsmanager").get_secret_value(SecretId=SMTP_SECRET)["SecretString"]
    )
    return value


def _records(zone_id: str) -> dict[tuple[str, str], list[str]]:
    found = boto3.client("route53").list_resource_record_sets(HostedZoneId=zone_id)["ResourceRecordSets"]
    return {
        (item["Name"], item["Type"]): [value["Value"] for value in item.get("ResourceRecords", [])] for item in found
    }


def test_the_smtp_password_is_the_sigv4_signing_key_chain_of_the_ses_docs() -> None:
    """Checked against botocore's own SigV4 key derivation (botocore/auth.py SigV4Auth.signature): its
    signing key for date 11111111, the region and "ses", applied to "SendRawEmail", is the password's
    32 bytes after the version byte 0x04."""
    key = "test/" + "k" * 35  # the form of a secret access key (40 characters), assembled
    request = AWSRequest(method="POST", url="https://email.eu-west-1.amazonaws.com/")
    request.context["timestamp"] = "11111111T000000Z"
    signer = SigV4Auth(Credentials("AKIDEXAMPLE", key), "ses", "eu-west-1")
    expected = bytes.fromhex(signer.signature("SendRawEmail", request))
    decoded = base64.b64decode(ses.smtp_password(key, "eu-west-1"))
    assert decoded[0] == 0x04 and decoded[1:] == expected and len(decoded) == 33
    assert ses.smtp_password(key, "us-east-1") != ses.smtp_password(key, "eu-west-1")


def test_disabled_email_creates_nothing(run: Run, zone_id: str) -> None:
    ses.ensure(run.ctx)
    assert mutating(run.calls) == []
    assert run.action(ses.IDENTITY, "example.org") == "skipped"


def test_enabled_email_creates_identity_dkim_records_user_and_secret(enabled: Run, zone_id: str) -> None:
    secrets.ensure(enabled.ctx, naming.MISP_SMTP)  # the secrets phase's placeholder
    assert set(_secret().values()) == {""}
    ses.ensure(enabled.ctx)
    sesv2 = boto3.client("sesv2")
    identity = sesv2.get_email_identity(EmailIdentity="example.org")
    assert {"Key": naming.CLUSTER_TAG, "Value": "misp-prod"} in identity["Tags"]
    params = [call.params for call in enabled.calls.calls if call.operation == "CreateEmailIdentity"]
    assert params[0]["DkimSigningAttributes"] == {"NextSigningKeyLength": "RSA_2048_BIT"}
    records = _records(zone_id)
    for token in tokens("example.org"):
        assert records[(f"{token}._domainkey.example.org.", "CNAME")] == [f"{token}.dkim.amazonses.com"]
    assert identity["DkimAttributes"]["Status"] == "SUCCESS"
    iam = boto3.client("iam")
    (key,) = iam.list_access_keys(UserName=USER)["AccessKeyMetadata"]
    value = _secret()
    assert value["username"] == key["AccessKeyId"]
    assert value["host"] == "email-smtp.eu-west-1.amazonaws.com" and value["port"] == "587"
    assert base64.b64decode(value["password"])[0] == 0x04
    assert enabled.action(secrets.KIND, SMTP_SECRET) == "updated"


def test_the_user_may_only_send_from_misp_through_its_identity(enabled: Run, zone_id: str) -> None:
    ses.ensure(enabled.ctx)
    policy = boto3.client("iam").get_user_policy(UserName=USER, PolicyName=ses.SEND_POLICY)["PolicyDocument"]
    (statement,) = policy["Statement"]
    assert statement["Effect"] == "Allow"
    assert sorted(statement["Action"]) == ["ses:SendEmail", "ses:SendRawEmail"]
    assert statement["Resource"] == "arn:aws:ses:eu-west-1:123456789012:identity/example.org"
    assert statement["Condition"] == {"StringEquals": {"ses:FromAddress": "misp@example.org"}}
    assert boto3.client("iam").list_attached_user_policies(UserName=USER)["AttachedPolicies"] == []


def test_a_converged_rerun_makes_no_write_and_keeps_the_secret(enabled: Run, zone_id: str) -> None:
    ses.ensure(enabled.ctx)
    before = _secret()
    enabled.calls.calls.clear()
    ses.ensure(enabled.ctx)
    assert mutating(enabled.calls) == []
    assert _secret() == before


def test_a_changed_policy_is_rewritten_and_nothing_else(enabled: Run, zone_id: str) -> None:
    ses.ensure(enabled.ctx)
    boto3.client("iam").put_user_policy(
        UserName=USER,
        PolicyName=ses.SEND_POLICY,
        PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "ses:*", "Resource": "*"}]}
        ),
    )
    enabled.calls.calls.clear()
    ses.ensure(enabled.ctx)
    assert mutating(enabled.calls) == ["iam:PutUserPolicy"]


def test_keys_of_an_interrupted_run_are_replaced(enabled: Run, zone_id: str) -> None:
    ses.ensure_identity(enabled.ctx)
    ses.ensure_user(enabled.ctx)
    orphan = boto3.client("iam").create_access_key(UserName=USER)["AccessKey"]["AccessKeyId"]
    ses.ensure_credentials(enabled.ctx)
    keys = [key["AccessKeyId"] for key in boto3.client("iam").list_access_keys(UserName=USER)["AccessKeyMetadata"]]
    assert orphan not in keys and keys == [_secret()["username"]]
    assert enabled.action(secrets.KIND, SMTP_SECRET) == "created"


def test_a_secret_holding_a_dead_key_gets_a_new_one(enabled: Run, zone_id: str) -> None:
    ses.ensure(enabled.ctx)
    old = _secret()["username"]
    boto3.client("iam").delete_access_key(UserName=USER, AccessKeyId=old)
    ses.ensure(enabled.ctx)
    assert _secret()["username"] not in ("", old)


def test_dkim_pending_is_reported_not_waited_for(enabled: Run, zone_id: str) -> None:
    dkim = ses.ensure_identity(enabled.ctx)
    assert dkim["Status"] == "PENDING"
    ses.ensure_dkim_records(enabled.ctx, dkim)
    assert "DKIM is PENDING" in enabled.output.getvalue()


def test_another_clusters_identity_is_refused(enabled: Run, zone_id: str) -> None:
    boto3.client("sesv2").create_email_identity(
        EmailIdentity="example.org", Tags=[{"Key": naming.CLUSTER_TAG, "Value": "misp-staging"}]
    )
    with pytest.raises(InputError, match=r"email\.domain: the SES identity example\.org exists"):
        ses.ensure(enabled.ctx)
    assert mutating(enabled.calls) == []


def test_destroy_removes_user_keys_records_and_identity_but_not_foreign_records(enabled: Run, zone_id: str) -> None:
    route53 = boto3.client("route53")
    foreign = {
        "Name": "other._domainkey.example.org.",
        "Type": "CNAME",
        "TTL": 300,
        "ResourceRecords": [{"Value": "x.example.net"}],
    }
    route53.change_resource_record_sets(
        HostedZoneId=zone_id, ChangeBatch={"Changes": [{"Action": "CREATE", "ResourceRecordSet": foreign}]}
    )
    ses.ensure(enabled.ctx)
    ses.delete_all(enabled.ctx)
    assert ses.find_identity(boto3.client("sesv2"), "example.org") is None
    assert USER not in [user["UserName"] for user in boto3.client("iam").list_users()["Users"]]
    records = _records(zone_id)
    assert not any("dkim.amazonses.com" in value for values in records.values() for value in values)
    assert records[("other._domainkey.example.org.", "CNAME")] == ["x.example.net"]
    enabled.calls.calls.clear()
    ses.delete_all(enabled.ctx)
    assert mutating(enabled.calls) == []


def test_settings_keep_the_sender_inside_the_sending_domain(run: Run) -> None:
    dumped = run.ctx.settings.model_dump()
    moved = {**dumped, "misp": {**dumped["misp"], "email": "misp@mail.example.org"}}
    assert Settings.model_validate(
        {**moved, "email": {"enabled": True, "domain": "mail.example.org"}}
    ).email_domain == ("mail.example.org")
    with pytest.raises(ValidationError, match=r"misp.email: the sender misp@example.org must be an address of mail"):
        Settings.model_validate(
            {**run.ctx.settings.model_dump(), "email": {"enabled": True, "domain": "mail.example.org"}}
        )
    with pytest.raises(ValidationError, match=r"email\.domain: example\.net is not example\.org nor inside it"):
        _settings(run, domain="example.net")
    assert _settings(run).email.delivery == "ses" and run.ctx.settings.email.delivery == "disabled"


def test_the_plan_shows_ses_only_when_enabled_with_cost_and_exposure(enabled: Run, prod: Environment) -> None:
    phases = (Phase.DNS,)
    assert not [row for row in plan.build(prod, enabled.ctx.aws, enabled.ctx.tools, phases) if "SES" in row.kind]
    rows = {row.kind: row for row in plan.build(enabled.ctx.env, enabled.ctx.aws, enabled.ctx.tools, phases)}
    identity, user = rows[ses.IDENTITY], rows[ses.USER]
    assert (identity.name, identity.action) == ("example.org", "create")
    assert "per 1000 e-mails" in identity.notes and "sandbox" in identity.notes
    assert (user.name, user.action) == (USER, "create") and "misp@example.org" in user.notes
    ses.ensure(enabled.ctx)
    rows = {row.kind: row for row in plan.build(enabled.ctx.env, enabled.ctx.aws, enabled.ctx.tools, phases)}
    assert rows[ses.IDENTITY].action == rows[ses.USER].action == "exists"
    (sync,) = [
        row
        for row in plan.build(enabled.ctx.env, None, enabled.ctx.tools, (Phase.GITOPS,))
        if row.kind == "ExternalSecret"
    ]
    assert (sync.name, sync.action) == ("misp/misp-smtp", "check") and "force-sync" in sync.notes


def test_the_plan_shows_another_clusters_identity_and_user_as_conflicts(enabled: Run) -> None:
    foreign = [{"Key": naming.CLUSTER_TAG, "Value": "misp-staging"}]
    boto3.client("sesv2").create_email_identity(EmailIdentity="example.org", Tags=foreign)
    boto3.client("iam").create_user(UserName=USER, Tags=foreign)
    rows = {row.kind: row for row in plan.build(enabled.ctx.env, enabled.ctx.aws, enabled.ctx.tools, (Phase.DNS,))}
    expected = f"conflict (tagged {naming.CLUSTER_TAG}=misp-staging)"
    assert rows[ses.IDENTITY].action == rows[ses.USER].action == expected


def test_another_clusters_user_is_refused_and_kept_by_destroy(enabled: Run) -> None:
    iam = boto3.client("iam")
    iam.create_user(UserName=USER, Tags=[{"Key": naming.CLUSTER_TAG, "Value": "misp-staging"}])
    key = iam.create_access_key(UserName=USER)["AccessKey"]["AccessKeyId"]
    with pytest.raises(BootstrapError, match=r"IAM user misp-prod-ses-smtp exists and is not this cluster's"):
        ses.ensure_user(enabled.ctx)
    enabled.calls.calls.clear()
    ses.delete_user(enabled.ctx)
    assert mutating(enabled.calls) == []
    assert enabled.action(ses.USER, USER) == "skipped"
    assert [item["AccessKeyId"] for item in iam.list_access_keys(UserName=USER)["AccessKeyMetadata"]] == [key]


def test_destroy_keeps_another_clusters_identity(enabled: Run, zone_id: str) -> None:
    boto3.client("sesv2").create_email_identity(
        EmailIdentity="example.org", Tags=[{"Key": naming.CLUSTER_TAG, "Value": "misp-staging"}]
    )
    ses.delete_identity(enabled.ctx)
    assert mutating(enabled.calls) == []
    assert ses.find_identity(boto3.client("sesv2"), "example.org") is not None
    assert enabled.action(ses.IDENTITY, "example.org") == "skipped"


def test_destroy_keeps_a_record_of_the_same_name_holding_another_value(enabled: Run, zone_id: str) -> None:
    ses.ensure(enabled.ctx)
    route53 = boto3.client("route53")
    token = tokens("example.org")[0]
    name = f"{token}._domainkey.example.org."
    replaced = {"Name": name, "Type": "CNAME", "TTL": 300, "ResourceRecords": [{"Value": "someone.example.net"}]}
    route53.change_resource_record_sets(
        HostedZoneId=zone_id, ChangeBatch={"Changes": [{"Action": "UPSERT", "ResourceRecordSet": replaced}]}
    )
    ses.delete_identity(enabled.ctx)
    records = _records(zone_id)
    assert records[(name, "CNAME")] == ["someone.example.net"]
    assert [key for key in records if key[1] == "CNAME" and "_domainkey" in key[0]] == [(name, "CNAME")]


def test_switching_email_off_deletes_the_users_keys_once(enabled: Run, prod: Environment) -> None:
    ses.ensure(enabled.ctx)
    rows = {row.kind: row for row in plan.build(prod, enabled.ctx.aws, enabled.ctx.tools, (Phase.DNS,))}
    assert rows[ses.ACCESS_KEY].action == "delete: found"
    enabled.ctx.env = prod
    enabled.calls.calls.clear()
    ses.ensure(enabled.ctx)
    assert mutating(enabled.calls) == ["iam:DeleteAccessKey"]
    assert boto3.client("iam").list_access_keys(UserName=USER)["AccessKeyMetadata"] == []
    enabled.calls.calls.clear()
    ses.ensure(enabled.ctx)
    assert mutating(enabled.calls) == []


def test_without_credentials_the_key_deletion_is_shown_as_unknown(prod: Environment, enabled: Run) -> None:
    """No AWS to ask: the plan must not promise a deletion of keys that may never have existed."""
    rows = {row.kind: row for row in plan.build(prod, None, enabled.ctx.tools, (Phase.DNS,))}
    assert rows[ses.ACCESS_KEY].action == "delete if found (unknown: no AWS credentials)"
