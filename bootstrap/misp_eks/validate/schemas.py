"""Strict, offline schema validation of every object: built-in kinds and custom resources alike.

* Built-in kinds: the strict JSON schemas bundled with PyPI ``kubernetes-validate`` for the
  cluster's Kubernetes version. kubernetes-validate only warns about a kind it has no schema for;
  here that is an error, because it means the apiVersion does not exist in that version.
* Flux kinds: JSON schemas generated from PyPI ``cloudcoil-models-fluxcd`` (typed models of the
  Flux CRDs), made strict, plus the fields newer Flux releases added that this project uses.
* External Secrets kinds: the typed models in :mod:`misp_eks.validate.external_secrets`.
* Any other custom kind: an error. Nothing is skipped.
"""

from __future__ import annotations

import copy
import hashlib
import importlib
import json
import os
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache
from importlib import metadata
from importlib import resources as importlib_resources
from pathlib import Path
from typing import Any

import jsonschema
from pydantic import BaseModel, ValidationError
from referencing import Registry, Resource

from misp_eks.models import DURATION_PATTERN, field_errors
from misp_eks.problems import field_path
from misp_eks.validate import external_secrets

# Flux API groups and the cloudcoil modules that model them.
_FLUX_MODULES = (
    "cloudcoil.models.fluxcd.helm.v2",
    "cloudcoil.models.fluxcd.kustomize.v1",
    "cloudcoil.models.fluxcd.source.v1",
    "cloudcoil.models.fluxcd.source.v1beta2",
    "cloudcoil.models.fluxcd.notification.v1",
    "cloudcoil.models.fluxcd.notification.v1beta3",
)

# Fields added to HelmRelease v2 after the Flux release that cloudcoil-models-fluxcd models for
# Python 3.11 (2.5.1). From helm-controller's CRD (config/crd/bases/helm.toolkit.fluxcd.io_helmreleases.yaml),
# shipped since Flux 2.7: spec.install.strategy and spec.upgrade.strategy.
_HELMRELEASE_STRATEGY = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "enum": ["RemediateOnFailure", "RetryOnFailure"]},
        "retryInterval": {"type": "string", "pattern": DURATION_PATTERN},
    },
    "required": ["name"],
    "additionalProperties": False,
}


def is_builtin_group(api_version: str) -> bool:
    """Core and ``*.k8s.io`` groups are Kubernetes' own; everything else is a custom resource."""
    group = api_version.rpartition("/")[0]
    return group == "" or "." not in group or group.endswith(".k8s.io")


@dataclass(frozen=True)
class SchemaError:
    field: str
    message: str


def _describe(error: jsonschema.ValidationError) -> list[SchemaError]:
    path = list(error.absolute_path)
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = set((error.schema.get("properties") or {}).keys())
        return [
            SchemaError(field_path([*path, name]), "unknown field") for name in error.instance if name not in allowed
        ]
    message = f"wrong type: {error.message}" if error.validator == "type" else error.message
    return [SchemaError(field_path(path), message)]


def _errors(validator: jsonschema.protocols.Validator, obj: dict[str, Any]) -> list[SchemaError]:
    found = []
    for error in sorted(validator.iter_errors(obj), key=lambda e: list(map(str, e.absolute_path))):
        # anyOf/oneOf hide the useful message one level down.
        best = jsonschema.exceptions.best_match([error]) if error.context else error
        found.extend(_describe(best))
    return found


class KubernetesSchemas:
    """kubernetes-validate's strict schemas for one Kubernetes minor version, loaded once."""

    def __init__(self, version: str) -> None:
        root = importlib_resources.files("kubernetes_validate").joinpath("kubernetes-json-schema")
        pattern = re.compile(rf"v{re.escape(version)}\.(\d+)-local-strict")
        patches = {int(m.group(1)): entry for entry in root.iterdir() if (m := pattern.fullmatch(entry.name))}
        if not patches:
            raise ValueError(f"kubernetes-validate has no schemas for Kubernetes {version}")
        self._dir = patches[max(patches)]
        self.version = version
        definitions = json.loads(self._dir.joinpath("_definitions.json").read_text())
        self._registry: Registry = Resource.from_contents(definitions) @ Registry()
        self._validators: dict[tuple[str, str], jsonschema.protocols.Validator | None] = {}
        self._lock = threading.Lock()

    def validator(self, api_version: str, kind: str) -> jsonschema.protocols.Validator | None:
        key = (api_version, kind)
        with self._lock:
            if key not in self._validators:
                name = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
                schema_file = self._dir.joinpath(f"{kind.lower()}-{name}.json")
                if schema_file.is_file():
                    schema = json.loads(schema_file.read_text())
                    self._validators[key] = jsonschema.Draft202012Validator(schema, registry=self._registry)
                else:
                    self._validators[key] = None
            return self._validators[key]

    def errors(self, obj: dict[str, Any]) -> list[SchemaError] | None:
        """Schema errors; ``None`` when this Kubernetes version has no such apiVersion and kind."""
        validator = self.validator(str(obj.get("apiVersion")), str(obj.get("kind")))
        if validator is None:
            return None
        return _errors(validator, obj)


