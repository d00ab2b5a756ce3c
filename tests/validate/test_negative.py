"""Every check of scripts/validate catches its violation, with a message naming file, object and field.

Each test breaks one file of the small valid repository of :mod:`.fixtures` and looks for the one
problem that the check must report: the repository-relative file, ``Kind namespace/name`` and the field.
"""

from __future__ import annotations

import re

import pytest

from misp_eks.problems import Problem
from misp_eks.validate.runner import Report

from .fixtures import (
    APPS,
    AUTOSCALING,
    BASE,
    CLUSTER,
    CONFIG,
    DEPLOYMENT,
    ENV,
    EXTERNAL_SECRET,
    INFRA,
    INGRESS,
    NETWORK_POLICY,
    RELEASE,
    SERVICE,
    SETTINGS,
    FixtureRepo,
    expect,
    flux_kustomization,
    problems,
    render,
)

DEPLOY = "Deployment demo/demo"
POD = "spec.template.spec"
FLUX_APP = "Kustomization flux-system/demo"
HELMRELEASE = "HelmRelease flux-system/podinfo"
APPLIED = f"apps/demo/prod ({FLUX_APP})"
"""How a build problem names the tree that Flux Kustomization ``demo`` applies."""
EXTRA_VARS = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: extra-vars
  namespace: flux-system
data:
  greeting: hi
"""


def assert_clean(repo: FixtureRepo) -> None:
    report = repo.validate()
    assert not report.all_problems(), render(problems(report))


def test_the_fixture_repository_is_valid(fixture_repo: FixtureRepo):
    report = fixture_repo.validate()
    assert not report.all_problems(), render(problems(report))
    assert set(report.environments) == {ENV}
    assert sorted(t.label for t in report.trees) == [
        "prod: apps/demo/base (included by demo)",
        "prod: apps/demo/prod (demo)",
        "prod: clusters/prod (flux-system)",
        "prod: clusters/prod/flux-system (included by flux-system)",
        "prod: infrastructure/controllers (infra-controllers)",
    ]
    app = report.applied(ENV, "demo")
    assert app.one("Deployment", "demo").namespace == "demo"  # set by the kustomization only
    # Substituted from cluster-vars, and every object names the file it came from.
    ingress = app.one("Ingress", "demo")
    assert ingress.spec["rules"][0]["host"] == "misp.example.org"
    assert ingress.origin == INGRESS
    assert "config.kubernetes.io/origin" not in ingress.annotations


# --- Schemas: unknown fields, wrong types, apiVersions, custom kinds -------------------------------------


def test_unknown_field_in_a_deployment(fixture_repo: FixtureRepo):
    fixture_repo.replace(DEPLOYMENT, "          image: ghcr", "          imagee: ghcr")
    expect(
        fixture_repo.validate(),
        where=DEPLOYMENT,
        obj=DEPLOY,
        field=f"{POD}.containers[0].imagee",
        message="unknown field",
    )


def test_unknown_field_in_a_helmrelease_spec(fixture_repo: FixtureRepo):
    fixture_repo.replace(RELEASE, "  install:\n", "  instal:\n")
    expect(fixture_repo.validate(), where=RELEASE, obj=HELMRELEASE, field="spec.instal", message="unknown field")


def test_unknown_field_nested_in_a_helmrelease(fixture_repo: FixtureRepo):
    fixture_repo.replace(RELEASE, "      retryInterval: 5m\n", "      retryInterval: 5m\n      retries: 3\n")
    expect(
        fixture_repo.validate(),
        where=RELEASE,
        obj=HELMRELEASE,
        field="spec.install.strategy.retries",
        message="unknown field",
    )


def test_wrong_install_strategy_name_in_a_helmrelease(fixture_repo: FixtureRepo):
    fixture_repo.replace(
        RELEASE, "      name: RetryOnFailure\n      retryInterval", "      name: Retry\n      retryInterval"
    )
    expect(fixture_repo.validate(), where=RELEASE, obj=HELMRELEASE, field="spec.install.strategy.name")


def test_unknown_field_in_a_flux_kustomization(fixture_repo: FixtureRepo):
    fixture_repo.replace(APPS, "  wait: true\n", "  wiat: true\n")
    expect(fixture_repo.validate(), where=APPS, obj=FLUX_APP, field="spec.wiat", message="unknown field")


def test_wrong_type(fixture_repo: FixtureRepo):
    fixture_repo.replace(DEPLOYMENT, "  replicas: 2\n", '  replicas: "two"\n')
    expect(fixture_repo.validate(), where=DEPLOYMENT, obj=DEPLOY, field="spec.replicas", message="wrong type")


def test_removed_api_version(fixture_repo: FixtureRepo):
    fixture_repo.replace(INGRESS, "apiVersion: networking.k8s.io/v1\n", "apiVersion: extensions/v1beta1\n")
    expect(
        fixture_repo.validate(),
        where=INGRESS,
        obj="Ingress demo/demo",
        field="apiVersion",
        message="apiVersion extensions/v1beta1 has no kind Ingress in Kubernetes 1.35",
    )


def test_unknown_custom_kind_is_an_error_not_skipped(fixture_repo: FixtureRepo):
    widget = "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: gadget\nspec:\n  size: 3\n"
    fixture_repo.add_resource(BASE, "widget.yaml", widget)
    expect(
        fixture_repo.validate(),
        where=f"{BASE}/widget.yaml",
        obj="Widget demo/gadget",
        field="apiVersion",
        message="nothing validates custom kind Widget (example.com/v1)",
    )


def test_unknown_field_in_an_external_secret(fixture_repo: FixtureRepo):
    fixture_repo.replace(EXTERNAL_SECRET, "  refreshInterval: 1h\n", "  refreshInterval: 1h\n  refreshEvery: 1h\n")
    expect(
        fixture_repo.validate(),
        where=EXTERNAL_SECRET,
        obj="ExternalSecret demo/demo-credentials",
        field="spec.refreshEvery",
        message="unknown field",
    )


def test_old_external_secrets_api_version(fixture_repo: FixtureRepo):
    fixture_repo.replace(EXTERNAL_SECRET, "external-secrets.io/v1\n", "external-secrets.io/v1beta1\n")
    expect(
        fixture_repo.validate(),
        where=EXTERNAL_SECRET,
        obj="ExternalSecret demo/demo-credentials",
        field="apiVersion",
        message="ExternalSecret (external-secrets.io/v1beta1)",
    )


def test_namespaced_object_without_namespace(fixture_repo: FixtureRepo):
    orphan = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: orphan\ndata:\n  a: b\n"
    fixture_repo.add_resource("infrastructure/controllers", "orphan.yaml", orphan)
    expect(
        fixture_repo.validate(),
        where="infrastructure/controllers/orphan.yaml",
        obj="ConfigMap orphan",
        field="metadata.namespace",
        message="namespaced object without a namespace",
    )


# --- Post-build substitution ---------------------------------------------------------------------------


def test_undefined_variable_is_named(fixture_repo: FixtureRepo):
    fixture_repo.append(CONFIG, "  other: ${nope}\n")
    problem = expect(
        fixture_repo.validate(),
        where=CONFIG,
        obj="ConfigMap demo/demo-config",
        message="${nope} is not provided by the Flux Kustomization's postBuild",
    )
    assert "nope" in str(problem)


@pytest.mark.parametrize("key", ["annotations", "labels"])
def test_variables_in_an_object_with_substitution_disabled_are_left_alone(fixture_repo: FixtureRepo, key: str):
    script = f"""\
