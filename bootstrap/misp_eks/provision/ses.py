"""Amazon SES for MISP's e-mail, when settings.yaml ``email.enabled`` is true (the dns phase).

- A domain identity (SES v2) for ``email.domain`` with Easy DKIM, 2048-bit keys; its three DKIM CNAMEs
  go into the hosted zone. The bootstrap does not wait for DKIM to verify: SES keeps checking the
  records for up to 72 hours by itself (SES developer guide, "Easy DKIM"), so the run reports the
  status and MISP's e-mail starts working once it reads SUCCESS.
- An IAM user ``<cluster>-ses-smtp`` that may only send, from MISP's address, through that identity.
- One access key, created only while ``<prefix>/misp/smtp`` holds the secrets phase's empty placeholder
  (or a key the user no longer has, after a destroy); the secret then holds the SMTP host, port, user
  and the password SES derives from the secret access key. A secret that holds one of the user's keys
  is never touched again, and no IAM write happens (rotation: docs/runbooks/rotation.md).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

from botocore.exceptions import ClientError

from misp_eks import naming
from misp_eks.provision import hosted_zone, secrets
from misp_eks.provision import tags as tagging
from misp_eks.provision.context import Context
from misp_eks.provision.errors import BootstrapError, InputError, error_code

IDENTITY = "SES identity"
USER = "IAM user"
ACCESS_KEY = "IAM access key"
SEND_POLICY = "ses-send"
"""The IAM user's one inline policy."""
DKIM_COMMENT = "SES Easy DKIM (MISP bootstrap)"


def enabled(ctx: Context) -> bool:
    return ctx.settings.email.enabled


def smtp_host(region: str) -> str:
    """SES's SMTP endpoint of ``region`` (SES developer guide, "Connecting to an Amazon SES SMTP endpoint")."""
    return f"email-smtp.{region}.amazonaws.com"


def _sign(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode(), hashlib.sha256).digest()


def smtp_password(secret_access_key: str, region: str) -> str:
    """The SES SMTP password of an IAM secret access key: a SigV4 signing key chain over the fixed date
    11111111, the region, "ses" and "aws4_request", then "SendRawEmail", prefixed by version byte 0x04
    and base64-encoded (SES developer guide, "Obtaining Amazon SES SMTP credentials")."""
    key = ("AWS4" + secret_access_key).encode()
    for part in ("11111111", region, "ses", "aws4_request", "SendRawEmail"):
        key = _sign(key, part)
    return base64.b64encode(bytes([0x04]) + key).decode()


def identity_arn(ctx: Context) -> str:
    names = ctx.names
    return f"arn:{names.partition}:ses:{names.region}:{names.account}:identity/{ctx.settings.email_domain}"


def send_policy(arn: str, sender: str) -> dict[str, Any]:
    """Send only, only through MISP's identity, only from MISP's address (SES developer guide,
    "Controlling access to Amazon SES": ses:FromAddress)."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": ["ses:SendRawEmail", "ses:SendEmail"],
                "Resource": arn,
                "Condition": {"StringEquals": {"ses:FromAddress": sender}},
            }
        ],
    }


def dkim_records(domain: str, tokens: list[str]) -> list[tuple[str, str]]:
    """(name, CNAME target) of each Easy DKIM token (SES developer guide, "Easy DKIM in Amazon SES")."""
    return [(f"{token}._domainkey.{domain}.", f"{token}.dkim.amazonses.com") for token in tokens]


# The identity.


def find_identity(sesv2: Any, domain: str) -> dict[str, Any] | None:
    try:
        found: dict[str, Any] = sesv2.get_email_identity(EmailIdentity=domain)
    except ClientError as error:
        if error_code(error) == "NotFoundException":
            return None
        raise
    return found


def _owner(found: dict[str, Any]) -> str | None:
    return tagging.as_dict(found.get("Tags")).get(naming.CLUSTER_TAG)


def ensure_identity(ctx: Context) -> dict[str, Any]:
    """The identity's DKIM attributes; created with this cluster's tags if missing, refused if another's."""
    sesv2 = ctx.client("sesv2")
    domain = ctx.settings.email_domain
    found = find_identity(sesv2, domain)
    if found is None:
        created = sesv2.create_email_identity(
            EmailIdentity=domain,
            DkimSigningAttributes={"NextSigningKeyLength": "RSA_2048_BIT"},
            Tags=tagging.key_value(ctx.tags),
        )
        ctx.record(IDENTITY, domain, "created", "Easy DKIM, RSA 2048")
        return dict(created.get("DkimAttributes", {}))
    if _owner(found) != ctx.names.cluster:
        raise InputError(
            f"clusters/{ctx.env.name}/settings.yaml: email.domain: the SES identity {domain} exists and is not "
            f"this cluster's ({naming.CLUSTER_TAG}={_owner(found) or 'none'}): choose another email.domain"
        )
    ctx.record(IDENTITY, domain, "exists")
    return dict(found.get("DkimAttributes", {}))


