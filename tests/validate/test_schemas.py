"""Schema validation: the generated (and cached) Flux schemas, the custom models, kubernetes-validate's schemas."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from misp_eks.validate import schemas
from misp_eks.validate.schemas import (
    KubernetesSchemas,
    SchemaError,
    custom_errors,
    flux_schemas,
    flux_validators,
    is_builtin_group,
    known_custom_kinds,
)

HELMRELEASE: dict[str, Any] = {
    "apiVersion": "helm.toolkit.fluxcd.io/v2",
    "kind": "HelmRelease",
    "metadata": {"name": "podinfo", "namespace": "flux-system"},
    "spec": {
        "interval": "1h",
        "chart": {
            "spec": {
                "chart": "podinfo",
                "version": "6.7.1",
                "sourceRef": {"kind": "HelmRepository", "name": "podinfo"},
            }
        },
        "install": {"crds": "CreateReplace", "strategy": {"name": "RetryOnFailure", "retryInterval": "5m"}},
        "upgrade": {"crds": "CreateReplace", "strategy": {"name": "RemediateOnFailure"}},
        "driftDetection": {"mode": "enabled"},
        "values": {"anything": {"goes": ["here", 1, True]}},
    },
}

KUSTOMIZATION: dict[str, Any] = {
    "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
    "kind": "Kustomization",
    "metadata": {"name": "apps", "namespace": "flux-system"},
    "spec": {
        "interval": "1h",
        "path": "./apps",
        "prune": True,
        "sourceRef": {"kind": "GitRepository", "name": "flux-system"},
        "postBuild": {
            "substitute": {"a": "b"},
            "substituteFrom": [{"kind": "ConfigMap", "name": "cluster-vars"}],
        },
    },
}


def changed(obj: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A copy of ``obj`` with the dotted ``path`` set to ``value`` (``[0]`` indexes lists)."""
    result = copy.deepcopy(obj)
    node: Any = result
    parts = path.replace("[", ".[").split(".")
    for part in parts[:-1]:
        node = node[int(part[1:-1])] if part.startswith("[") else node[part]
    last = parts[-1]
    node[int(last[1:-1]) if last.startswith("[") else last] = value
    return result


def test_valid_flux_objects_have_no_errors():
    assert custom_errors(HELMRELEASE) == []
    assert custom_errors(KUSTOMIZATION) == []


@pytest.mark.parametrize(
    ("obj", "path"),
    [
        (HELMRELEASE, "spec.instal"),
        (HELMRELEASE, "spec.chart.spec.chartt"),
        (HELMRELEASE, "spec.chart.spec.sourceRef.namespac"),
        (HELMRELEASE, "spec.install.strategy.retries"),
        (HELMRELEASE, "metadata.nmae"),
        (KUSTOMIZATION, "spec.prun"),
        (KUSTOMIZATION, "spec.postBuild.substituteFromm"),
        (KUSTOMIZATION, "spec.postBuild.substituteFrom[0].optionall"),
        (KUSTOMIZATION, "spec.sourceRef.nme"),
    ],
)
def test_generated_flux_schemas_reject_unknown_fields_at_every_level(obj: dict[str, Any], path: str):
    errors = custom_errors(changed(obj, path, "x"))
    assert SchemaError(path, "unknown field") in errors, errors


def test_known_nested_flux_fields_are_accepted():
    assert custom_errors(changed(HELMRELEASE, "spec.install.remediation", {"retries": 3})) == []
    assert custom_errors(changed(KUSTOMIZATION, "spec.postBuild.substituteFrom[0].optional", True)) == []


@pytest.mark.parametrize("section", ["install", "upgrade"])
@pytest.mark.parametrize("name", ["RetryOnFailure", "RemediateOnFailure"])
def test_helmrelease_strategy_names_are_accepted(section: str, name: str):
    assert custom_errors(changed(HELMRELEASE, f"spec.{section}.strategy", {"name": name})) == []


@pytest.mark.parametrize("section", ["install", "upgrade"])
def test_helmrelease_wrong_strategy_name_is_refused(section: str):
    errors = custom_errors(changed(HELMRELEASE, f"spec.{section}.strategy.name", "RetryForever"))
    assert [e.field for e in errors] == [f"spec.{section}.strategy.name"]
    assert "RetryOnFailure" in errors[0].message


def test_helmrelease_strategy_needs_a_name_and_a_duration():
    errors = custom_errors(changed(HELMRELEASE, "spec.install.strategy", {"retryInterval": "5m"}))
    assert errors == [SchemaError("spec.install.strategy", "'name' is a required property")]
    errors = custom_errors(changed(HELMRELEASE, "spec.install.strategy.retryInterval", "soon"))
    assert [e.field for e in errors] == ["spec.install.strategy.retryInterval"]


def test_flux_status_is_not_part_of_the_repository():
    errors = custom_errors({**KUSTOMIZATION, "status": {"conditions": []}})
    assert SchemaError("status", "unknown field") in errors


def test_flux_wrong_type_names_the_field():
    errors = custom_errors(changed(KUSTOMIZATION, "spec.prune", "yes"))
    assert [e.field for e in errors] == ["spec.prune"]
    assert errors[0].message.startswith("wrong type")