apiVersion: v1
kind: ConfigMap
metadata:
  name: script
  {key}:
    kustomize.toolkit.fluxcd.io/substitute: disabled
data:
  run.sh: echo "${{nope}} ${{HOME:-/root}}"
"""
    fixture_repo.add_resource(BASE, "script.yaml", script)
    report = fixture_repo.validate()
    assert not report.all_problems(), render(problems(report))
    built = report.applied(ENV, "demo").one("ConfigMap", "script")
    assert built.obj["data"]["run.sh"] == 'echo "${nope} ${HOME:-/root}"'


def test_escaped_variable_is_not_an_error(fixture_repo: FixtureRepo):
    fixture_repo.append(CONFIG, "  literal: $${escaped}\n")
    report = fixture_repo.validate()
    assert not report.all_problems(), render(problems(report))
    assert report.applied(ENV, "demo").one("ConfigMap", "demo-config").obj["data"]["literal"] == "${escaped}"


def test_default_forms_are_not_undefined(fixture_repo: FixtureRepo):
    fixture_repo.append(CONFIG, "  tier: ${tier:=gold}\n  size: ${size:-small}\n")
    report = fixture_repo.validate()
    assert not report.all_problems(), render(problems(report))
    data = report.applied(ENV, "demo").one("ConfigMap", "demo-config").obj["data"]
    assert (data["tier"], data["size"]) == ("gold", "small")


def test_unsupported_substitution_expression(fixture_repo: FixtureRepo):
    fixture_repo.append(CONFIG, "  upper: ${domain^^}\n")
    expect(
        fixture_repo.validate(),
        where=CONFIG,
        obj="ConfigMap demo/demo-config",
        message="${domain^^}: unsupported substitution expression",
    )


def test_quoted_number_substituted_into_an_env_value_becomes_an_int(fixture_repo: FixtureRepo):
    # kustomize prints "${aws_account_id}" without quotes (it is a plain string); Flux substitutes the
    # account's digits into the YAML text, which then read as an int: the API server would refuse it.
    fixture_repo.replace(
        DEPLOYMENT,
        "          env:\n",
        '          env:\n            - name: ACCOUNT\n              value: "${aws_account_id}"\n',
    )
    expect(
        fixture_repo.validate(),
        where=DEPLOYMENT,
        obj=DEPLOY,
        field=f"{POD}.containers[0].env[0].value",
        message="wrong type",
    )


def test_number_substituted_into_an_alb_annotation_fails(fixture_repo: FixtureRepo):
    fixture_repo.replace(INGRESS, 'success-codes: "200"', 'success-codes: "${success_codes}"')
    fixture_repo.replace(APPS, "  postBuild:\n", '  postBuild:\n    substitute:\n      success_codes: "200"\n')
    expect(
        fixture_repo.validate(),
        where=INGRESS,
        obj="Ingress demo/demo",
        field="metadata.annotations.alb.ingress.kubernetes.io/success-codes",
        message="wrong type",
    )


def test_number_written_into_an_annotation_is_quoted_by_kustomize(fixture_repo: FixtureRepo):
    """As with Flux, kustomize itself turns an unquoted number in an annotation into a string."""
    fixture_repo.replace(INGRESS, 'success-codes: "200"', "success-codes: 200")
    report = fixture_repo.validate()
    assert not report.all_problems(), render(problems(report))
    ingress = report.applied(ENV, "demo").one("Ingress", "demo")
    assert ingress.annotations["alb.ingress.kubernetes.io/success-codes"] == "200"


def test_missing_substitute_from_source(fixture_repo: FixtureRepo):
    fixture_repo.replace(
        APPS, "        name: cluster-vars\n", "        name: cluster-vars\n      - kind: Secret\n        name: gone\n"
    )
    expect(
        fixture_repo.validate(),
        where=APPS,
        obj=FLUX_APP,
        field="spec.postBuild.substituteFrom[1]",
        message="Secret flux-system/gone is neither the bootstrap's cluster-vars nor defined in this repository",
    )


def test_optional_substitute_from_source_may_be_missing(fixture_repo: FixtureRepo):
    fixture_repo.replace(
        APPS,
        "        name: cluster-vars\n",
        "        name: cluster-vars\n      - kind: Secret\n        name: gone\n        optional: true\n",
    )
    assert_clean(fixture_repo)


def test_variables_from_a_configmap_in_the_cluster_tree(fixture_repo: FixtureRepo):
    fixture_repo.add_resource(f"clusters/{ENV}", "extra-vars.yaml", EXTRA_VARS)
    fixture_repo.replace(
        APPS,
        "        name: cluster-vars\n",
        "        name: cluster-vars\n      - kind: ConfigMap\n        name: extra-vars\n",
    )
    fixture_repo.append(CONFIG, "  greeting: ${greeting}\n")
    report = fixture_repo.validate()
    assert not report.all_problems(), render(problems(report))
    assert report.applied(ENV, "demo").one("ConfigMap", "demo-config").obj["data"]["greeting"] == "hi"


def test_variables_from_a_secret_are_decoded(fixture_repo: FixtureRepo):
    manifest = (
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: extra\n  namespace: flux-system\ndata:\n  greeting: aGk=\n"
    )
    fixture_repo.add_resource(f"clusters/{ENV}", "extra.yaml", manifest)
    fixture_repo.replace(
        APPS, "        name: cluster-vars\n", "        name: cluster-vars\n      - kind: Secret\n        name: extra\n"
    )
    fixture_repo.append(CONFIG, "  greeting: ${greeting}\n")
    report = fixture_repo.validate()
    assert not report.all_problems(), render(problems(report))
    assert report.applied(ENV, "demo").one("ConfigMap", "demo-config").obj["data"]["greeting"] == "hi"


def test_inline_variables_override_cluster_vars(fixture_repo: FixtureRepo):
    fixture_repo.replace(APPS, "  postBuild:\n", "  postBuild:\n    substitute:\n      domain: example.net\n")
    report = fixture_repo.validate()
    assert not report.all_problems(), render(problems(report))
    assert report.applied(ENV, "demo").one("ConfigMap", "demo-config").obj["data"]["domain"] == "example.net"


def test_variables_from_a_configmap_applied_by_a_dependency(fixture_repo: FixtureRepo):
    fixture_repo.add_resource("infrastructure/controllers", "extra-vars.yaml", EXTRA_VARS)  # demo dependsOn it
    fixture_repo.replace(
        APPS,
        "        name: cluster-vars\n",
        "        name: cluster-vars\n      - kind: ConfigMap\n        name: extra-vars\n",
    )
    fixture_repo.append(CONFIG, "  greeting: ${greeting}\n")
    assert_clean(fixture_repo)


# --- The Flux graph -----------------------------------------------------------------------------------


def test_dangling_depends_on(fixture_repo: FixtureRepo):
    fixture_repo.replace(APPS, "    - name: infra-controllers\n", "    - name: infra-nope\n")
    expect(
        fixture_repo.validate(),
        where=APPS,
        obj=FLUX_APP,
        field="spec.dependsOn[0]",
        message="no Kustomization flux-system/infra-nope",
    )


def test_flux_kustomization_defined_twice(fixture_repo: FixtureRepo):
    fixture_repo.add_resource("infrastructure/controllers", "demo.yaml", flux_kustomization("demo", "apps/nope"))
    expect(
        fixture_repo.validate(),
        where="infrastructure/controllers/demo.yaml",
        obj=FLUX_APP,
        message=f"defined twice (also in {APPS})",
    )


def test_depends_on_cycle(fixture_repo: FixtureRepo):
    fixture_repo.replace(INFRA, "  interval: 1h\n", "  dependsOn:\n    - name: demo\n  interval: 1h\n")
    problem = expect(fixture_repo.validate(), field="spec.dependsOn", message="dependsOn cycle: ")
    assert problem.where in (APPS, INFRA)
    assert "flux-system/demo" in problem.message
    assert "flux-system/infra-controllers" in problem.message


def test_flux_kustomization_path_does_not_exist(fixture_repo: FixtureRepo):
    fixture_repo.replace(APPS, "path: ./apps/demo/prod", "path: ./apps/demo/production")
    report = fixture_repo.validate()
    expect(report, where=APPS, obj=FLUX_APP, field="spec.path", message="path apps/demo/production does not exist")
    # And what it was meant to apply is now applied by nothing.
    expect(report, where="apps/demo/prod", message="no Flux Kustomization applies or includes this kustomization")


def test_flux_kustomization_path_without_kustomization(fixture_repo: FixtureRepo):
    fixture_repo.replace(APPS, "path: ./apps/demo/prod", "path: ./apps/demo")
    expect(
        fixture_repo.validate(),
        where=APPS,
        obj=FLUX_APP,
        field="spec.path",
        message="path apps/demo has no kustomization.yaml",
    )


def test_source_ref_to_a_missing_git_repository(fixture_repo: FixtureRepo):
    fixture_repo.replace(APPS, "    name: flux-system\n", "    name: elsewhere\n")
    expect(
        fixture_repo.validate(),
        where=APPS,
        obj=FLUX_APP,
        field="spec.sourceRef",
        message="no GitRepository flux-system/elsewhere",
    )


def test_helmrelease_chart_from_a_missing_helm_repository(fixture_repo: FixtureRepo):
    def change(release: dict) -> None:
        release["spec"]["chart"]["spec"]["sourceRef"]["name"] = "missing"

    fixture_repo.edit(RELEASE, change, kind="HelmRelease")
    expect(
        fixture_repo.validate(),
        where=RELEASE,
        obj=HELMRELEASE,
        field="spec.chart.spec.sourceRef",
        message="no HelmRepository flux-system/missing",
    )


@pytest.mark.parametrize("version", [">=1.0.0", "6.x", "~6.7.0", "*"])
def test_helmrelease_chart_version_must_be_exact(fixture_repo: FixtureRepo, version: str):
    fixture_repo.replace(RELEASE, "version: 6.7.1", f'version: "{version}"')
    expect(
        fixture_repo.validate(),
        where=RELEASE,
        obj=HELMRELEASE,
        field="spec.chart.spec.version",
        message=f"chart version {version!r} is not an exact version",
    )


def test_helmrelease_depends_on_a_missing_release(fixture_repo: FixtureRepo):
    fixture_repo.replace(
        RELEASE, "  releaseName: podinfo\n", "  releaseName: podinfo\n  dependsOn:\n    - name: cert-manager\n"
    )
    expect(
        fixture_repo.validate(),
        where=RELEASE,
        obj=HELMRELEASE,
        field="spec.dependsOn[0]",
        message="no HelmRelease flux-system/cert-manager",
    )


def test_kustomization_directory_that_nothing_applies(fixture_repo: FixtureRepo):
    fixture_repo.write("apps/forgotten/kustomization.yaml", "resources: []\n")
    problem = expect(fixture_repo.validate(), where="apps/forgotten")
    assert problem.message == "no Flux Kustomization applies or includes this kustomization"


# --- References inside an applied tree -----------------------------------------------------------------


def test_service_selecting_no_pod(fixture_repo: FixtureRepo):
    fixture_repo.replace(SERVICE, "    app.kubernetes.io/name: demo\n", "    app.kubernetes.io/name: dmeo\n")
    expect(
        fixture_repo.validate(),
        where=SERVICE,
        obj="Service demo/demo",
        field="spec.selector",
        message="selects no pod in namespace demo",
    )


@pytest.mark.parametrize("target", ["9090", "metrics"])
def test_service_target_port_not_a_container_port(fixture_repo: FixtureRepo, target: str):
    fixture_repo.replace(SERVICE, "targetPort: http", f"targetPort: {target}")
    expect(
        fixture_repo.validate(),
        where=SERVICE,
        obj="Service demo/demo",
        field="spec.ports[0].targetPort",
        message=f"{target} is not a port of the selected containers",
    )


def test_service_target_port_by_number(fixture_repo: FixtureRepo):
    fixture_repo.replace(SERVICE, "targetPort: http", "targetPort: 8080")
    assert_clean(fixture_repo)


def _ingress_backend(repo: FixtureRepo, change: dict) -> None:
    def edit(ingress: dict) -> None:
        ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"].update(change)

    repo.edit(INGRESS, edit)


BACKEND = "spec.rules[0].http.paths[0].backend.service"


def test_ingress_backend_to_a_missing_service(fixture_repo: FixtureRepo):
    _ingress_backend(fixture_repo, {"name": "other"})
    expect(
        fixture_repo.validate(),
        where=INGRESS,
        obj="Ingress demo/demo",
        field=f"{BACKEND}.name",
        message="no Service other in demo",
    )


@pytest.mark.parametrize(("port", "wanted"), [({"name": "https"}, "https"), ({"number": 8080}, "8080")])
def test_ingress_backend_to_a_missing_port(fixture_repo: FixtureRepo, port: dict, wanted: str):
    _ingress_backend(fixture_repo, {"port": port})
    expect(
        fixture_repo.validate(),
        where=INGRESS,
        obj="Ingress demo/demo",
        field=f"{BACKEND}.port",
        message=f"Service demo has no port {wanted}",
    )


def test_ingress_default_backend_to_a_missing_service(fixture_repo: FixtureRepo):
    def edit(ingress: dict) -> None:
        ingress["spec"]["defaultBackend"] = {"service": {"name": "fallback", "port": {"number": 80}}}

    fixture_repo.edit(INGRESS, edit)
    expect(
        fixture_repo.validate(), where=INGRESS, field="spec.defaultBackend.service.name", message="no Service fallback"
    )


def test_hpa_targeting_a_missing_deployment(fixture_repo: FixtureRepo):
    fixture_repo.replace(
        AUTOSCALING, "    kind: Deployment\n    name: demo\n", "    kind: Deployment\n    name: other\n"
    )
    expect(
        fixture_repo.validate(),
        where=AUTOSCALING,
        obj="HorizontalPodAutoscaler demo/demo",
        field="spec.scaleTargetRef",
        message="no Deployment other in demo",
    )


def test_pdb_selecting_no_pod(fixture_repo: FixtureRepo):
    fixture_repo.replace(AUTOSCALING, "      app.kubernetes.io/name: demo\n", "      app.kubernetes.io/name: other\n")
    expect(
        fixture_repo.validate(),
        where=AUTOSCALING,
        obj="PodDisruptionBudget demo/demo",
        field="spec.selector",
        message="selects no pod in namespace demo",
    )


def test_pdb_with_an_empty_selector_selects_every_pod(fixture_repo: FixtureRepo):
    fixture_repo.replace(
        AUTOSCALING, "  selector:\n    matchLabels:\n      app.kubernetes.io/name: demo\n", "  selector: {}\n"
    )
    assert_clean(fixture_repo)


def test_network_policy_selecting_no_pod(fixture_repo: FixtureRepo):
    fixture_repo.replace(
        NETWORK_POLICY, "      app.kubernetes.io/name: demo\n", "      app.kubernetes.io/name: other\n"
    )
    expect(
        fixture_repo.validate(),
        where=NETWORK_POLICY,
        obj="NetworkPolicy demo/demo",
        field="spec.podSelector",
        message="selects no pod in namespace demo",
    )


def test_network_policy_with_an_empty_pod_selector_selects_every_pod(fixture_repo: FixtureRepo):
    fixture_repo.replace(
        NETWORK_POLICY, "  podSelector:\n    matchLabels:\n      app.kubernetes.io/name: demo\n", "  podSelector: {}\n"
    )
    assert_clean(fixture_repo)


def test_pod_using_a_missing_configmap(fixture_repo: FixtureRepo):
    fixture_repo.replace(
        DEPLOYMENT,
        "          configMap:\n            name: demo-config\n",
        "          configMap:\n            name: gone\n",
    )
    expect(
        fixture_repo.validate(),
        where=DEPLOYMENT,
        obj=DEPLOY,
        field=f"{POD}.volumes[0].configMap",
        message="ConfigMap gone is not in this tree",
    )


def test_pod_using_a_missing_configmap_through_env_from(fixture_repo: FixtureRepo):
    fixture_repo.replace(
        DEPLOYMENT,
        "            - configMapRef:\n                name: demo-config\n",
        "            - configMapRef:\n                name: gone\n",
    )
    expect(
        fixture_repo.validate(),
        where=DEPLOYMENT,
        obj=DEPLOY,
        field=f"{POD}.containers[0].envFrom[0].configMapRef",
        message="ConfigMap gone is not in this tree",
    )


def test_pod_using_a_missing_configmap_key(fixture_repo: FixtureRepo):
    fixture_repo.replace(DEPLOYMENT, "                  key: mode\n", "                  key: colour\n")
    expect(
        fixture_repo.validate(),
        where=DEPLOYMENT,
        obj=DEPLOY,
        field=f"{POD}.containers[0].env[1].valueFrom.configMapKeyRef",
        message="ConfigMap demo-config has no key colour",
    )


def test_pod_using_a_missing_secret(fixture_repo: FixtureRepo):
    fixture_repo.replace(DEPLOYMENT, "                  name: demo-credentials\n", "                  name: gone\n")
    expect(
        fixture_repo.validate(),
        where=DEPLOYMENT,
        obj=DEPLOY,
        field=f"{POD}.containers[0].env[2].valueFrom.secretKeyRef",
        message="Secret gone is not in this tree (nor produced by an ExternalSecret)",
    )


def test_secret_produced_by_an_external_secret_is_required(fixture_repo: FixtureRepo):
    """The fixture's Deployment is valid only because its ExternalSecret produces the Secret."""
    fixture_repo.edit(f"{BASE}/kustomization.yaml", lambda k: k["resources"].remove("external-secret.yaml"))
    expect(
        fixture_repo.validate(),
        where=DEPLOYMENT,
        field=f"{POD}.containers[0].env[2].valueFrom.secretKeyRef",
        message="Secret demo-credentials is not in this tree (nor produced by an ExternalSecret)",
    )


