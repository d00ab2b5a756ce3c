"""MISP, highly available: what must hold of apps/misp in every environment (apps/misp/README.md)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from misp_eks.naming import MISP_APP, MISP_NAMESPACE, MISP_SMTP, SMTP_PORT, SMTP_SECRET, ZMQ_PORT
from misp_eks.policies.common import (
    EXAMPLE,
    all_containers,
    applied,
    container,
    dig,
    disruption_budget_problems,
    env_entries,
    environments,
    everything,
    minimum_replicas,
    problem,
    zone_spread_problems,
)
from misp_eks.policies.workloads import ingress_problems
from misp_eks.problems import Problem
from misp_eks.validate.resources import Resource, Tree, pod_labels, pod_template, selector_matches
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
# MISP_EKS_SMTP_*: the SES credentials the hook writes into MISP's e-mail configuration.
SMTP_ENV = {f"MISP_EKS_SMTP_{key.upper()}": key for key in MISP_SMTP.keys}
OWN_ENV = frozenset(
    {"MISP_EKS_ROLE", "MISP_EKS_S3_BUCKET", "MISP_EKS_EMAIL", "AWS_REGION", "AWS_DEFAULT_REGION", *SMTP_ENV}
)
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
        for probe in ("startupProbe", "readinessProbe"):
            if dig(core, probe, "httpGet", "path") != "/users/heartbeat":
                yield problem(web, f"spec.template.spec.containers[{index}].{probe}", "probe MISP's /users/heartbeat")
        liveness = core.get("livenessProbe") or {}
        if not liveness or "httpGet" in liveness or "grpc" in liveness:
            yield problem(
                web,
                f"spec.template.spec.containers[{index}].livenessProbe",
                "a check of php-fpm itself (exec or tcpSocket), never a request that needs a free PHP child",
            )


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


HOOK_NEEDLES = (
    "Plugin.S3_aws_compatible false",
    "Plugin.ZeroMQ_enable true",
    "ZeroMQ_supervisor_managed",
    # php-fpm answers nginx in the pod only, and phpredis locks the sessions all replicas share.
    "listen = 127.0.0.1:9002",
    "listen.allowed_clients = 127.0.0.1",
    "php_admin_value[redis.session.locking_enabled] = 1",
)


def hook_and_zeromq(report: Report) -> Iterator[Problem]:
    """S3 through the pod identity, and exactly one ZeroMQ publisher reachable on 50000."""
    for env in environments(report):
        trees = _trees(report, env.name)
        for stage, prefix in ((BACKEND, "misp-workers-scripts"), (WEB, "misp-web-scripts")):
            script = _script(trees[stage], prefix)
            for needle in HOOK_NEEDLES:
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


def _hook(report: Report, env: str, role: str) -> str:
    stage, prefix = (BACKEND, "misp-workers-scripts") if role == "workers" else (WEB, "misp-web-scripts")
    return _script(_trees(report, env)[stage], prefix)


def _config_file(tree: Tree | None, prefix: str, key: str) -> str:
    for config_map in tree.of_kind("ConfigMap") if tree else []:
        if config_map.name.startswith(prefix):
            return str((config_map.obj.get("data") or {}).get(key, ""))
    return ""


_UNITS = {"": 1, "k": 1000, "M": 1000**2, "G": 1000**3, "Ki": 1024, "Mi": 1024**2, "Gi": 1024**3, "Ti": 1024**4}
_PHP_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3}  # PHP's shorthand bytes are binary


def _bytes(value: object, units: dict[str, int]) -> int | None:
    match = re.fullmatch(r"(\d+)([A-Za-z]*)", str(value).strip())
    if match is None or match[2] not in units:
        return None
    return int(match[1]) * units[match[2]]


# What stop-misp.sh adds to its own budgets: supervisord's default stopwaitsecs (supervisor docs,
# [program:x] section) for the programs it stops, and a margin for the kubelet.
SUPERVISOR_STOP_SECONDS = 10
STOP_MARGIN_SECONDS = 5
MIN_LOAD_BALANCER_PAUSE = 15
STOP_SCRIPT = "/custom/files/stop-misp.sh"


def graceful_stop(report: Report) -> Iterator[Problem]:
    """Workers, php-fpm and nginx stop gracefully, within terminationGracePeriodSeconds."""
    for env in environments(report):
        for resource in _core_pods(report, env.name):
            role = str(pod_labels(resource).get("app.kubernetes.io/component"))
            spec = dig(resource.spec, "template", "spec") or {}
            grace = int(spec.get("terminationGracePeriodSeconds") or 30)
            index, core = container(resource, "misp-core")
            field = f"spec.template.spec.containers[{index}].lifecycle.preStop"
            command = dig(core, "lifecycle", "preStop", "exec", "command") or []
            if (
                len(command) != 5
                or command[:2] != ["/bin/bash", STOP_SCRIPT]
                or not all(str(a).isdigit() for a in command[2:])
            ):
                yield problem(resource, field, f"exec [/bin/bash, {STOP_SCRIPT}, PAUSE, JOBS, FPM]")
                continue
            pause, jobs, fpm = (int(a) for a in command[2:])
            budget = pause + jobs + SUPERVISOR_STOP_SECONDS + fpm + STOP_MARGIN_SECONDS
            if budget > grace:
                yield problem(
                    resource,
                    "spec.template.spec.terminationGracePeriodSeconds",
                    f"{grace}s is less than stop-misp.sh needs: {pause} + {jobs} + {SUPERVISOR_STOP_SECONDS} + "
                    f"{fpm} + {STOP_MARGIN_SECONDS} = {budget}s",
                )
            mounted = [
                i.get("path")
                for v in spec.get("volumes") or []
                if v.get("name") == "hook"
                for i in dig(v, "configMap", "items") or []
            ]
            if "stop-misp.sh" not in mounted:
                yield problem(resource, "spec.template.spec.volumes", "the hook volume must hold stop-misp.sh")
            timeout = re.search(r"process_control_timeout = (\d+)\b", _hook(report, env.name, role))
            if timeout is None or int(timeout[1]) < fpm:
                yield problem(
                    resource, field, f"php-fpm's process_control_timeout (customize_misp.sh) must be at least {fpm}s"
                )
            if role == "web":
                if pause < MIN_LOAD_BALANCER_PAUSE:
                    yield problem(resource, field, f"pause at least {MIN_LOAD_BALANCER_PAUSE}s for the load balancer")
                yield from _deregistration(report, env.name, pause + fpm)
                yield from _nginx_stop(report, env.name, resource, pause, grace)
            elif jobs <= 0:
                yield problem(resource, field, "give the running jobs time to finish (JOBS)")


def _deregistration(report: Report, env: str, drain: int) -> Iterator[Problem]:
    """The load balancer lets a deregistered pod's requests run for as long as the pod serves them."""
    tree = _trees(report, env)[WEB]
    ingress = tree.get("Ingress", "misp", MISP_NAMESPACE) if tree else None
    if ingress is None:
        return
    key = "alb.ingress.kubernetes.io/target-group-attributes"
    value = str((ingress.obj.get("metadata", {}).get("annotations") or {}).get(key, ""))
    delay = re.search(r"deregistration_delay\.timeout_seconds=(\d+)", value)
    if delay is None or int(delay[1]) < drain:
        yield problem(ingress, f"metadata.annotations.{key}", f"deregistration_delay.timeout_seconds >= {drain}")


