"""Each platform rule catches its violation (clusters/*/cluster.yaml, Flux entry points, controllers)."""

from __future__ import annotations

import shutil

import pytest

from misp_eks.policies import platform
from misp_eks.validate.resources import Resource
from tests.policies.conftest import assert_finds, cluster, obj


def _association(data, service_account):
    return next(a for a in data["iam"]["podIdentityAssociations"] if a["serviceAccountName"] == service_account)


def _statements(data, service_account):
    return _association(data, service_account)["permissionPolicy"]["Statement"]


def _allow(action, resource):
    return {"Effect": "Allow", "Action": action, "Resource": resource}


@pytest.mark.parametrize(
    ("change", "fragments"),
    [
        (
            lambda d: d.update(
                availabilityZones=d["availabilityZones"][:2], managedNodeGroups=d["managedNodeGroups"][:2]
            ),
            ("availabilityZones", "3 distinct zones"),
        ),
        (lambda d: d["managedNodeGroups"][0].update(privateNetworking=False), ("privateNetworking",)),
        (lambda d: d["managedNodeGroups"][1].update(volumeEncrypted=False), ("managedNodeGroups[1].volumeEncrypted",)),
        (lambda d: d["managedNodeGroups"][2].update(disablePodIMDS=False), ("disablePodIMDS",)),
        (lambda d: d["managedNodeGroups"][0].update(disableIMDSv1=False), ("disableIMDSv1", "IMDSv2")),
        (lambda d: d["vpc"]["nat"].update(gateway="Single"), ("vpc.nat.gateway", "HighlyAvailable")),
        (lambda d: d.update(managedNodeGroups=d["managedNodeGroups"][:2]), ("managedNodeGroups", "no node group in")),
    ],
)
def test_high_availability(report, change, fragments):
    cluster(report, "prod", change)
    assert_finds(platform.cluster_high_availability(report), "clusters/prod/cluster.yaml", *fragments)


def test_staging_needs_ha_nat_too(report):
    cluster(report, "staging", lambda d: d["vpc"]["nat"].update(gateway="Single"))
    assert_finds(platform.cluster_high_availability(report), "clusters/staging/cluster.yaml", "vpc.nat.gateway")


@pytest.mark.parametrize(
    ("change", "fragments"),
    [
        (lambda d: d["iam"].update(withOIDC=True), ("iam.withOIDC",)),
        (lambda d: d.update(addons=[a for a in d["addons"] if a["name"] != "eks-pod-identity-agent"]), ("agent",)),
        (
            lambda d: d["iam"].update(
                podIdentityAssociations=[
                    a for a in d["iam"]["podIdentityAssociations"] if a["serviceAccountName"] != "external-dns"
                ]
            ),
            ("no association", "kube-system/external-dns"),
        ),
        (
            lambda d: _association(d, "external-dns")["permissionPolicy"]["Statement"][0].update(
                Resource="arn:aws:route53:::hostedzone/*"
            ),
            ("Statement[0].Resource", "route53:ChangeResourceRecordSets only on arn:aws:route53:::hostedzone/Z"),
        ),
        (
            lambda d: _statements(d, "external-dns").append(_allow("route53:*", "*")),
            ("Statement[2].Action", "kube-system/external-dns may not have route53:*"),
        ),
        (
            lambda d: _association(d, "external-dns").update(wellKnownPolicies={"externalDNS": True}),
            ("only the inline permissionPolicy",),
        ),
        (
            lambda d: _statements(d, "external-secrets")[0]["Action"].append("secretsmanager:PutSecretValue"),
            ("may not have secretsmanager:PutSecretValue",),
        ),
        (
            lambda d: _statements(d, "external-secrets")[0].update(Resource="*"),
            ("secretsmanager:GetSecretValue only on arn:aws:secretsmanager:eu-west-1:",),
        ),
        (
            lambda d: _statements(d, "cluster-autoscaler")[1].pop("Condition"),
            ("Statement[1].Condition", "this cluster's groups"),
        ),
        (
            lambda d: _statements(d, "cluster-autoscaler")[1]["Condition"]["StringEquals"].update(
                {"autoscaling:ResourceTag/k8s.io/cluster-autoscaler/misp-prod": "shared"}
            ),
            ("Statement[1].Condition", "tag: owned"),
        ),
        (
            lambda d: _statements(d, "cluster-autoscaler").append(_allow("autoscaling:*", "*")),
            ("may not have autoscaling:*",),
        ),
        (
            lambda d: _statements(d, "misp")[0].update(Resource="arn:aws:s3:::*"),
            ("s3:GetObject only on arn:aws:s3:::",),
        ),
        (
            lambda d: _statements(d, "misp")[0].update(Action="s3:*"),
            ("misp/misp may not have s3:*",),
        ),
        (
            # Another bucket whose name merely starts with this one's.
            lambda d: _statements(d, "misp")[1].update(Resource=_statements(d, "misp")[1]["Resource"] + "-other"),
            ("s3:ListBucket only on",),
        ),
        (
            lambda d: _association(d, "aws-load-balancer-controller").update(wellKnownPolicies={"externalDNS": True}),
            ("maintained policy",),
        ),
    ],
)
def test_identity_model(report, change, fragments):
    cluster(report, "prod", change)
    assert_finds(platform.identity_model(report), "clusters/prod/cluster.yaml", *fragments)


