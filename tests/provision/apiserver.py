"""A Kubernetes API server for the bootstrap's tests: real HTTPS on 127.0.0.1, EKS authentication, and the
subset of the REST API the bootstrap uses, with the API server's own rules.

Rules, and where they come from (kubernetes/kubernetes and kubernetes/apimachinery at v1.35.0 unless said):

- Every request needs ``Authorization: Bearer <EKS token>``; the token is checked as
  kubernetes-sigs/aws-iam-authenticator pkg/token/token.go (v0.7.18) ``Verify`` checks it (prefix, unpadded
  URL-safe base64, https, an STS host, path ``/``, only its whitelisted query parameters, Action
  GetCallerIdentity, ``x-k8s-aws-id`` among the signed headers, X-Amz-Expires within 0..900, X-Amz-Date
  not older than 15 minutes, the host ``sts.<region>.<domain of the server's partition>`` or the global
  ``sts.amazonaws.com`` in partition aws: ``verifySTSHostnameFormat`` and pkg/endpoints/partitions.go),
  then as STS would (the credential scope's region that of the host, us-east-1 for the global one; the
  SigV4 signature recomputed with the secret of the access key, and ``x-k8s-aws-id`` set to this
  server's cluster name, as the authenticator sends it).
  Anything else is 401 Unauthorized (staging/src/k8s.io/apiserver/pkg/endpoints/filters/authentication.go).
- Names must be DNS-1123 subdomains (labels for namespaces); ConfigMap data must be strings under
  valid keys, 1 MiB at most; Secret data base64 under valid keys (pkg/apis/core/validation).
- Errors are ``Status`` objects (apimachinery pkg/api/errors/errors.go): NotFound 404 for a missing object
  or an unknown path, AlreadyExists 409 on creating an existing object, Conflict 409 on a stale
  resourceVersion, BadRequest 400 for a body whose apiVersion, kind, namespace or (on PUT) name does not
  match the URL (apiserver pkg/endpoints/handlers/rest.go checkName, update.go and create.go) or an
  unsupported field selector, UnsupportedMediaType 415 for a strategic merge patch on a custom resource (CRDs do not
  support it: apiextensions-apiserver pkg/apiserver/customresource_handler.go).
- Creating a namespaced object in a namespace that does not exist is NotFound
  (plugin/pkg/admission/namespace/lifecycle). A custom resource group is served (discovery, REST) only
  once its CustomResourceDefinition exists; the status of an object with a status subresource is
  written only through ``/status`` (apiextensions-apiserver pkg/registry/customresource/strategy.go).
- Unknown fields are dropped, as with the default fieldValidation (Warn: the field is dropped and a
  ``Warning`` header names it; apiserver pkg/endpoints/handlers/rest.go): a built-in keeps only its
  type's fields (top level and ObjectMeta here), a custom object is pruned to its CRD's structural
  schema (apiextensions-apiserver pkg/apiserver/schema/pruning).
- metadata.generation is 1 on creation and grows with every change outside metadata and status, for
  kinds that have a status subresource (custom resources: customresource/strategy.go; Deployments,
  StatefulSets, ReplicaSets: pkg/registry/apps/*/strategy.go); their main resource ignores status.
- Deleting an object with finalizers sets metadata.deletionTimestamp and keeps it until they are
  removed (apiserver pkg/registry/generic/registry/store.go); here the AWS Load Balancer Controller's
  ``ingress.k8s.aws/resources`` finalizer goes after ``finalizer_seconds``, when its load balancer is
  deleted (``on_ingress_gone``).
- Scaling a Deployment or StatefulSet keeps the object (spec.replicas 0) and its pods go after
  ``termination_seconds`` (the grace period). A finished Job's pods are not touched.
- List selectors: labelSelector with ``=``, ``==``, ``!=``, ``key``, ``!key``; fieldSelector with
  metadata.name and metadata.namespace (every kind), status.phase (pods); anything else is 400.
"""

from __future__ import annotations

import base64
import copy
import hmac
import http.server
import json
import re
import ssl
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, parse_qsl, urlsplit

from botocore.auth import SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import ReadOnlyCredentials

from tests.servers.tls import Certificates