def ensure_dkim_records(ctx: Context, dkim: dict[str, Any]) -> None:
    tokens = list(dkim.get("Tokens", []))
    if len(tokens) != 3:
        raise BootstrapError(f"{IDENTITY} {ctx.settings.email_domain}: SES returned {len(tokens)} DKIM tokens, not 3")
    zone = hosted_zone.require(ctx)
    route53 = ctx.client("route53")
    for name, target in dkim_records(ctx.settings.email_domain, tokens):
        if hosted_zone.ensure_record(route53, zone.id, name, "CNAME", target, DKIM_COMMENT):
            ctx.record("Route53 record", name, "created", f"SES DKIM in {zone.name}")
    status = dkim.get("Status", "")
    if status != "SUCCESS":
        ctx.progress.warn(
            f"{IDENTITY} {ctx.settings.email_domain}: DKIM is {status or 'not checked yet'}; SES verifies the "
            "records by itself (up to 72 hours) and MISP's e-mail fails until then"
        )


# The IAM user and its credentials.


def _find_user(iam: Any, name: str) -> dict[str, Any] | None:
    try:
        user: dict[str, Any] = iam.get_user(UserName=name)["User"]
    except ClientError as error:
        if error_code(error) == "NoSuchEntity":
            return None
        raise
    return user


def ensure_user(ctx: Context) -> None:
    """The sending user and its one inline policy, rewritten only when it differs."""
    iam = ctx.client("iam")
    name = ctx.names.ses_smtp_user
    user = _find_user(iam, name)
    if user is None:
        iam.create_user(UserName=name, Tags=tagging.key_value(ctx.tags))
        ctx.record(USER, name, "created", "SES SMTP sender")
    elif tagging.as_dict(user.get("Tags")).get(naming.CLUSTER_TAG) != ctx.names.cluster:
        raise BootstrapError(
            f"{USER} {name} exists and is not this cluster's ({naming.CLUSTER_TAG}): rename or remove it"
        )
    wanted = send_policy(identity_arn(ctx), ctx.settings.misp.sender)
    try:
        # botocore decodes the URL-encoded document into a dict (handlers.json_decode_policies).
        current = iam.get_user_policy(UserName=name, PolicyName=SEND_POLICY)["PolicyDocument"]
    except ClientError as error:
        if error_code(error) != "NoSuchEntity":
            raise
        current = None
    if current != wanted:
        iam.put_user_policy(UserName=name, PolicyName=SEND_POLICY, PolicyDocument=json.dumps(wanted))
        ctx.record("IAM policy", f"{name}/{SEND_POLICY}", "created" if current is None else "updated")


def smtp_values(ctx: Context, access_key_id: str, secret_access_key: str) -> dict[str, str]:
    return {
        "host": smtp_host(ctx.names.region),
        "port": str(naming.SMTP_PORT),
        "username": access_key_id,
        "password": smtp_password(secret_access_key, ctx.names.region),
    }