def test_chart_service_account_must_match_association(report):
    obj(report, "prod", "infra-controllers", "HelmRelease", "external-dns")["spec"]["values"]["serviceAccount"][
        "name"
    ] = "dns"
    assert_finds(platform.identity_model(report), "HelmRelease flux-system/external-dns", "serviceAccount.name")


@pytest.mark.parametrize(
    ("change", "fragments"),
    [
        (lambda d: d.update(addons=[a for a in d["addons"] if a["name"] != "coredns"]), ("coredns",)),
        (lambda d: d["addons"][0].pop("configurationValues"), ("enableNetworkPolicy",)),
        (lambda d: d["cloudWatch"]["clusterLogging"].update(enableTypes=["api"]), ("enableTypes",)),
        (lambda d: d["cloudWatch"]["clusterLogging"].pop("logRetentionInDays"), ("logRetentionInDays",)),
        (lambda d: d.pop("secretsEncryption"), ("secretsEncryption",)),
        (lambda d: d["metadata"].update(version="1.33"), ("metadata.version", "standard support")),
        (lambda d: d["metadata"].update(tags={}), ("metadata.tags",)),
    ],
)
def test_cluster_settings(report, change, fragments):
    cluster(report, "prod", change)
    assert_finds(platform.cluster_settings(report), "clusters/prod/cluster.yaml", *fragments)


def test_staging_keeps_the_shape_of_prod(report):
    cluster(report, "staging", lambda d: d.update(addons=d["addons"][:3]))
    assert_finds(platform.same_shape(report), "clusters/staging/cluster.yaml", "add-ons", "differs from prod")


def _kustomization(report, env, name):
    return next(k for k in report.kustomizations[env] if k.name == name)


@pytest.mark.parametrize(
    ("name", "change", "fragments"),
    [
        ("infra-configs", lambda s: s.pop("dependsOn"), ("spec.dependsOn", "infra-controllers")),
        ("misp-web", lambda s: s.update(wait=False), ("spec.wait", "must be true")),
        ("misp-web", lambda s: s.update(prune=False), ("spec.prune",)),
        ("infra-controllers", lambda s: s.pop("retryInterval"), ("spec.retryInterval",)),
        ("misp-dashboard", lambda s: s.pop("timeout"), ("spec.timeout",)),
        ("infra-configs", lambda s: s.pop("postBuild"), ("cluster-vars",)),
        ("misp-database", lambda s: s.update(dependsOn=[]), ("apps depend on the infrastructure",)),
    ],
)
def test_flux_entry_points(report, name, change, fragments):
    change(_kustomization(report, "prod", name).spec)
    assert_finds(platform.flux_entry_points(report), "clusters/prod", *fragments)


def test_flux_entry_point_must_apply_its_own_environment(report):
    item = _kustomization(report, "prod", "misp-web")
    report.kustomizations["prod"] = [
        k if k is not item else type(k)(k.env, k.name, k.namespace, "apps/misp/staging/web", k.origin, k.spec)
        for k in report.kustomizations["prod"]
    ]
    assert_finds(platform.flux_entry_points(report), "spec.path", "overlay of prod")