def test_secret_produced_by_an_external_secret_without_target_name(fixture_repo: FixtureRepo):
    fixture_repo.edit(EXTERNAL_SECRET, lambda e: e["spec"].pop("target"))
    assert_clean(fixture_repo)


def test_pod_using_a_key_the_external_secret_does_not_produce(fixture_repo: FixtureRepo):
    fixture_repo.replace(DEPLOYMENT, "                  key: token\n", "                  key: password\n")
    expect(
        fixture_repo.validate(),
        where=DEPLOYMENT,
        obj=DEPLOY,
        field=f"{POD}.containers[0].env[2].valueFrom.secretKeyRef",
        message="Secret demo-credentials has no key password",
    )


def test_keys_of_an_external_secret_with_data_from_are_unknown(fixture_repo: FixtureRepo):
    def edit(external: dict) -> None:
        external["spec"].pop("data")
        external["spec"]["dataFrom"] = [{"extract": {"key": "demo"}}]

    fixture_repo.edit(EXTERNAL_SECRET, edit)
    fixture_repo.replace(DEPLOYMENT, "                  key: token\n", "                  key: anything\n")
    assert_clean(fixture_repo)


def test_optional_missing_secret_is_not_an_error(fixture_repo: FixtureRepo):
    fixture_repo.replace(
        DEPLOYMENT,
        "                  name: demo-credentials\n",
        "                  name: gone\n                  optional: true\n",
    )
    assert_clean(fixture_repo)


