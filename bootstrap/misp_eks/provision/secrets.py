"""Every application secret of an environment, in Secrets Manager under the environment's prefix.

Generated once and never overwritten: an existing secret is left exactly as it is, whatever its
value. The operator-supplied ones (MaxMind) are created with empty values for the operator to fill.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from misp_eks import naming
from misp_eks.provision import credentials, gpg, rds_ca
from misp_eks.provision import tags as tagging
from misp_eks.provision.context import Context
from misp_eks.provision.errors import BootstrapError, MissingPrerequisite, error_code
from misp_eks.settings import Misp

KIND = "secret"


def find(sm: Any, name: str) -> dict[str, Any] | None:
    try:
        found: dict[str, Any] = sm.describe_secret(SecretId=name)
    except ClientError as error:
        if error_code(error) == "ResourceNotFoundException":
            return None
        raise
    if found.get("DeletedDate"):
        raise BootstrapError(
            f"{KIND} {name} is scheduled for deletion: restore it with "
            f"`aws secretsmanager restore-secret --secret-id {name}` (the bootstrap never replaces a secret), "
            "then re-run"
        )
    return found


def read(ctx: Context, spec: naming.SecretSpec) -> dict[str, str]:
    name = ctx.names.secret(spec)
    try:
        value = ctx.client("secretsmanager").get_secret_value(SecretId=name)["SecretString"]
    except ClientError as error:
        if error_code(error) == "ResourceNotFoundException":
            raise MissingPrerequisite(f"{KIND} {name}", "secrets") from None
        raise
    data = json.loads(value)
    if not isinstance(data, dict):
        raise BootstrapError(f"{KIND} {name} does not hold a JSON object")
    return {str(key): str(item) for key, item in data.items()}


@dataclass(frozen=True)
class Sources:
    """What the generators need: the bootstrap fills it from AWS; a kind cluster (misp_eks.kind) from itself."""

    misp_hostname: str
    misp: Misp
    gpg_key: Callable[[str, str], gpg.GpgKey]
    """(e-mail, passphrase) -> a new key pair."""
    rds_ca: Callable[[], str]
    """The CA bundle that verifies the database's certificate."""
    read: Callable[[naming.SecretSpec], dict[str, str]]
    """A secret generated before (the GPG key's passphrase lives in misp/app)."""


def _misp_app(sources: Sources) -> dict[str, str]:
    misp = sources.misp
    return {
        "BASE_URL": f"https://{sources.misp_hostname}",
        "ADMIN_EMAIL": misp.admin_email,
        "ADMIN_ORG": misp.org,
        "ADMIN_ORG_UUID": credentials.new_uuid(),
        "ADMIN_PASSWORD": credentials.admin_password(),
        "MISP_EMAIL": misp.sender,
        "ENCRYPTION_KEY": credentials.encryption_key(),
        "SALT": credentials.salt(),
        "UUID": credentials.new_uuid(),
        "GPG_PASSPHRASE": credentials.gpg_passphrase(),
        # supervisord's inet_http_server and supervisorctl in misp-core (misp-docker SUPERVISOR_PASSWORD).
        "SUPERVISOR_PASSWORD": credentials.alphanumeric(32),
    }


def _misp_gpg(sources: Sources) -> dict[str, str]:
    passphrase = sources.read(naming.MISP_APP)["GPG_PASSPHRASE"]
    key = sources.gpg_key(sources.misp.sender, passphrase)
    return {"private_key": key.private_key, "public_key": key.public_key}


GENERATORS: dict[str, Callable[[Sources], dict[str, str]]] = {
    naming.MISP_APP.suffix: _misp_app,
    naming.MISP_GPG.suffix: _misp_gpg,
    naming.MISP_DATABASE.suffix: lambda _sources: {
        "username": naming.DATABASE_APP_USER,
        "password": credentials.database_password(),
        "database": naming.DATABASE_NAME,
    },
    naming.MISP_REDIS.suffix: lambda _sources: {"auth_token": credentials.redis_auth_token()},
    naming.RDS_CA.suffix: lambda sources: {"bundle": sources.rds_ca()},
    naming.DASHBOARD_APP.suffix: lambda _sources: {"session_secret": credentials.session_secret()},
    naming.DASHBOARD_REDIS.suffix: lambda _sources: {"auth_token": credentials.redis_auth_token()},
}


def generate(spec: naming.SecretSpec, sources: Sources) -> dict[str, str]:
    """A new value for ``spec``: empty for the operator-supplied ones and those a later phase fills
    (MISP's ExternalSecrets then always resolve: misp/smtp's access key exists only with e-mail on)."""
    if spec.starts_empty:
        return dict.fromkeys(spec.keys, "")
    generated = GENERATORS[spec.suffix](sources)
    if set(generated) != set(spec.keys):
        missing = sorted(set(spec.keys) - set(generated))
        raise BootstrapError(f"internal: no generator for {spec.suffix} keys {missing or sorted(generated)}")
    return {key: generated[key] for key in spec.keys}


def _sources(ctx: Context) -> Sources:
    make_key: Callable[[str, str], gpg.GpgKey] = ctx.services.get(
        "gpg_key", lambda email, secret: gpg.generate(ctx.tools, email, secret)
    )
    fetch: Callable[[str], str] = ctx.services.get("rds_ca", lambda region: rds_ca.download(region, ctx.environ))
    return Sources(
        misp_hostname=ctx.settings.hostnames.misp,
        misp=ctx.settings.misp,
        gpg_key=make_key,
        rds_ca=lambda: fetch(ctx.names.region),
        read=lambda spec: read(ctx, spec),
    )


def values(ctx: Context, spec: naming.SecretSpec) -> dict[str, str]:
    return generate(spec, _sources(ctx))


def ensure(ctx: Context, spec: naming.SecretSpec) -> None:
    """Create the secret if it does not exist; never touch one that does."""
    sm = ctx.client("secretsmanager")
    name = ctx.names.secret(spec)
    if find(sm, name) is not None:
        ctx.record(KIND, name, "exists", "kept as it is")
        return
    try:
        sm.create_secret(
            Name=name,
            Description=spec.description,
            SecretString=json.dumps(values(ctx, spec)),
            Tags=tagging.key_value(ctx.tags),
        )
    except ClientError as error:
        if error_code(error) != "ResourceExistsException":
            raise
        ctx.record(KIND, name, "exists", "created meanwhile; kept")
        return
    detail = "empty: fill in by hand" if spec.operator_supplied else "generated"
    if spec.filled_by:
        detail = f"empty: the {spec.filled_by} phase fills it when settings ask for it"
    ctx.record(KIND, name, "created", detail)


def ensure_all(ctx: Context) -> None:
    for spec in naming.SECRETS:
        ensure(ctx, spec)


def delete_all(ctx: Context) -> None:
    """Only with --delete-secrets: scheduled deletion with the 30-day recovery window (restorable)."""
    sm = ctx.client("secretsmanager")
    for spec in naming.SECRETS:
        name = ctx.names.secret(spec)
        try:
            found = find(sm, name)
        except BootstrapError:
            ctx.record(KIND, name, "skipped", "already scheduled for deletion")
            continue
        if found is None:
            ctx.record(KIND, name, "skipped", "not found")
            continue
        sm.delete_secret(SecretId=name, RecoveryWindowInDays=30)
        ctx.record(KIND, name, "deleted", "restorable for 30 days")
