"""No secret in git, and every secret the manifests read is one the bootstrap creates."""

from __future__ import annotations

from misp_eks.policies import secrets
from misp_eks.validate.resources import Resource
from tests.policies.conftest import assert_finds, container, obj


def test_no_secret_objects(report):
    tree = report.applied("prod", "misp-backend")
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "x", "namespace": "misp"}, "data": {}}
    tree.resources.append(Resource(secret, "apps/misp/base/backend/secret.yaml"))
    assert_finds(secrets.no_secrets_in_git(report), "Secret misp/x", "ExternalSecret")


def test_no_secret_in_a_config_map(report):
    config_map = next(r for r in report.applied("prod", "misp-dashboard").of_kind("ConfigMap"))
    config_map.obj["data"]["DASHBOARD_SESSION_SECRET"] = "x"
    assert_finds(secrets.no_secrets_in_git(report), "DASHBOARD_SESSION_SECRET", "looks like a secret")


def test_no_literal_secret_env(report):
    deployment = obj(report, "prod", "misp-backend", "Deployment", "misp-workers")
    container(deployment, "misp-core")["env"].append({"name": "ADMIN_PASSWORD", "value": "x"})
    assert_finds(secrets.no_secrets_in_git(report), "ADMIN_PASSWORD must come from a Secret")


def test_remote_key_must_be_created_by_the_bootstrap(report):
    external = obj(report, "prod", "misp-backend", "ExternalSecret", "misp-redis")
    external["spec"]["data"][0]["remoteRef"]["key"] = "misp-prod/misp/valkey"
    assert_finds(secrets.external_secrets_match_bootstrap(report), "ExternalSecret misp/misp-redis", "creates no")


def test_remote_property_must_exist(report):
    external = obj(report, "prod", "misp-backend", "ExternalSecret", "misp-gpg")
    external["spec"]["data"][0]["remoteRef"]["property"] = "secret_key"
    assert_finds(secrets.external_secrets_match_bootstrap(report), "has no key secret_key")


def test_read_through_the_cluster_store(report):
    external = obj(report, "prod", "misp-database", "ExternalSecret", "rds-ca")
    external["spec"]["secretStoreRef"]["kind"] = "SecretStore"
    assert_finds(secrets.external_secrets_match_bootstrap(report), "ClusterSecretStore")


def test_extracted_key_must_be_created_by_the_bootstrap(report):
    external = obj(report, "prod", "misp-backend", "ExternalSecret", "misp-app")
    external["spec"]["dataFrom"][0]["extract"]["key"] = "misp-prod/misp/other"
    assert_finds(secrets.external_secrets_match_bootstrap(report), "spec.dataFrom[0].extract.key", "creates no")


def test_cluster_vars_never_name_a_secret(report, monkeypatch):
    names = secrets.ClusterVars.names
    monkeypatch.setattr(secrets.ClusterVars, "names", classmethod(lambda cls: [*names(), "redis_auth_token"]))
    assert_finds(secrets.cluster_vars_hold_no_secret(report), "redis_auth_token", "no secrets")


def test_kind_external_secrets_must_resolve_in_the_fake_store(report):
    assert not list(secrets.external_secrets_match_bootstrap(report))
    external = obj(report, "kind", "misp-backend", "ExternalSecret", "misp-redis")
    external["spec"]["data"][0]["remoteRef"]["property"] = "token"
    assert_finds(secrets.external_secrets_match_bootstrap(report), "ExternalSecret misp/misp-redis", "has no key token")
