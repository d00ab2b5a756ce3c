"""Each MISP Dashboard rule catches its violation (apps/misp-dashboard)."""

from __future__ import annotations

import copy

import pytest

from misp_eks.policies import dashboard
from tests.policies.conftest import assert_finds, obj


def env_config(report):
    tree = report.applied("prod", "misp-dashboard")
    return next(r for r in tree.of_kind("ConfigMap") if r.name.startswith("misp-dashboard-env")).obj["data"]


def gamification(report):
    tree = report.applied("prod", "misp-dashboard")
    return next(r for r in tree.of_kind("ConfigMap") if r.name.startswith("misp-dashboard-gamification")).obj["data"]


def test_login_through_misp_over_https(report):
    env_config(report)["DASHBOARD_MISP_URL"] = "http://misp.example.org"
    assert_finds(dashboard.authentication(report), "DASHBOARD_MISP_URL")


@pytest.mark.parametrize("name", ["DASHBOARD_AUTH_ENABLED", "AUTH_ENABLED", "SSL_VERIFY", "SECURE_COOKIE"])
def test_no_overlay_can_turn_login_off(report, name):
    env_config(report)[name] = "false"
    assert_finds(dashboard.authentication(report), name, "not configurable")


def test_no_overlay_can_set_a_test_only_switch(report):
    env_config(report)["DASHBOARD_TEST_ONLY_INSECURE_REDIS"] = "true"
    assert_finds(dashboard.authentication(report), "DASHBOARD_TEST_ONLY_INSECURE_REDIS", "for tests, never here")


def test_settings_file_cannot_touch_auth(report):
    gamification(report)["settings.cfg"] += "\n[Auth]\nauth_enabled = False\n"
    assert_finds(dashboard.authentication(report), "settings.cfg may hold only")


def test_own_redis_never_misps(report):
    env_config(report)["DASHBOARD_REDIS_HOST"] = "master.misp-prod-misp.example.euw1.cache.amazonaws.com"
    assert_finds(dashboard.redis_and_secrets(report), "never MISP's")


def test_redis_tls(report):
    env_config(report)["DASHBOARD_REDIS_TLS"] = "false"
    assert_finds(dashboard.redis_and_secrets(report), "DASHBOARD_REDIS_TLS")


def test_session_secret_everywhere(report):
    deployment = obj(report, "prod", "misp-dashboard", "Deployment", "misp-dashboard-web")
    deployment["spec"]["template"]["spec"]["containers"][0]["envFrom"] = [{"configMapRef": {"name": "x"}}]
    assert_finds(dashboard.redis_and_secrets(report), "misp-dashboard-web", "misp-dashboard-app")


def test_one_subscriber(report):
    deployment = obj(report, "prod", "misp-dashboard", "Deployment", "misp-dashboard-zmq")
    containers = deployment["spec"]["template"]["spec"]["containers"]
    second = copy.deepcopy(containers[0])
    second["name"] = "subscriber-2"
    containers.append(second)
    assert_finds(dashboard.zeromq(report), "2 subscriber containers")


def test_zmq_pod_never_doubles(report):
    obj(report, "prod", "misp-dashboard", "Deployment", "misp-dashboard-zmq")["spec"]["replicas"] = 2
    assert_finds(dashboard.zeromq(report), "Deployment misp-dashboard/misp-dashboard-zmq", "one replica")


def test_subscribes_to_misps_publisher(report):
    env_config(report)["DASHBOARD_MISP_ZMQ_URL"] = "tcp://misp-web.misp.svc.cluster.local:50000"
    assert_finds(dashboard.zeromq(report), "misp-zmq")


def test_web_replicas_in_production(report):
    obj(report, "prod", "misp-dashboard", "Deployment", "misp-dashboard-web")["spec"]["replicas"] = 1
    assert_finds(dashboard.web(report), "misp-dashboard-web", "at least 2")


