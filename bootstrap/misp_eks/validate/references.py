"""Checks that the objects of one applied tree fit together, as the cluster would need them to."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from misp_eks.problems import Problem
from misp_eks.validate.resources import (
    CLUSTER_SCOPED_BUILTINS,
    Resource,
    Tree,
    containers,
    pod_labels,
    pod_spec,
    pod_spec_path,
    pod_template,
    selector_matches,
)
from misp_eks.validate.schemas import CLUSTER_SCOPED_CUSTOM


def _lookup(tree: Tree, context: list[Tree]) -> Tree:
    """The tree plus the trees of the Flux Kustomizations it depends on: all exist before it is applied."""
    return Tree(path=tree.path, resources=[r for t in (tree, *context) for r in t])


def _problem(resource: Resource, field: str, message: str) -> Problem:
    return Problem(resource.origin, message, obj=resource.ref, field=field)


def _workloads(tree: Tree, namespace: str) -> list[Resource]:
    return [r for r in tree if pod_template(r) is not None and r.namespace == namespace]


def _container_ports(workload: Resource) -> list[dict[str, Any]]:
    return [
        port
        for container in containers(workload, include_init=False)
        if isinstance(container, dict)
        for port in container.get("ports") or []
        if isinstance(port, dict)
    ]


def check_namespaces(tree: Tree) -> Iterator[Problem]:
    for resource in tree:
        scoped = resource.kind in CLUSTER_SCOPED_BUILTINS or resource.kind in CLUSTER_SCOPED_CUSTOM
        if not scoped and not resource.namespace:
            yield _problem(resource, "metadata.namespace", "namespaced object without a namespace")


def check_services(tree: Tree) -> Iterator[Problem]:
    for service in tree.of_kind("Service"):
        selector = service.spec.get("selector")
        if not selector or not isinstance(selector, dict):
            continue
        matching = [w for w in _workloads(tree, service.namespace) if selector_matches(selector, pod_labels(w))]
        if not matching:
            yield _problem(service, "spec.selector", f"selects no pod in namespace {service.namespace}")
            continue
        ports = [port for workload in matching for port in _container_ports(workload) if isinstance(port, dict)]
        for index, port in enumerate(service.spec.get("ports") or []):
            if not isinstance(port, dict):
                continue  # the schema check reports it
            target = port.get("targetPort", port.get("port"))
            if isinstance(target, str):
                found = any(p.get("name") == target for p in ports)
            else:
                found = any(p.get("containerPort") == target for p in ports)
            if not found:
                yield _problem(
                    service,
                    f"spec.ports[{index}].targetPort",
                    f"{target} is not a port of the selected containers",
                )


def _ingress_backends(ingress: Resource) -> Iterator[tuple[str, dict[str, Any]]]:
    default = ingress.spec.get("defaultBackend")
    if isinstance(default, dict) and "service" in default:
        yield "spec.defaultBackend.service", default["service"]
    for r, rule in enumerate(ingress.spec.get("rules") or []):
        if not isinstance(rule, dict):
            continue
        for p, path in enumerate(((rule.get("http") or {}).get("paths")) or []):
            if not isinstance(path, dict):
                continue
            backend = path.get("backend") or {}
            if "service" in backend:
                yield f"spec.rules[{r}].http.paths[{p}].backend.service", backend["service"]


def check_ingresses(tree: Tree) -> Iterator[Problem]:
    for ingress in tree.of_kind("Ingress"):
        for field, backend in _ingress_backends(ingress):
            service = tree.get("Service", str(backend.get("name")), ingress.namespace)
            if service is None:
                yield _problem(ingress, f"{field}.name", f"no Service {backend.get('name')} in {ingress.namespace}")
                continue
            port = backend.get("port") or {}
            ports = [p for p in service.spec.get("ports") or [] if isinstance(p, dict)]
            if "name" in port:
                found = any(p.get("name") == port["name"] for p in ports)
            else:
                found = any(p.get("port") == port.get("number") for p in ports)
            if not found:
                wanted = port.get("name", port.get("number"))
                yield _problem(ingress, f"{field}.port", f"Service {service.name} has no port {wanted}")


def check_targets(tree: Tree) -> Iterator[Problem]:
    for hpa in tree.of_kind("HorizontalPodAutoscaler"):
        ref = hpa.spec.get("scaleTargetRef") or {}
        if tree.get(str(ref.get("kind")), str(ref.get("name")), hpa.namespace) is None:
            yield _problem(hpa, "spec.scaleTargetRef", f"no {ref.get('kind')} {ref.get('name')} in {hpa.namespace}")
    for kind, field in (("PodDisruptionBudget", "spec.selector"), ("NetworkPolicy", "spec.podSelector")):
        for resource in tree.of_kind(kind):
            selector = resource.spec.get(field.split(".")[1])
            if selector == {} or (kind == "NetworkPolicy" and not selector):
                continue  # an empty selector selects every pod of the namespace
            if selector is not None and not isinstance(selector, dict):
                continue  # the schema check reports it
            if not any(selector_matches(selector, pod_labels(w)) for w in _workloads(tree, resource.namespace)):
                yield _problem(resource, field, f"selects no pod in namespace {resource.namespace}")


def _mapping(value: object) -> dict[str, Any]:
    """``value`` if it is a mapping, else empty: a malformed field is the schema check's to report."""
    return value if isinstance(value, dict) else {}