def _nginx_stop(report: Report, env: str, resource: Resource, pause: int, grace: int) -> Iterator[Problem]:
    found = container(resource, "nginx")
    if found is None:
        return
    index, nginx = found
    field = f"spec.template.spec.containers[{index}].lifecycle.preStop"
    script = " ".join(str(a) for a in dig(nginx, "lifecycle", "preStop", "exec", "command") or [])
    sleep = re.search(r"\bsleep (\d+)\b", script)
    if sleep is None or int(sleep[1]) != pause or "-s quit" not in script:
        yield problem(resource, field, f"sleep {pause} like misp-core, then `nginx -s quit` (graceful)")
        return
    conf = _config_file(_trees(report, env)[WEB], "misp-nginx", "nginx.conf")
    shutdown = re.search(r"^worker_shutdown_timeout (\d+)s;", conf, re.M)
    if shutdown is None or pause + int(shutdown[1]) + STOP_MARGIN_SECONDS > grace:
        yield problem(resource, field, f"nginx.conf's worker_shutdown_timeout must end the stop within {grace}s")


# misp-docker core/files/entrypoint.sh at 6d915d5: PHP_FCGI_CHILDREN=5, PHP_MEMORY_LIMIT=2048M.
PHP_DEFAULTS = {"PHP_FCGI_CHILDREN": "5", "PHP_MEMORY_LIMIT": "2048M"}
# MISP's diagnostics recommend a memory_limit of 2048 MiB (ServersController, "memory_limit").
PHP_RECOMMENDED_MEMORY = 2048 * 1024**2
PHP_OVERHEAD = 1024**3  # php-fpm's master, opcache, supervisord and the entrypoint's own PHP