def test_pod_using_a_missing_service_account(fixture_repo: FixtureRepo):
    fixture_repo.replace(DEPLOYMENT, "serviceAccountName: demo\n", "serviceAccountName: robot\n")
    expect(
        fixture_repo.validate(),
        where=DEPLOYMENT,
        obj=DEPLOY,
        field=f"{POD}.serviceAccountName",
        message="ServiceAccount robot is not in this tree",
    )


def test_probe_naming_a_port_its_container_lacks(fixture_repo: FixtureRepo):
    """The kubelet looks a probe's named port up in the probed container only, never in the pod's others."""
    fixture_repo.replace(
        DEPLOYMENT, "          ports:\n            - name: http\n", "          ports:\n            - name: web\n"
    )
    expect(
        fixture_repo.validate(),
        where=DEPLOYMENT,
        obj=DEPLOY,
        field=f"{POD}.containers[0].readinessProbe.httpGet.port",
        message="container web has no port named http",
    )


def test_volume_mount_naming_no_volume(fixture_repo: FixtureRepo):
    fixture_repo.replace(
        DEPLOYMENT,
        "            - name: config\n              mountPath",
        "            - name: settings\n              mountPath",
    )
    expect(
        fixture_repo.validate(),
        where=DEPLOYMENT,
        obj=DEPLOY,
        field=f"{POD}.containers[0].volumeMounts[0].name",
        message="no volume settings",
    )


