"""cluster-vars, flux bootstrap, and the verify phase."""

from __future__ import annotations

import json
import os
from dataclasses import replace

import boto3
import pytest

from misp_eks.cluster_vars import ClusterVars
from misp_eks.provision import gitops, preflight, verify
from misp_eks.provision.errors import BootstrapError, InputError, MissingPrerequisite
from misp_eks.settings import Gitops
from tests.provision.conftest import FakeTools, Run, mutating
from tests.provision.servers import https_server
from tests.servers.tls import make_certificates


def test_cluster_vars_are_built_from_settings_and_aws(converged: Run) -> None:
    values = gitops.build_cluster_vars(converged.ctx).data()
    assert set(values) == set(ClusterVars.names())
    db = boto3.client("rds").describe_db_instances()["DBInstances"][0]
    assert values["db_endpoint"] == db["Endpoint"]["Address"]
    assert values["db_master_secret_arn"] == db["MasterUserSecret"]["SecretArn"]
    groups = {
        group["ReplicationGroupId"]: group
        for group in boto3.client("elasticache").describe_replication_groups()["ReplicationGroups"]
    }
    assert values["misp_redis_endpoint"] == groups["misp-prod-misp"]["NodeGroups"][0]["PrimaryEndpoint"]["Address"]
    assert values["dashboard_hostname"] == "misp-dashboard.example.org" and values["domain"] == "example.org"
    assert values["hosted_zone_id"] and values["secrets_prefix"] == "misp-prod"
    assert values["ingress_scheme"] == "internet-facing"


def test_cluster_vars_then_flux_bootstrap_then_nothing_on_rerun(converged: Run, tools: FakeTools) -> None:
    gitops.ensure(converged.ctx, assume_yes=True)
    order = [(name, args[:2]) for name, args, _ in tools.runs if args[:1] in (["apply"], ["bootstrap"])]
    assert order == [("kubectl", ["apply", "-f"]), ("flux", ["bootstrap", "github"])]
    assert tools.state()["cluster_vars"] == gitops.build_cluster_vars(converged.ctx).data()
    tools.runs.clear()
    converged.calls.calls.clear()
    gitops.ensure(converged.ctx, assume_yes=True)
    assert [args[:2] for _, args, _ in tools.runs if args[:1] in (["apply"], ["bootstrap"])] == []
    assert mutating(converged.calls) == []


def test_flux_bootstrap_needs_a_github_token(converged: Run) -> None:
    converged.ctx.environ = {key: value for key, value in converged.ctx.environ.items() if key != "GITHUB_TOKEN"}
    with pytest.raises(InputError, match=r"GITHUB_TOKEN is not set.*never put it in a file"):
        gitops.ensure(converged.ctx, assume_yes=True)


def test_a_bootstrapped_cluster_needs_no_github_token(
    converged: Run, tools: FakeTools, monkeypatch: pytest.MonkeyPatch
) -> None:
    gitops.ensure(converged.ctx, assume_yes=True)
    converged.ctx.environ = {key: value for key, value in converged.ctx.environ.items() if key != "GITHUB_TOKEN"}
    gitops.ensure(converged.ctx, assume_yes=True)  # a converged re-run: Flux is there already
    preflight.run(converged.ctx, ["preflight", "gitops"])  # the cluster exists: no token asked for
    monkeypatch.setattr(preflight.cluster, "describe", lambda _eks, _name: None)
    with pytest.raises(InputError, match=r"GITHUB_TOKEN is not set: the gitops phase runs flux bootstrap github"):
        preflight.run(converged.ctx, ["preflight", "gitops"])  # a cluster yet to be made will need one


def test_flux_bootstrap_git_for_other_providers(run: Run) -> None:
    settings = run.ctx.settings.model_copy(
        update={"gitops": Gitops(provider="git", url="ssh://git@example.org/misp.git")}
    )
    run.ctx.env = replace(run.ctx.env, settings=settings)
    assert gitops.bootstrap_command(run.ctx, assume_yes=True) == [
        "bootstrap",
        "git",
        "--url=ssh://git@example.org/misp.git",
        "--branch=main",
        "--path=clusters/prod",
        f"--version={gitops.FLUX_DISTRIBUTION}",
        "--silent",
    ]


def test_gitops_needs_the_data_layer(run: Run, tools: FakeTools, eks: dict) -> None:
    with pytest.raises(MissingPrerequisite, match="run the data phase first"):
        gitops.ensure(run.ctx, assume_yes=True)


def test_verify_waits_for_kustomizations_and_endpoints(converged: Run, tools: FakeTools) -> None:
    statuses = iter([503, 502, 200, 200])
    converged.ctx.services["http_get"] = lambda url, timeout: next(statuses)
    verify.run(converged.ctx)
    assert converged.action("endpoint", "MISP") == "exists"


def test_verify_times_out_naming_the_endpoint(converged: Run, tools: FakeTools) -> None:
    converged.ctx.services["http_get"] = lambda url, timeout: 503
    with pytest.raises(BootstrapError, match=r"waiting for https://misp.example.org/users/heartbeat .*HTTP 503"):
        verify.run(converged.ctx)


def test_https_check_verifies_the_certificate(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    tls = make_certificates(tmp_path, ("misp.example.org",))
    with https_server(tls) as port:
        environ = {verify.CONNECT_TO_ENV: f"127.0.0.1:{port}"}
        monkeypatch.setenv("SSL_CERT_FILE", str(tls.ca))
        get = verify.https_get(environ)
        assert get("https://misp.example.org/users/heartbeat", 5) == 200
        assert get("https://misp.example.org/nothing", 5) == 404
        with pytest.raises(OSError, match=r"certificate|hostname|match"):
            get("https://other.example.org/users/heartbeat", 5)
        monkeypatch.setenv("SSL_CERT_FILE", os.devnull)
        with pytest.raises(OSError, match="certificate verify failed"):
            verify.https_get(environ)("https://misp.example.org/users/heartbeat", 5)


def test_kustomizations_not_ready_are_named() -> None:
    listing = {
        "items": [
            {"metadata": {"name": "apps"}, "status": {"conditions": [{"type": "Ready", "status": "False"}]}},
            {"metadata": {"name": "infra"}, "status": {"conditions": [{"type": "Ready", "status": "True"}]}},
            {"metadata": {"name": "new"}, "status": {}},
        ]
    }
    assert verify.not_ready(json.loads(json.dumps(listing))) == ["apps", "new"]
