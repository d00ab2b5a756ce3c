"""cluster-vars, flux bootstrap, and the verify phase, against the fake API server (tests.provision.apiserver)."""

from __future__ import annotations

import base64
import json
import os
import stat
import time
from dataclasses import replace
from pathlib import Path

import boto3
import pytest
import yaml
from kubernetes import client
from kubernetes import config as kubeconfig_loader

from misp_eks import naming
from misp_eks.cluster_vars import ClusterVars
from misp_eks.paths import repository_root
from misp_eks.problems import UserError
from misp_eks.provision import eks_token, flux_wait, gitops, kube, preflight, ses, verify
from misp_eks.provision.errors import BootstrapError, InputError, MissingPrerequisite
from misp_eks.settings import Gitops, Settings
from tests.provision import cli_tables, standin
from tests.provision.apiserver import ApiServer, Running, verify_token
from tests.provision.cluster_api import external_secrets_controller, seed_external_secret
from tests.provision.conftest import FakeTools, Run, mutating
from tests.provision.pflag import Parsed
from tests.provision.servers import https_server
from tests.servers.tls import free_port, make_certificates


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


MUTATING = ("POST", "PUT", "PATCH", "DELETE")


def test_cluster_vars_then_flux_bootstrap_then_nothing_on_rerun(
    converged: Run, tools: FakeTools, apiserver: Running
) -> None:
    gitops.ensure(converged.ctx, assume_yes=True)
    writes = [(method, path) for method, path, _ in apiserver.server.requests if method in MUTATING]
    configmap = writes.index(("POST", "/api/v1/namespaces/flux-system/configmaps"))
    crd = writes.index(("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"))  # flux bootstrap
    assert configmap < crd and [name for name, args, _ in tools.runs if args[:1] == ["bootstrap"]] == ["flux"]
    stored = apiserver.server.get(apiserver.server.kind("", "v1", "configmaps"), "flux-system", "cluster-vars")
    assert stored is not None and stored["data"] == gitops.build_cluster_vars(converged.ctx).data()
    assert stored["metadata"]["labels"] == {"app.kubernetes.io/managed-by": "misp-eks-bootstrap"}
    tools.runs.clear()
    apiserver.server.requests.clear()
    converged.calls.calls.clear()
    gitops.ensure(converged.ctx, assume_yes=True)
    assert [args[:2] for _, args, _ in tools.runs if args[:1] == ["bootstrap"]] == []
    assert [request for request in apiserver.server.requests if request[0] in MUTATING] == []
    assert mutating(converged.calls) == []


def test_changed_cluster_vars_replace_the_configmap(converged: Run, tools: FakeTools, apiserver: Running) -> None:
    gitops.ensure(converged.ctx, assume_yes=True)
    kind = apiserver.server.kind("", "v1", "configmaps")
    stale = apiserver.server.get(kind, "flux-system", "cluster-vars") or {}
    apiserver.server.put(kind, {**stale, "data": {**stale["data"], "domain": "old.example.org"}}, "flux-system")
    gitops.ensure_cluster_vars(converged.ctx)
    assert converged.action("ConfigMap", "flux-system/cluster-vars") == "updated"
    assert (apiserver.server.get(kind, "flux-system", "cluster-vars") or {})["data"]["domain"] == "example.org"
    with pytest.raises(BootstrapError, match=r"replacing ConfigMap flux-system/cluster-vars: 409 .*modified"):
        kube.write_config_map(converged.ctx, stale, stale)  # a resourceVersion someone else replaced meanwhile


def test_an_identity_without_access_to_the_cluster_gets_one_line(
    converged: Run, tools: FakeTools, apiserver: Running
) -> None:
    apiserver.server.secrets.clear()  # STS knows no such key
    with pytest.raises(BootstrapError, match=r"refused the bootstrap's EKS token .*401.*access entry.*expired.*clock"):
        gitops.ensure_cluster_vars(converged.ctx)


def test_an_access_entry_without_a_policy_is_told_what_to_associate(
    converged: Run, tools: FakeTools, apiserver: Running
) -> None:
    apiserver.server.without_policy.update(apiserver.server.secrets)
    with pytest.raises(
        BootstrapError, match=r"forbids reading ConfigMap flux-system/cluster-vars: .*forbidden.*ClusterAdminPolicy"
    ) as error:
        gitops.ensure_cluster_vars(converged.ctx)
    assert "associate-access-policy" in error.value.message and "AmazonEKSClusterAdminPolicy" in error.value.message