TOKEN_PREFIX = "k8s-aws-v1."
CLUSTER_HEADER = "x-k8s-aws-id"
TOKEN_MAX_BYTES = 4 * 1024
TOKEN_LIFETIME_SECONDS = 15 * 60
# aws-iam-authenticator pkg/token/token.go parameterWhitelist
QUERY_WHITELIST = frozenset(
    {
        "action",
        "version",
        "x-amz-algorithm",
        "x-amz-credential",
        "x-amz-date",
        "x-amz-expires",
        "x-amz-security-token",
        "x-amz-signature",
        "x-amz-signedheaders",
    }
)
# aws-iam-authenticator pkg/endpoints/partitions.go GetSTSPartitionDomain, GetSTSDualStackPartitionDomain
STS_DOMAINS = {
    "aws": ("amazonaws.com", "api.aws"),
    "aws-cn": ("amazonaws.com.cn", "api.amazonwebservices.com.cn"),
    "aws-us-gov": ("amazonaws.com", "api.aws"),
}
STS_GLOBAL_HOST = "sts.amazonaws.com"  # token.go getStsRegion: "global", accepted in partition aws only
STS_GLOBAL_SIGNING_REGION = "us-east-1"
REGION_FORMAT = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?$")  # token.go validateInputRegion
INGRESS_FINALIZER = "ingress.k8s.aws/resources"  # kubernetes-sigs/aws-load-balancer-controller's Ingress finalizer


@dataclass(frozen=True)
class Kind:
    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool = True
    custom: bool = False
    status_subresource: bool = False
    scale: bool = False
    schema: dict[str, Any] | None = field(default=None, compare=False, hash=False)
    """A custom resource's structural schema (openAPIV3Schema), what its objects are pruned to."""

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version


BUILTIN = (
    Kind("", "v1", "namespaces", "Namespace", namespaced=False),
    Kind("", "v1", "configmaps", "ConfigMap"),
    Kind("", "v1", "secrets", "Secret"),
    Kind("", "v1", "pods", "Pod"),
    Kind("apps", "v1", "deployments", "Deployment", status_subresource=True, scale=True),
    Kind("apps", "v1", "statefulsets", "StatefulSet", status_subresource=True, scale=True),
    Kind("apps", "v1", "replicasets", "ReplicaSet", status_subresource=True, scale=True),
    Kind("batch", "v1", "jobs", "Job"),
    Kind("networking.k8s.io", "v1", "ingresses", "Ingress"),
    Kind("apiextensions.k8s.io", "v1", "customresourcedefinitions", "CustomResourceDefinition", namespaced=False),
)
FIELD_SELECTORS = {"Pod": {"status.phase"}}
# The top-level fields of each built-in type (k8s.io/api core/v1 and apps/v1 types.go at v0.35.0) and of
# ObjectMeta (apimachinery pkg/apis/meta/v1/types.go); anything else is dropped.
TYPE_FIELDS = {"apiVersion", "kind", "metadata"}
BUILTIN_FIELDS = {
    "ConfigMap": {"data", "binaryData", "immutable"},
    "Secret": {"data", "stringData", "type", "immutable"},
    "CustomResourceDefinition": {"spec", "status"},
}
WORKLOAD_FIELDS = {"spec", "status"}
OBJECT_META_FIELDS = {
    "name",
    "generateName",
    "namespace",
    "selfLink",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "labels",
    "annotations",
    "ownerReferences",
    "finalizers",
    "managedFields",
}