def php_sizing(report: Report) -> Iterator[Problem]:
    """php-fpm: every child may use MISP's recommended memory_limit at once within the container's limit.

    This bounds php-fpm only. MISP's workers are PHP CLI processes, whose memory_limit is Debian's -1
    (change_php_vars edits fpm/php.ini only): the workers pod's own memory limit is their only bound.
    """
    for env in environments(report):
        for resource in _core_pods(report, env.name):
            index, core = container(resource, "misp-core")
            values = {**PHP_DEFAULTS, **{k: str(v.get("value")) for k, v in env_entries(core).items()}}
            children = int(values["PHP_FCGI_CHILDREN"]) if values["PHP_FCGI_CHILDREN"].isdigit() else None
            each = _bytes(values["PHP_MEMORY_LIMIT"], _PHP_UNITS)
            limit = _bytes(dig(core, "resources", "limits", "memory"), _UNITS)
            field = f"spec.template.spec.containers[{index}]"
            if children is None or each is None or limit is None:
                yield problem(resource, field, "PHP_FCGI_CHILDREN, PHP_MEMORY_LIMIT and a memory limit, all countable")
                continue
            if each < PHP_RECOMMENDED_MEMORY:
                yield problem(resource, f"{field}.env", "PHP_MEMORY_LIMIT below MISP's recommended 2048M")
            if children * each + PHP_OVERHEAD > limit:
                yield problem(
                    resource,
                    f"{field}.resources.limits.memory",
                    f"{children} children x {values['PHP_MEMORY_LIMIT']} + 1Gi exceeds the memory limit",
                )
            if pod_labels(resource).get("app.kubernetes.io/component") == "web":
                request = _bytes(dig(core, "resources", "requests", "memory"), _UNITS) or 0
                if request < limit:
                    yield problem(
                        resource,
                        f"{field}.resources.requests.memory",
                        "request the memory limit: the scheduler must place what php-fpm may use",
                    )


# The nodes' memory and CPU (Amazon EC2 instance types: m7i.large 2 vCPU and 8 GiB, m7i.xlarge 4 and
# 16) and their max-pods (amazon-vpc-cni-k8s misc/eni-max-pods.txt: 29 and 58).
NODE_TYPES = {"m7i.large": (2000, 8192, 29), "m7i.xlarge": (4000, 16384, 58)}
EVICTION_MEBIBYTES = 100  # the kubelet's hard eviction threshold, memory.available<100Mi
DAEMON_ADDONS = (300, 256)  # EKS add-ons' DaemonSets, not in git: aws-node, kube-proxy, Pod Identity, CSI nodes


def _allocatable(instance_type: str) -> tuple[int, int] | None:
    """millicores and MiB a pod may request: amazon-eks-ami's kube-reserved (memory 11 MiB per pod
    + 255 MiB; CPU 6 % of the first core, 1 % of the second, 0.5 % of the next two), then eviction."""
    if instance_type not in NODE_TYPES:
        return None
    cpu, memory, pods = NODE_TYPES[instance_type]
    cores = cpu // 1000
    reserved_cpu = 60 + (10 if cores > 1 else 0) + 5 * max(0, min(cores, 4) - 2)
    return cpu - reserved_cpu, memory - (11 * pods + 255) - EVICTION_MEBIBYTES