def ensure_credentials(ctx: Context) -> None:
    """Fill the SMTP secret once; with a user in it, make no IAM write at all."""
    sm = ctx.client("secretsmanager")
    iam = ctx.client("iam")
    spec = naming.MISP_SMTP
    name = ctx.names.secret(spec)
    user = ctx.names.ses_smtp_user
    found = secrets.find(sm, name)
    keys = iam.list_access_keys(UserName=user).get("AccessKeyMetadata", [])
    held = secrets.read(ctx, spec).get("username", "") if found is not None else ""
    if held and held in [key["AccessKeyId"] for key in keys]:
        ctx.record(secrets.KIND, name, "exists", "kept as it is")
        return
    # Otherwise the secret is the placeholder, or holds a key the user no longer has (a destroy deletes
    # the user but keeps the secrets): either way it cannot send, and gets a new key.
    # Keys that no secret holds are left by an interrupted run: their secret is lost, so they go.
    for key in keys:
        iam.delete_access_key(UserName=user, AccessKeyId=key["AccessKeyId"])
        ctx.record(ACCESS_KEY, key["AccessKeyId"], "deleted", "held by no secret")
    created = iam.create_access_key(UserName=user)["AccessKey"]
    ctx.record(ACCESS_KEY, created["AccessKeyId"], "created", f"for {user}")
    value = json.dumps(smtp_values(ctx, created["AccessKeyId"], created["SecretAccessKey"]))
    if found is None:
        sm.create_secret(Name=name, Description=spec.description, SecretString=value, Tags=tagging.key_value(ctx.tags))
        ctx.record(secrets.KIND, name, "created", "SES SMTP credentials")
    else:
        sm.put_secret_value(SecretId=name, SecretString=value)
        ctx.record(secrets.KIND, name, "updated", f"SES SMTP credentials{' replace ' + held if held else ''}")


def retire_keys(ctx: Context) -> None:
    """With e-mail switched off again, this cluster's sending user keeps no live key (the user, its policy
    and the identity stay, harmless, until a destroy; switching on again makes a new key)."""
    iam = ctx.client("iam")
    name = ctx.names.ses_smtp_user
    user = _find_user(iam, name)
    if user is None or tagging.as_dict(user.get("Tags")).get(naming.CLUSTER_TAG) != ctx.names.cluster:
        return
    for key in iam.list_access_keys(UserName=name).get("AccessKeyMetadata", []):
        iam.delete_access_key(UserName=name, AccessKeyId=key["AccessKeyId"])
        ctx.record(ACCESS_KEY, key["AccessKeyId"], "deleted", "settings.yaml email.enabled is false")


def ensure(ctx: Context) -> None:
    if not enabled(ctx):
        ctx.record(IDENTITY, ctx.settings.email_domain, "skipped", "settings.yaml email.enabled is false")
        retire_keys(ctx)
        return
    dkim = ensure_identity(ctx)
    ensure_dkim_records(ctx, dkim)
    ensure_user(ctx)
    ensure_credentials(ctx)


# Teardown, in reverse.


def delete_user(ctx: Context) -> None:
    iam = ctx.client("iam")
    name = ctx.names.ses_smtp_user
    user = _find_user(iam, name)
    if user is None or tagging.as_dict(user.get("Tags")).get(naming.CLUSTER_TAG) != ctx.names.cluster:
        ctx.record(USER, name, "skipped", "not found" if user is None else "not this cluster's")
        return
    for key in iam.list_access_keys(UserName=name).get("AccessKeyMetadata", []):
        iam.delete_access_key(UserName=name, AccessKeyId=key["AccessKeyId"])
        ctx.record(ACCESS_KEY, key["AccessKeyId"], "deleted")
    for policy in iam.list_user_policies(UserName=name).get("PolicyNames", []):
        iam.delete_user_policy(UserName=name, PolicyName=policy)
    iam.delete_user(UserName=name)
    ctx.record(USER, name, "deleted")


def delete_identity(ctx: Context) -> None:
    """The DKIM records we made, then the identity (only this cluster's: found by its tag)."""
    sesv2 = ctx.client("sesv2")
    domain = ctx.settings.email_domain
    found = find_identity(sesv2, domain)
    if found is None or _owner(found) != ctx.names.cluster:
        ctx.record(IDENTITY, domain, "skipped", "not found" if found is None else "not this cluster's")
        return
    zone = hosted_zone.find(ctx.client("route53"), ctx.settings.domain)
    if zone is not None:
        for name, target in dkim_records(domain, list(found.get("DkimAttributes", {}).get("Tokens", []))):
            if hosted_zone.delete_record(ctx.client("route53"), zone.id, name, "CNAME", target, DKIM_COMMENT):
                ctx.record("Route53 record", name, "deleted", "SES DKIM")
    sesv2.delete_email_identity(EmailIdentity=domain)
    ctx.record(IDENTITY, domain, "deleted")


def delete_all(ctx: Context) -> None:
    delete_user(ctx)
    delete_identity(ctx)
