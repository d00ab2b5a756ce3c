"""The fake Kubernetes API server keeps the API server's rules (tests.provision.apiserver), seen through
the official kubernetes client."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import urllib3
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from misp_eks.paths import repository_root
from misp_eks.provision import eks_token
from tests.provision.apiserver import ApiServer, Running, serve
from tests.provision.cluster_api import KUSTOMIZATION_CRD, applications, seed_applications
from tests.provision.test_eks_token import CREDENTIALS, SECRETS
from tests.servers.tls import make_certificates


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Running]:
    gone: list[str] = []
    server = ApiServer("misp-prod", SECRETS, on_ingress_gone=lambda ingress: gone.append(ingress["metadata"]["name"]))
    server.gone = gone  # type: ignore[attr-defined]
    seed_applications(server)
    with serve(server, make_certificates(tmp_path)) as running:
        yield running


def api(running: Running, tmp_path: Path, cluster_name: str = "misp-prod") -> client.ApiClient:
    config = client.Configuration()
    config.host = running.url
    (tmp_path / "ca.pem").write_bytes(running.ca_pem)
    config.ssl_ca_cert = str(tmp_path / "ca.pem")
    config.api_key = {"authorization": eks_token.make_token(CREDENTIALS, cluster_name, "eu-west-1")}
    config.api_key_prefix = {"authorization": "Bearer"}
    return client.ApiClient(config)


def status_of(error: ApiException) -> dict[str, Any]:
    return dict(json.loads(error.body))


def test_requests_need_an_eks_token_for_this_cluster(cluster: Running, tmp_path: Path) -> None:
    (tmp_path / "ca.pem").write_bytes(cluster.ca_pem)
    answer = urllib3.PoolManager(ca_certs=str(tmp_path / "ca.pem")).request("GET", f"{cluster.url}/api/v1/namespaces")
    assert answer.status == 401 and json.loads(answer.data)["reason"] == "Unauthorized"
    with pytest.raises(ApiException) as refused:
        client.CoreV1Api(api(cluster, tmp_path, "misp-staging")).list_namespace()
    assert refused.value.status == 401 and "SignatureDoesNotMatch" in status_of(refused.value)["message"]
    names = [item.metadata.name for item in client.CoreV1Api(api(cluster, tmp_path)).list_namespace().items]
    assert {"default", "misp", "misp-dashboard"} <= set(names)


def test_missing_objects_and_unknown_paths_are_not_found_statuses(cluster: Running, tmp_path: Path) -> None:
    core = client.CoreV1Api(api(cluster, tmp_path))
    with pytest.raises(ApiException) as missing:
        core.read_namespaced_config_map("cluster-vars", "default")
    body = status_of(missing.value)
    assert missing.value.status == 404 and (body["kind"], body["reason"]) == ("Status", "NotFound")
    assert body["message"] == 'configmaps "cluster-vars" not found'
    custom = client.CustomObjectsApi(api(cluster, tmp_path))
    with pytest.raises(ApiException) as unknown:  # no Flux CRD yet: the group is not served
        custom.get_api_resources("kustomize.toolkit.fluxcd.io", "v1")
    assert unknown.value.status == 404
    with pytest.raises(ApiException) as nowhere:
        custom.api_client.call_api("/nothing/here", "GET", auth_settings=["BearerToken"], response_type="object")
    assert nowhere.value.status == 404 and status_of(nowhere.value)["reason"] == "NotFound"
    client.ApiextensionsV1Api(api(cluster, tmp_path)).create_custom_resource_definition(KUSTOMIZATION_CRD)
    assert custom.get_api_resources("kustomize.toolkit.fluxcd.io", "v1").resources[0].name == "kustomizations"


def test_create_conflicts_and_namespaces(cluster: Running, tmp_path: Path) -> None:
    core = client.CoreV1Api(api(cluster, tmp_path))
    body = {"metadata": {"name": "cluster-vars"}, "data": {"a": "1"}}
    with pytest.raises(ApiException) as no_namespace:
        core.create_namespaced_config_map("flux-system", body)
    assert no_namespace.value.status == 404
    assert status_of(no_namespace.value)["message"] == 'namespaces "flux-system" not found'
    core.create_namespace({"metadata": {"name": "flux-system"}})
    made = core.create_namespaced_config_map("flux-system", body)
    with pytest.raises(ApiException) as exists:
        core.create_namespaced_config_map("flux-system", body)
    assert exists.value.status == 409 and status_of(exists.value)["reason"] == "AlreadyExists"
    stale = {**body, "metadata": {"name": "cluster-vars", "resourceVersion": "1"}}
    with pytest.raises(ApiException) as conflict:
        core.replace_namespaced_config_map("cluster-vars", "flux-system", stale)
    assert conflict.value.status == 409 and status_of(conflict.value)["reason"] == "Conflict"
    fresh = {**body, "metadata": {"name": "cluster-vars", "resourceVersion": made.metadata.resource_version}}
    with pytest.raises(ApiException) as not_text:
        core.replace_namespaced_config_map("cluster-vars", "flux-system", {**fresh, "data": {"a": 1}})
    assert not_text.value.status == 400
    with pytest.raises(ApiException) as bad_name:
        core.create_namespaced_config_map("flux-system", {"metadata": {"name": "Cluster_Vars"}})
    assert bad_name.value.status == 422 and status_of(bad_name.value)["reason"] == "Invalid"
    assert core.replace_namespaced_config_map("cluster-vars", "flux-system", fresh).data == {"a": "1"}


def test_custom_resources_take_merge_patches_only_and_status_through_its_subresource(
    cluster: Running, tmp_path: Path
) -> None:
    client.ApiextensionsV1Api(api(cluster, tmp_path)).create_custom_resource_definition(KUSTOMIZATION_CRD)
    client.CoreV1Api(api(cluster, tmp_path)).create_namespace({"metadata": {"name": "flux-system"}})
    custom = client.CustomObjectsApi(api(cluster, tmp_path))
    group = ("kustomize.toolkit.fluxcd.io", "v1", "flux-system", "kustomizations")
    body = {"metadata": {"name": "apps"}, "spec": {"interval": "1h"}, "status": {"conditions": [{"type": "Ready"}]}}
    assert "status" not in custom.create_namespaced_custom_object(*group, body)
    patched = custom.patch_namespaced_custom_object(*group, "apps", {"spec": {"suspend": True}})
    assert patched["spec"] == {"interval": "1h", "suspend": True}
    with pytest.raises(ApiException) as strategic:
        custom.api_client.call_api(
            "/apis/kustomize.toolkit.fluxcd.io/v1/namespaces/flux-system/kustomizations/apps",
            "PATCH",
            header_params={"Content-Type": "application/strategic-merge-patch+json"},
            body={"spec": {"suspend": False}},
            auth_settings=["BearerToken"],
            response_type="object",
        )
    assert strategic.value.status == 415
    custom.patch_namespaced_custom_object_status(*group, "apps", {"status": {"conditions": [{"type": "Ready"}]}})
    assert custom.get_namespaced_custom_object(*group, "apps")["status"]["conditions"] == [{"type": "Ready"}]


def test_scaled_workloads_stay_their_pods_go_and_a_finished_jobs_pod_stays(cluster: Running, tmp_path: Path) -> None:
    apps, core = client.AppsV1Api(api(cluster, tmp_path)), client.CoreV1Api(api(cluster, tmp_path))
    apps.patch_namespaced_deployment_scale("misp-web", "misp", {"spec": {"replicas": 0}})
    assert [
        d.spec.replicas for d in apps.list_namespaced_deployment("misp").items if d.metadata.name == "misp-web"
    ] == [0]
    running = sum(replicas for _, replicas in applications(repository_root(), "prod")["misp"].values())
    assert len(core.list_namespaced_pod("misp", label_selector="").items) == running + 1  # the grace period
    time.sleep(cluster.server.termination_seconds + 0.1)
    names = sorted(pod.metadata.name for pod in core.list_namespaced_pod("misp").items)
    assert not [name for name in names if name.startswith("misp-web-")]
    assert "misp-database-init-x7k2p" in names
    finished = core.list_namespaced_pod("misp", field_selector="status.phase=Succeeded").items
    assert [pod.metadata.name for pod in finished] == ["misp-database-init-x7k2p"]
    with pytest.raises(ApiException) as unsupported:
        core.list_namespaced_pod("misp", field_selector="spec.nodeName=x")
    assert unsupported.value.status == 400


def test_a_deleted_ingress_waits_for_its_finalizer_and_load_balancer(cluster: Running, tmp_path: Path) -> None:
    networking = client.NetworkingV1Api(api(cluster, tmp_path))
    networking.delete_namespaced_ingress("misp", "misp")
    held = networking.read_namespaced_ingress("misp", "misp")
    assert held.metadata.deletion_timestamp is not None and cluster.server.gone == []  # type: ignore[attr-defined]
    time.sleep(cluster.server.finalizer_seconds + 0.1)
    assert [item.metadata.name for item in networking.list_ingress_for_all_namespaces().items] == ["misp-dashboard"]
    assert cluster.server.gone == ["misp"]  # type: ignore[attr-defined]
    with pytest.raises(ApiException) as gone:
        networking.read_namespaced_ingress("misp", "misp")
    assert gone.value.status == 404


def test_label_selectors(cluster: Running, tmp_path: Path) -> None:
    apps = client.AppsV1Api(api(cluster, tmp_path))
    assert [
        d.metadata.name
        for d in apps.list_namespaced_deployment("misp", label_selector="app.kubernetes.io/name=misp-web").items
    ] == ["misp-web"]
    assert len(apps.list_namespaced_deployment("misp", label_selector="app.kubernetes.io/name!=misp-web").items) == 2
    assert apps.list_namespaced_deployment("misp", label_selector="!app.kubernetes.io/name").items == []


def test_a_body_must_match_its_url(cluster: Running, tmp_path: Path) -> None:
    core = client.CoreV1Api(api(cluster, tmp_path))
    made = core.create_namespaced_config_map("misp", {"metadata": {"name": "settings"}, "data": {"a": "1"}})
    version = made.metadata.resource_version
    wrong = {
        "another name": {"metadata": {"name": "other", "resourceVersion": version}},
        "no name": {"metadata": {"resourceVersion": version}},
        "another namespace": {"metadata": {"name": "settings", "namespace": "default", "resourceVersion": version}},
        "another kind": {"kind": "Secret", "metadata": {"name": "settings", "resourceVersion": version}},
        "another apiVersion": {"apiVersion": "v2", "metadata": {"name": "settings", "resourceVersion": version}},
    }
    for what, body in wrong.items():
        with pytest.raises(ApiException) as refused:
            core.replace_namespaced_config_map("settings", "misp", body)
        assert (refused.value.status, status_of(refused.value)["reason"]) == (400, "BadRequest"), what
    with pytest.raises(ApiException) as create:
        core.create_namespaced_config_map("misp", {"apiVersion": "apps/v1", "metadata": {"name": "x"}})
    assert create.value.status == 400 and "expected API version (v1)" in status_of(create.value)["message"]
    assert core.read_namespaced_config_map("settings", "misp").data == {"a": "1"}


def test_unknown_fields_are_dropped(cluster: Running, tmp_path: Path) -> None:
    core = client.CoreV1Api(api(cluster, tmp_path))
    body = {"metadata": {"name": "settings", "colour": "red"}, "data": {"a": "1"}, "value": {"a": "1"}}
    made = core.api_client.sanitize_for_serialization(core.create_namespaced_config_map("misp", body))
    assert "value" not in made and "colour" not in made["metadata"] and made["data"] == {"a": "1"}
    client.ApiextensionsV1Api(api(cluster, tmp_path)).create_custom_resource_definition(KUSTOMIZATION_CRD)
    client.CoreV1Api(api(cluster, tmp_path)).create_namespace({"metadata": {"name": "flux-system"}})
    custom = client.CustomObjectsApi(api(cluster, tmp_path))
    group = ("kustomize.toolkit.fluxcd.io", "v1", "flux-system", "kustomizations")
    spec = {"interval": "1h", "suspended": True, "sourceRef": {"kind": "GitRepository", "name": "x", "ref": "main"}}
    kept = custom.create_namespaced_custom_object(*group, {"metadata": {"name": "apps"}, "spec": spec})
    assert kept["spec"] == {"interval": "1h", "sourceRef": {"kind": "GitRepository", "name": "x"}}
    assert cluster.server.dropped == [
        "ConfigMap settings: value",
        "ConfigMap settings: metadata.colour",
        "Kustomization apps: spec.suspended",
        "Kustomization apps: spec.sourceRef.ref",
    ]


def test_generation_follows_the_spec_and_workloads_status_only_through_its_subresource(
    cluster: Running, tmp_path: Path
) -> None:
    apps = client.AppsV1Api(api(cluster, tmp_path))
    current = apps.api_client.sanitize_for_serialization(apps.read_namespaced_deployment("misp-modules", "misp"))
    replaced = apps.replace_namespaced_deployment(
        "misp-modules", "misp", {**current, "status": {"replicas": 9, "readyReplicas": 9}}
    )
    assert replaced.status.replicas == current["status"]["replicas"] and replaced.status.ready_replicas is None
    assert replaced.metadata.generation == current["metadata"]["generation"] == 1  # status is not the spec
    patched = apps.patch_namespaced_deployment("misp-modules", "misp", {"metadata": {"labels": {"a": "b"}}})
    assert patched.metadata.generation == replaced.metadata.generation  # nor is metadata
    bumped = apps.patch_namespaced_deployment("misp-modules", "misp", {"spec": {"paused": True}})
    assert bumped.metadata.generation == replaced.metadata.generation + 1
    client.ApiextensionsV1Api(api(cluster, tmp_path)).create_custom_resource_definition(KUSTOMIZATION_CRD)
    client.CoreV1Api(api(cluster, tmp_path)).create_namespace({"metadata": {"name": "flux-system"}})
    custom = client.CustomObjectsApi(api(cluster, tmp_path))
    group = ("kustomize.toolkit.fluxcd.io", "v1", "flux-system", "kustomizations")
    made = custom.create_namespaced_custom_object(*group, {"metadata": {"name": "apps"}, "spec": {"interval": "1h"}})
    assert made["metadata"]["generation"] == 1
    custom.patch_namespaced_custom_object_status(*group, "apps", {"status": {"observedGeneration": 1}})
    suspended = custom.patch_namespaced_custom_object(*group, "apps", {"spec": {"suspend": True}})
    assert suspended["metadata"]["generation"] == 2 and suspended["status"] == {"observedGeneration": 1}