def _millicores(value: object) -> int:
    """A CPU quantity in millicores; 0 for a malformed one, which the schema check reports."""
    text = str(value or "0")
    try:
        return int(text[:-1]) if text.endswith("m") else int(float(text) * 1000)
    except ValueError:
        return 0


def _pod_requests(resource: Resource) -> tuple[int, int]:
    spec = dig(resource.spec, "template", "spec") or {}

    def of(items: list[dict[str, Any]]) -> list[tuple[int, int]]:
        return [
            (
                _millicores(dig(c, "resources", "requests", "cpu")),
                (_bytes(dig(c, "resources", "requests", "memory") or "0", _UNITS) or 0) // 1024**2,
            )
            for c in items
        ]

    main = of(spec.get("containers") or [])
    init = of(spec.get("initContainers") or []) or [(0, 0)]
    return (
        max(sum(c for c, _ in main), max(c for c, _ in init)),
        max(sum(m for _, m in main), max(m for _, m in init)),
    )


def _count(value: object) -> int:
    """A replica count as the API defaults it (1); a malformed one is the schema check's to report."""
    return value if isinstance(value, int) and not isinstance(value, bool) else 1


def node_fit(report: Report) -> Iterator[Problem]:
    """Every pod this repository runs fits a node of its environment, and all of them its largest cluster."""
    for env in environments(report):
        groups = env.cluster.managedNodeGroups or []
        types = {t for g in groups for t in (g.instanceTypes or [g.instanceType])}
        sizes = [_allocatable(str(t)) for t in types]
        if not groups or None in sizes:
            yield Problem(f"clusters/{env.name}", f"node types {sorted(map(str, types))}: add them to NODE_TYPES")
            continue
        tree = everything(report, env.name)
        daemons = [_pod_requests(d) for d in tree.of_kind("DaemonSet")]
        free = (
            min(c for c, _ in sizes) - DAEMON_ADDONS[0] - sum(c for c, _ in daemons),  # type: ignore[misc]
            min(m for _, m in sizes) - DAEMON_ADDONS[1] - sum(m for _, m in daemons),  # type: ignore[misc]
        )
        minimum = {
            dig(h.spec, "scaleTargetRef", "name"): _count(h.spec.get("minReplicas"))
            for h in tree.of_kind("HorizontalPodAutoscaler")
        }
        pods: list[tuple[tuple[int, int], Resource]] = []
        for workload in tree.of_kind("Deployment", "StatefulSet"):
            requests = _pod_requests(workload)
            if requests[0] > free[0] or requests[1] > free[1]:
                yield problem(
                    workload,
                    "spec.template.spec.containers",
                    f"requests {requests[0]}m and {requests[1]}Mi; a node has {free[0]}m and {free[1]}Mi for it",
                )
            replicas = minimum.get(workload.name, _count(workload.spec.get("replicas")))
            pods += [(requests, workload)] * replicas
        # The platform's controllers come from charts, which are not rendered here: a node is left to them.
        nodes = [list(free) for _ in range(sum(g.maxSize for g in groups) - 1)]
        for requests, workload in sorted(pods, key=lambda p: p[0][1], reverse=True):
            node = next((n for n in nodes if n[0] >= requests[0] and n[1] >= requests[1]), None)
            if node is None:
                yield problem(workload, "", f"no room left for it on {len(nodes)} nodes of {env.name} at most")
                break
            node[0] -= requests[0]
            node[1] -= requests[1]


# Where MISP writes what it must keep under app/files (MISP 2.5: Server::getFileRules for org logos
# and images, ServersController and SyncTool for sync servers' certificates, UsersController::terms).
MISP_DATA_PATHS = tuple(f"/var/www/MISP/app/files/{path}" for path in ("img/orgs", "img/custom", "certs", "terms"))
SHARED_FILES_CLAIM = "misp-files"
SEED_MOUNT = "/misp-files"  # prepare-pod.sh


