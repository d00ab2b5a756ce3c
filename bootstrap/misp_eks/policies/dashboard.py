"""MISP Dashboard: mandatory MISP login, its own Redis over TLS, one subscriber, gamification in git."""

from __future__ import annotations

import configparser
import json
from collections.abc import Iterator

from misp_eks.naming import DASHBOARD_NAMESPACE, ZMQ_PORT
from misp_eks.policies.common import (
    EXAMPLE,
    applied,
    container,
    dig,
    disruption_budget_problems,
    environments,
    minimum_replicas,
    problem,
    zone_spread_problems,
)
from misp_eks.policies.workloads import ingress_problems
from misp_eks.problems import Problem
from misp_eks.validate.resources import Resource, Tree, containers, pod_labels, pod_spec
from misp_eks.validate.runner import Report

DASHBOARD = "misp-dashboard"
VERSION_FILE = "images/misp-dashboard/VERSION"
TUNABLE_SECTIONS = {"CONTRIB", "Dashboard", "GEO"}
RANKING_SECTIONS = {
    "monthlyRanking",
    "rankTitle",
    "rankRequirementsPnts",
    "rankRequirementsMisc",
    "rankRequirementsText",
    "HonorBadge",
    "TrophyDifficulty",
    "HonorTrophy",
    "HonorTrophyCateg",
    "additionalInfo",
}
# MISP's attribute categories as the dashboard names them (lower case, "_" for spaces).
MISP_CATEGORIES = {
    *("internal_reference", "targeting_data", "antivirus_detection", "payload_delivery", "artifacts_dropped"),
    *("payload_installation", "persistence_mechanism", "network_activity", "payload_type", "attribution"),
    *("external_analysis", "financial_fraud", "support_tool", "social_network", "person", "other"),
}

# Upstream's templates/contrib.html (MISP/misp-dashboard 3c11250) writes these texts, through json.dumps, into
# single-quoted JavaScript strings read by JSON.parse: a quote, a backslash, "<" or a control character breaks the
# page. The image refuses them at start too (dashboard_entrypoint.config).
SCRIPT_TEXT_SECTIONS = ("rankTitle", "HonorBadge", "HonorTrophy")
SCRIPT_UNSAFE = ("'", '"', "\\", "<")


def _script_unsafe(text: str) -> bool:
    return any(ch in text for ch in SCRIPT_UNSAFE) or any(ord(ch) < 0x20 for ch in text)


def _tree(report: Report, env: str) -> Tree | None:
    return applied(report, env, DASHBOARD)


def _env_config(tree: Tree) -> dict[str, str]:
    for config_map in tree.of_kind("ConfigMap"):
        if config_map.name.startswith("misp-dashboard-env"):
            return {str(k): str(v) for k, v in (config_map.obj.get("data") or {}).items()}
    return {}


def _gamification(tree: Tree, key: str) -> str:
    for config_map in tree.of_kind("ConfigMap"):
        if config_map.name.startswith("misp-dashboard-gamification"):
            return str((config_map.obj.get("data") or {}).get(key, ""))
    return ""


def _deployments(tree: Tree, component: str) -> list[Resource]:
    return [d for d in tree.of_kind("Deployment") if pod_labels(d).get("app.kubernetes.io/component") == component]


def authentication(report: Report) -> Iterator[Problem]:
    """Login through this environment's MISP over HTTPS; nothing may switch it off."""
    for env in environments(report):
        tree = _tree(report, env.name)
        if tree is None:
            yield Problem(f"clusters/{env.name}", f"no Flux Kustomization {DASHBOARD}")
            continue
        values = _env_config(tree)
        if values.get("DASHBOARD_MISP_URL") != f"https://{EXAMPLE.misp_hostname}":
            yield Problem(tree.path, "DASHBOARD_MISP_URL must be this environment's MISP over https")
        for resource in tree.of_kind("Deployment"):
            for item in containers(resource):
                names = {e.get("name") for e in item.get("env") or []} | set(values)
                for name in names:
                    if "TEST_ONLY" in str(name):
                        yield problem(resource, "spec.template.spec.containers", f"{name}: for tests, never here")
                    elif any(word in str(name) for word in ("AUTH", "SSL_VERIFY", "COOKIE")):
                        yield problem(resource, "spec.template.spec.containers", f"{name}: login is not configurable")
        sections = _sections(_gamification(tree, "settings.cfg"))
        if sections is None or sections - TUNABLE_SECTIONS:
            yield Problem(tree.path, f"settings.cfg may hold only {sorted(TUNABLE_SECTIONS)}")