def test_flux_gets_a_private_kubeconfig_with_a_fresh_token_and_no_exec_plugin(
    converged: Run, tools: FakeTools, apiserver: Running
) -> None:
    assert kube.namespace_exists(converged.ctx, "misp")  # the client's token, made now
    cached = kube.tokens(converged.ctx).token()
    time.sleep(1.1)  # X-Amz-Date has a resolution of one second
    path = kube.kubeconfig(converged.ctx)
    assert path.parent == converged.ctx.workdir and stat.S_IMODE(path.stat().st_mode) == 0o600
    document = yaml.safe_load(path.read_text())
    (user,) = document["users"]
    assert set(user["user"]) == {"token"}  # no exec plugin: no aws CLI, nothing else to run
    verify_token(user["user"]["token"], "misp-prod", apiserver.server.secrets)
    assert user["user"]["token"] != cached  # made for flux, with its whole lifetime ahead
    (entry,) = document["clusters"]
    assert entry["cluster"]["server"] == apiserver.url
    assert base64.b64decode(entry["cluster"]["certificate-authority-data"]) == apiserver.ca_pem
    api = kubeconfig_loader.new_client_from_config(config_file=str(path))  # the official loader accepts it
    assert client.CoreV1Api(api).read_namespace("misp").metadata.name == "misp"


def test_the_api_client_refreshes_its_token(converged: Run, tools: FakeTools, monkeypatch: pytest.MonkeyPatch) -> None:
    assert kube.namespace_exists(converged.ctx, "misp")
    source = kube.tokens(converged.ctx)
    first = source.token()
    later = time.time() + eks_token.REFRESH_AFTER_SECONDS
    monkeypatch.setattr(source, "clock", lambda: later)
    time.sleep(1.1)  # X-Amz-Date has a resolution of one second
    assert kube.namespace_exists(converged.ctx, "misp-dashboard")
    assert source.token() != first
    assert kube.api(converged.ctx).configuration.api_key["authorization"] == source.token()


def test_flux_bootstrap_needs_a_github_token(converged: Run) -> None:
    converged.ctx.environ = {key: value for key, value in converged.ctx.environ.items() if key != "GITHUB_TOKEN"}
    with pytest.raises(InputError, match=r"GITHUB_TOKEN is not set.*never put it in a file") as caught:
        gitops.ensure(converged.ctx, assume_yes=True)
    # without --token-auth flux adds a deploy key and pushes its manifests to the branch itself
    assert "Administration read/write, Contents read/write, Metadata read" in str(caught.value)
    assert f"if {converged.ctx.settings.gitops.branch} is protected" in str(caught.value)


def test_a_bootstrapped_cluster_needs_no_github_token(
    converged: Run, tools: FakeTools, monkeypatch: pytest.MonkeyPatch
) -> None:
    gitops.ensure(converged.ctx, assume_yes=True)
    converged.ctx.environ = {key: value for key, value in converged.ctx.environ.items() if key != "GITHUB_TOKEN"}
    gitops.ensure(converged.ctx, assume_yes=True)  # a converged re-run: Flux is there already
    preflight.run(converged.ctx, ["preflight", "gitops"])  # the cluster exists: no token asked for
    monkeypatch.setattr(preflight.cluster, "describe", lambda _eks, _name: None)
    with pytest.raises(
        InputError, match=r"GITHUB_TOKEN is not set: the gitops phase runs flux bootstrap github"
    ) as caught:
        preflight.run(converged.ctx, ["preflight", "gitops"])  # a cluster yet to be made will need one
    assert gitops.github_token_needs(converged.ctx.settings.gitops.url, converged.ctx.settings.gitops.branch) in str(
        caught.value
    )


def _flux_parses(argv: list[str]) -> tuple[tuple[str, ...], Parsed]:
    """``argv`` as the pinned flux parses it (tests.provision.cli_tables); SystemExit if flux refuses it."""
    found = standin.command(argv, cli_tables.FLUX, cli_tables.FLUX_ALIASES, standin.flux_fail)
    assert found is not None, f"flux has no command {argv[:2]}"
    return found