def shared_files(report: Report) -> Iterator[Problem]:
    """Every path where MISP keeps files lies on one ReadWriteMany volume that all its pods mount."""
    for env in environments(report):
        backend = _trees(report, env.name)[BACKEND]
        claim = backend.get("PersistentVolumeClaim", SHARED_FILES_CLAIM, MISP_NAMESPACE) if backend else None
        if claim is None:
            yield Problem(f"clusters/{env.name}", f"no PersistentVolumeClaim misp/{SHARED_FILES_CLAIM}")
        else:
            if "ReadWriteMany" not in (claim.spec.get("accessModes") or []):
                yield problem(claim, "spec.accessModes", "ReadWriteMany: every web and workers pod mounts it")
            if claim.spec.get("storageClassName") != "efs":
                yield problem(claim, "spec.storageClassName", "efs (infrastructure/configs)")
        for resource in _core_pods(report, env.name):
            spec = dig(resource.spec, "template", "spec") or {}
            claims = {
                v.get("name")
                for v in spec.get("volumes") or []
                if dig(v, "persistentVolumeClaim", "claimName") == SHARED_FILES_CLAIM
            }
            index, core = container(resource, "misp-core")
            mounts = {m.get("mountPath"): m.get("name") for m in core.get("volumeMounts") or []}
            for path in MISP_DATA_PATHS:
                if mounts.get(path) not in claims or not claims:
                    yield problem(
                        resource,
                        f"spec.template.spec.containers[{index}].volumeMounts",
                        f"{path} must be on the {SHARED_FILES_CLAIM} volume",
                    )
            yield from _files_seeded(report, env.name, resource, claims, core, index)


def _files_seeded(
    report: Report, env: str, resource: Resource, claims: set[object], core: dict[str, Any], index: int
) -> Iterator[Problem]:
    """The init container seeds the shared directories; the entrypoint never copies over them."""
    spec = dig(resource.spec, "template", "spec") or {}
    prepare = next((c for c in spec.get("initContainers") or [] if c.get("name") == "prepare"), {})
    if not {m.get("name") for m in prepare.get("volumeMounts") or [] if m.get("mountPath") == SEED_MOUNT} & claims:
        yield problem(resource, "spec.template.spec.initContainers", f"prepare seeds the volume at {SEED_MOUNT}")
    role = pod_labels(resource).get("app.kubernetes.io/component")
    stage, prefix = (BACKEND, "misp-workers-scripts") if role == "workers" else (WEB, "misp-web-scripts")
    script = _config_file(_trees(report, env)[stage], prefix, "prepare-pod.sh")
    dirs = " ".join(p.removeprefix("/var/www/MISP/app/files/") for p in MISP_DATA_PATHS)
    if f"MISP_DATA_DIRS=({dirs})" not in script:
        yield problem(resource, "", f"prepare-pod.sh must seed exactly {dirs}")
    if "touch /var/www/MISP/app/files/INIT" not in " ".join(str(a) for a in core.get("command") or []):
        yield problem(
            resource,
            f"spec.template.spec.containers[{index}].command",
            "touch app/files/INIT: else every start copies files.dist over the shared volume",
        )


# What grows in a MISP pod: MISP's logs and its feed cache (MISP Feed::CACHE_DIR).
BOUNDED_PATHS = ("/var/www/MISP/app/tmp/logs", "/var/www/MISP/app/tmp/cache/feeds")