def _external_secret(tree: Tree, name: str, namespace: str) -> Resource | None:
    """The ExternalSecret that produces Secret ``name`` (its target name, by default its own)."""
    for external in tree.of_kind("ExternalSecret"):
        if (
            external.namespace == namespace
            and (_mapping(external.spec.get("target")).get("name") or external.name) == name
        ):
            return external
    return None


def _secret_keys(tree: Tree, name: str, namespace: str) -> set[str] | None:
    """Keys of a Secret defined in the tree or produced by an ExternalSecret; None if unknown or absent."""
    secret = tree.get("Secret", name, namespace)
    if secret is not None:
        return {*_mapping(secret.obj.get("data")), *_mapping(secret.obj.get("stringData"))}
    external = _external_secret(tree, name, namespace)
    if external is None:
        return set()
    if external.spec.get("dataFrom"):
        return None  # keys come from the remote secret: unknowable offline
    template = _mapping(_mapping(external.spec.get("target")).get("template"))
    if template.get("data"):
        return set(_mapping(template["data"]))
    return {item.get("secretKey") for _, item in _mappings(external.spec.get("data"))}


def _exists(tree: Tree, kind: str, name: str, namespace: str) -> bool:
    if tree.get(kind, name, namespace) is not None:
        return True
    return kind == "Secret" and _external_secret(tree, name, namespace) is not None


def _mappings(value: object) -> Iterator[tuple[int, dict[str, Any]]]:
    """The mappings of a list, with their index; anything malformed is the schema check's to report."""
    for index, item in enumerate(value if isinstance(value, list) else []):
        if isinstance(item, dict):
            yield index, item


def _pod_references(workload: Resource) -> Iterator[tuple[str, str, str, str | None, bool]]:
    """(field, kind, name, key, optional) for every ConfigMap, Secret and ServiceAccount a pod uses."""
    spec = pod_spec(workload)
    base = pod_spec_path(workload)
    if spec.get("serviceAccountName"):
        yield f"{base}.serviceAccountName", "ServiceAccount", spec["serviceAccountName"], None, False
    for i, secret in _mappings(spec.get("imagePullSecrets")):
        yield f"{base}.imagePullSecrets[{i}]", "Secret", secret.get("name"), None, False
    for i, volume in _mappings(spec.get("volumes")):
        if isinstance(volume.get("configMap"), dict):
            source = volume["configMap"]
            yield (
                f"{base}.volumes[{i}].configMap",
                "ConfigMap",
                source.get("name"),
                None,
                bool(source.get("optional")),
            )
        if isinstance(volume.get("secret"), dict):
            source = volume["secret"]
            yield (
                f"{base}.volumes[{i}].secret",
                "Secret",
                source.get("secretName"),
                None,
                bool(source.get("optional")),
            )
        for j, projected in _mappings((volume.get("projected") or {}).get("sources")):
            for kind, key in (("ConfigMap", "configMap"), ("Secret", "secret")):
                if isinstance(projected.get(key), dict):
                    source = projected[key]
                    field = f"{base}.volumes[{i}].projected.sources[{j}].{key}"
                    yield field, kind, source.get("name"), None, bool(source.get("optional"))
    for group in ("initContainers", "containers"):
        for c, container in _mappings(spec.get(group)):
            prefix = f"{base}.{group}[{c}]"
            for e, env in _mappings(container.get("env")):
                value_from = env.get("valueFrom") if isinstance(env.get("valueFrom"), dict) else {}
                for kind, key in (("ConfigMap", "configMapKeyRef"), ("Secret", "secretKeyRef")):
                    if isinstance(value_from.get(key), dict):
                        ref = value_from[key]
                        field = f"{prefix}.env[{e}].valueFrom.{key}"
                        yield field, kind, ref.get("name"), ref.get("key"), bool(ref.get("optional"))
            for e, env_from in _mappings(container.get("envFrom")):
                for kind, key in (("ConfigMap", "configMapRef"), ("Secret", "secretRef")):
                    if isinstance(env_from.get(key), dict):
                        ref = env_from[key]
                        yield (
                            f"{prefix}.envFrom[{e}].{key}",
                            kind,
                            ref.get("name"),
                            None,
                            bool(ref.get("optional")),
                        )