def test_references_resolve_through_depends_on(fixture_repo: FixtureRepo):
    """A pod may use a Secret that a Flux Kustomization it depends on applies, and not one that it doesn't."""
    manifest = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: shared\n  namespace: demo\nstringData:\n  key: v\n"
    fixture_repo.add_resource("infrastructure/controllers", "shared.yaml", manifest)
    fixture_repo.replace(
        DEPLOYMENT,
        "                  name: demo-credentials\n                  key: token\n",
        "                  name: shared\n                  key: key\n",
    )
    assert_clean(fixture_repo)
    fixture_repo.replace(APPS, "  dependsOn:\n    - name: infra-controllers\n", "")
    expect(fixture_repo.validate(), where=DEPLOYMENT, message="Secret shared is not in this tree")


# --- Malformed input -----------------------------------------------------------------------------------


def build_failure(report: Report, tree: str) -> Problem:
    """The one problem saying that ``tree`` (a directory, or how an applied tree is named) does not build."""
    pattern = re.compile(re.escape(tree) + r":? does not build: ")
    found = [p for p in problems(report) if pattern.search(str(p))]
    assert len(found) == 1, f"{len(found)} build failures of {tree}; got:\n{render(problems(report))}"
    return found[0]


def test_malformed_yaml_in_a_resource_file(fixture_repo: FixtureRepo):
    fixture_repo.append(SERVICE, "  oops: [unclosed\n")
    problem = build_failure(fixture_repo.validate(), APPLIED)
    assert "service.yaml" in str(problem)
    assert "line 11" in problem.message


