"""Each MISP rule catches its violation (apps/misp)."""

from __future__ import annotations

import copy

import pytest

from misp_eks.policies import misp, workloads
from misp_eks.validate.resources import Resource
from tests.policies.conftest import assert_finds, container, env_var, obj


def web(report):
    return obj(report, "prod", "misp-web", "Deployment", "misp-web")


def workers(report):
    return obj(report, "prod", "misp-backend", "Deployment", "misp-workers")


def test_web_tier_hpa_minimum_in_production(report):
    obj(report, "prod", "misp-web", "HorizontalPodAutoscaler", "misp-web")["spec"]["minReplicas"] = 1
    assert_finds(misp.web_tier(report), "Deployment misp/misp-web", "minReplicas >= 2")


def test_web_tier_zone_spread(report):
    web(report)["spec"]["template"]["spec"]["topologySpreadConstraints"] = []
    assert_finds(misp.web_tier(report), "topologySpreadConstraints", "zones")


def test_web_tier_rollout_one_pod_at_a_time(report):
    web(report)["spec"]["strategy"]["rollingUpdate"]["maxSurge"] = 3
    assert_finds(misp.web_tier(report), "spec.strategy", "maxSurge 1")


def test_web_tier_pdb(report):
    tree = report.applied("prod", "misp-web")
    tree.resources = [r for r in tree.resources if r.kind != "PodDisruptionBudget"]
    assert_finds(misp.web_tier(report), "PodDisruptionBudget")


@pytest.mark.parametrize("probe", ["startupProbe", "readinessProbe", "livenessProbe"])
def test_web_tier_heartbeat_probes(report, probe):
    container(web(report), "misp-core")[probe]["httpGet"]["path"] = "/users/login"
    assert_finds(misp.web_tier(report), probe, "/users/heartbeat")


def test_web_tier_replicas_belong_to_the_hpa(report):
    web(report)["spec"]["replicas"] = 2
    assert_finds(misp.web_tier(report), "spec.replicas", "HorizontalPodAutoscaler")


def test_one_workers_pod(report):
    workers(report)["spec"]["replicas"] = 2
    assert_finds(misp.one_worker_tier(report), "Deployment misp/misp-workers", "spec.replicas")


def test_workers_recreate(report):
    workers(report)["spec"]["strategy"] = {"type": "RollingUpdate"}
    assert_finds(misp.one_worker_tier(report), "spec.strategy.type", "Recreate")


def test_no_second_workers_deployment(report):
    tree = report.applied("prod", "misp-backend")
    second = copy.deepcopy(tree.one("Deployment", "misp-workers"))
    second.obj["metadata"]["name"] = "misp-workers-2"
    tree.resources.append(second)
    assert_finds(misp.one_worker_tier(report), "2 workers Deployments")


def test_web_pods_run_no_workers(report):
    web(report)["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/component"] = "all-in-one"
    assert_finds(misp.one_worker_tier(report), "role is web or workers")


def test_no_second_scheduler(report):
    tree = report.applied("prod", "misp-backend")
    cron = {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "fetch-feeds", "namespace": "misp"}}
    tree.resources.append(Resource(cron, "apps/misp/base/backend/cron.yaml"))
    assert_finds(misp.one_worker_tier(report), "CronJob misp/fetch-feeds", "second one")


def test_stages_order(report):
    item = next(k for k in report.kustomizations["prod"] if k.name == "misp-web")
    item.spec["dependsOn"] = [{"name": "misp-database"}]
    assert_finds(misp.stages(report), "Kustomization flux-system/misp-web", "misp-backend")


def test_workers_pod_is_in_the_backend_stage(report):
    tree = report.applied("prod", "misp-backend")
    tree.resources = [r for r in tree.resources if r.name != "misp-workers"]
    assert_finds(misp.stages(report), "Deployment misp-workers")


@pytest.mark.parametrize(
    ("edit", "fragments"),
    [
        (lambda c: c["env"].append({"name": "SALT", "value": "x"}), ("SALT comes from misp-app only",)),
        (lambda c: c["env"].append({"name": "S3_ACCESS_KEY", "value": "x"}), ("static S3 keys",)),
        (lambda c: c["env"].append({"name": "ADMIN_KEY", "value": "x"}), ("resets every API key of the admin",)),
        (lambda c: c["env"].append({"name": "MISP_BASEURL", "value": "x"}), ("does not read MISP_BASEURL",)),
        (lambda c: c["env"].append({"name": "DISABLE_SSL_REDIRECT", "value": "true"}), ("DISABLE_SSL_REDIRECT",)),
        (lambda c: env_var(c, "ENABLE_DB_SETTINGS").update(value="true"), ("ENABLE_DB_SETTINGS",)),
        (lambda c: env_var(c, "REDIS_HOST").update(value="master.example"), ("REDIS_HOST", "tls://")),
        (lambda c: env_var(c, "MYSQL_TLS").update(value="false"), ("MYSQL_TLS",)),
        (lambda c: env_var(c, "ATTACHMENTS_DIR").update(value="/var/www/MISP/app/files"), ("ATTACHMENTS_DIR",)),
        (
            lambda c: env_var(c, "MYSQL_PASSWORD").update(
                valueFrom={"secretKeyRef": {"name": "misp-database-master", "key": "password"}}
            ),
            ("MYSQL_PASSWORD", "misp-database"),
        ),
        (lambda c: c.update(envFrom=[]), ("envFrom", "misp-app")),
    ],
)
def test_identity_and_environment(report, edit, fragments):
    edit(container(web(report), "misp-core"))
    assert_finds(misp.identity_and_environment(report), "Deployment misp/misp-web", *fragments)