@pytest.mark.parametrize(
    ("provider", "url", "wrong"),
    [
        ("github", "https://github.com/example-org/misp-eks", "--silent"),  # only bootstrap git has --silent
        ("git", "ssh://git@example.org/misp.git", "--owner=example-org"),  # only bootstrap github has --owner
    ],
)
def test_the_flux_bootstrap_command_is_one_the_pinned_flux_accepts(
    run: Run, tools: FakeTools, provider: str, url: str, wrong: str, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = run.ctx.settings.model_copy(update={"gitops": Gitops(provider=provider, url=url)})
    run.ctx.env = replace(run.ctx.env, settings=settings)
    command = gitops.bootstrap_command(run.ctx, assume_yes=True)
    key, parsed = _flux_parses(command)
    assert key == ("bootstrap", provider) and parsed.args == []
    assert parsed.get("path") == "clusters/prod" and parsed.get("version") == gitops.FLUX_DISTRIBUTION
    assert parsed.get("branch") == "main"
    # Flux syncs with a read-only deploy key, not the operator's token (bootstrap.go, bootstrap_github.go).
    assert not parsed.flag("token-auth", False) and not parsed.flag("read-write-key", False)
    if provider == "github":
        assert (parsed.get("owner"), parsed.get("repository")) == ("example-org", "misp-eks")
    else:
        assert parsed.get("url") == url and parsed.flag("silent", False)
    with pytest.raises(SystemExit):
        _flux_parses([*command, wrong])
    assert f"✗ unknown flag: {wrong.split('=')[0]}" in capsys.readouterr().err


def test_gitops_needs_the_data_layer(run: Run, tools: FakeTools, eks: dict) -> None:
    with pytest.raises(MissingPrerequisite, match="run the data phase first"):
        gitops.ensure(run.ctx, assume_yes=True)


def test_verify_waits_for_kustomizations_and_endpoints(converged: Run, tools: FakeTools) -> None:
    gitops.ensure(converged.ctx, assume_yes=True)
    statuses = iter([503, 502, 200, 200])
    converged.ctx.services["http_get"] = lambda url, timeout: next(statuses)
    verify.run(converged.ctx)
    assert converged.action("Flux Kustomizations", "flux-system") == "exists"
    assert converged.action("endpoint", "MISP") == "exists"


def test_verify_names_the_kustomizations_not_ready(converged: Run, tools: FakeTools, apiserver: Running) -> None:
    gitops.ensure(converged.ctx, assume_yes=True)
    kind = apiserver.server.kind("kustomize.toolkit.fluxcd.io", "v1", "kustomizations")
    backend = apiserver.server.get(kind, "flux-system", "misp-backend") or {}
    failing = {"type": "Ready", "status": "False", "reason": "HealthCheckFailed"}
    apiserver.server.put(kind, {**backend, "status": {"conditions": [failing]}}, "flux-system")
    with pytest.raises(BootstrapError, match=r"every Flux Kustomization .*last seen: not ready: misp-backend\)"):
        verify.wait_kustomizations(converged.ctx)


def test_verify_times_out_naming_the_endpoint(converged: Run, tools: FakeTools) -> None:
    gitops.ensure(converged.ctx, assume_yes=True)
    converged.ctx.services["http_get"] = lambda url, timeout: 503
    with pytest.raises(BootstrapError, match=r"waiting for https://misp.example.org/users/heartbeat .*HTTP 503"):
        verify.run(converged.ctx)


def test_verify_waits_as_long_as_the_flux_chain_may_take(run: Run) -> None:
    run.ctx.timing = replace(run.ctx.timing, kustomizations=None)
    timeouts = sum(
        flux_wait.duration_seconds(str(item.spec["timeout"]), "test")
        for item in flux_wait.kustomizations(run.ctx.env.root, "prod")
        if "timeout" in item.spec
    )
    assert timeouts >= 105 * 60  # misp-backend alone may take 45 minutes
    assert verify.kustomizations_timeout(run.ctx) > timeouts


def _flux_repo(root: Path, backend_timeout: str) -> Path:
    directory = root / "clusters" / "test"
    directory.mkdir(parents=True)
    (directory / "kustomization.yaml").write_text("resources: [apps.yaml]\n")
    documents = [
        {"name": "infra", "spec": {"interval": "1h", "retryInterval": "2m", "timeout": "10m"}},
        {
            "name": "backend",
            "spec": {
                "interval": "1h",
                "retryInterval": "2m",
                "timeout": backend_timeout,
                "dependsOn": [{"name": "infra"}],
            },
        },
        {"name": "web", "spec": {"interval": "30m", "dependsOn": [{"name": "backend"}]}},
        {"name": "other", "spec": {"interval": "5m", "timeout": "1m"}},
    ]
    (directory / "apps.yaml").write_text(
        yaml.safe_dump_all(
            {
                "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
                "kind": "Kustomization",
                "metadata": {"name": item["name"], "namespace": "flux-system"},
                "spec": {
                    **item["spec"],
                    "path": "./apps",
                    "sourceRef": {"kind": "GitRepository", "name": "flux-system"},
                },
            }
            for item in documents
        )
    )
    return root


def test_the_flux_chain_is_read_from_the_repository(tmp_path: Path) -> None:
    first = flux_wait.flux_chain_seconds(_flux_repo(tmp_path / "a", "45m"), "test")
    # flux-system (10m interval: 10m + 10m) + infra (10m + 2m) + backend (45m + 2m) + web (no timeout or
    # retryInterval: its 30m interval twice); "other" is shorter than that chain.
    assert first == (20 + 12 + 47 + 60) * 60
    assert flux_wait.flux_chain_seconds(_flux_repo(tmp_path / "b", "1h30m"), "test") == first + 45 * 60


def test_a_bad_duration_names_its_kustomization(tmp_path: Path) -> None:
    with pytest.raises(UserError) as error:
        flux_wait.flux_chain_seconds(_flux_repo(tmp_path, "45 minutes"), "test")
    assert "Kustomization flux-system/backend spec.timeout" in str(error.value.problem)


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
    def item(name: str, ready: str | None, generation: int = 1, observed: int = 1, **spec: object) -> dict:
        conditions = [] if ready is None else [{"type": "Ready", "status": ready}]
        return {
            "metadata": {"name": name, "generation": generation},
            "spec": spec,
            "status": {"conditions": conditions, "observedGeneration": observed},
        }

    items = [
        item("apps", "False"),
        item("infra", "True"),
        item("new", None),
        item("changed", "True", generation=2),  # Ready for the spec before this one
        item("paused", "True", generation=2, suspend=True),  # Flux left its status as it was
        item("resumed", "True", suspend=False),
    ]
    assert verify.not_ready(items) == ["apps", "new", "changed", "paused"]
    assert verify.suspended(items) == ["paused"]


def test_verify_refuses_suspended_kustomizations_at_once(converged: Run, tools: FakeTools, apiserver: Running) -> None:
    gitops.ensure(converged.ctx, assume_yes=True)
    assert kube.suspend_kustomizations(converged.ctx, "flux-system")  # what an interrupted --destroy leaves
    converged.ctx.timing = replace(converged.ctx.timing, kustomizations=3600)  # not a timeout: at once
    started = time.monotonic()
    with pytest.raises(BootstrapError, match=r"suspended in flux-system: .*misp-backend.*flux resume kustomization"):
        verify.wait_kustomizations(converged.ctx)
    assert time.monotonic() - started < 60
    gitops.ensure(converged.ctx, assume_yes=True)
    assert converged.action("Flux", "misp-prod") == "exists"  # the gitops phase leaves them as they are


def test_verify_waits_for_flux_to_observe_the_current_spec(
    converged: Run, tools: FakeTools, apiserver: Running
) -> None:
    gitops.ensure(converged.ctx, assume_yes=True)
    custom = client.CustomObjectsApi(kube.api(converged.ctx))
    group = ("kustomize.toolkit.fluxcd.io", "v1", "flux-system", "kustomizations")
    custom.patch_namespaced_custom_object(*group, "misp-web", {"spec": {"timeout": "21m"}})  # a new generation
    with pytest.raises(BootstrapError, match=r"last seen: not ready: misp-web\)"):
        verify.wait_kustomizations(converged.ctx)


def test_an_unreachable_or_untrusted_api_is_one_line(run: Run, tools: FakeTools, apiserver: Running) -> None:
    other = make_certificates(run.ctx.workdir / "other")
    run.ctx.facts["kube-endpoint"] = kube.Endpoint(apiserver.url, other.ca.read_bytes())  # another CA
    with pytest.raises(
        BootstrapError, match=r"cannot reach the Kubernetes API of misp-prod at https://127.*CERTIFICATE"
    ):
        kube.namespace_exists(run.ctx, "misp")
    run.ctx.facts.pop("kube-api")
    run.ctx.facts["kube-endpoint"] = kube.Endpoint(f"https://127.0.0.1:{free_port()}", apiserver.ca_pem)
    with pytest.raises(BootstrapError, match=r"cannot reach the Kubernetes API of misp-prod .*reading namespace misp"):
        kube.namespace_exists(run.ctx, "misp")


def _email_on(run: Run) -> None:
    dumped = run.ctx.settings.model_dump()
    run.ctx.env = replace(run.ctx.env, settings=Settings.model_validate({**dumped, "email": {"enabled": True}}))


def _smtp_external_secret(server: ApiServer) -> None:
    """apps/misp/base's ExternalSecret misp-smtp as Flux applies it (secrets_prefix substituted), synced
    while e-mail was off: its Secret holds the secrets phase's empty placeholder."""
    path = repository_root() / "apps/misp/base/backend/external-secrets.yaml"
    documents = yaml.safe_load_all(path.read_text().replace("${secrets_prefix}", "misp-prod"))
    (found,) = [item for item in documents if item and item["metadata"]["name"] == naming.SMTP_SECRET]
    seed_external_secret(server, naming.MISP_NAMESPACE, naming.SMTP_SECRET, found["spec"])


def _smtp_username(server: ApiServer) -> str:
    found = server.get(server.kind("", "v1", "secrets"), naming.MISP_NAMESPACE, naming.SMTP_SECRET) or {}
    return base64.b64decode(found["data"]["username"]).decode()


def test_switching_email_on_syncs_the_smtp_secret_before_cluster_vars(
    converged: Run, tools: FakeTools, apiserver: Running
) -> None:
    gitops.ensure(converged.ctx, assume_yes=True)  # running, e-mail off
    server = apiserver.server
    _smtp_external_secret(server)
    assert _smtp_username(server) == ""
    _email_on(converged)
    ses.ensure(converged.ctx)
    stored = boto3.client("secretsmanager").get_secret_value(SecretId="misp-prod/misp/smtp")
    wanted = json.loads(stored["SecretString"])["username"]
    server.requests.clear()
    halt = external_secrets_controller(server, naming.MISP_NAMESPACE, naming.SMTP_SECRET, delay=0.2)
    try:
        gitops.ensure(converged.ctx, assume_yes=True)
    finally:
        halt()
    writes = [(method, path) for method, path, _ in server.requests if method in MUTATING]
    assert writes == [
        ("PATCH", "/apis/external-secrets.io/v1/namespaces/misp/externalsecrets/misp-smtp"),
        ("PUT", "/api/v1/namespaces/flux-system/configmaps/cluster-vars"),
    ]
    assert _smtp_username(server) == wanted
    assert converged.action("ExternalSecret", "misp/misp-smtp") == "updated"
    stored = server.get(server.kind("", "v1", "configmaps"), "flux-system", "cluster-vars") or {}
    assert stored["data"]["misp_email_delivery"] == "ses"
    server.requests.clear()
    gitops.ensure(converged.ctx, assume_yes=True)
    assert [request for request in server.requests if request[0] in MUTATING] == []


def test_an_smtp_secret_that_stays_stale_keeps_cluster_vars_as_they_are(
    converged: Run, tools: FakeTools, apiserver: Running
) -> None:
    gitops.ensure(converged.ctx, assume_yes=True)
    _smtp_external_secret(apiserver.server)
    _email_on(converged)
    with pytest.raises(BootstrapError, match=r"SMTP credentials in misp-prod/misp/smtp .*run the dns phase"):
        gitops.ensure(converged.ctx, assume_yes=True)  # e-mail on, but the dns phase has not filled the secret
    ses.ensure(converged.ctx)
    with pytest.raises(BootstrapError, match=r"timed out .* waiting for Secret misp/misp-smtp"):
        gitops.ensure(converged.ctx, assume_yes=True)  # no External Secrets controller answers
    stored = apiserver.server.get(apiserver.server.kind("", "v1", "configmaps"), "flux-system", "cluster-vars") or {}
    assert stored["data"]["misp_email_delivery"] == "disabled"