def _strict(schema: dict[str, Any]) -> dict[str, Any]:
    """Refuse unknown fields in every object schema that lists its properties."""

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if "properties" in node and "additionalProperties" not in node:
                node["additionalProperties"] = False
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    result = copy.deepcopy(schema)
    walk(result)
    return result


def _resource_models(module_name: str) -> Iterator[type[BaseModel]]:
    module = importlib.import_module(module_name)
    for value in vars(module).values():
        if isinstance(value, type) and issubclass(value, BaseModel) and value.__module__ == module_name:
            fields = value.model_fields
            if {"api_version", "kind", "spec"} <= set(fields) and isinstance(fields["kind"].default, str):
                yield value


def _cache_file() -> Path | None:
    """Where the generated Flux schemas are kept between runs, keyed by what they are made from."""
    try:
        versions = "-".join(metadata.version(name) for name in ("cloudcoil-models-fluxcd", "cloudcoil", "pydantic"))
    except metadata.PackageNotFoundError:
        return None
    digest = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:12]
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "misp-eks"
    return base / f"flux-schemas-{versions}-{digest}.json"


def _generate_flux_schemas() -> dict[str, dict[str, Any]]:
    schemas = {}
    for module_name in _FLUX_MODULES:
        for model in _resource_models(module_name):
            api_version = model.model_fields["api_version"].default
            kind = model.model_fields["kind"].default
            schema = _strict(model.model_json_schema(by_alias=True, mode="validation"))
            if (api_version, kind) == ("helm.toolkit.fluxcd.io/v2", "HelmRelease"):
                for name in ("Install", "Upgrade"):
                    schema["$defs"][name]["properties"]["strategy"] = _HELMRELEASE_STRATEGY
            # The status subresource is the controller's, never the repository's.
            schema["properties"].pop("status", None)
            schema["required"] = sorted({*schema.get("required", []), "apiVersion", "kind", "metadata", "spec"})
            schemas[f"{api_version} {kind}"] = schema
    return schemas


@cache
def flux_schemas() -> dict[str, dict[str, Any]]:
    """Strict JSON schemas of every Flux kind, keyed by ``"apiVersion kind"``.

    Importing the cloudcoil models takes about a second, so the generated schemas are kept in the
    user's cache directory, keyed by the package versions and this module's source.
    """
    path = _cache_file()
    if path is not None and path.is_file():
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError):
            pass
    schemas = _generate_flux_schemas()
    if path is not None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            temporary = path.with_suffix(f".{os.getpid()}.tmp")
            temporary.write_text(json.dumps(schemas))
            temporary.replace(path)
        except OSError:
            pass  # a read-only home: generate again next time
    return schemas


@cache
def flux_validators() -> dict[tuple[str, str], jsonschema.protocols.Validator]:
    """Strict validators for every Flux kind, keyed by (apiVersion, kind). Built once per process."""
    validators = {}
    for key, schema in flux_schemas().items():
        api_version, kind = key.split(" ")
        validators[(api_version, kind)] = jsonschema.Draft202012Validator(schema)
    return validators


def _model_validator(model: type[BaseModel]) -> Callable[[dict[str, Any]], list[SchemaError]]:
    def validate(obj: dict[str, Any]) -> list[SchemaError]:
        try:
            model.model_validate(obj)
        except ValidationError as error:
            return [SchemaError(location, message) for location, message in field_errors(error)]
        return []

    return validate


CUSTOM_MODELS: dict[tuple[str, str], type[BaseModel]] = {
    ("external-secrets.io/v1", "ExternalSecret"): external_secrets.ExternalSecret,
    ("external-secrets.io/v1", "ClusterSecretStore"): external_secrets.ClusterSecretStore,
}
CLUSTER_SCOPED_CUSTOM = frozenset({"ClusterSecretStore", "ClusterExternalSecret"})


def custom_errors(obj: dict[str, Any]) -> list[SchemaError] | None:
    """Errors for a custom resource; ``None`` when nothing in the project validates its kind."""
    key = (str(obj.get("apiVersion")), str(obj.get("kind")))
    validator = flux_validators().get(key)
    if validator is not None:
        return _errors(validator, obj)
    model = CUSTOM_MODELS.get(key)
    if model is not None:
        return _model_validator(model)(obj)
    return None


def known_custom_kinds() -> list[str]:
    return sorted(f"{api}/{kind}" for api, kind in [*flux_validators(), *CUSTOM_MODELS])
