"""Application secrets: generated once in forms MISP accepts, never overwritten; GPG key; RDS CA bundle."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import boto3
import pytest

from misp_eks import naming
from misp_eks.provision import credentials, gpg, rds_ca, secrets
from misp_eks.provision.errors import BootstrapError
from misp_eks.provision.tools import Tools
from tests.provision.conftest import FAKE_GPG, FAKE_PEM, Run, mutating
from tests.provision.servers import file_server


def _value(name: str) -> dict[str, str]:
    return json.loads(boto3.client("secretsmanager").get_secret_value(SecretId=name)["SecretString"])


def test_every_secret_is_created_with_its_keys_and_tags(run: Run) -> None:
    secrets.ensure_all(run.ctx)
    sm = boto3.client("secretsmanager")
    for spec in naming.SECRETS:
        name = spec.name("misp-prod")
        assert tuple(_value(name)) == spec.keys
        described = sm.describe_secret(SecretId=name)
        tags = {tag["Key"]: tag["Value"] for tag in described["Tags"]}
        assert tags["app.kubernetes.io/part-of"] == "misp" and tags["environment"] == "prod"
        assert tags["misp-eks/cluster"] == "misp-prod" and tags["cost-center"] == "threat-intelligence"
        assert described["Description"] == spec.description


def test_generated_values_have_forms_misp_and_aws_accept(run: Run) -> None:
    secrets.ensure_all(run.ctx)
    app = _value("misp-prod/misp/app")
    assert app["BASE_URL"] == "https://misp.example.org"
    assert app["ADMIN_EMAIL"] == "misp-admin@example.org" and app["MISP_EMAIL"] == "misp@example.org"
    assert app["ADMIN_ORG"] == "Example Sharing Community"
    assert "ADMIN_KEY" not in app  # the image would reset the admin's API keys at every start
    assert re.fullmatch(r"[A-Za-z0-9]{32,}", app["ENCRYPTION_KEY"]) and re.fullmatch(r"[A-Za-z0-9]{32,}", app["SALT"])
    uuid4 = r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"
    assert re.fullmatch(uuid4, app["UUID"]) and re.fullmatch(uuid4, app["ADMIN_ORG_UUID"])
    assert app["UUID"] != app["ADMIN_ORG_UUID"]
    assert re.fullmatch(r"[A-Za-z0-9]+", app["GPG_PASSPHRASE"])
    database = _value("misp-prod/misp/database")
    assert database == {"username": "misp", "password": database["password"], "database": "misp"}
    assert re.fullmatch(r"[A-Za-z0-9]{32}", database["password"])
    for name in ("misp-prod/misp/redis", "misp-prod/dashboard/redis"):
        assert re.fullmatch(r"[A-Za-z0-9]{64}", _value(name)["auth_token"])
    assert _value("misp-prod/rds-ca") == {"bundle": FAKE_PEM}
    assert _value("misp-prod/misp/gpg") == {"private_key": FAKE_GPG.private_key, "public_key": FAKE_GPG.public_key}
    assert _value("misp-prod/dashboard/maxmind") == {"account_id": "", "license_key": ""}


def test_admin_password_meets_misps_policy() -> None:
    for _ in range(200):
        password = credentials.admin_password()
        assert len(password) >= 12
        assert re.search(r"[A-Z]", password) and re.search(r"[a-z]", password) and re.search(r"\d", password)
        assert re.search(r"[^A-Za-z0-9]", password)
        assert not re.search(r"[\s'\"`$\\/@]", password)


def test_an_existing_secret_is_never_overwritten(run: Run) -> None:
    sm = boto3.client("secretsmanager")
    sm.create_secret(
        Name="misp-prod/misp/redis", SecretString=json.dumps({"auth_token": "chosen-by-the-operator-1234"})
    )
    secrets.ensure_all(run.ctx)
    assert _value("misp-prod/misp/redis") == {"auth_token": "chosen-by-the-operator-1234"}
    before = {spec.name("misp-prod"): _value(spec.name("misp-prod")) for spec in naming.SECRETS}
    run.calls.calls.clear()
    secrets.ensure_all(run.ctx)
    assert mutating(run.calls) == []
    assert {name: _value(name) for name in before} == before


def test_gpg_key_uses_the_existing_passphrase(run: Run) -> None:
    seen: list[tuple[str, str]] = []
    run.ctx.services["gpg_key"] = lambda email, passphrase: seen.append((email, passphrase)) or FAKE_GPG
    secrets.ensure(run.ctx, naming.MISP_APP)
    passphrase = _value("misp-prod/misp/app")["GPG_PASSPHRASE"]
    secrets.ensure(run.ctx, naming.MISP_GPG)
    assert seen == [("misp@example.org", passphrase)]


def test_a_secret_scheduled_for_deletion_stops_the_run(run: Run) -> None:
    sm = boto3.client("secretsmanager")
    sm.create_secret(Name="misp-prod/dashboard/app", SecretString="{}")
    sm.delete_secret(SecretId="misp-prod/dashboard/app", RecoveryWindowInDays=7)  # pragma: allowlist secret
    with pytest.raises(BootstrapError, match=r"scheduled for deletion.*restore-secret"):
        secrets.ensure(run.ctx, naming.DASHBOARD_APP)


def test_rds_ca_bundle_is_downloaded_from_the_overridable_trust_store() -> None:
    path = "/eu-west-1/eu-west-1-bundle.pem"
    with file_server({path: FAKE_PEM.encode()}) as base:
        assert rds_ca.download("eu-west-1", {rds_ca.TRUSTSTORE_ENV: base}) == FAKE_PEM
    assert rds_ca.bundle_url("eu-west-1", {}) == (
        "https://truststore.pki.rds.amazonaws.com/eu-west-1/eu-west-1-bundle.pem"
    )
    with file_server({path: b"not a certificate"}) as base, pytest.raises(BootstrapError, match="no PEM"):
        rds_ca.download("eu-west-1", {rds_ca.TRUSTSTORE_ENV: base})
    with file_server({}) as base, pytest.raises(BootstrapError, match="cannot download the RDS CA bundle"):
        rds_ca.download("eu-west-1", {rds_ca.TRUSTSTORE_ENV: base})


@pytest.mark.skipif(shutil.which("gpg") is None, reason="GnuPG is not installed (Debian package gnupg)")
def test_gpg_key_imports_into_gnupg_and_opens_with_the_passphrase(tmp_path: Path) -> None:
    import os

    key = gpg.generate(Tools(dict(os.environ)), "misp@example.org", "Passphrase0123456789")
    home = tmp_path / "gnupg"
    home.mkdir(mode=0o700)
    base = ["gpg", "--homedir", str(home), "--batch", "--no-tty"]
    subprocess.run([*base, "--import"], input=key.public_key, text=True, check=True, capture_output=True)
    subprocess.run(
        [*base, "--pinentry-mode", "loopback", "--passphrase", "Passphrase0123456789", "--import"],
        input=key.private_key,
        text=True,
        check=True,
        capture_output=True,
    )
    listing = subprocess.run(
        [*base, "--with-colons", "--list-secret-keys"], text=True, check=True, capture_output=True
    ).stdout
    primary = next(line.split(":") for line in listing.splitlines() if line.startswith("sec:"))
    assert primary[2] == "3072" and primary[3] == "1"  # RSA, 3072 bits
    assert primary[6] == ""  # no expiry
    assert "MISP <misp@example.org>" in listing
    assert key.fingerprint in listing
    signed = subprocess.run(
        [*base, "--pinentry-mode", "loopback", "--passphrase", "Passphrase0123456789", "--clearsign"],
        input="hello",
        text=True,
        capture_output=True,
        check=False,
    )
    assert signed.returncode == 0 and "BEGIN PGP SIGNATURE" in signed.stdout
    packets = subprocess.run(
        [*base, "--list-packets"], input=key.private_key, text=True, capture_output=True, check=False
    ).stdout
    assert "protection" in packets  # the secret key material is encrypted with the passphrase
    assert packets.count("secret key packet") + packets.count("secret sub key packet") == 2
    subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "gpg-agent"], check=False, capture_output=True)


def test_a_secret_created_meanwhile_by_another_run_is_kept(run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    """The race path: another run creates the secret between this run's look-up and its create_secret."""
    sm = boto3.client("secretsmanager")
    theirs = {"auth_token": "made-by-the-other-run-5678"}
    sm.create_secret(Name="misp-prod/misp/redis", SecretString=json.dumps(theirs))
    monkeypatch.setattr(secrets, "find", lambda _sm, _name: None)  # the look-up ran before the other run created it
    secrets.ensure(run.ctx, naming.MISP_REDIS)
    assert _value("misp-prod/misp/redis") == theirs
    assert run.action(secrets.KIND, "misp-prod/misp/redis") == "exists"
    assert mutating(run.calls) == ["secretsmanager:CreateSecret"]