def check_volume_mounts(tree: Tree) -> Iterator[Problem]:
    for workload in tree:
        if pod_template(workload) is None:
            continue
        spec = pod_spec(workload)
        base = pod_spec_path(workload)
        volumes = {v.get("name") for _, v in _mappings(spec.get("volumes"))}
        for group in ("initContainers", "containers"):
            for c, container in _mappings(spec.get(group)):
                for m, mount in _mappings(container.get("volumeMounts")):
                    if mount.get("name") not in volumes:
                        yield _problem(
                            workload, f"{base}.{group}[{c}].volumeMounts[{m}].name", f"no volume {mount.get('name')}"
                        )


def check_probe_ports(tree: Tree) -> Iterator[Problem]:
    """A probe's named port is looked up in its own container's ports only (kubelet findPortByName)."""
    for workload in tree:
        if pod_template(workload) is None:
            continue
        for c, container in _mappings(pod_spec(workload).get("containers")):
            names = {port.get("name") for _, port in _mappings(container.get("ports"))}
            for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                for handler in ("httpGet", "tcpSocket"):
                    port = _mapping(_mapping(container.get(probe)).get(handler)).get("port")
                    if isinstance(port, str) and port not in names:
                        yield _problem(
                            workload,
                            f"{pod_spec_path(workload)}.containers[{c}].{probe}.{handler}.port",
                            f"container {container.get('name')} has no port named {port}",
                        )


def check_pod_references(tree: Tree, lookup: Tree) -> Iterator[Problem]:
    for workload in tree:
        if pod_template(workload) is None:
            continue
        namespace = workload.namespace
        for field, kind, name, key, optional in _pod_references(workload):
            if optional:
                continue
            if not _exists(lookup, kind, str(name), namespace):
                source = " (nor produced by an ExternalSecret)" if kind == "Secret" else ""
                yield _problem(workload, field, f"{kind} {name} is not in this tree{source}")
                continue
            if key is None:
                continue
            if kind == "ConfigMap":
                config_map = lookup.one("ConfigMap", str(name), namespace)
                keys: set[str] | None = {
                    *(config_map.obj.get("data") or {}),
                    *(config_map.obj.get("binaryData") or {}),
                }
            else:
                keys = _secret_keys(lookup, str(name), namespace)
            if keys is not None and key not in keys:
                yield _problem(workload, field, f"{kind} {name} has no key {key}")


def check_tree(tree: Tree, context: list[Tree] | None = None) -> list[Problem]:
    """Everything in ``tree`` that would not fit together once applied; ``context`` holds the trees
    of the Flux Kustomizations it depends on."""
    lookup = _lookup(tree, context or [])
    return [
        *check_namespaces(tree),
        *check_services(tree),
        *check_ingresses(tree),
        *check_targets(tree),
        *check_volume_mounts(tree),
        *check_probe_ports(tree),
        *check_pod_references(tree, lookup),
    ]