def test_malformed_kustomization_file_names_file_and_line(fixture_repo: FixtureRepo):
    relative = f"{BASE}/kustomization.yaml"
    lines = fixture_repo.read(relative).count("\n")
    fixture_repo.append(relative, "  - [\n")
    problem = expect(fixture_repo.validate(), where=relative, message="malformed YAML: line ")
    assert _line(problem.message) > lines, problem.message


@pytest.mark.parametrize("relative", [CLUSTER, SETTINGS])
def test_malformed_environment_file_names_file_and_line(fixture_repo: FixtureRepo, relative: str):
    lines = fixture_repo.read(relative).count("\n")
    fixture_repo.append(relative, "broken: [unclosed\n")
    report = fixture_repo.validate()
    problem = expect(report, where=relative, message="malformed YAML: line ")
    assert _line(problem.message) > lines, problem.message
    # One clear line: what the environment would have applied is not reported as applied by nothing.
    assert problems(report) == [problem], render(problems(report))


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("${nope}", "uses ${nope}, which the bootstrap does not provide (it provides cluster_name, "),
        ("${cluster_name^^}", "${cluster_name^^}: unsupported substitution expression"),
    ],
)
def test_cluster_config_placeholder_the_bootstrap_cannot_fill(fixture_repo: FixtureRepo, value: str, message: str):
    fixture_repo.replace(CLUSTER, "    environment: prod\n", f"    environment: prod\n    owner: {value}\n")
    report = fixture_repo.validate()
    problem = expect(report, where=CLUSTER, message=message)
    assert problems(report) == [problem], render(problems(report))


@pytest.mark.parametrize("relative", [CLUSTER, SETTINGS, f"{BASE}/kustomization.yaml"])
def test_file_that_is_not_utf8_is_a_problem_not_a_crash(fixture_repo: FixtureRepo, relative: str):
    fixture_repo.path(relative).write_bytes(fixture_repo.path(relative).read_bytes() + b"# caf\xe9\n")
    expect(fixture_repo.validate(), where=relative, message="not UTF-8 text (byte ")


def _line(message: str) -> int:
    match = re.search(r"line (\d+), column \d+: ", message)
    assert match, message
    return int(match.group(1))


@pytest.mark.parametrize(("relative", "key"), [(CLUSTER, "kind: ClusterConfig"), (SETTINGS, "tier: staging")])
def test_duplicate_key_in_an_environment_file(fixture_repo: FixtureRepo, relative: str, key: str):
    lines = fixture_repo.read(relative).count("\n")
    fixture_repo.append(relative, key + "\n")
    problem = expect(
        fixture_repo.validate(), where=relative, message=f"line {lines + 1}, column 1: found duplicate key"
    )
    assert repr(key.split(":")[0]) in problem.message


def test_duplicate_key_in_a_resource_file(fixture_repo: FixtureRepo):
    fixture_repo.replace(SERVICE, "  name: demo\n", "  name: demo\n  name: demo-again\n")
    problem = build_failure(fixture_repo.validate(), APPLIED)
    assert 'mapping key "name" already defined' in problem.message


def test_kustomize_build_failure_is_one_line_without_paths_outside_the_repository(fixture_repo: FixtureRepo):
    fixture_repo.edit(f"{BASE}/kustomization.yaml", lambda k: k["resources"].append("missing.yaml"))
    report = fixture_repo.validate()
    problem = build_failure(report, APPLIED)
    assert "apps/demo/base/missing.yaml" in str(problem)
    assert "\n" not in str(problem)
    assert str(fixture_repo.root) not in str(problem)
    assert "/tmp/" not in str(problem)
    assert "misp-eks-validate-" not in str(problem)  # the build's scratch directory
    assert "../" not in str(problem)  # nor a path relative to the scratch directory
    assert fixture_repo.root.parent.name not in str(problem)
    # The base, validated on its own, fails the same way under its own name.
    assert "missing.yaml" in str(build_failure(report, BASE))