def _sections(text: str) -> set[str] | None:
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read_string(text)
    except configparser.Error:
        return None
    return set(parser.sections())


def redis_and_secrets(report: Report) -> Iterator[Problem]:
    """Its own ElastiCache over TLS with AUTH; the session secret from Secrets Manager, same everywhere."""
    for env in environments(report):
        tree = _tree(report, env.name)
        if tree is None:
            continue
        values = _env_config(tree)
        if values.get("DASHBOARD_REDIS_HOST") != EXAMPLE.dashboard_redis_endpoint:
            yield Problem(tree.path, "the dashboard uses its own Redis (dashboard_redis_endpoint), never MISP's")
        if values.get("DASHBOARD_REDIS_TLS") != "true":
            yield Problem(tree.path, "DASHBOARD_REDIS_TLS must be true")
        for resource in tree.of_kind("Deployment"):
            for index, item in enumerate(pod_spec(resource).get("containers") or []):
                refs = {dig(e, "secretRef", "name") for e in item.get("envFrom") or []}
                for secret in ("misp-dashboard-app", "misp-dashboard-redis"):
                    if secret not in refs:
                        yield problem(resource, f"spec.template.spec.containers[{index}].envFrom", f"needs {secret}")


def zeromq(report: Report) -> Iterator[Problem]:
    """Exactly one subscriber and one dispatcher, connected to MISP's single publisher."""
    for env in environments(report):
        tree = _tree(report, env.name)
        if tree is None:
            continue
        if _env_config(tree).get("DASHBOARD_MISP_ZMQ_URL") != f"tcp://misp-zmq.misp.svc.cluster.local:{ZMQ_PORT}":
            yield Problem(tree.path, "DASHBOARD_MISP_ZMQ_URL must be MISP's publisher, misp-zmq")
        roles = [
            arg
            for d in tree.of_kind("Deployment")
            for c in containers(d, include_init=False)
            for arg in c.get("args") or []
        ]
        for role in ("subscriber", "dispatcher"):
            if roles.count(role) != 1:
                yield Problem(tree.path, f"{roles.count(role)} {role} containers: exactly one")
        for resource in _deployments(tree, "zmq"):
            if resource.spec.get("replicas") != 1 or dig(resource.spec, "strategy", "type") != "Recreate":
                yield problem(resource, "spec", "one replica, Recreate: never two subscribers")
            for index, item in enumerate(pod_spec(resource).get("containers") or []):
                command = dig(item, "livenessProbe", "exec", "command") or []
                if "subscriber" in (item.get("args") or []) and command[-2:] != ["dashboard_entrypoint", "healthcheck"]:
                    # the image's healthcheck fails after 60 s without a message from MISP (a dead connection)
                    yield problem(
                        resource,
                        f"spec.template.spec.containers[{index}].livenessProbe",
                        "the subscriber needs the image's healthcheck as liveness probe",
                    )


