"""Each MISP rule catches its violation (apps/misp)."""

from __future__ import annotations

import copy

import pytest
import yaml

from misp_eks import naming
from misp_eks.cluster_vars import ClusterVars
from misp_eks.environment import parse_model
from misp_eks.policies import misp, workloads
from misp_eks.problems import UserError
from misp_eks.settings import Settings
from misp_eks.validate.resources import Resource
from tests.policies.conftest import assert_finds, cluster, container, env_var, obj


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


@pytest.mark.parametrize("probe", ["startupProbe", "readinessProbe"])
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


def test_web_liveness_needs_no_free_php_child(report):
    container(web(report), "misp-core")["livenessProbe"] = {"httpGet": {"path": "/users/heartbeat", "port": 8080}}
    assert_finds(misp.web_tier(report), "livenessProbe", "free PHP child")


@pytest.mark.parametrize(
    "needle",
    [
        "listen = 127.0.0.1:9002",
        "listen.allowed_clients = 127.0.0.1",
        "php_admin_value[redis.session.locking_enabled] = 1",
    ],
)
def test_hook_hardens_php_fpm(report, needle):
    config_map = _scripts(report, "misp-backend", "misp-workers-scripts")
    config_map.obj["data"]["customize_misp.sh"] = config_map.obj["data"]["customize_misp.sh"].replace(needle, "")
    assert_finds(misp.hook_and_zeromq(report), "misp-workers-scripts", needle)


def _pre_stop(deployment, name="misp-core"):
    return container(deployment, name)["lifecycle"]["preStop"]["exec"]["command"]


def test_graceful_stop_is_the_stop_script(report):
    container(web(report), "misp-core")["lifecycle"] = {"preStop": {"sleep": {"seconds": 20}}}
    assert_finds(misp.graceful_stop(report), "Deployment misp/misp-web", "lifecycle.preStop", "stop-misp.sh")