@pytest.mark.parametrize(
    ("change", "fragments"),
    [
        (lambda s: s.pop("driftDetection"), ("spec.driftDetection.mode",)),
        (lambda s: s["install"].pop("strategy"), ("spec.install.strategy.name", "RetryOnFailure")),
        (lambda s: s["upgrade"].update(crds="Skip"), ("spec.upgrade.crds", "CreateReplace")),
    ],
)
def test_helm_release_policy(report, change, fragments):
    change(obj(report, "prod", "infra-controllers", "HelmRelease", "metrics-server")["spec"])
    assert_finds(platform.helm_releases(report), "HelmRelease flux-system/metrics-server", *fragments)


def test_every_controller_is_installed(report):
    tree = report.applied("prod", "infra-controllers")
    tree.resources = [r for r in tree.resources if r.name != "cluster-autoscaler"]
    assert_finds(platform.helm_releases(report), "no HelmRelease cluster-autoscaler")


def test_releases_link_their_default_values(report, tmp_path):
    shutil.copytree(report.root / "infrastructure", tmp_path / "infrastructure")
    source = tmp_path / "infrastructure/controllers/base/metrics-server.yaml"
    source.write_text(source.read_text().replace("values.yaml", "values"))
    report.root = tmp_path
    assert_finds(platform.helm_releases(report), "HelmRelease flux-system/metrics-server", "default values.yaml")


def test_the_values_link_follows_the_chart_version(report):
    obj(report, "prod", "infra-controllers", "HelmRelease", "metrics-server")["spec"]["chart"]["spec"]["version"] = (
        "9.9.9"
    )
    assert_finds(platform.helm_releases(report), "HelmRelease flux-system/metrics-server", "values.yaml of chart 9.9.9")


@pytest.mark.parametrize(
    ("release", "change", "fragments"),
    [
        ("aws-load-balancer-controller", lambda v: v.update(replicaCount=1), ("two replicas",)),
        ("aws-load-balancer-controller", lambda v: v.update(clusterName="other"), ("clusterName", "cluster-vars")),
        ("aws-load-balancer-controller", lambda v: v.pop("topologySpreadConstraints"), ("over zones",)),
        ("external-dns", lambda v: v.update(policy="sync"), ("spec.values.policy", "upsert-only")),
        ("external-dns", lambda v: v.pop("policy"), ("spec.values.policy", "explicit")),
        ("external-dns", lambda v: v.update(txtOwnerId="x"), ("txtOwnerId",)),
        ("external-dns", lambda v: v.update(region="eu-west-1"), ("spec.values.region", "ignores")),
        ("external-dns", lambda v: v.update(env=[]), ("AWS_DEFAULT_REGION",)),
        ("external-dns", lambda v: v.update(domainFilters=["example.com"]), ("domainFilters",)),
        ("external-dns", lambda v: v.update(extraArgs=[]), ("--zone-id-filter",)),
        ("cluster-autoscaler", lambda v: v["image"].update(tag="v1.33.6"), ("image.tag", "1.35")),
        ("cluster-autoscaler", lambda v: v["autoDiscovery"].update(clusterName="x"), ("autoDiscovery.clusterName",)),
        ("metrics-server", lambda v: v.update(replicas=1), ("two replicas",)),
        ("cluster-autoscaler", lambda v: v["extraArgs"].pop("balancing-ignore-label_1"), ("launch-template",)),
        ("cluster-autoscaler", lambda v: v["extraArgs"].pop("balance-similar-node-groups"), ("balance",)),
    ],
)
def test_controller_values(report, release, change, fragments):
    change(obj(report, "prod", "infra-controllers", "HelmRelease", release)["spec"]["values"])
    assert_finds(platform.controller_values(report), f"HelmRelease flux-system/{release}", *fragments)


def test_staging_may_sync_dns_records(base_report):
    staging = base_report.applied("staging", "infra-controllers").one("HelmRelease", "external-dns")
    assert staging.spec["values"]["policy"] == "sync"
    assert not list(platform.controller_values(base_report))