def test_external_secrets_models():
    external = {
        "apiVersion": "external-secrets.io/v1",
        "kind": "ExternalSecret",
        "metadata": {"name": "x", "namespace": "demo"},
        "spec": {
            "secretStoreRef": {"kind": "ClusterSecretStore", "name": "aws"},
            "refreshInterval": "1h",
            "data": [{"secretKey": "a", "remoteRef": {"key": "k", "property": "p"}}],
        },
    }
    assert custom_errors(external) == []
    assert custom_errors(changed(external, "spec.refreshInterval", "hourly"))[0].field == "spec.refreshInterval"
    errors = custom_errors(changed(external, "spec.data[0].remoteRef.proprety", "p"))
    assert errors == [SchemaError("spec.data[0].remoteRef.proprety", "unknown field")]
    assert custom_errors({**external, "apiVersion": "external-secrets.io/v1beta1"}) is None


def test_unknown_custom_kind_has_no_validator():
    assert custom_errors({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}) is None
    kinds = known_custom_kinds()
    assert "helm.toolkit.fluxcd.io/v2/HelmRelease" in kinds
    assert "external-secrets.io/v1/ExternalSecret" in kinds


@pytest.mark.parametrize(
    ("api_version", "builtin"),
    [
        ("v1", True),
        ("apps/v1", True),
        ("networking.k8s.io/v1", True),
        ("policy/v1", True),
        ("autoscaling/v2", True),
        ("extensions/v1beta1", True),
        ("helm.toolkit.fluxcd.io/v2", False),
        ("external-secrets.io/v1", False),
        ("example.com/v1", False),
    ],
)
def test_is_builtin_group(api_version: str, builtin: bool):
    assert is_builtin_group(api_version) is builtin


# --- The cache of generated Flux schemas -------------------------------------------------------------------


@pytest.fixture
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An empty XDG cache, and the functools caches cleared before and after."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    flux_schemas.cache_clear()
    flux_validators.cache_clear()
    yield tmp_path / "xdg" / "misp-eks"
    flux_schemas.cache_clear()
    flux_validators.cache_clear()


def _cache_files(directory: Path) -> list[Path]:
    return sorted(directory.glob("*")) if directory.is_dir() else []


def test_cache_is_written_under_xdg_cache_home(cache_dir: Path):
    generated = flux_schemas()
    files = _cache_files(cache_dir)
    assert [f.name for f in files] == [schemas._cache_file().name]
    assert files[0].name.startswith("flux-schemas-") and files[0].suffix == ".json"
    assert json.loads(files[0].read_text()) == generated
    assert "helm.toolkit.fluxcd.io/v2 HelmRelease" in generated


def test_cache_is_reused(cache_dir: Path, monkeypatch: pytest.MonkeyPatch):
    generated = flux_schemas()
    flux_schemas.cache_clear()

    def fail() -> None:
        raise AssertionError("generated again although the cache file is there")

    monkeypatch.setattr(schemas, "_generate_flux_schemas", fail)
    assert flux_schemas() == generated


def test_corrupt_cache_is_regenerated(cache_dir: Path, monkeypatch: pytest.MonkeyPatch):
    path = schemas._cache_file()
    path.parent.mkdir(parents=True)
    path.write_text('{"helm.toolkit.fluxcd.io/v2 HelmRelease": {"type": "obj')  # a write cut short
    calls = []
    generate = schemas._generate_flux_schemas

    def counting() -> dict[str, Any]:
        calls.append(1)
        return generate()

    monkeypatch.setattr(schemas, "_generate_flux_schemas", counting)
    result = flux_schemas()
    assert calls == [1]
    assert json.loads(path.read_text()) == result
    assert [f.name for f in _cache_files(cache_dir)] == [path.name]  # no temporary file left behind
    assert custom_errors(changed(HELMRELEASE, "spec.instal", {})) == [SchemaError("spec.instal", "unknown field")]


def test_unwritable_cache_still_validates(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cache_dir: Path):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    assert "kustomize.toolkit.fluxcd.io/v1 Kustomization" in flux_schemas()
    assert custom_errors(KUSTOMIZATION) == []


# --- kubernetes-validate ---------------------------------------------------------------------------------


def test_kubernetes_schemas_of_the_cluster_version():
    kube = KubernetesSchemas("1.35")
    assert kube.version == "1.35"
    config_map = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}, "data": {"a": "b"}}
    assert kube.errors(config_map) == []
    assert kube.errors({**config_map, "data": {"a": 1}}) == [
        SchemaError("data.a", "wrong type: 1 is not of type 'string', 'null'")
    ]
    assert kube.errors({**config_map, "dta": {}}) == [SchemaError("dta", "unknown field")]
    assert kube.errors({**config_map, "kind": "Gadget"}) is None
    assert kube.errors({"apiVersion": "extensions/v1beta1", "kind": "Ingress", "metadata": {"name": "x"}}) is None


@pytest.mark.parametrize("version", ["1.99", "1.2", "0.35"])
def test_kubernetes_schemas_refuse_an_unsupported_version(version: str):
    with pytest.raises(ValueError, match=rf"^kubernetes-validate has no schemas for Kubernetes {version}$"):
        KubernetesSchemas(version)