def bounded_storage(report: Report) -> Iterator[Problem]:
    """No MISP pod fills its node's disk: sized emptyDirs and ephemeral-storage requests and limits."""
    for env in environments(report):
        for resource in _core_pods(report, env.name):
            spec = dig(resource.spec, "template", "spec") or {}
            volumes = {v.get("name"): v for v in spec.get("volumes") or []}
            for index, volume in enumerate(spec.get("volumes") or []):
                if "emptyDir" in volume and not dig(volume, "emptyDir", "sizeLimit"):
                    yield problem(resource, f"spec.template.spec.volumes[{index}].emptyDir", "needs a sizeLimit")
            for field, item in all_containers(resource):
                for kind in ("requests", "limits"):
                    if not dig(item, "resources", kind, "ephemeral-storage"):
                        yield problem(resource, f"{field}.resources.{kind}", "needs ephemeral-storage")
            index, core = container(resource, "misp-core")
            mounts = {m.get("mountPath"): m.get("name") for m in core.get("volumeMounts") or []}
            for path in BOUNDED_PATHS:
                if "emptyDir" not in (volumes.get(mounts.get(path)) or {}):
                    yield problem(
                        resource,
                        f"spec.template.spec.containers[{index}].volumeMounts",
                        f"{path} must be a sized emptyDir, not the container's writable layer",
                    )


EMAIL_VARIABLE = "misp_email_delivery"


def email_off(report: Report) -> Iterator[Problem]:
    """E-mail off means off: MISP.disable_emailing, no relay named "mail", and the e-mail queue drained."""
    for env in environments(report):
        used = {t.kustomization.name: t.variables_used for t in report.applied_trees(env.name) if t.kustomization}
        for stage in (BACKEND, WEB):
            # The value is the cluster's own only if the tree substitutes it (a literal would pass the check below).
            if stage in used and EMAIL_VARIABLE not in used[stage]:
                yield Problem(f"clusters/{env.name}", f"{stage}: MISP_EKS_EMAIL must be ${{{EMAIL_VARIABLE}}}")
        for resource in _core_pods(report, env.name):
            role = str(pod_labels(resource).get("app.kubernetes.io/component"))
            index, core = container(resource, "misp-core")
            field = f"spec.template.spec.containers[{index}].env"
            values = {k: v.get("value") for k, v in env_entries(core).items()}
            if values.get("MISP_EKS_EMAIL") != EXAMPLE.misp_email_delivery:
                yield problem(resource, field, f"MISP_EKS_EMAIL comes from cluster-vars {EMAIL_VARIABLE}")
            if values.get("SMTP_FQDN") in (None, "", "mail"):
                yield problem(resource, field, "SMTP_FQDN: the image's default relay is a host named mail")
            # MISP queues e-mail jobs whatever the setting (Post, Event, User: EMAIL_QUEUE); under
            # MISP.disable_emailing the worker runs them as no-ops (User::sendEmail), so one must run.
            workers = str(values.get("NUM_WORKERS_EMAIL", "1"))
            if not workers.isdigit() or int(workers) < 1:
                yield problem(resource, field, "NUM_WORKERS_EMAIL: at least one worker drains the e-mail queue")
            if "setting MISP.disable_emailing true" not in _hook(report, env.name, role):
                yield problem(resource, "", "the hook must set MISP.disable_emailing while e-mail is disabled")


SES_MODE = re.compile(r"^\s*ses\)", re.MULTILINE)
# The transport assignment itself (CakePHP SmtpTransport: 'tls' => true sends STARTTLS), not a comment.
STARTTLS = re.compile(r"^\s*transport=\"'transport' => 'Smtp',[^\n]*'tls' => true,", re.MULTILINE)
SMTP_PORT_CHECK = re.compile(r"MISP_EKS_SMTP_PORT=\^(\d+)\$")


def _code(script: str) -> str:
    """A shell script without its comment lines."""
    return "\n".join(line for line in script.splitlines() if not line.lstrip().startswith("#"))


def _internet_ports(policy: Resource) -> set[object]:
    """Ports a NetworkPolicy opens to the internet (0.0.0.0/0); "any" for a rule without ports."""
    found: set[object] = set()
    if "Egress" in (policy.spec.get("policyTypes") or []):
        for rule in policy.spec.get("egress") or []:
            # A rule without peers admits every destination (NetworkPolicyEgressRule.to).
            peers = rule.get("to") or [{"ipBlock": {"cidr": "0.0.0.0/0"}}]
            if any(dig(peer, "ipBlock", "cidr") == "0.0.0.0/0" for peer in peers):
                found |= {p.get("port", "any") for p in rule.get("ports") or [{}]}
    return found