def test_graceful_stop_fits_the_grace_period(report):
    workers(report)["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] = 120
    assert_finds(misp.graceful_stop(report), "Deployment misp/misp-workers", "terminationGracePeriodSeconds", "165s")


def test_graceful_stop_counts_every_budget(report):
    _pre_stop(web(report))[4] = "90"  # php-fpm's drain outgrows the grace period
    found = list(misp.graceful_stop(report))
    assert_finds(found, "Deployment misp/misp-web", "terminationGracePeriodSeconds")
    assert_finds(found, "Deployment misp/misp-web", "process_control_timeout", "90s")


def test_graceful_stop_pauses_for_the_load_balancer(report):
    _pre_stop(web(report))[2] = "0"
    assert_finds(misp.graceful_stop(report), "Deployment misp/misp-web", "load balancer")


def test_graceful_stop_lets_jobs_finish(report):
    _pre_stop(workers(report))[3] = "0"
    assert_finds(misp.graceful_stop(report), "Deployment misp/misp-workers", "JOBS")


def test_graceful_stop_needs_the_script_mounted(report):
    volumes = workers(report)["spec"]["template"]["spec"]["volumes"]
    hook = next(v for v in volumes if v["name"] == "hook")
    hook["configMap"]["items"] = [i for i in hook["configMap"]["items"] if i["path"] != "stop-misp.sh"]
    assert_finds(misp.graceful_stop(report), "Deployment misp/misp-workers", "stop-misp.sh")


def test_graceful_stop_of_php_fpm_needs_its_timeout(report):
    config_map = _scripts(report, "misp-web", "misp-web-scripts")
    hook = config_map.obj["data"]["customize_misp.sh"]
    config_map.obj["data"]["customize_misp.sh"] = hook.replace(
        "process_control_timeout = 60", "process_control_timeout = 0"
    )
    assert_finds(misp.graceful_stop(report), "Deployment misp/misp-web", "process_control_timeout")


@pytest.mark.parametrize(
    "command",
    [
        ["/bin/sh", "-c", "sleep 20; nginx -s stop"],
        ["/bin/sh", "-c", "sleep 5; nginx -s quit"],
    ],
)
def test_graceful_stop_of_nginx(report, command):
    container(web(report), "nginx")["lifecycle"]["preStop"]["exec"]["command"] = command
    assert_finds(misp.graceful_stop(report), "Deployment misp/misp-web", "nginx -s quit")


def test_graceful_stop_of_nginx_is_bounded(report):
    config_map = _scripts(report, "misp-web", "misp-nginx")
    conf = config_map.obj["data"]["nginx.conf"]
    config_map.obj["data"]["nginx.conf"] = conf.replace("worker_shutdown_timeout 60s;", "worker_shutdown_timeout 300s;")
    assert_finds(misp.graceful_stop(report), "Deployment misp/misp-web", "worker_shutdown_timeout")


@pytest.mark.parametrize(
    ("name", "value"), [("PHP_FCGI_CHILDREN", "3"), ("PHP_MEMORY_LIMIT", "3G"), ("PHP_FCGI_CHILDREN", None)]
)
def test_php_children_fit_the_memory_limit(report, name, value):
    for deployment in (web(report), workers(report)):
        core = container(deployment, "misp-core")
        if value is None:  # the image's default then applies: 2048M
            core["env"] = [e for e in core["env"] if e["name"] != name]
        else:
            env_var(core, name)["value"] = value
    assert_finds(misp.php_sizing(report), "Deployment misp/misp-web", "resources.limits.memory", "exceeds")


def test_php_memory_limit_is_misps_recommendation(report):
    env_var(container(web(report), "misp-core"), "PHP_MEMORY_LIMIT")["value"] = "1024M"
    assert_finds(misp.php_sizing(report), "Deployment misp/misp-web", "PHP_MEMORY_LIMIT", "recommended 2048M")


def test_web_pods_request_what_php_fpm_may_use(report):
    container(web(report), "misp-core")["resources"]["requests"]["memory"] = "1Gi"
    assert_finds(misp.php_sizing(report), "Deployment misp/misp-web", "requests.memory", "request the memory limit")


def test_web_pods_fit_a_staging_node(report):
    resources = container(obj(report, "staging", "misp-web", "Deployment", "misp-web"), "misp-core")["resources"]
    resources["requests"]["memory"] = resources["limits"]["memory"] = "8Gi"  # an m7i.large has 8 GiB in all
    assert_finds(misp.node_fit(report), "Deployment misp/misp-web", "a node has")


def test_all_pods_fit_the_largest_cluster(report):
    # Six web pods of 5 GiB: one per m7i.large, on the five of six nodes left beside the controllers.
    obj(report, "staging", "misp-web", "HorizontalPodAutoscaler", "misp-web")["spec"]["minReplicas"] = 6
    assert_finds(misp.node_fit(report), "Deployment misp/misp-", "no room left")


def test_node_types_must_be_known(report):
    cluster(report, "staging", lambda c: [g.update(instanceTypes=["x9.huge"]) for g in c["managedNodeGroups"]])
    assert_finds(misp.node_fit(report), "clusters/staging", "x9.huge")


def test_php_memory_limit_must_be_countable(report):
    env_var(container(web(report), "misp-core"), "PHP_MEMORY_LIMIT")["value"] = "-1"
    assert_finds(misp.php_sizing(report), "Deployment misp/misp-web", "countable")


def test_the_shared_volume_is_seeded_by_the_init_container(report):
    prepare = next(c for c in web(report)["spec"]["template"]["spec"]["initContainers"] if c["name"] == "prepare")
    prepare["volumeMounts"] = [m for m in prepare["volumeMounts"] if m["name"] != "misp-files"]
    assert_finds(misp.shared_files(report), "Deployment misp/misp-web", "initContainers", "/misp-files")


def test_the_seed_covers_every_shared_directory(report):
    config_map = _scripts(report, "misp-backend", "misp-workers-scripts")
    script = config_map.obj["data"]["prepare-pod.sh"]
    config_map.obj["data"]["prepare-pod.sh"] = script.replace(" terms)", ")")
    assert_finds(misp.shared_files(report), "Deployment misp/misp-workers", "prepare-pod.sh must seed")


def test_the_entrypoint_never_copies_over_the_shared_volume(report):
    core = container(workers(report), "misp-core")
    core["command"][-1] = core["command"][-1].replace("touch /var/www/MISP/app/files/INIT && ", "")
    assert_finds(misp.shared_files(report), "Deployment misp/misp-workers", "command", "INIT")


@pytest.mark.parametrize("path", misp.MISP_DATA_PATHS)
def test_every_kept_file_is_on_the_shared_volume(report, path):
    core = container(workers(report), "misp-core")
    core["volumeMounts"] = [m for m in core["volumeMounts"] if m["mountPath"] != path]
    assert_finds(misp.shared_files(report), "Deployment misp/misp-workers", path)


def test_the_shared_volume_is_the_claim(report):
    volumes = web(report)["spec"]["template"]["spec"]["volumes"]
    next(v for v in volumes if v["name"] == "misp-files").update(persistentVolumeClaim=None, emptyDir={})
    del next(v for v in volumes if v["name"] == "misp-files")["persistentVolumeClaim"]
    assert_finds(misp.shared_files(report), "Deployment misp/misp-web", "/var/www/MISP/app/files/img/orgs")


@pytest.mark.parametrize(
    ("field", "value", "fragment"),
    [("accessModes", ["ReadWriteOnce"], "ReadWriteMany"), ("storageClassName", "gp3", "efs")],
)
def test_the_shared_claim(report, field, value, fragment):
    obj(report, "prod", "misp-backend", "PersistentVolumeClaim", "misp-files")["spec"][field] = value
    assert_finds(misp.shared_files(report), "PersistentVolumeClaim misp/misp-files", fragment)


def test_the_shared_claim_exists(report):
    tree = report.applied("prod", "misp-backend")
    tree.resources = [r for r in tree.resources if r.kind != "PersistentVolumeClaim"]
    assert_finds(misp.shared_files(report), "clusters/prod", "misp-files")


def test_every_empty_dir_is_sized(report):
    volumes = web(report)["spec"]["template"]["spec"]["volumes"]
    next(v for v in volumes if v["name"] == "tmp")["emptyDir"] = {}
    assert_finds(misp.bounded_storage(report), "Deployment misp/misp-web", "emptyDir", "sizeLimit")


@pytest.mark.parametrize("name", ["misp-core", "nginx"])
def test_every_container_bounds_its_disk(report, name):
    del container(web(report), name)["resources"]["limits"]["ephemeral-storage"]
    assert_finds(misp.bounded_storage(report), "Deployment misp/misp-web", "resources.limits", "ephemeral-storage")


@pytest.mark.parametrize("path", misp.BOUNDED_PATHS)
def test_logs_and_feed_cache_are_bounded(report, path):
    core = container(workers(report), "misp-core")
    core["volumeMounts"] = [m for m in core["volumeMounts"] if m["mountPath"] != path]
    assert_finds(misp.bounded_storage(report), "Deployment misp/misp-workers", path)


def test_email_mode_comes_from_cluster_vars(report):
    env_var(container(workers(report), "misp-core"), "MISP_EKS_EMAIL")["value"] = "enabled"
    assert_finds(misp.email_off(report), "Deployment misp/misp-workers", "misp_email_delivery")


def test_email_mode_is_substituted_not_written_out(report):
    """`value: disabled` in git renders as the example does, but substitutes nothing."""
    tree = next(t for t in report.applied_trees("prod") if t.kustomization and t.kustomization.name == "misp-web")
    assert "misp_email_delivery" in tree.variables_used
    tree.variables_used.discard("misp_email_delivery")
    assert_finds(misp.email_off(report), "clusters/prod", "misp-web", "${misp_email_delivery}")


def test_cluster_vars_take_only_the_modes_the_pods_know():
    with pytest.raises(ValueError, match="misp_email_delivery"):
        ClusterVars(**{**ClusterVars.example().model_dump(), "misp_email_delivery": "enabled"})


def test_the_email_queue_keeps_a_worker(report):
    for deployment in (web(report), workers(report)):
        env_var(container(deployment, "misp-core"), "NUM_WORKERS_EMAIL")["value"] = "0"
    assert_finds(misp.email_off(report), "Deployment misp/misp-workers", "NUM_WORKERS_EMAIL")


def test_email_relay_is_never_mail(report):
    core = container(web(report), "misp-core")
    core["env"] = [e for e in core["env"] if e["name"] != "SMTP_FQDN"]
    assert_finds(misp.email_off(report), "Deployment misp/misp-web", "SMTP_FQDN")


def test_email_off_disables_emailing_in_misp(report):
    config_map = _scripts(report, "misp-web", "misp-web-scripts")
    hook = config_map.obj["data"]["customize_misp.sh"]
    config_map.obj["data"]["customize_misp.sh"] = hook.replace("setting MISP.disable_emailing true", "true")
    assert_finds(misp.email_off(report), "Deployment misp/misp-web", "MISP.disable_emailing")


def test_http_feeds_from_the_workers(report):
    tree = report.applied("prod", "misp-backend")
    tree.resources = [r for r in tree.resources if r.name != "misp-workers-feeds"]
    assert_finds(misp.plain_http_feeds(report), "Deployment misp/misp-workers", "port 80")


def test_an_egress_rule_without_peers_reaches_everywhere(report):
    policy = obj(report, "prod", "misp-backend", "NetworkPolicy", "misp-workers-feeds")
    policy["spec"]["podSelector"]["matchLabels"]["app.kubernetes.io/component"] = "web"
    del policy["spec"]["egress"][0]["to"]
    assert_finds(misp.plain_http_feeds(report), "Deployment misp/misp-web", "HTTPS only")


def test_no_plain_http_from_web_pods(report):
    policy = obj(report, "prod", "misp-backend", "NetworkPolicy", "misp-workers-feeds")
    policy["spec"]["podSelector"]["matchLabels"]["app.kubernetes.io/component"] = "web"
    assert_finds(misp.plain_http_feeds(report), "Deployment misp/misp-web", "HTTPS only")


def test_email_switch_is_off_and_reaches_cluster_vars(repo):
    """settings.yaml email.enabled, handed to the pods as cluster-vars' misp_email_delivery (disabled or
    ses), whose example value the policies above check the manifests against."""
    where = "clusters/prod/settings.yaml"
    data = yaml.safe_load((repo / where).read_text())
    settings = parse_model(Settings, data, where, "settings")
    assert settings.email.enabled is False
    assert settings.email.delivery == ClusterVars.example().misp_email_delivery == "disabled"
    data["email"] = {"enabled": True}
    assert parse_model(Settings, data, where, "settings").email.delivery == "ses"
    data["email"] = {"enabled": True, "domain": "example.net"}
    with pytest.raises(UserError) as raised:
        parse_model(Settings, data, where, "settings")
    assert where in str(raised.value.problem) and "email.domain: example.net is not" in str(raised.value.problem)
    data["email"] = {"enabled": True, "relay": "mail"}
    with pytest.raises(UserError) as raised:
        parse_model(Settings, data, where, "settings")
    assert raised.value.problem.field == "email.relay"
    del data["email"]
    assert parse_model(Settings, data, where, "settings").email.delivery == "disabled"  # off unless said


def test_the_load_balancer_waits_for_the_drain(report):
    annotations = obj(report, "prod", "misp-web", "Ingress", "misp")["metadata"]["annotations"]
    annotations["alb.ingress.kubernetes.io/target-group-attributes"] = "deregistration_delay.timeout_seconds=30"
    assert_finds(misp.graceful_stop(report), "Ingress misp/misp", "deregistration_delay.timeout_seconds >= 80")


def _smtp_policy(report):
    return obj(report, "prod", "misp-backend", "NetworkPolicy", "misp-core-smtp")


@pytest.mark.parametrize("name", sorted(misp.SMTP_ENV))
def test_ses_credentials_come_from_the_smtp_secret(report, name):
    env_var(container(web(report), "misp-core"), name)["valueFrom"]["secretKeyRef"]["key"] = "auth_token"
    assert_finds(misp.email_ses(report), "Deployment misp/misp-web", name, "misp-smtp")


def test_ses_mode_speaks_starttls(report):
    config_map = _scripts(report, "misp-backend", "misp-workers-scripts")
    hook = config_map.obj["data"]["customize_misp.sh"]
    line = next(line for line in hook.splitlines() if line.lstrip().startswith("transport="))
    assert "'tls' => true" in line and "'tls' => true" in hook.replace(line, "")  # a comment names it too
    config_map.obj["data"]["customize_misp.sh"] = hook.replace(line, line.replace("'tls' => true", "'tls' => false"))
    assert_finds(misp.email_ses(report), "Deployment misp/misp-workers", "STARTTLS")


def test_the_hook_accepts_the_smtp_port_of_naming(report):
    hook = _scripts(report, "misp-backend", "misp-workers-scripts").obj["data"]["customize_misp.sh"]
    assert misp.SMTP_PORT_CHECK.findall(hook) == [str(naming.SMTP_PORT)]
    config_map = _scripts(report, "misp-backend", "misp-workers-scripts")
    config_map.obj["data"]["customize_misp.sh"] = hook.replace(
        f"MISP_EKS_SMTP_PORT=^{naming.SMTP_PORT}$", "MISP_EKS_SMTP_PORT=^465$"
    )
    assert_finds(misp.email_ses(report), "Deployment misp/misp-workers", f"exactly port {naming.SMTP_PORT}")


@pytest.mark.parametrize("sender", ["misp-web", "misp-workers"])
def test_both_senders_reach_ses(report, sender):
    _smtp_policy(report)["spec"]["podSelector"]["matchExpressions"][0]["values"] = [
        role for role in ("web", "workers") if f"misp-{role}" != sender
    ]
    assert_finds(misp.email_ses(report), f"Deployment misp/{sender}", "port 587")


def test_no_other_pod_reaches_smtp(report):
    policy = obj(report, "prod", "misp-backend", "NetworkPolicy", "misp-modules")
    policy["spec"]["egress"][0]["ports"].append({"protocol": "TCP", "port": 587})
    assert_finds(misp.email_ses(report), "NetworkPolicy misp/misp-modules", "not Deployment misp/misp-modules")


def test_an_empty_pod_selector_opens_smtp_to_every_pod(report):
    _smtp_policy(report)["spec"]["podSelector"] = {}
    assert_finds(misp.email_ses(report), "NetworkPolicy misp/misp-core-smtp", "not Deployment misp/misp-modules")


def test_the_repository_sends_through_ses_when_switched_on(report):
    assert list(misp.email_ses(report)) == []
    assert ClusterVars(**{**ClusterVars.example().model_dump(), "misp_email_delivery": "ses"})