def test_web_and_workers_share_one_environment(report):
    env_var(container(workers(report), "misp-core"), "PHP_SESSION_COOKIE_SECURE")["value"] = "false"
    assert_finds(misp.identity_and_environment(report), "share one environment")


def _scripts(report, stage, prefix):
    return next(r for r in report.applied("prod", stage).of_kind("ConfigMap") if r.name.startswith(prefix))


@pytest.mark.parametrize("needle", ["Plugin.S3_aws_compatible false", "ZeroMQ_supervisor_managed"])
def test_hook_settings(report, needle):
    config_map = _scripts(report, "misp-web", "misp-web-scripts")
    config_map.obj["data"]["customize_misp.sh"] = config_map.obj["data"]["customize_misp.sh"].replace(needle, "")
    assert_finds(misp.hook_and_zeromq(report), "misp-web-scripts", needle)


def test_zeromq_publisher_is_the_workers_pod(report):
    obj(report, "prod", "misp-backend", "Service", "misp-zmq")["spec"]["selector"]["app.kubernetes.io/component"] = (
        "web"
    )
    assert_finds(misp.hook_and_zeromq(report), "Service misp/misp-zmq", "only the workers pod")


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("alb.ingress.kubernetes.io/ssl-policy", "ELBSecurityPolicy-2016-08"),
        ("alb.ingress.kubernetes.io/target-type", "instance"),
        ("alb.ingress.kubernetes.io/ssl-redirect", "80"),
        ("alb.ingress.kubernetes.io/healthcheck-path", "/"),
        ("alb.ingress.kubernetes.io/listen-ports", '[{"HTTP": 80}]'),
    ],
)
def test_ingress(report, key, value):
    obj(report, "prod", "misp-web", "Ingress", "misp")["metadata"]["annotations"][key] = value
    assert_finds(misp.ingress(report), "Ingress misp/misp", key)


def test_ingress_host(report):
    obj(report, "prod", "misp-web", "Ingress", "misp")["spec"]["rules"][0]["host"] = "misp.example.com"
    assert_finds(misp.ingress(report), "spec.rules")


def test_modules_two_replicas_in_production(report):
    obj(report, "prod", "misp-backend", "Deployment", "misp-modules")["spec"]["replicas"] = 1
    assert_finds(misp.modules(report), "Deployment misp/misp-modules", "two")


def test_network_web_only_from_the_vpc(report):
    policy = obj(report, "prod", "misp-web", "NetworkPolicy", "misp-web")
    policy["spec"]["ingress"][0]["from"] = [{"ipBlock": {"cidr": "0.0.0.0/0"}}]
    assert_finds(misp.network(report), "Deployment misp/misp-web", "NetworkPolicies admit")
    assert_finds(workloads.network_rules(report), "NetworkPolicy misp/misp-web", "from anywhere")


def test_network_publisher_only_for_the_dashboard(report):
    policy = obj(report, "prod", "misp-backend", "NetworkPolicy", "misp-workers")
    policy["spec"]["ingress"][0]["from"][0]["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"] = "x"
    assert_finds(misp.network(report), "Deployment misp/misp-workers")


def test_network_modules_not_from_every_namespace(report):
    """MISP's labels in any namespace are not MISP: a namespaceSelector that names none admits all."""
    policy = obj(report, "prod", "misp-backend", "NetworkPolicy", "misp-modules")
    policy["spec"]["ingress"][0]["from"][0]["namespaceSelector"] = {}
    assert_finds(misp.network(report), "Deployment misp/misp-modules", "'*'")


def test_network_named_port_is_reported_not_a_crash(report):
    policy = obj(report, "prod", "misp-backend", "NetworkPolicy", "misp-modules")
    policy["spec"]["ingress"][0]["ports"][0]["port"] = "modules"
    assert_finds(misp.network(report), "Deployment misp/misp-modules", "'modules'")


def test_network_modules_only_for_misp(report):
    policy = obj(report, "prod", "misp-backend", "NetworkPolicy", "misp-modules")
    policy["spec"]["ingress"][0]["from"] = [{"namespaceSelector": {}}]
    assert_finds(misp.network(report), "Deployment misp/misp-modules")


def test_gpg_autoconfiguration_stays_on(report):
    deployment = obj(report, "prod", "misp-web", "Deployment", "misp-web")
    container(deployment, "misp-core")["env"].append({"name": "AUTOCONF_GPG", "value": "false"})
    assert_finds(misp.identity_and_environment(report), "AUTOCONF_GPG configures MISP")


def test_zeromq_service_port(report):
    obj(report, "prod", "misp-backend", "Service", "misp-zmq")["spec"]["ports"][0]["port"] = 5555
    assert_finds(misp.hook_and_zeromq(report), "Service misp/misp-zmq", "listens on 50000")


def test_nothing_but_misp_app_comes_in_whole(report):
    deployment = obj(report, "prod", "misp-web", "Deployment", "misp-web")
    container(deployment, "misp-core")["envFrom"].append({"configMapRef": {"name": "extra"}})
    assert_finds(misp.identity_and_environment(report), "envFrom", "only MISP's identity")


def test_misp_app_holds_only_variables_misp_core_reads():
    """misp-app reaches misp-core whole (envFrom), so its keys are checked here rather than in the manifests."""
    assert not set(misp.MISP_APP.keys) & set(misp.FORBIDDEN_ENV)
    assert all(misp._env_known(name) for name in misp.MISP_APP.keys)