def email_ses(report: Report) -> Iterator[Problem]:
    """E-mail through SES works when switched on: the hook's ses mode writes the SMTP transport with
    STARTTLS from the Secret misp-smtp, and port 587 is open from MISP's web and workers pods only
    (the web pods send some e-mail themselves: MISP app/Controller/UsersController.php, sendEmail)."""
    for env in environments(report):
        senders = list(_core_pods(report, env.name))
        for resource in senders:
            role = str(pod_labels(resource).get("app.kubernetes.io/component"))
            index, core = container(resource, "misp-core")
            entries = env_entries(core)
            for name, key in SMTP_ENV.items():
                ref = dig(entries.get(name) or {}, "valueFrom", "secretKeyRef") or {}
                if (ref.get("name"), ref.get("key"), ref.get("optional", False)) != (SMTP_SECRET, key, False):
                    field = f"spec.template.spec.containers[{index}].env"
                    yield problem(resource, field, f"{name} comes from Secret {SMTP_SECRET} key {key}")
            hook = _code(_hook(report, env.name, role))
            if not (SES_MODE.search(hook) and "setting MISP.disable_emailing false" in hook and STARTTLS.search(hook)):
                yield problem(resource, "", "the hook's ses mode must enable e-mail over STARTTLS (MISP_EKS_EMAIL=ses)")
            if SMTP_PORT_CHECK.findall(hook) != [str(SMTP_PORT)]:
                yield problem(resource, "", f"the hook's ses mode must accept exactly port {SMTP_PORT}")
            if not {SMTP_PORT, "any"} & _egress_ports(report, env.name, resource):
                yield problem(resource, "", f"MISP sends e-mail through SES: allow port {SMTP_PORT} to the internet")
        sender_refs = {resource.ref for resource in senders}
        tree = everything(report, env.name)
        for policy in tree.of_kind("NetworkPolicy"):
            if not {SMTP_PORT, "any"} & _internet_ports(policy):
                continue
            for workload in tree:
                if (
                    pod_template(workload) is not None
                    and workload.namespace == policy.namespace
                    and workload.ref not in sender_refs
                    # an empty podSelector selects every pod of the namespace (NetworkPolicySpec.podSelector)
                    and (
                        not policy.spec.get("podSelector")
                        or selector_matches(policy.spec["podSelector"], pod_labels(workload))
                    )
                ):
                    yield problem(policy, "spec.egress", f"port {SMTP_PORT} is for MISP's senders, not {workload.ref}")


FEEDS_HTTP = 80


def _egress_ports(report: Report, env: str, resource: Resource) -> set[object]:
    """Ports the pod may reach anywhere on the internet (0.0.0.0/0) through its NetworkPolicies."""
    found: set[object] = set()
    for tree in _trees(report, env).values():
        for policy in tree.of_kind("NetworkPolicy") if tree else []:
            if selector_matches(policy.spec.get("podSelector"), pod_labels(resource)):
                found |= _internet_ports(policy)
    return found


def plain_http_feeds(report: Report) -> Iterator[Problem]:
    """Plain HTTP leaves MISP from the workers pod only, which fetches the feeds."""
    for env in environments(report):
        for resource in _core_pods(report, env.name):
            role = pod_labels(resource).get("app.kubernetes.io/component")
            http = bool({FEEDS_HTTP, "any"} & _egress_ports(report, env.name, resource))
            if role == "workers" and not http:
                yield problem(resource, "", "the workers fetch http:// feeds: allow port 80 to the internet")
            elif role == "web" and http:
                yield problem(resource, "", "web pods reach the internet over HTTPS only")


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


POLICIES = (
    network,
    stages,
    one_worker_tier,
    web_tier,
    identity_and_environment,
    hook_and_zeromq,
    ingress,
    modules,
    graceful_stop,
    php_sizing,
    shared_files,
    bounded_storage,
    email_off,
    email_ses,
    plain_http_feeds,
    node_fit,
)