def test_kustomize_error_names_the_file_it_comes_from(fixture_repo: FixtureRepo):
    fixture_repo.add_resource(BASE, "again.yaml", fixture_repo.read(SERVICE))
    problem = build_failure(fixture_repo.validate(), APPLIED)
    assert problem.where == f"{BASE}/again.yaml"
    assert problem.message.startswith(f"{APPLIED} does not build: may not add resource with an already registered id")
    assert "../" not in problem.message and "misp-eks-validate-" not in problem.message, problem.message


def test_kustomize_error_without_a_file_names_the_tree_once(fixture_repo: FixtureRepo):
    patch = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: nope\n  namespace: demo\n"
    fixture_repo.write("apps/demo/prod/patch.yaml", patch)
    fixture_repo.append("apps/demo/prod/kustomization.yaml", "patches:\n  - path: patch.yaml\n")
    problem = build_failure(fixture_repo.validate(), APPLIED)
    assert problem.where == APPLIED
    assert problem.message.startswith('does not build: no resource matches strategic merge patch "Deployment'), (
        problem.message
    )
    assert "../" not in problem.message and "misp-eks-validate-" not in problem.message, problem.message


# --- Crashes on bad input: validate_repository must report, never raise ----------------------------------


@pytest.mark.parametrize(
    ("relative", "old", "new", "obj", "field"),
    [
        (
            SERVICE,
            "  selector:\n    app.kubernetes.io/name: demo\n",
            "  selector: [demo]\n",
            "Service demo/demo",
            "spec.selector",
        ),
        (
            AUTOSCALING,
            "  selector:\n    matchLabels:\n      app.kubernetes.io/name: demo\n",
            "  selector: demo\n",
            "PodDisruptionBudget demo/demo",
            "spec.selector",
        ),
        (
            RELEASE,
            "  chart:\n    spec:\n      chart: podinfo\n      version: 6.7.1\n"
            "      sourceRef:\n        kind: HelmRepository\n        name: podinfo\n",
            "  chart: podinfo\n",
            HELMRELEASE,
            "spec.chart",
        ),
        (
            APPS,
            "  sourceRef:\n    kind: GitRepository\n    name: flux-system\n",
            "  sourceRef: flux-system\n",
            FLUX_APP,
            "spec.sourceRef",
        ),
        (APPS, "  prune: true\n", "  prune: true\n  components: [1]\n", FLUX_APP, "spec.components[0]"),
        (
            EXTERNAL_SECRET,
            "  target:\n    name: demo-credentials\n",
            "  target: demo-credentials\n",
            "ExternalSecret demo/demo-credentials",
            "spec.target",
        ),
    ],
    ids=["service-selector", "pdb-selector", "helmrelease-chart", "kustomization-source", "components", "es-target"],
)
def test_malformed_field_is_a_schema_problem_not_a_crash(
    fixture_repo: FixtureRepo, relative: str, old: str, new: str, obj: str | None, field: str | None
):
    """Only what the schemas accepted is followed or cross-checked; the rest is reported once, by them."""
    fixture_repo.replace(relative, old, new)
    expect(fixture_repo.validate(), where=relative, obj=obj, field=field)


def test_unsupported_kubernetes_version_is_a_problem_not_a_crash(fixture_repo: FixtureRepo):
    fixture_repo.replace(CLUSTER, 'version: "1.35"', 'version: "1.99"')
    expect(fixture_repo.validate(), where=CLUSTER, field="metadata.version", message="1.99")


def test_helmrelease_depends_on_a_string_is_a_problem_not_a_crash(fixture_repo: FixtureRepo):
    fixture_repo.replace(RELEASE, "  releaseName: podinfo\n", "  releaseName: podinfo\n  dependsOn: [other]\n")
    expect(fixture_repo.validate(), where=RELEASE, obj=HELMRELEASE, field="spec.dependsOn[0]")


def test_service_port_that_is_not_a_mapping_is_a_problem_not_a_crash(fixture_repo: FixtureRepo):
    fixture_repo.replace(SERVICE, "  ports:\n", "  ports:\n    - 80\n")
    expect(fixture_repo.validate(), where=SERVICE, obj="Service demo/demo", field="spec.ports[0]")


def test_post_build_substitute_that_is_not_a_mapping_is_a_problem_not_a_crash(fixture_repo: FixtureRepo):
    fixture_repo.replace(APPS, "  postBuild:\n", "  postBuild:\n    substitute: [greeting]\n")
    expect(fixture_repo.validate(), where=APPS, obj=FLUX_APP, field="spec.postBuild.substitute")


def test_substitute_from_secret_with_invalid_base64_is_a_problem_not_a_crash(fixture_repo: FixtureRepo):
    manifest = (
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: extra\n  namespace: flux-system\ndata:\n  a: '!!notbase64'\n"
    )
    fixture_repo.add_resource(f"clusters/{ENV}", "extra.yaml", manifest)
    fixture_repo.replace(
        APPS, "        name: cluster-vars\n", "        name: cluster-vars\n      - kind: Secret\n        name: extra\n"
    )
    expect(
        fixture_repo.validate(),
        where=f"clusters/{ENV}/extra.yaml",
        obj="Secret flux-system/extra",
        field="data",
        message="data is not valid base64 text",
    )