def test_web_probes(report):
    deployment = obj(report, "prod", "misp-dashboard", "Deployment", "misp-dashboard-web")
    deployment["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["path"] = "/"
    assert_finds(dashboard.web(report), "readinessProbe", "/healthz")


@pytest.mark.parametrize(
    "probe", [None, {"tcpSocket": {"port": "http"}}, {"httpGet": {"path": "/healthz", "port": "http"}}]
)
def test_web_liveness(report, probe):
    deployment = obj(report, "prod", "misp-dashboard", "Deployment", "misp-dashboard-web")
    deployment["spec"]["template"]["spec"]["containers"][0]["livenessProbe"] = probe
    assert_finds(dashboard.web(report), "livenessProbe", "HTTP probe of /livez")


def test_subscriber_liveness(report):
    deployment = obj(report, "prod", "misp-dashboard", "Deployment", "misp-dashboard-zmq")
    subscriber = next(c for c in deployment["spec"]["template"]["spec"]["containers"] if c["args"] == ["subscriber"])
    subscriber.pop("livenessProbe")
    assert_finds(dashboard.zeromq(report), "livenessProbe", "the subscriber needs the image's healthcheck")


@pytest.mark.parametrize("text", ["Cadet's", 'The "Admiral"', "back\\slash", "<b>bold</b>"])
def test_gamification_texts_that_break_the_contributors_page(report, text):
    data = gamification(report)
    ranking = data["ranking.cfg"]
    title = next(line for line in ranking.splitlines() if line.startswith("1 ="))
    data["ranking.cfg"] = ranking.replace(title, f"1 = {text}", 1)
    assert_finds(dashboard.gamification(report), "[rankTitle] 1", "breaks the contributors page")


def test_ingress_like_misps(report):
    ingress = obj(report, "prod", "misp-dashboard", "Ingress", "misp-dashboard")
    ingress["metadata"]["annotations"]["alb.ingress.kubernetes.io/healthcheck-path"] = "/users/heartbeat"
    assert_finds(dashboard.web(report), "Ingress misp-dashboard/misp-dashboard", "healthcheck-path")


@pytest.mark.parametrize(
    ("old", "new", "fragment"),
    [
        ('["attribution", 5]', '["atribution", 5]', "atribution is not a MISP category"),
        ("trophyMapping = [2, 9,", "trophyMapping = [3, 9,", "adding up to 100"),
        ("[HonorBadge]", "[Badges]", "lacks"),
        ("trophyMapping = [2, 9,", "trophyMapping = [2 9,", "ranking.cfg: Expecting"),  # a reported error, no crash
        ("trophyMapping = [2, 9,", "trophyMappings = [2, 9,", "No option 'trophymapping'"),
    ],
)
def test_gamification(report, old, new, fragment):
    data = gamification(report)
    assert old in data["ranking.cfg"]
    data["ranking.cfg"] = data["ranking.cfg"].replace(old, new)
    assert_finds(dashboard.gamification(report), fragment)


def test_image_matches_the_built_version(report):
    deployment = obj(report, "prod", "misp-dashboard", "Deployment", "misp-dashboard-web")
    image = deployment["spec"]["template"]["spec"]["containers"][0]["image"]
    deployment["spec"]["template"]["spec"]["containers"][0]["image"] = image.rpartition(":")[0] + ":0000000-9"
    assert_finds(dashboard.image_matches_build(report), "images/misp-dashboard/VERSION")


def test_web_spreads_over_zones_strictly(report):
    deployment = obj(report, "prod", "misp-dashboard", "Deployment", "misp-dashboard-web")
    deployment["spec"]["template"]["spec"]["topologySpreadConstraints"][0]["whenUnsatisfiable"] = "ScheduleAnyway"
    assert_finds(dashboard.web(report), "misp-dashboard-web", "spread over zones (DoNotSchedule)")


def test_web_disruption_budget(report):
    budget = obj(report, "prod", "misp-dashboard", "PodDisruptionBudget", "misp-dashboard-web")
    budget["spec"]["maxUnavailable"] = "100%"
    assert_finds(dashboard.web(report), "PodDisruptionBudget misp-dashboard/misp-dashboard-web", "at least one pod")
    tree = report.applied("prod", "misp-dashboard")
    tree.resources = [r for r in tree.resources if r.kind != "PodDisruptionBudget"]
    assert_finds(dashboard.web(report), "misp-dashboard-web", "needs a PodDisruptionBudget")
