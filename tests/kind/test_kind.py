"""The kind cluster of the e2e workflow: what misp_eks.kind makes for it, checked for real where it can
be (schemas, the certificate chain, a redis-server using them), and the workflow that applies it."""

from __future__ import annotations

import base64
import json
import re
import socket
import ssl
import stat
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509
from cryptography.x509.verification import PolicyBuilder, Store

from misp_eks import kind, naming
from misp_eks.environment import load_environment
from misp_eks.paths import repository_root
from misp_eks.problems import UserError
from misp_eks.provision.gpg import GpgKey
from misp_eks.validate.schemas import KubernetesSchemas, custom_errors
from tests.conftest import system_tool
from tests.servers.tls import free_port

E2E_WORKFLOW = repository_root() / ".github" / "workflows" / "e2e.yaml"


def fake_gpg_key(email: str, passphrase: str) -> GpgKey:
    return GpgKey(f"private key of {email}", f"public key of {email}", "0" * 40)


@pytest.fixture(scope="module")
def cluster() -> kind.KindEnvironment:
    found = kind.load(repository_root())
    assert found is not None
    return found


@pytest.fixture(scope="module")
def made(cluster: kind.KindEnvironment) -> tuple[kind.Generated, str]:
    return kind.generate_all(kind.cluster_vars(cluster.config), fake_gpg_key, "PUBLIC CAS\n")


def decoded(secret: dict[str, Any]) -> dict[str, str]:
    return {key: base64.b64decode(value).decode() for key, value in secret["data"].items()}


def test_the_kind_cluster_runs_stagings_kubernetes_version(cluster):
    """Renovate moves staging and the kind node image together; prod follows later."""
    assert cluster.kubernetes_version == load_environment(repository_root(), "staging").kubernetes_version
    zones = {node.labels.get("topology.kubernetes.io/zone") for node in cluster.config.nodes if node.role == "worker"}
    assert len(zones) == 3 and None not in zones, "one worker per zone, as the spread constraints expect"


def test_a_broken_kind_config_is_one_problem_naming_the_field(tmp_path: Path):
    path = tmp_path / "clusters" / "kind" / "kind-cluster.yaml"
    path.parent.mkdir(parents=True)
    text = kind.config_path(repository_root()).read_text()
    broken = re.sub(r"kindest/node:v[\d.]+@", "kindest/node:latest@", text, count=1)
    assert broken != text
    path.write_text(broken)
    with pytest.raises(UserError) as raised:
        kind.load(tmp_path)
    assert raised.value.problem.where == "clusters/kind/kind-cluster.yaml"
    assert raised.value.problem.field == "nodes[0].image"


def test_every_application_secret_is_made(cluster, made):
    generated, _ = made
    variables = kind.cluster_vars(cluster.config)
    for spec in naming.SECRETS:
        values = generated.secrets[spec.name(variables.secrets_prefix)]
        assert set(values) - {kind.ADMIN_KEY} == set(spec.keys)
        if not spec.starts_empty:
            assert all(values.values()), spec.suffix
    assert (
        generated.secrets[naming.RDS_CA.name(variables.secrets_prefix)]["bundle"] == generated.authority.cert.decode()
    )
    app = generated.secrets[naming.MISP_APP.name(variables.secrets_prefix)]
    assert re.fullmatch(r"[A-Za-z0-9]{40}", app[kind.ADMIN_KEY]), "kind only: the admin's API key for the workflow"
    master = generated.secrets[variables.db_master_secret_arn]
    assert master["username"] == kind.DATABASE_MASTER_USER and len(master["password"]) >= 20
    again, _ = kind.generate_all(variables, fake_gpg_key, "")
    assert again.secrets[variables.db_master_secret_arn]["password"] != master["password"], "made anew each run"


def test_what_is_applied_is_schema_valid(cluster, made):
    generated, bundle = made
    variables = kind.cluster_vars(cluster.config)
    schemas = KubernetesSchemas(cluster.kubernetes_version)
    for obj in kind.before_flux(variables, generated, bundle):
        assert schemas.errors(obj) == [], obj["metadata"]
    assert custom_errors(kind.secret_store(generated)) == []
    broken = kind.secret_store(generated)
    broken["spec"]["provider"]["fake"]["data"][0]["vaule"] = "typo"
    assert custom_errors(broken), "the store model refuses unknown fields"