def test_substitute_from_secret_reads_string_data(fixture_repo: FixtureRepo):
    manifest = (
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: extra\n  namespace: flux-system\n"
        "stringData:\n  greeting: hi\n"
    )
    fixture_repo.add_resource(f"clusters/{ENV}", "extra.yaml", manifest)
    fixture_repo.replace(
        APPS, "        name: cluster-vars\n", "        name: cluster-vars\n      - kind: Secret\n        name: extra\n"
    )
    fixture_repo.append(CONFIG, "  greeting: ${greeting}\n")
    report = fixture_repo.validate()
    assert not report.all_problems(), render(problems(report))
    assert report.applied(ENV, "demo").one("ConfigMap", "demo-config").obj["data"]["greeting"] == "hi"


def test_variable_name_flux_refuses(fixture_repo: FixtureRepo):
    fixture_repo.replace(APPS, "  postBuild:\n", "  postBuild:\n    substitute:\n      my-var: x\n")
    expect(
        fixture_repo.validate(),
        where=APPS,
        obj=FLUX_APP,
        field="spec.postBuild.substitute.my-var",
        message="variable name my-var is invalid",
    )


# --- The eksctl ClusterConfig --------------------------------------------------------------------------


def test_cluster_config_unknown_field(fixture_repo: FixtureRepo):
    fixture_repo.replace(
        CLUSTER, "    privateNetworking: true\n  - name: general-b", "    privateNetworkng: true\n  - name: general-b"
    )
    expect(
        fixture_repo.validate(),
        where=CLUSTER,
        obj="ClusterConfig",
        field="managedNodeGroups[0].privateNetworkng",
        message="unknown field",
    )


def test_cluster_config_wrong_enum(fixture_repo: FixtureRepo):
    fixture_repo.replace(CLUSTER, "gateway: HighlyAvailable", "gateway: Sometimes")
    expect(fixture_repo.validate(), where=CLUSTER, obj="ClusterConfig", field="vpc.nat.gateway", message="Single")


def test_cluster_config_zone_outside_the_region(fixture_repo: FixtureRepo):
    fixture_repo.replace(CLUSTER, "eu-west-1b, eu-west-1c]", "eu-west-1b, us-east-1c]")
    fixture_repo.replace(CLUSTER, "availabilityZones: [eu-west-1c]", "availabilityZones: [us-east-1c]")
    expect(
        fixture_repo.validate(),
        where=CLUSTER,
        obj="ClusterConfig",
        field="availabilityZones",
        message="us-east-1c is not a zone of eu-west-1",
    )


def test_cluster_config_nodegroup_zone_outside_availability_zones(fixture_repo: FixtureRepo):
    fixture_repo.replace(CLUSTER, "availabilityZones: [eu-west-1a]", "availabilityZones: [eu-west-1d]")
    problem = expect(
        fixture_repo.validate(), where=CLUSTER, obj="ClusterConfig", message="are not in availabilityZones"
    )
    assert "general-a" in problem.message
    assert "eu-west-1d" in problem.message
    assert problem.field.startswith("managedNodeGroups[0]"), str(problem)


def test_cluster_config_unknown_placeholder(fixture_repo: FixtureRepo):
    fixture_repo.replace(CLUSTER, "roleName: ${cluster_name}-demo", "roleName: ${whatever}-demo")
    problem = expect(fixture_repo.validate(), where=CLUSTER, message="uses ${whatever}, which the bootstrap does not")
    assert "aws_account_id" in problem.message  # says what it may use


def test_cluster_config_known_placeholders_are_rendered_with_examples(fixture_repo: FixtureRepo):
    report = fixture_repo.validate()
    cluster = report.environments[ENV].cluster
    statement = cluster.iam.podIdentityAssociations[0].permissionPolicy.Statement[0]
    assert statement.resources() == ["arn:aws:secretsmanager:eu-west-1:111122223333:secret:misp-prod/*"]
    assert cluster.iam.podIdentityAssociations[0].roleName == "demo-prod-demo"


# --- The settings file -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("old", "new", "field", "message"),
    [
        ("alarm_email: secops@example.org", "alarm_email: a@example.org\nalarm_sms: x", "alarm_sms", "unknown field"),
        ("  nodes: 2\n  dashboard:", "  nodez: 2\n  dashboard:", "caches.misp.nodez", "unknown field"),
        ("allocated_storage_gib: 100", "allocated_storage_gib: lots", "database.allocated_storage_gib", "integer"),
        ("misp: misp.example.org", "misp: misp.example.com", "hostnames.misp", "is not inside the domain example.org"),
        ("backup_retention_days: 30", "backup_retention_days: 3", "database.backup_retention_days", "at least 7 days"),
        ("allowed_cidrs: [0.0.0.0/0]", "allowed_cidrs: [10.0.0.0/33]", "ingress.allowed_cidrs", "is not a CIDR"),
        ("allowed_cidrs: [0.0.0.0/0]", "allowed_cidrs: [10.0.0.1/8]", "ingress.allowed_cidrs", "is not a CIDR"),
        ("tier: production", "tier: live", "tier", "'production' or 'staging'"),
    ],
    ids=["unknown-key", "nested-unknown-key", "wrong-type", "hostname", "backups", "cidr", "cidr-host-bits", "tier"],
)
def test_settings_rules(fixture_repo: FixtureRepo, old: str, new: str, field: str, message: str):
    fixture_repo.replace(SETTINGS, old, new)
    expect(fixture_repo.validate(), where=SETTINGS, obj="settings", field=field, message=message)


def test_settings_short_backups_are_fine_for_staging(fixture_repo: FixtureRepo):
    fixture_repo.replace(SETTINGS, "tier: production", "tier: staging")
    fixture_repo.replace(SETTINGS, "backup_retention_days: 30", "backup_retention_days: 3")
    assert_clean(fixture_repo)