def test_namespace_pod_security(report):
    obj(report, "prod", "infra-configs", "Namespace", "misp-dashboard")["metadata"]["labels"][
        "pod-security.kubernetes.io/enforce"
    ] = "baseline"
    assert_finds(platform.namespaces_and_network(report), "Namespace misp-dashboard", "restricted")


def test_namespace_default_deny(report):
    tree = report.applied("prod", "infra-configs")
    tree.resources = [r for r in tree.resources if not (r.name == "default-deny" and r.namespace == "misp")]
    assert_finds(platform.namespaces_and_network(report), "Namespace misp", "default-deny")


def test_secret_store_scope(report):
    obj(report, "prod", "infra-configs", "ClusterSecretStore", "aws-secrets-manager")["spec"]["conditions"] = [
        {"namespaces": ["misp", "kube-system"]}
    ]
    assert_finds(platform.namespaces_and_network(report), "ClusterSecretStore aws-secrets-manager", "spec.conditions")


@pytest.mark.parametrize("change", [{"service": "ParameterStore"}, {"region": "us-east-1"}])
def test_secret_store_reads_this_regions_secrets_manager(report, change):
    obj(report, "prod", "infra-configs", "ClusterSecretStore", "aws-secrets-manager")["spec"]["provider"]["aws"].update(
        change
    )
    assert_finds(platform.namespaces_and_network(report), "ClusterSecretStore aws-secrets-manager", "region")


# MISP's shared files: the EFS CSI add-on without any identity, and the static volume misp-files.


def _efs_addon(data):
    return next(a for a in data["addons"] if a["name"] == "aws-efs-csi-driver")


CONTROLLER = {
    "serviceAccountName": "efs-csi-controller-sa",
    "permissionPolicyARNs": ["arn:aws:iam::aws:policy/service-role/AmazonEFSCSIDriverPolicy"],
}


def test_the_efs_csi_driver_has_no_identity(report):
    for env in ("prod", "staging"):
        addon = report.environments[env].cluster.addon("aws-efs-csi-driver")
        assert addon is not None and not addon.podIdentityAssociations
    assert [str(item) for item in platform.identity_model(report) if "aws-efs-csi-driver" in str(item)] == []


@pytest.mark.parametrize(
    ("change", "fragments"),
    [
        (
            lambda d: _efs_addon(d).update(podIdentityAssociations=[CONTROLLER]),
            ("podIdentityAssociations[0]", "efs-csi-controller-sa needs no AWS access"),
        ),
        (
            lambda d: _efs_addon(d).update(
                podIdentityAssociations=[{**CONTROLLER, "serviceAccountName": "efs-csi-node-sa"}]
            ),
            ("podIdentityAssociations[0]", "efs-csi-node-sa needs no AWS access"),
        ),
        (
            lambda d: _efs_addon(d).update(useDefaultPodIdentityAssociations=True),
            ("useDefaultPodIdentityAssociations", "needs no AWS access"),
        ),
    ],
)
def test_efs_csi_driver_identity(report, change, fragments):
    cluster(report, "prod", change)
    assert_finds(platform.identity_model(report), "clusters/prod/cluster.yaml", "aws-efs-csi-driver", *fragments)


def test_efs_csi_driver_is_required(report):
    cluster(report, "prod", lambda d: d.update(addons=[a for a in d["addons"] if a["name"] != "aws-efs-csi-driver"]))
    assert_finds(platform.cluster_settings(report), "clusters/prod/cluster.yaml", "needs the aws-efs-csi-driver")


def test_staging_keeps_the_add_on_identities_of_prod(report):
    cluster(report, "staging", lambda d: _efs_addon(d).update(podIdentityAssociations=[CONTROLLER]))
    assert_finds(platform.same_shape(report), "clusters/staging/cluster.yaml", "add-on identities")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda a: a.update(useDefaultPodIdentityAssociations=True), "not both"),
        # eksctl validateAddonPodIdentityAssociations refuses both on an add-on's association.
        (lambda a: a["podIdentityAssociations"][0].update(wellKnownPolicies={"efsCSIController": True}), "wellKnown"),
        (lambda a: a["podIdentityAssociations"][0].update(tags={"team": "misp"}), "tags"),
        (lambda a: a["podIdentityAssociations"][0].pop("permissionPolicyARNs"), "needs permissionPolicy"),
    ],
)
def test_the_eksctl_model_refuses_what_eksctl_refuses_on_add_on_associations(report, change, message):
    from pydantic import ValidationError

    def declare_then_change(data):
        _efs_addon(data)["podIdentityAssociations"] = [dict(CONTROLLER)]
        change(_efs_addon(data))

    with pytest.raises(ValidationError, match=message):
        cluster(report, "prod", declare_then_change)