class ApiError(Exception):
    def __init__(self, code: int, reason: str, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code, self.reason, self.message, self.details = code, reason, message, details or {}

    def status(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details:
            body["details"] = self.details
        return body


def not_found(kind: Kind, name: str) -> ApiError:
    return ApiError(
        404,
        "NotFound",
        f'{kind.plural}{"." + kind.group if kind.group else ""} "{name}" not found',
        {"name": name, "group": kind.group, "kind": kind.plural},
    )


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# The EKS token, checked as aws-iam-authenticator and STS check it.


def sts_host_region(host: str, partition: str) -> str:
    """The region of an STS host the authenticator accepts for ``partition`` (token.go verifySTSHostnameFormat),
    as STS expects it in the credential scope (us-east-1 for the global endpoint)."""
    if host == STS_GLOBAL_HOST:
        if partition != "aws":
            raise ValueError(f"global endpoint unsupported in partition {partition}")
        return STS_GLOBAL_SIGNING_REGION
    parts = host.split(".")
    if len(parts) < 4 or parts[0] != "sts":
        raise ValueError(f"unexpected hostname {host!r} in pre-signed URL")
    if not REGION_FORMAT.match(parts[1]):
        raise ValueError(f"invalid region identifier format provided: {parts[1]}")
    if ".".join(parts[2:]) not in STS_DOMAINS.get(partition, ()):
        raise ValueError(f"partition {{{partition}}} does not support hostname {host}")
    return parts[1]


def verify_token(
    token: str, cluster: str, secrets: dict[str, str], now: float | None = None, partition: str = "aws"
) -> str:
    """The access key that signed ``token`` for ``cluster``; ValueError naming what is wrong otherwise."""
    if len(token) > TOKEN_MAX_BYTES:
        raise ValueError("token is too large")
    if not token.startswith(TOKEN_PREFIX):
        raise ValueError(f"token is missing expected {TOKEN_PREFIX!r} prefix")
    body = token.removeprefix(TOKEN_PREFIX)
    if "=" in body:
        raise ValueError("padded base64: the authenticator decodes RawURLEncoding")
    url = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)).decode()
    parsed = urlsplit(url)
    if parsed.scheme != "https":
        raise ValueError(f"unexpected scheme {parsed.scheme!r} in pre-signed URL")
    host_region = sts_host_region(parsed.netloc, partition)
    if parsed.path != "/":
        raise ValueError("unexpected path in pre-signed URL")
    pairs = parse_qsl(parsed.query, keep_blank_values=True)
    lower: dict[str, str] = {}
    for key, value in pairs:
        if key.lower() not in QUERY_WHITELIST:
            raise ValueError(f"non-whitelisted query parameter {key!r}")
        if key.lower() in lower:
            raise ValueError(f"duplicate query parameter found: {key!r}")
        lower[key.lower()] = value
    if lower.get("action") != "GetCallerIdentity":
        raise ValueError("unexpected action parameter in pre-signed URL")
    signed = lower.get("x-amz-signedheaders", "").split(";")
    if CLUSTER_HEADER not in [header.lower() for header in signed]:
        raise ValueError(f"client did not sign the {CLUSTER_HEADER} header in the pre-signed URL")
    expires = int(lower.get("x-amz-expires", "-1") or "-1")
    if not 0 <= expires <= 900:
        raise ValueError(f"invalid X-Amz-Expires parameter in pre-signed URL: {expires}")
    date = datetime.strptime(lower.get("x-amz-date", ""), "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    if (now if now is not None else time.time()) > date.timestamp() + TOKEN_LIFETIME_SECONDS:
        raise ValueError(f"X-Amz-Date parameter is expired (15 minute expiration) {date}")
    # What STS does with the GET the authenticator sends (header x-k8s-aws-id: this cluster): check the signature.
    access_key, _, scope = lower.get("x-amz-credential", "").partition("/")
    secret = secrets.get(access_key)
    if secret is None:
        raise ValueError(f"STS: unknown access key {access_key!r}")
    region = scope.split("/")[1] if scope.count("/") >= 3 else ""
    if region != host_region:  # STS: a credential scoped to another region than the endpoint's
        raise ValueError(
            f"STS: SignatureDoesNotMatch (credential scoped to region {region!r}, the endpoint's is {host_region!r})"
        )
    unsigned = "&".join(item for item in parsed.query.split("&") if not item.lower().startswith("x-amz-signature="))
    request = AWSRequest(method="GET", url=f"https://{parsed.netloc}/?{unsigned}", headers={CLUSTER_HEADER: cluster})
    request.context["timestamp"] = lower["x-amz-date"]
    signer = SigV4QueryAuth(ReadOnlyCredentials(access_key, secret, lower.get("x-amz-security-token")), "sts", region)
    if set(signer.headers_to_sign(request)) != {header.lower() for header in signed}:
        raise ValueError("STS: the signed headers are not host and x-k8s-aws-id")
    string_to_sign = signer.string_to_sign(request, signer.canonical_request(request))
    expected = signer.signature(string_to_sign, request)
    if not hmac.compare_digest(expected, lower.get("x-amz-signature", "")):
        raise ValueError("STS: SignatureDoesNotMatch (signed for another cluster or with other credentials)")
    return access_key


# Object validation (the parts the bootstrap could get wrong).

DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
CONFIG_MAP_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")
CONFIG_MAP_MAX_BYTES = 1024 * 1024


def validate(kind: Kind, obj: dict[str, Any]) -> None:
    """Names as apimachinery pkg/api/validation (DNS-1123 subdomain; a label for namespaces) and ConfigMap
    data as pkg/apis/core/validation ValidateConfigMap (string values, IsConfigMapKey keys, 1 MiB)."""
    name = str((obj.get("metadata") or {}).get("name", ""))
    pattern, limit = (DNS1123_LABEL, 63) if kind.kind == "Namespace" else (DNS1123_SUBDOMAIN, 253)
    if len(name) > limit or not pattern.match(name):
        raise ApiError(422, "Invalid", f'{kind.kind} "{name}" is invalid: metadata.name: Invalid value: "{name}"')
    if kind.kind == "ConfigMap":
        data = obj.get("data") or {}
        if not isinstance(data, dict) or not all(isinstance(value, str) for value in data.values()):
            raise ApiError(400, "BadRequest", 'ConfigMap in version "v1" cannot be handled: data values are strings')
        for key in data:
            if len(key) > 253 or not CONFIG_MAP_KEY.match(key):
                raise ApiError(422, "Invalid", f'ConfigMap "{name}" is invalid: data[{key}]: Invalid value: "{key}"')
        if sum(len(key) + len(value.encode()) for key, value in data.items()) > CONFIG_MAP_MAX_BYTES:
            raise ApiError(
                422, "Invalid", f'ConfigMap "{name}" is invalid: []: Too long: must have at most 1048576 bytes'
            )
    if kind.kind == "Secret":
        # Secret.data is map[string][]byte: JSON carries it base64-encoded, and anything else fails decoding.
        for key, value in (obj.get("data") or {}).items():
            if len(key) > 253 or not CONFIG_MAP_KEY.match(key):  # ValidateSecret: IsConfigMapKey too
                raise ApiError(422, "Invalid", f'Secret "{name}" is invalid: data[{key}]: Invalid value: "{key}"')
            try:
                base64.b64decode(str(value), validate=True)
            except ValueError:
                raise ApiError(400, "BadRequest", f'Secret in version "v1" cannot be handled: data[{key}]') from None


# Unknown fields.


def prune_schema(schema: dict[str, Any], value: Any, path: str, dropped: list[str]) -> Any:
    """``value`` without what a structural schema does not declare (apiextensions-apiserver
    pkg/apiserver/schema/pruning/algorithm.go: properties, additionalProperties, items,
    x-kubernetes-preserve-unknown-fields)."""
    if schema.get("x-kubernetes-preserve-unknown-fields") and not schema.get("properties"):
        return value
    if isinstance(value, dict):
        properties = schema.get("properties")
        additional = schema.get("additionalProperties")
        kept = {}
        for key, item in value.items():
            if properties and key in properties:
                kept[key] = prune_schema(properties[key], item, f"{path}.{key}", dropped)
            elif isinstance(additional, dict):
                kept[key] = prune_schema(additional, item, f"{path}.{key}", dropped)
            elif additional is True or schema.get("x-kubernetes-preserve-unknown-fields"):
                kept[key] = item
            else:
                dropped.append(f"{path}.{key}")
        return kept
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [prune_schema(schema["items"], item, f"{path}[{index}]", dropped) for index, item in enumerate(value)]
    return value


def prune(kind: Kind, obj: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """``obj`` without unknown fields, and their paths (the API server's warnings)."""
    dropped: list[str] = []
    if kind.custom:  # apiVersion, kind and metadata are always kept (pruning skips the object's root meta)
        fields = {key: value for key, value in obj.items() if key not in TYPE_FIELDS}
        result = {
            **{key: obj[key] for key in TYPE_FIELDS if key in obj},
            **prune_schema(kind.schema or {}, fields, "", dropped),
        }
    else:
        allowed = TYPE_FIELDS | BUILTIN_FIELDS.get(kind.kind, WORKLOAD_FIELDS)
        result = {key: value for key, value in obj.items() if key in allowed}
        dropped += [f".{key}" for key in obj if key not in allowed]
    meta = result.get("metadata")
    if isinstance(meta, dict):
        dropped += [f".metadata.{key}" for key in meta if key not in OBJECT_META_FIELDS]
        result["metadata"] = {key: value for key, value in meta.items() if key in OBJECT_META_FIELDS}
    return result, [path.lstrip(".") for path in dropped]


def _spec_of(obj: dict[str, Any]) -> dict[str, Any]:
    """What counts for metadata.generation: everything but metadata and status."""
    return {key: value for key, value in obj.items() if key not in ("metadata", "status", "apiVersion", "kind")}


def check_type(kind: Kind, body: dict[str, Any]) -> None:
    """The body's apiVersion and kind, when given, are the URL's (apiserver handlers: the decoder's
    "the API version in the data (...) does not match the expected API version (...)")."""
    api_version = body.get("apiVersion")
    if api_version not in (None, "", kind.api_version):
        raise ApiError(
            400,
            "BadRequest",
            f"the API version in the data ({api_version}) does not match the expected API version ({kind.api_version})",
        )
    if body.get("kind") not in (None, "", kind.kind):
        raise ApiError(400, "BadRequest", f"the kind in the data ({body.get('kind')}) does not match {kind.kind}")


# Patches and selectors.


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch (apimachinery uses evanphx/json-patch MergePatch)."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def _label_matcher(selector: str) -> Callable[[dict[str, str]], bool]:
    """Equality-based label selectors (apimachinery pkg/labels/selector.go)."""
    checks: list[Callable[[dict[str, str]], bool]] = []
    for raw in filter(None, (part.strip() for part in selector.split(","))):
        if "!=" in raw:
            key, value = (item.strip() for item in raw.split("!=", 1))
            checks.append(lambda labels, key=key, value=value: labels.get(key) != value)
        elif "=" in raw:
            key, value = (item.strip() for item in raw.replace("==", "=").split("=", 1))
            checks.append(lambda labels, key=key, value=value: labels.get(key) == value)
        elif raw.startswith("!"):
            absent = raw[1:].strip()
            checks.append(lambda labels, key=absent: key not in labels)
        elif re.fullmatch(r"[A-Za-z0-9./_-]+", raw):
            checks.append(lambda labels, key=raw: key in labels)
        else:
            raise ApiError(400, "BadRequest", f"unable to parse requirement: {raw!r}")
    return lambda labels: all(check(labels) for check in checks)


def _field_matcher(kind: Kind, selector: str) -> Callable[[dict[str, Any]], bool]:
    """Field selectors: metadata.name/namespace everywhere, plus the kind's own fields
    (pkg/registry/core/pod/strategy.go ToSelectableFields for pods)."""
    checks: list[Callable[[dict[str, Any]], bool]] = []
    for raw in filter(None, (part.strip() for part in selector.split(","))):
        negate = "!=" in raw
        key, value = (item.strip() for item in raw.replace("==", "=").split("!=" if negate else "=", 1))
        if key not in {"metadata.name", "metadata.namespace", *FIELD_SELECTORS.get(kind.kind, set())}:
            raise ApiError(400, "BadRequest", f'"{key}" is not a known field selector: only "metadata.name", ...')

        def check(obj: dict[str, Any], path: str = key, wanted: str = value, negate: bool = negate) -> bool:
            current: Any = obj
            for part in path.split("."):
                current = current.get(part, {}) if isinstance(current, dict) else {}
            actual = current if isinstance(current, str) else ""
            return (actual != wanted) if negate else (actual == wanted)

        checks.append(check)
    return lambda obj: all(check(obj) for check in checks)


# The store.


@dataclass
class ApiServer:
    """The objects, the rules and the pending controller work of one emulated cluster."""

    cluster: str
    secrets: dict[str, str]
    """Access key id -> secret access key: what STS knows."""
    on_ingress_gone: Callable[[dict[str, Any]], None] = lambda _ingress: None
    partition: str = "aws"
    without_policy: set[str] = field(default_factory=set)
    """Access keys whose identity has an access entry but no access policy: authenticated, then forbidden."""
    finalizer_seconds: float = 0.2
    termination_seconds: float = 0.2
    objects: dict[tuple[str, str, str], dict[str, Any]] = field(default_factory=dict)
    custom: dict[tuple[str, str, str], Kind] = field(default_factory=dict)
    requests: list[tuple[str, str, int]] = field(default_factory=list)
    """(method, path, status) of every request, in order."""
    dropped: list[str] = field(default_factory=list)
    """The unknown fields dropped from written objects ("<kind> <name>: <path>"), in order."""
    _lock: threading.RLock = field(default_factory=threading.RLock)
    _version: int = 1000
    _due: list[tuple[float, Callable[[], None]]] = field(default_factory=list)

    def __post_init__(self) -> None:
        for name in ("default", "kube-system", "kube-public"):
            self.put(self.kind("", "v1", "namespaces"), {"metadata": {"name": name}})

    # Kinds and keys.

    def kind(self, group: str, version: str, plural: str) -> Kind:
        for kind in BUILTIN:
            if (kind.group, kind.version, kind.plural) == (group, version, plural):
                return kind
        found = self.custom.get((group, version, plural))
        if found is None:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        return found

    def served(self, group: str, version: str) -> list[Kind]:
        kinds = [k for k in (*BUILTIN, *self.custom.values()) if (k.group, k.version) == (group, version)]
        if not kinds:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        return kinds

    @staticmethod
    def _key(kind: Kind, namespace: str, name: str) -> tuple[str, str, str]:
        return (f"{kind.group}/{kind.plural}", namespace if kind.namespaced else "", name)

    # Time: controllers' work that is due runs before each request is answered.

    def later(self, seconds: float, work: Callable[[], None]) -> None:
        self._due.append((time.monotonic() + seconds, work))

    def advance(self) -> None:
        with self._lock:
            now = time.monotonic()
            ready = [item for item in self._due if item[0] <= now]
            self._due = [item for item in self._due if item[0] > now]
        for _, work in ready:
            work()

    # Direct access for tests (no authentication: the test is the cluster's admin).

    def put(self, kind: Kind, obj: dict[str, Any], namespace: str = "") -> dict[str, Any]:
        with self._lock:
            stored = copy.deepcopy(obj)
            stored["apiVersion"], stored["kind"] = kind.api_version, kind.kind
            meta = stored.setdefault("metadata", {})
            if kind.namespaced:
                meta["namespace"] = namespace or meta.get("namespace", "")
            meta.setdefault("uid", str(uuid.uuid4()))
            meta.setdefault("creationTimestamp", _now())
            if kind.status_subresource:
                meta.setdefault("generation", 1)
            self._version += 1
            meta["resourceVersion"] = str(self._version)
            self.objects[self._key(kind, meta.get("namespace", ""), meta["name"])] = stored
            if kind.kind == "CustomResourceDefinition":
                self._register(stored)
            return copy.deepcopy(stored)

    def get(self, kind: Kind, namespace: str, name: str) -> dict[str, Any] | None:
        with self._lock:
            found = self.objects.get(self._key(kind, namespace, name))
            return copy.deepcopy(found) if found else None

    def items(self, kind: Kind, namespace: str | None = None) -> list[dict[str, Any]]:
        prefix = f"{kind.group}/{kind.plural}"
        with self._lock:
            return [
                copy.deepcopy(obj)
                for (key, ns, _), obj in sorted(self.objects.items())
                if key == prefix and (namespace is None or ns == namespace)
            ]

    def remove(self, kind: Kind, namespace: str, name: str) -> None:
        with self._lock:
            self.objects.pop(self._key(kind, namespace, name), None)

    def _register(self, crd: dict[str, Any]) -> None:
        spec = crd.get("spec", {})
        for version in spec.get("versions", []):
            if version.get("served"):
                self.custom[(spec["group"], version["name"], spec["names"]["plural"])] = Kind(
                    spec["group"],
                    version["name"],
                    spec["names"]["plural"],
                    spec["names"]["kind"],
                    namespaced=spec.get("scope") == "Namespaced",
                    custom=True,
                    status_subresource="status" in (version.get("subresources") or {}),
                    schema=(version.get("schema") or {}).get("openAPIV3Schema") or {},
                )

    # REST verbs.

    def list(self, kind: Kind, namespace: str | None, query: dict[str, str]) -> dict[str, Any]:
        labels = _label_matcher(query.get("labelSelector", ""))
        fields = _field_matcher(kind, query.get("fieldSelector", ""))
        items = [
            item
            for item in self.items(kind, namespace)
            if labels(item["metadata"].get("labels") or {}) and fields(item)
        ]
        if not kind.custom:  # typed lists carry no kind/apiVersion per item
            for item in items:
                item.pop("kind", None)
                item.pop("apiVersion", None)
        return {
            "kind": f"{kind.kind}List",
            "apiVersion": kind.api_version,
            "metadata": {"resourceVersion": str(self._version)},
            "items": items,
        }

    def read(self, kind: Kind, namespace: str, name: str) -> dict[str, Any]:
        found = self.get(kind, namespace, name)
        if found is None:
            raise not_found(kind, name)
        return found

    def create(self, kind: Kind, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        meta = body.get("metadata") or {}
        name = meta.get("name")
        if not name:
            raise ApiError(422, "Invalid", f"{kind.kind} is invalid: metadata.name: Required value")
        check_type(kind, body)
        if kind.namespaced:
            if meta.get("namespace") not in (None, namespace):
                raise ApiError(
                    400,
                    "BadRequest",
                    "the namespace of the provided object does not match the namespace sent on the request",
                )
            if self.get(self.kind("", "v1", "namespaces"), "", namespace) is None:
                raise not_found(self.kind("", "v1", "namespaces"), namespace)
        with self._lock:
            if self.get(kind, namespace, name) is not None:
                raise ApiError(
                    409,
                    "AlreadyExists",
                    f'{kind.plural}{"." + kind.group if kind.group else ""} "{name}" already exists',
                    {"name": name, "group": kind.group, "kind": kind.plural},
                )
            validate(kind, body)
            stored = self._pruned(kind, body)
            if kind.status_subresource:
                stored.pop("status", None)
                stored.setdefault("metadata", {})["generation"] = 1
            for generated in ("uid", "resourceVersion", "creationTimestamp", "deletionTimestamp"):
                stored.setdefault("metadata", {}).pop(generated, None)
            return self.put(kind, stored, namespace)

    def _pruned(self, kind: Kind, body: dict[str, Any]) -> dict[str, Any]:
        pruned, dropped = prune(kind, copy.deepcopy(body))
        name = (body.get("metadata") or {}).get("name", "")
        self.dropped.extend(f"{kind.kind} {name}: {path}" for path in dropped)
        return pruned

    def replace(self, kind: Kind, namespace: str, name: str, body: dict[str, Any], *, status: bool = False) -> Any:
        with self._lock:
            current = self.read(kind, namespace, name)
            check_type(kind, body)
            meta = body.get("metadata") or {}
            if meta.get("name") != name:  # rest.go checkName: an empty name does not match either
                raise ApiError(
                    400,
                    "BadRequest",
                    f"the name of the object ({meta.get('name') or ''}) does not match the name on the URL ({name})",
                )
            if kind.namespaced and meta.get("namespace") not in (None, "", namespace):
                raise ApiError(
                    400,
                    "BadRequest",
                    "the namespace of the provided object does not match the namespace sent on the request",
                )
            version = (body.get("metadata") or {}).get("resourceVersion")
            if version is not None and version != current["metadata"]["resourceVersion"]:
                raise ApiError(
                    409,
                    "Conflict",
                    f'Operation cannot be fulfilled on {kind.plural} "{name}": the object has been modified; '
                    "please apply your changes to the latest version and try again",
                )
            return self._write(kind, current, body, status=status)

    def _write(self, kind: Kind, current: dict[str, Any], wanted: dict[str, Any], *, status: bool) -> Any:
        validate(kind, wanted)
        updated = self._pruned(kind, wanted)
        meta = updated.setdefault("metadata", {})
        for kept in ("uid", "creationTimestamp", "deletionTimestamp", "namespace", "name", "generation"):
            if kept in current["metadata"]:
                meta[kept] = current["metadata"][kept]
        if kind.status_subresource:  # the main resource ignores status, /status ignores everything else
            if status:
                updated = {**current, "status": updated.get("status", {})}
            else:
                updated["status"] = current.get("status", {})
                if _spec_of(updated) != _spec_of(current):
                    meta["generation"] = int(current["metadata"].get("generation") or 0) + 1
        return self.put(kind, updated, current["metadata"].get("namespace", ""))

    def patch(self, kind: Kind, namespace: str, name: str, body: Any, content_type: str, *, status: bool) -> Any:
        if content_type == "application/strategic-merge-patch+json" and kind.custom:
            raise ApiError(
                415,
                "UnsupportedMediaType",
                "the body of the request was in an unknown format - accepted media types include: "
                "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml",
            )
        if content_type not in ("application/merge-patch+json", "application/strategic-merge-patch+json"):
            raise ApiError(415, "UnsupportedMediaType", f"unsupported patch type {content_type!r} here")
        if not isinstance(body, dict):
            raise ApiError(400, "BadRequest", "a merge patch must be a JSON object")
        with self._lock:
            current = self.read(kind, namespace, name)
            return self._write(kind, current, merge_patch(current, body), status=status)

    def delete(self, kind: Kind, namespace: str, name: str) -> dict[str, Any]:
        with self._lock:
            current = self.read(kind, namespace, name)
            if current["metadata"].get("finalizers"):
                if not current["metadata"].get("deletionTimestamp"):
                    current["metadata"]["deletionTimestamp"] = _now()
                    stored = self.put(kind, current, namespace)
                    if kind.kind == "Ingress":
                        self.later(self.finalizer_seconds, lambda: self._finalize_ingress(kind, namespace, name))
                    return stored
                return current
            self.remove(kind, namespace, name)
        return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": {"name": name}}

    def _finalize_ingress(self, kind: Kind, namespace: str, name: str) -> None:
        """The load balancer controller deletes the load balancer, then removes its finalizer."""
        ingress = self.get(kind, namespace, name)
        if ingress is None:
            return
        self.on_ingress_gone(ingress)
        self.remove(kind, namespace, name)

    # Scale subresource: the workload stays, its pods go after their grace period.

    def read_scale(self, kind: Kind, namespace: str, name: str) -> dict[str, Any]:
        current = self.read(kind, namespace, name)
        return {
            "kind": "Scale",
            "apiVersion": "autoscaling/v1",
            "metadata": {k: current["metadata"][k] for k in ("name", "namespace", "uid", "resourceVersion")},
            "spec": {"replicas": current.get("spec", {}).get("replicas", 1)},
            "status": {"replicas": current.get("status", {}).get("replicas", 0)},
        }

    def patch_scale(self, kind: Kind, namespace: str, name: str, body: Any, content_type: str) -> dict[str, Any]:
        if content_type not in ("application/merge-patch+json", "application/strategic-merge-patch+json"):
            raise ApiError(415, "UnsupportedMediaType", f"unsupported patch type {content_type!r} here")
        replicas = merge_patch(self.read_scale(kind, namespace, name), body).get("spec", {}).get("replicas")
        if not isinstance(replicas, int) or replicas < 0:
            raise ApiError(422, "Invalid", f"Scale.autoscaling {name!r} is invalid: spec.replicas: must be >= 0")
        with self._lock:
            current = self.read(kind, namespace, name)
            current.setdefault("spec", {})["replicas"] = replicas
            self.put(kind, current, namespace)
        if replicas == 0:
            self.later(self.termination_seconds, lambda: self._stop_pods(kind, namespace, name))
        return self.read_scale(kind, namespace, name)

    def _stop_pods(self, kind: Kind, namespace: str, name: str) -> None:
        owners = {(kind.kind, name)}
        if kind.kind == "Deployment":
            for item in self.items(self.kind("apps", "v1", "replicasets"), namespace):
                if controller_of(item) == ("Deployment", name):
                    owners.add(("ReplicaSet", item["metadata"]["name"]))
        pods = self.kind("", "v1", "pods")
        for pod in self.items(pods, namespace):
            if controller_of(pod) in owners:
                self.remove(pods, namespace, pod["metadata"]["name"])
        current = self.get(kind, namespace, name)
        if current is not None:
            current.setdefault("status", {})["replicas"] = 0
            self.put(kind, current, namespace)


def controller_of(obj: dict[str, Any]) -> tuple[str, str] | None:
    for owner in obj.get("metadata", {}).get("ownerReferences") or []:
        if owner.get("controller"):
            return str(owner.get("kind")), str(owner.get("name"))
    return None


# HTTP.


_NAMESPACED = re.compile(r"^namespaces/(?P<ns>[^/]+)/(?P<rest>[^/]+(?:/[^/]+){0,2})$")


def route(server: ApiServer, method: str, path: str, query: dict[str, str], body: Any, content_type: str) -> Any:
    """Dispatch one request; returns the body to answer with (raises ApiError)."""
    parts = path.strip("/").split("/")
    if parts[:2] == ["api", "v1"]:
        group, version, rest = "", "v1", "/".join(parts[2:])
    elif parts[0] == "apis" and len(parts) >= 3:
        group, version, rest = parts[1], parts[2], "/".join(parts[3:])
    else:
        raise ApiError(404, "NotFound", "the server could not find the requested resource")
    if not rest:
        if method != "GET":
            raise ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")
        kinds = server.served(group, version)
        return {
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": kinds[0].api_version,
            "resources": [
                {"name": k.plural, "singularName": "", "namespaced": k.namespaced, "kind": k.kind, "verbs": []}
                for k in kinds
            ],
        }
    namespace: str | None = None
    found = _NAMESPACED.match(rest)
    if found and not (group == "" and rest.count("/") < 2):
        namespace, rest = found.group("ns"), found.group("rest")
    segments = rest.split("/")
    kind = server.kind(group, version, segments[0])
    name = segments[1] if len(segments) > 1 else ""
    sub = segments[2] if len(segments) > 2 else ""
    if kind.namespaced and name and namespace is None:
        raise ApiError(404, "NotFound", "the server could not find the requested resource")
    if not kind.namespaced and namespace is not None:
        raise ApiError(404, "NotFound", "the server could not find the requested resource")
    ns = namespace or ""
    if sub and not ((sub == "scale" and kind.scale) or (sub == "status" and kind.status_subresource)):
        raise ApiError(404, "NotFound", "the server could not find the requested resource")
    if not name:
        if method == "GET":
            return server.list(kind, namespace, query)
        if method == "POST":
            return server.create(kind, ns, body if isinstance(body, dict) else {})
    elif sub == "scale":
        if method == "GET":
            return server.read_scale(kind, ns, name)
        if method == "PATCH":
            return server.patch_scale(kind, ns, name, body, content_type)
    elif method == "GET":
        return server.read(kind, ns, name)
    elif method == "PUT":
        return server.replace(kind, ns, name, body if isinstance(body, dict) else {}, status=sub == "status")
    elif method == "PATCH":
        return server.patch(kind, ns, name, body, content_type, status=sub == "status")
    elif method == "DELETE" and not sub:
        return server.delete(kind, ns, name)
    raise ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")


def _handler(server: ApiServer) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _answer(self) -> None:
            parsed = urlsplit(self.path)
            query = {key: values[-1] for key, values in parse_qs(parsed.query).items()}
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            status, answer = 200, None
            try:
                authorization = self.headers.get("Authorization", "")
                if not authorization.startswith("Bearer "):
                    raise ApiError(401, "Unauthorized", "Unauthorized")
                try:
                    key = verify_token(
                        authorization.removeprefix("Bearer "),
                        server.cluster,
                        server.secrets,
                        partition=server.partition,
                    )
                except (ValueError, KeyError, UnicodeDecodeError) as error:
                    raise ApiError(401, "Unauthorized", f"Unauthorized: {error}") from None
                if key in server.without_policy:  # RBAC denies (apiserver endpoints/filters/authorization.go)
                    raise ApiError(
                        403,
                        "Forbidden",
                        f'{parsed.path} is forbidden: User "{key}" cannot {self.command.lower()} this resource',
                    )
                server.advance()
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    raise ApiError(400, "BadRequest", "the request body is not JSON") from None
                content_type = (self.headers.get("Content-Type") or "").split(";")[0].strip()
                answer = route(server, self.command, parsed.path, query, body, content_type)
                status = 201 if self.command == "POST" else 200
            except ApiError as error:
                status, answer = error.code, error.status()
            server.requests.append((self.command, parsed.path, status))
            data = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _answer

        def log_message(self, *_args: object) -> None:
            return None

    return Handler


@dataclass(frozen=True)
class Running:
    server: ApiServer
    url: str
    ca_pem: bytes


@contextmanager
def serve(server: ApiServer, tls: Certificates) -> Iterator[Running]:
    """``server`` over HTTPS on 127.0.0.1 (a certificate for 127.0.0.1 from ``tls``'s CA)."""
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(server))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(tls.cert, tls.key)
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield Running(server, f"https://127.0.0.1:{httpd.server_address[1]}", Path(tls.ca).read_bytes())
    finally:
        httpd.shutdown()
        httpd.server_close()
