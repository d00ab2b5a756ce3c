"""MISP, highly available: what must hold of apps/misp in every environment (apps/misp/README.md)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from misp_eks.naming import MISP_APP, MISP_NAMESPACE, ZMQ_PORT
from misp_eks.policies.common import (
    EXAMPLE,
    applied,
    container,
    dig,
    disruption_budget_problems,
    env_entries,
    environments,
    minimum_replicas,
    problem,
    zone_spread_problems,
)
from misp_eks.policies.workloads import ingress_problems
from misp_eks.problems import Problem
from misp_eks.validate.resources import Resource, Tree, pod_labels, selector_matches
from misp_eks.validate.runner import Report

DATABASE, BACKEND, WEB = "misp-database", "misp-backend", "misp-web"

# Every variable misp-core reads in Kubernetes mode, at misp-docker commit 6d915d5 (the image this
# repository pins): core/files/entrypoint.sh, entrypoint_fpm.sh, entrypoint_nginx.sh (whose
# functions kubernetes/entrypoint_fpm.sh calls), kubernetes/entrypoint_fpm.sh, configure_misp.sh,
# utilities.sh and etc/misp-docker/*.envars.json. The nginx variables of the
# combined mode (DISABLE_SSL_REDIRECT, NGINX_*, FASTCGI_*_TIMEOUT, HSTS_MAX_AGE, ...) are not read
# in Kubernetes mode and are left out on purpose.
MISP_CORE_ENV = frozenset(
    {
        *("MYSQL_HOST", "MYSQL_PORT", "MYSQL_USER", "MYSQL_PASSWORD", "MYSQL_DATABASE"),
        *("MYSQL_TLS", "MYSQL_TLS_CA", "MYSQL_TLS_CERT", "MYSQL_TLS_KEY"),
        *("REDIS_HOST", "REDIS_PORT", "REDIS_PASSWORD", "ENABLE_REDIS_EMPTY_PASSWORD"),
        *("BASE_URL", "ADMIN_EMAIL", "ADMIN_PASSWORD", "AUTOGEN_ADMIN_KEY", "AUTOCONF_ADMIN_KEY"),
        *("ADMIN_ORG", "ADMIN_ORG_UUID", "MISP_EMAIL", "MISP_CONTACT", "ENCRYPTION_KEY", "SALT", "UUID"),
        *("DISABLE_PRINTING_PLAINTEXT_CREDENTIALS", "DEBUG", "ENABLE_DB_SETTINGS", "ENABLE_BACKGROUND_UPDATES"),
        *("ATTACHMENTS_DIR", "ENABLE_THEMES", "MISP_MODULES_FQDN", "SMTP_FQDN", "SMTP_PORT"),
        *("AUTOCONF_GPG", "GPG_PASSPHRASE", "DISABLE_CA_REFRESH", "TZ", "DISABLE_IPV6", "FASTCGI_STATUS_LISTEN"),
        *("CRON_USER_ID", "CRON_PULLALL", "CRON_PUSHALL", "FETCH_FEED_INTERVAL", "CACHE_FEED_INTERVAL"),
        *("NUM_WORKERS_DEFAULT", "NUM_WORKERS_PRIO", "NUM_WORKERS_EMAIL", "NUM_WORKERS_CACHE", "NUM_WORKERS_UPDATE"),
        *("WORKERS", "SUPERVISOR_HOST", "SUPERVISOR_USERNAME", "SUPERVISOR_PASSWORD", "STUNNEL", "STUNNEL_CONFIG"),
        *("PHP_MEMORY_LIMIT", "PHP_MAX_EXECUTION_TIME", "PHP_UPLOAD_MAX_FILESIZE", "PHP_POST_MAX_SIZE"),
        *("PHP_MAX_INPUT_TIME", "PHP_MAX_FILE_UPLOADS", "PHP_FCGI_CHILDREN", "PHP_FCGI_START_SERVERS"),
        *("PHP_FCGI_SPARE_SERVERS", "PHP_FCGI_MAX_REQUESTS", "PHP_SESSION_TIMEOUT", "PHP_SESSION_COOKIE_TIMEOUT"),
        *("PHP_SESSION_DEFAULTS", "PHP_SESSION_AUTO_REGENERATE", "PHP_SESSION_CHECK_AGENT"),
        *("PHP_SESSION_COOKIE_SECURE", "PHP_SESSION_COOKIE_DOMAIN", "PHP_SESSION_COOKIE_SAMESITE"),
        *("PROXY_ENABLE", "PROXY_HOST", "PROXY_PORT", "PROXY_METHOD", "PROXY_USER", "PROXY_PASSWORD"),
        "SYNCSERVERS",
    }
)
MISP_CORE_ENV_PATTERNS = (
    *(r"SYNCSERVERS_\d+_DATA", r"OIDC_[A-Z_]+", r"LDAPAUTH_[A-Z_]+", r"AAD_[A-Z_]+"),
    *(r"CUSTOM_AUTH_[A-Z_]+", r"APACHESECUREAUTH_LDAP_[A-Z_]+"),
)
# Read by the image but never right here, and why.
_STATIC_S3 = "forces static S3 keys (aws_compatible=true); the pod identity reaches the bucket"
FORBIDDEN_ENV = {
    **dict.fromkeys(("S3_BUCKET", "S3_ENDPOINT", "S3_ACCESS_KEY", "S3_SECRET_KEY"), _STATIC_S3),
    # configure_misp.sh runs `cake User change_authkey 1 $ADMIN_KEY` at every start, which expires
    # every other key of the admin (MISP AuthKey::resetAuthKey); AUTOGEN_ADMIN_KEY makes one only once.
    "ADMIN_KEY": "resets every API key of the admin at each pod start",
}
# This repository's own: the hook's inputs, and the AWS SDK's region for MISP's S3 client.
OWN_ENV = frozenset({"MISP_EKS_ROLE", "MISP_EKS_S3_BUCKET", "AWS_REGION", "AWS_DEFAULT_REGION"})
# Differences allowed between the web and workers pods' environments.
ROLE_ENV = frozenset({"ENABLE_BACKGROUND_UPDATES", "SUPERVISOR_HOST"})


def _env_known(name: str) -> bool:
    return name in MISP_CORE_ENV or name in OWN_ENV or any(re.fullmatch(p, name) for p in MISP_CORE_ENV_PATTERNS)


def _trees(report: Report, env: str) -> dict[str, Tree | None]:
    return {name: applied(report, env, name) for name in (DATABASE, BACKEND, WEB)}


def _core_pods(report: Report, env: str) -> Iterator[Resource]:
    for tree in _trees(report, env).values():
        for resource in tree.of_kind("Deployment") if tree else []:
            if resource.namespace == MISP_NAMESPACE and container(resource, "misp-core"):
                yield resource


def stages(report: Report) -> Iterator[Problem]:
    """Database, then backend (the single workers pod migrates the schema), then the web tier."""
    for env in environments(report):
        items = {k.name: k for k in report.kustomizations.get(env.name, [])}
        for name, dependency in ((BACKEND, DATABASE), (WEB, BACKEND), ("misp-dashboard", WEB)):
            item = items.get(name)
            if item is None:
                yield Problem(f"clusters/{env.name}", f"no Flux Kustomization {name}")
            elif dependency not in [d for d, _ in item.depends_on]:
                yield Problem(item.origin, f"must depend on {dependency}", obj=item.ref, field="spec.dependsOn")
        trees = _trees(report, env.name)
        wanted = {
            DATABASE: ("Job", "misp-database-init"),
            BACKEND: ("Deployment", "misp-workers"),
            WEB: ("Deployment", "misp-web"),
        }
        for stage, (kind, name) in wanted.items():
            tree = trees[stage]
            if tree is not None and tree.get(kind, name, MISP_NAMESPACE) is None:
                yield Problem(tree.path, f"the {stage} stage must hold {kind} {name}")


def one_worker_tier(report: Report) -> Iterator[Problem]:
    """Background work in exactly one place: one workers pod, never two; no CronJob scheduling MISP too."""
    for env in environments(report):
        workers = [
            r for r in _core_pods(report, env.name) if pod_labels(r).get("app.kubernetes.io/component") == "workers"
        ]
        if len(workers) != 1:
            yield Problem(
                f"clusters/{env.name}", f"{len(workers)} workers Deployments; exactly one runs MISP's workers"
            )
        for resource in workers:
            if resource.spec.get("replicas") != 1:
                yield problem(resource, "spec.replicas", "exactly one workers pod")
            if dig(resource.spec, "strategy", "type") != "Recreate":
                yield problem(resource, "spec.strategy.type", "Recreate: never two schedulers, even in a rollout")
        for resource in _core_pods(report, env.name):
            role = pod_labels(resource).get("app.kubernetes.io/component")
            if role not in ("web", "workers"):
                yield problem(resource, "spec.template.metadata.labels", "a MISP pod's role is web or workers")
        for tree in _trees(report, env.name).values():
            for cron in tree.of_kind("CronJob") if tree else []:
                yield problem(cron, "", "MISP's scheduler already runs feeds, pulls and updates: a second one")


def web_tier(report: Report) -> Iterator[Problem]:
    """At least two replicas in prod, over zones, with a PDB, an HPA, heartbeat probes and safe rollouts."""
    for env in environments(report):
        tree = _trees(report, env.name)[WEB]
        web = tree.get("Deployment", "misp-web", MISP_NAMESPACE) if tree else None
        if web is None:
            continue
        strategy = dig(web.spec, "strategy", "rollingUpdate") or {}
        if dig(web.spec, "strategy", "type") != "RollingUpdate" or strategy != {"maxSurge": 1, "maxUnavailable": 0}:
            yield problem(web, "spec.strategy", "maxSurge 1, maxUnavailable 0: one new pod at a time")
        yield from zone_spread_problems(web)
        hpa = next(
            (h for h in tree.of_kind("HorizontalPodAutoscaler") if dig(h.spec, "scaleTargetRef", "name") == "misp-web"),
            None,
        )
        minimum = minimum_replicas(env)
        if hpa is None or (hpa.spec.get("minReplicas") or 1) < minimum:
            yield problem(web, "", f"needs a HorizontalPodAutoscaler with minReplicas >= {minimum}")
        if "replicas" in web.spec and hpa is not None:
            yield problem(web, "spec.replicas", "leave replicas to the HorizontalPodAutoscaler (Flux would reset it)")
        yield from disruption_budget_problems(tree, web)
        found = container(web, "misp-core")
        if found is None:
            continue
        index, core = found
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            if dig(core, probe, "httpGet", "path") != "/users/heartbeat":
                yield problem(web, f"spec.template.spec.containers[{index}].{probe}", "probe MISP's /users/heartbeat")


def identity_and_environment(report: Report) -> Iterator[Problem]:
    """One identity for every pod, from one Secret; only variables misp-core reads."""
    for env in environments(report):
        environments_by_role: dict[str, dict[str, object]] = {}
        for resource in _core_pods(report, env.name):
            index, core = container(resource, "misp-core")  # _core_pods yields only pods that have it
            field = f"spec.template.spec.containers[{index}]"
            if (core.get("envFrom") or []) != [{"secretRef": {"name": "misp-app"}}]:
                yield problem(resource, f"{field}.envFrom", "only MISP's identity, from the misp-app Secret")
            entries = env_entries(core)
            for name in entries:
                if name in FORBIDDEN_ENV:
                    yield problem(resource, f"{field}.env", f"{name} {FORBIDDEN_ENV[name]}")
                elif name in MISP_APP.keys:
                    yield problem(resource, f"{field}.env", f"{name} comes from misp-app only (one value for all pods)")
                elif not _env_known(name):
                    yield problem(resource, f"{field}.env", f"misp-core does not read {name}")
            role = str(pod_labels(resource).get("app.kubernetes.io/component"))
            environments_by_role[role] = {k: v for k, v in entries.items() if k not in ROLE_ENV}
            values = {k: v.get("value") for k, v in entries.items()}
            checks = {
                "ENABLE_DB_SETTINGS": "false",
                "ATTACHMENTS_DIR": "s3://",
                "MYSQL_TLS": "true",
                "MYSQL_HOST": EXAMPLE.db_endpoint,
                "REDIS_HOST": f"tls://{EXAMPLE.misp_redis_endpoint}",
            }
            for key, value in checks.items():
                if values.get(key) != value:
                    yield problem(resource, f"{field}.env", f"{key} must be {value!r}")
            for key, secret in (("MYSQL_PASSWORD", "misp-database"), ("REDIS_PASSWORD", "misp-redis")):
                if dig(entries.get(key), "valueFrom", "secretKeyRef", "name") != secret:
                    yield problem(resource, f"{field}.env", f"{key} comes from the {secret} Secret")
            if values.get("AUTOCONF_GPG") == "false":
                yield problem(resource, f"{field}.env", "AUTOCONF_GPG configures MISP for the imported key")
        if (
            len(environments_by_role) == 2
            and len({repr(sorted(e.items())) for e in environments_by_role.values()}) != 1
        ):
            yield Problem(f"clusters/{env.name}", "the web and workers pods must share one environment (core-pod)")


def _script(tree: Tree | None, prefix: str) -> str:
    for config_map in tree.of_kind("ConfigMap") if tree else []:
        if config_map.name.startswith(prefix):
            return str((config_map.obj.get("data") or {}).get("customize_misp.sh", ""))
    return ""


def hook_and_zeromq(report: Report) -> Iterator[Problem]:
    """S3 through the pod identity, and exactly one ZeroMQ publisher reachable on 50000."""
    for env in environments(report):
        trees = _trees(report, env.name)
        for stage, prefix in ((BACKEND, "misp-workers-scripts"), (WEB, "misp-web-scripts")):
            script = _script(trees[stage], prefix)
            for needle in ("Plugin.S3_aws_compatible false", "Plugin.ZeroMQ_enable true", "ZeroMQ_supervisor_managed"):
                if needle not in script:
                    yield Problem(
                        f"{trees[stage].path if trees[stage] else stage}", f"{prefix}: the hook must set {needle}"
                    )
        backend = trees[BACKEND]
        service = backend.get("Service", "misp-zmq", MISP_NAMESPACE) if backend else None
        if service is None:
            yield Problem(f"clusters/{env.name}", "no Service misp/misp-zmq for the dashboard")
            continue
        if [p.get("port") for p in service.spec.get("ports") or []] != [ZMQ_PORT]:
            yield problem(service, "spec.ports", f"the publisher listens on {ZMQ_PORT}")
        if service.spec.get("selector") != {"app.kubernetes.io/name": "misp", "app.kubernetes.io/component": "workers"}:
            yield problem(service, "spec.selector", "only the workers pod publishes")


def ingress(report: Report) -> Iterator[Problem]:
    for env in environments(report):
        tree = _trees(report, env.name)[WEB]
        resource = tree.get("Ingress", "misp", MISP_NAMESPACE) if tree else None
        if resource is None:
            yield Problem(f"clusters/{env.name}", "no Ingress misp/misp")
            continue
        yield from ingress_problems(resource, EXAMPLE.misp_hostname, EXAMPLE.misp_certificate_arn, "/users/heartbeat")


def modules(report: Report) -> Iterator[Problem]:
    for env in environments(report):
        tree = _trees(report, env.name)[BACKEND]
        resource = tree.get("Deployment", "misp-modules", MISP_NAMESPACE) if tree else None
        if resource is None:
            yield Problem(f"clusters/{env.name}", "no Deployment misp/misp-modules")
        elif (resource.spec.get("replicas") or 1) < minimum_replicas(env):
            yield problem(resource, "spec.replicas", "at least two in production")


# Who may open a connection to each kind of MISP pod: (where from: "vpc", a namespace, None for
# the pod's own, "*" for any; pod labels; port).
Peer = tuple[str | None, tuple[tuple[str, str], ...], int | str]
ALLOWED_INGRESS: dict[str, set[Peer]] = {
    "web": {("vpc", (), 8080)},
    "workers": {
        (
            "misp-dashboard",
            (("app.kubernetes.io/component", "zmq"), ("app.kubernetes.io/name", "misp-dashboard")),
            ZMQ_PORT,
        ),
        (None, (("app.kubernetes.io/component", "web"), ("app.kubernetes.io/name", "misp")), 9001),
    },
    "modules": {(None, (("app.kubernetes.io/name", "misp"),), 6666)},
}


def _peers(rule: dict[str, Any]) -> set[Peer]:
    found = set()
    ports = [p.get("port", "any") for p in rule.get("ports") or [{}]]
    for peer in rule.get("from") or [{}]:
        source: str | None
        if "ipBlock" in peer:
            source = "vpc" if dig(peer, "ipBlock", "cidr") == EXAMPLE.vpc_cidr else str(dig(peer, "ipBlock", "cidr"))
        elif "namespaceSelector" in peer:
            source = dig(peer, "namespaceSelector", "matchLabels", "kubernetes.io/metadata.name") or "*"
        else:
            source = None if "podSelector" in peer else "*"  # no peer at all admits everyone
        labels = tuple(sorted((dig(peer, "podSelector", "matchLabels") or {}).items()))
        found |= {(source, labels, port) for port in ports}
    return found


def network(report: Report) -> Iterator[Problem]:
    """Only the load balancer reaches the web pods, only the dashboard the publisher, only MISP the modules."""
    for env in environments(report):
        policies = [p for t in _trees(report, env.name).values() if t for p in t.of_kind("NetworkPolicy")]
        pods = [d for t in _trees(report, env.name).values() if t for d in t.of_kind("Deployment")]
        for pod in pods:
            role = str(pod_labels(pod).get("app.kubernetes.io/component"))
            if role not in ALLOWED_INGRESS:
                continue
            allowed: set[Peer] = set()
            for policy in policies:
                if "Ingress" in (policy.spec.get("policyTypes") or []) and selector_matches(
                    policy.spec.get("podSelector"), pod_labels(pod)
                ):
                    for rule in policy.spec.get("ingress") or []:
                        allowed |= _peers(rule)
            if allowed != ALLOWED_INGRESS[role]:
                yield problem(
                    pod,
                    "",
                    f"NetworkPolicies admit {sorted(allowed, key=str)}; "
                    f"expected {sorted(ALLOWED_INGRESS[role], key=str)}",
                )


POLICIES = (network, stages, one_worker_tier, web_tier, identity_and_environment, hook_and_zeromq, ingress, modules)