def _files_volume(report, env="prod"):
    return obj(report, env, "infra-configs", "PersistentVolume", "misp-files")


def test_the_files_volume_is_the_bootstraps_access_point_for_misps_claim_only(report):
    volume = _files_volume(report)
    assert volume["spec"]["csi"] == {
        "driver": "efs.csi.aws.com",
        "volumeHandle": "efs:fs-0example00000000::fsap-0example000000000",  # cluster-vars' examples
    }
    assert volume["spec"]["claimRef"] == {"namespace": "misp", "name": "misp-files"}
    assert volume["spec"]["persistentVolumeReclaimPolicy"] == "Retain"
    claim = obj(report, "prod", "misp-backend", "PersistentVolumeClaim", "misp-files")
    assert claim["spec"]["volumeName"] == "misp-files"
    assert claim["spec"]["storageClassName"] == volume["spec"]["storageClassName"]
    assert list(platform.shared_files_storage(report)) == []


@pytest.mark.parametrize(
    ("change", "fragments"),
    [
        (
            lambda v: v["spec"]["csi"].update(volumeHandle="efs:fs-0123456789abcdef0::fsap-0example000000000"),
            ("spec.csi.volumeHandle", "${efs_file_system_id}", "cluster-vars"),
        ),
        (
            lambda v: v["spec"]["csi"].update(volumeHandle="efs:fs-0example00000000"),  # the root, no access point
            ("spec.csi.volumeHandle", "${efs_access_point_id}"),
        ),
        (lambda v: v["spec"]["csi"].update(driver="ebs.csi.aws.com"), ("spec.csi.driver", "efs.csi.aws.com")),
        (
            lambda v: v["spec"]["csi"].update(volumeAttributes={"encryptInTransit": "false"}),
            ("encryptInTransit", "TLS"),
        ),
        (
            lambda v: v["spec"].update(persistentVolumeReclaimPolicy="Delete"),
            ("persistentVolumeReclaimPolicy", "Retain"),
        ),
        (lambda v: v["spec"].update(accessModes=["ReadWriteOnce"]), ("spec.accessModes", "ReadWriteMany")),
        (lambda v: v["spec"].pop("claimRef"), ("spec.claimRef", "misp/misp-files")),
        (lambda v: v["spec"]["claimRef"].update(namespace="misp-dashboard"), ("spec.claimRef", "misp/misp-files")),
        (lambda v: v["spec"].update(storageClassName="gp3"), ("spec.storageClassName", "efs")),
    ],
)
def test_shared_files_volume(report, change, fragments):
    change(_files_volume(report))
    assert_finds(platform.shared_files_storage(report), "PersistentVolume misp-files", *fragments)


def test_the_claim_binds_only_the_files_volume(report):
    obj(report, "prod", "misp-backend", "PersistentVolumeClaim", "misp-files")["spec"].pop("volumeName")
    assert_finds(platform.shared_files_storage(report), "PersistentVolumeClaim misp/misp-files", "spec.volumeName")


def test_no_storage_class_provisions_efs_volumes(report):
    tree = report.applied("prod", "infra-configs")
    volume = tree.one("PersistentVolume", "misp-files")
    dynamic = {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": "efs"}}
    tree.resources.append(Resource(obj={**dynamic, "provisioner": "efs.csi.aws.com"}, origin=volume.origin))
    assert_finds(platform.shared_files_storage(report), "StorageClass efs", "no dynamic EFS volumes")


def test_shared_files_volume_is_required(report):
    tree = report.applied("staging", "infra-configs")
    tree.resources = [r for r in tree.resources if r.kind != "PersistentVolume"]
    assert_finds(platform.shared_files_storage(report), "clusters/staging", "no PersistentVolume misp-files")