def test_the_store_answers_every_externalsecret_of_the_kind_trees(made, real_report):
    """Every remoteRef of the kind trees, looked up as External Secrets' fake provider does (``key`` is an
    entry's key, ``property`` a gjson path into its JSON value; providers/v1/fake), finds a value."""
    generated, _ = made
    entries = {
        e["key"]: json.loads(e["value"]) for e in kind.secret_store(generated)["spec"]["provider"]["fake"]["data"]
    }
    operator_supplied = {spec.suffix for spec in naming.SECRETS if spec.starts_empty}
    looked_up = 0
    for tree in real_report.applied_trees("kind"):
        for resource in tree.tree.of_kind("ExternalSecret"):
            for item in resource.spec.get("data") or []:
                key, prop = item["remoteRef"]["key"], item["remoteRef"]["property"]
                assert key in entries, f"{resource.name}: the store has no {key}"
                assert prop in entries[key], f"{resource.name}: {key} has no {prop}"
                if not any(key.endswith(f"/{suffix}") for suffix in operator_supplied):
                    assert entries[key][prop], f"{resource.name}: {key} {prop} is empty"
                looked_up += 1
            for item in resource.spec.get("dataFrom") or []:
                key = item["extract"]["key"]
                assert isinstance(entries.get(key), dict) and all(entries[key].values()), key
                looked_up += 1
    assert looked_up >= 8, "the kind trees' ExternalSecrets were found"