def web(report: Report) -> Iterator[Problem]:
    for env in environments(report):
        tree = _tree(report, env.name)
        if tree is None:
            continue
        for resource in _deployments(tree, "web"):
            minimum = minimum_replicas(env)
            if (resource.spec.get("replicas") or 1) < minimum:
                yield problem(resource, "spec.replicas", f"at least {minimum}")
            yield from zone_spread_problems(resource)
            yield from disruption_budget_problems(tree, resource)
            found = container(resource, "web")
            if found is not None:
                for probe in ("startupProbe", "readinessProbe"):
                    if dig(found[1], probe, "httpGet", "path") != "/healthz":
                        yield problem(resource, f"spec.template.spec.containers[{found[0]}].{probe}", "probe /healthz")
                # /livez is answered by a worker thread without Redis: a TCP probe passes while every thread
                # is stuck, /healthz would restart every replica during a Redis failover.
                if dig(found[1], "livenessProbe", "httpGet", "path") != "/livez":
                    yield problem(
                        resource,
                        f"spec.template.spec.containers[{found[0]}].livenessProbe",
                        "needs an HTTP probe of /livez",
                    )
        ingress = tree.get("Ingress", DASHBOARD, DASHBOARD_NAMESPACE)
        if ingress is None:
            yield Problem(tree.path, "no Ingress for the dashboard")
        else:
            yield from ingress_problems(
                ingress, EXAMPLE.dashboard_hostname, EXAMPLE.dashboard_certificate_arn, "/healthz"
            )


def gamification(report: Report) -> Iterator[Problem]:
    """ranking.cfg complete and coherent: known categories, trophy shares adding up to 100."""
    for env in environments(report):
        tree = _tree(report, env.name)
        if tree is None:
            continue
        parser = configparser.ConfigParser(interpolation=None)
        try:
            parser.read_string(_gamification(tree, "ranking.cfg"))
        except configparser.Error as error:
            yield Problem(tree.path, f"ranking.cfg: {error}")
            continue
        if missing := RANKING_SECTIONS - set(parser.sections()):
            yield Problem(tree.path, f"ranking.cfg lacks {sorted(missing)}")
            continue
        try:
            shown = json.loads(parser.get("monthlyRanking", "categories_in_datatable"))
            points = dict(json.loads(parser.get("monthlyRanking", "pnts_per_contribution")))
            trophies = json.loads(parser.get("HonorTrophyCateg", "categ"))
            mapping = [float(share) for share in json.loads(parser.get("TrophyDifficulty", "trophyMapping"))]
        except (configparser.Error, ValueError, TypeError) as error:
            yield Problem(tree.path, f"ranking.cfg: {error}")
            continue
        for name in {*shown, *points, *trophies} - MISP_CATEGORIES:
            yield Problem(tree.path, f"ranking.cfg: {name} is not a MISP category")
        for section in SCRIPT_TEXT_SECTIONS:
            for key, text in parser.items(section):
                if key.isdigit() and _script_unsafe(text):
                    yield Problem(
                        tree.path,
                        f"ranking.cfg: [{section}] {key} = {text!r} breaks the contributors page"
                        " (no ', \", \\, < or control characters)",
                    )
        # Upstream's ranking.cfg: the best trophy goes to the top organisation alone, so the shares
        # cover the other trophies (tier 0 is "no trophy").
        tiers = len(parser["HonorTrophy"]) - 1
        if len(mapping) != tiers - 1 or sum(mapping) != 100:
            yield Problem(tree.path, f"ranking.cfg: trophyMapping needs {tiers - 1} shares adding up to 100")


def image_matches_build(report: Report) -> Iterator[Problem]:
    """The overlays run the image that images/misp-dashboard/VERSION says the workflow builds."""
    path = report.root / VERSION_FILE
    version = path.read_text(encoding="utf-8").strip() if path.is_file() else None
    for env in environments(report):
        tree = _tree(report, env.name)
        for resource in tree.of_kind("Deployment") if tree else []:
            for item in containers(resource):
                tag = str(item.get("image", "")).rpartition(":")[2]
                if tag != version:
                    yield problem(
                        resource, "spec.template.spec.containers", f"image tag {tag}, but {VERSION_FILE} is {version}"
                    )


POLICIES = (authentication, redis_and_secrets, zeromq, web, gamification, image_matches_build)