def test_before_flux_holds_cluster_vars_the_data_passwords_and_the_trust_bundle(cluster, made):
    generated, bundle = made
    variables = kind.cluster_vars(cluster.config)
    objects = {
        (o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"]): o
        for o in kind.before_flux(variables, generated, bundle)
    }
    assert objects[("ConfigMap", "flux-system", "cluster-vars")]["data"] == variables.data()
    passwords = decoded(objects[("Secret", kind.DATA_NAMESPACE, kind.DATA_SECRET)])
    prefix = variables.secrets_prefix
    assert passwords == {
        "MARIADB_ROOT_PASSWORD": generated.secrets[variables.db_master_secret_arn]["password"],
        "MISP_REDIS_PASSWORD": generated.secrets[naming.MISP_REDIS.name(prefix)]["auth_token"],
        "DASHBOARD_REDIS_PASSWORD": generated.secrets[naming.DASHBOARD_REDIS.name(prefix)]["auth_token"],
    }
    for namespace in kind.STORE_NAMESPACES:
        trust = decoded(objects[("Secret", namespace, kind.TRUST_SECRET)])
        assert trust[kind.TRUST_BUNDLE_KEY].startswith("PUBLIC CAS\n")
        assert generated.authority.cert.decode() in trust[kind.TRUST_BUNDLE_KEY]
        assert trust[kind.TRUST_CA_KEY] == generated.authority.cert.decode(), "one CA, for update-ca-certificates"
    assert ("Namespace", None, kind.PROBE_NAMESPACE) in objects


def test_misp_core_gets_the_ca_where_update_ca_certificates_reads_it(real_report):
    """misp-docker 6d915d5 core/files/configure_misp.sh runs update-ca-certificates at every start, which
    rebuilds /etc/ssl/certs/ca-certificates.crt from /usr/local/share/ca-certificates/*.crt: nothing may
    be mounted over the bundle it writes."""
    found = 0
    for tree in real_report.applied_trees("kind"):
        for resource in tree.tree.of_kind("Deployment"):
            pod = resource.obj["spec"]["template"]["spec"]
            trust = {
                v["name"] for v in pod.get("volumes", []) if v.get("secret", {}).get("secretName") == kind.TRUST_SECRET
            }
            for item in pod["containers"]:
                for mount in item.get("volumeMounts", []):
                    assert not mount["mountPath"].startswith("/etc/ssl/certs"), (resource.name, mount)
                    if item["name"] == "misp-core" and mount["name"] in trust:
                        assert re.fullmatch(r"/usr/local/share/ca-certificates/[\w-]+\.crt", mount["mountPath"])
                        assert mount["subPath"] == kind.TRUST_CA_KEY
                        found += 1
    assert found == 2, "the web and workers pods' misp-core"


def test_the_data_servers_certificate_verifies_for_every_service_name(made):
    generated, _ = made
    authority = x509.load_pem_x509_certificate(generated.authority.cert)
    leaf = x509.load_pem_x509_certificate(generated.server.cert)
    for host in (kind.DATABASE_HOST, kind.MISP_REDIS_HOST, kind.DASHBOARD_REDIS_HOST, kind.LOAD_BALANCER_HOST):
        verifier = PolicyBuilder().store(Store([authority])).build_server_verifier(x509.DNSName(host))
        verifier.verify(leaf, [])
    verifier = PolicyBuilder().store(Store([authority])).build_server_verifier(x509.DNSName("misp.kind.test"))
    with pytest.raises(x509.verification.VerificationError):
        verifier.verify(leaf, [])


def test_the_data_services_are_the_endpoints_in_cluster_vars(real_report, cluster):
    services = {
        f"{r.name}.{r.namespace}.svc.cluster.local"
        for tree in real_report.applied_trees("kind")
        for r in tree.tree.of_kind("Service")
        if r.namespace == kind.DATA_NAMESPACE
    }
    assert services == set(kind.SERVER_HOSTS)
    variables = kind.cluster_vars(cluster.config)
    assert {variables.db_endpoint, variables.misp_redis_endpoint, variables.dashboard_redis_endpoint} < services
    assert variables.misp_hostname in services, "MISP's hostname is the load balancer stand-in's Service"


@pytest.mark.servers
def test_a_redis_server_with_this_tls_and_password_answers_a_client_trusting_the_bundle(tmp_path, made, cluster):
    """Redis as clusters/kind/data runs it, and a client as MISP is: TLS verified for the service name."""
    generated, bundle = made
    for name, data in {"tls.crt": generated.server.cert, "tls.key": generated.server.key}.items():
        (tmp_path / name).write_bytes(data)
    (tmp_path / "ca.crt").write_bytes(generated.authority.cert)
    (tmp_path / "bundle.pem").write_text(bundle.replace("PUBLIC CAS\n", ""))
    variables = kind.cluster_vars(cluster.config)
    password = generated.secrets[naming.MISP_REDIS.name(variables.secrets_prefix)]["auth_token"]
    port = free_port()
    server = subprocess.Popen(
        [
            system_tool("redis-server", "redis-server"), "--port", "0", "--tls-port", str(port), "--bind", "127.0.0.1",
            "--tls-cert-file", str(tmp_path / "tls.crt"), "--tls-key-file", str(tmp_path / "tls.key"),
            "--tls-ca-cert-file", str(tmp_path / "ca.crt"), "--tls-auth-clients", "no",
            "--requirepass", password, "--save", "", "--dir", str(tmp_path),
        ],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        context = ssl.create_default_context(cafile=str(tmp_path / "bundle.pem"))
        deadline = time.monotonic() + 20
        while True:
            try:
                raw = socket.create_connection(("127.0.0.1", port), timeout=2)
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail("redis-server did not start")
                time.sleep(0.05)
        with context.wrap_socket(raw, server_hostname=kind.MISP_REDIS_HOST) as conn:
            conn.sendall(f"AUTH {password}\r\nPING\r\n".encode())
            answer = b""
            while b"PONG" not in answer and len(answer) < 100:
                answer += conn.recv(100)
        assert answer == b"+OK\r\n+PONG\r\n"
        with pytest.raises(ssl.SSLCertVerificationError):
            socket_again = socket.create_connection(("127.0.0.1", port), timeout=2)
            context.wrap_socket(socket_again, server_hostname="misp.kind.test")
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_main_writes_both_files_for_the_owner_only(tmp_path, monkeypatch):
    monkeypatch.setattr(kind.gpg, "generate", lambda _tools, email, secret: fake_gpg_key(email, secret))
    assert kind.main([str(tmp_path / "out")]) == 0
    for name in ("before-flux.yaml", "secret-store.yaml"):
        path = tmp_path / "out" / name
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert list(yaml.safe_load_all(path.read_text()))


def test_main_without_a_kind_cluster_is_one_line(tmp_path, capsys):
    assert kind.main([str(tmp_path / "out")], root=tmp_path) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: clusters/kind/kind-cluster.yaml") and "Traceback" not in err


def _workflow() -> dict[str, Any]:
    return yaml.safe_load(E2E_WORKFLOW.read_text())


def test_every_kind_kustomization_applies_a_kind_overlay(real_report):
    for item in real_report.kustomizations["kind"]:
        assert "/kind" in item.path, f"{item.name} applies {item.path}, which needs AWS"


def test_nothing_in_kind_needs_efs(real_report):
    """No EFS in kind: the volume misp-files and its claim go, so no pod waits for an EFS mount."""
    for tree in real_report.applied_trees("kind"):
        for item in tree.tree:
            assert "efs.csi.aws.com" not in json.dumps(item.obj), f"{tree.tree.path}: {item.kind} {item.name}"
            assert item.kind not in ("PersistentVolume", "PersistentVolumeClaim"), f"{item.kind} {item.name}"


def test_the_workflow_applies_what_main_writes_and_names_the_cluster(cluster):
    text = E2E_WORKFLOW.read_text()
    assert _workflow()["env"]["CLUSTER"] == cluster.config.name
    assert "make kind-secrets" in text
    for name in ("before-flux.yaml", "secret-store.yaml"):
        assert f'kubectl apply --server-side -f "$RUNNER_TEMP/kind/{name}"' in text
    assert f"--path=./clusters/{kind.NAME}" in text
    assert "config: clusters/kind/kind-cluster.yaml" in text


def test_validation_knows_what_the_workflow_applies_before_flux(monkeypatch, repo):
    """The data servers' Secrets exist only because misp_eks.kind makes them: without them, validation fails."""
    from misp_eks.validate.runner import validate_repository

    monkeypatch.setattr(kind, "prepared", lambda _config: [])
    report = validate_repository(repo)
    messages = [str(p) for p in report.all_problems()]
    assert any("clusters/kind/data/mariadb.yaml" in m and "Secret e2e-data is not in this tree" in m for m in messages)
    assert any("Secret e2e-trust is not in this tree" in m for m in messages)
