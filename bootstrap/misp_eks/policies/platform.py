"""The platform every environment promises: a multi-AZ cluster, one identity model, the controllers."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

from misp_eks.eksctl import ClusterConfig, PodIdentityAssociation
from misp_eks.environment import CLUSTER_FILE, CLUSTERS_DIR, Environment, availability_problems
from misp_eks.naming import DASHBOARD_NAMESPACE, MISP_NAMESPACE
from misp_eks.policies.common import EXAMPLE, applied, dig, environments, everything, helm_values, problem
from misp_eks.problems import Problem
from misp_eks.validate.flux import dependencies, is_cluster_vars
from misp_eks.validate.resources import Resource
from misp_eks.validate.runner import Report

# Amazon EKS Kubernetes version calendar (docs.aws.amazon.com/eks/latest/userguide/kubernetes-versions.html):
# the versions in standard support from December 2026 (1.34's ended on 2026-12-02).
EKS_STANDARD_SUPPORT = ("1.35", "1.36")
EFS_CSI_DRIVER = "aws-efs-csi-driver"
REQUIRED_ADDONS = ("vpc-cni", "coredns", "kube-proxy", "eks-pod-identity-agent", EFS_CSI_DRIVER)
REQUIRED_LOG_TYPES = ("api", "audit", "authenticator")

# Every workload that calls AWS, with the HelmRelease that runs it (None: an application) and where
# that chart takes its service account's name.
IDENTITIES: dict[tuple[str, str], tuple[str | None, tuple[str, ...]]] = {
    ("kube-system", "aws-load-balancer-controller"): ("aws-load-balancer-controller", ("serviceAccount", "name")),
    ("kube-system", "external-dns"): ("external-dns", ("serviceAccount", "name")),
    ("external-secrets", "external-secrets"): ("external-secrets", ("serviceAccount", "name")),
    ("kube-system", "cluster-autoscaler"): ("cluster-autoscaler", ("rbac", "serviceAccount", "name")),
    (MISP_NAMESPACE, "misp"): (None, ()),
}
# Add-ons whose associations cluster.yaml declares: per service account, the only managed policies it
# may have. The EFS CSI driver has none: MISP's volume is static, so its controller never calls AWS,
# and its nodes mount without IAM (kubernetes-sigs/aws-efs-csi-driver v3.4.1 pkg/driver/controller.go,
# pkg/driver/node.go, docs/parameters.md).
ADDON_IDENTITIES: dict[str, dict[str, frozenset[str]]] = {EFS_CSI_DRIVER: {}}
READ_ONLY_SECRETS_ACTIONS = frozenset(
    {
        "secretsmanager:GetSecretValue",
        "secretsmanager:DescribeSecret",
        "secretsmanager:ListSecretVersionIds",
        "secretsmanager:GetResourcePolicy",
    }
)


def _cluster_problem(env: Environment, field: str, message: str) -> Problem:
    return Problem(f"{CLUSTERS_DIR}/{env.name}/{CLUSTER_FILE}", message, obj="ClusterConfig", field=field)


def cluster_high_availability(report: Report) -> Iterator[Problem]:
    """Three zones, a NAT gateway per zone, private encrypted IMDSv2-only nodes in every zone."""
    for env in environments(report):
        yield from availability_problems(env)
        cluster = env.cluster
        if env.settings.tier != "production" and cluster.vpc.nat.gateway != "HighlyAvailable":  # production: above
            yield _cluster_problem(env, "vpc.nat.gateway", "needs HighlyAvailable: one NAT gateway per zone")
        covered = {zone for group in cluster.managedNodeGroups for zone in group.availabilityZones}
        if missing := sorted(set(cluster.availabilityZones) - covered):
            yield _cluster_problem(env, "managedNodeGroups", f"no node group in {', '.join(missing)}")
        for index, group in enumerate(cluster.managedNodeGroups):
            field = f"managedNodeGroups[{index}]"
            if group.volumeEncrypted is not True:
                yield _cluster_problem(env, f"{field}.volumeEncrypted", "node volumes must be encrypted")
            if group.disableIMDSv1 is False:
                yield _cluster_problem(env, f"{field}.disableIMDSv1", "nodes must require IMDSv2")
            if group.disablePodIMDS is not True:
                yield _cluster_problem(env, f"{field}.disablePodIMDS", "pods must not reach the node's metadata")


SCALING_ACTIONS = frozenset({"autoscaling:SetDesiredCapacity", "autoscaling:TerminateInstanceInAutoScalingGroup"})


def _allowed(env: Environment) -> dict[tuple[str, str], dict[str, frozenset[str]]]:
    """Per service account: every action its role may have, and on which resources (least privilege)."""
    zone = f"arn:aws:route53:::hostedzone/{EXAMPLE.hosted_zone_id}"
    secrets = f"arn:aws:secretsmanager:{env.region}:{EXAMPLE.aws_account_id}:secret:{EXAMPLE.secrets_prefix}/*"
    bucket = f"arn:aws:s3:::{EXAMPLE.attachments_bucket}"
    autoscaler_reads = (
        *("autoscaling:DescribeAutoScalingGroups", "autoscaling:DescribeAutoScalingInstances"),
        *("autoscaling:DescribeLaunchConfigurations", "autoscaling:DescribeScalingActivities"),
        *("ec2:DescribeImages", "ec2:DescribeInstanceTypes", "ec2:DescribeLaunchTemplateVersions"),
        *("ec2:GetInstanceTypesFromInstanceRequirements", "eks:DescribeNodegroup"),
    )
    return {
        ("kube-system", "external-dns"): {
            **dict.fromkeys(
                ("route53:ChangeResourceRecordSets", "route53:ListResourceRecordSets", "route53:ListTagsForResources"),
                frozenset({zone}),
            ),
            "route53:ListHostedZones": frozenset({"*"}),
        },
        ("external-secrets", "external-secrets"): dict.fromkeys(READ_ONLY_SECRETS_ACTIONS, frozenset({secrets})),
        # The scaling actions take "*" but only with the condition checked below.
        ("kube-system", "cluster-autoscaler"): dict.fromkeys((*autoscaler_reads, *SCALING_ACTIONS), frozenset({"*"})),
        (MISP_NAMESPACE, "misp"): {
            **dict.fromkeys(("s3:GetObject", "s3:PutObject", "s3:DeleteObject"), frozenset({f"{bucket}/*"})),
            "s3:ListBucket": frozenset({bucket}),
        },
    }


def _association_problems(env: Environment, index: int, item: PodIdentityAssociation) -> Iterator[Problem]:
    field = f"iam.podIdentityAssociations[{index}]"
    key = (item.namespace, item.serviceAccountName)
    if key == ("kube-system", "aws-load-balancer-controller"):
        if not (item.wellKnownPolicies and item.wellKnownPolicies.awsLoadBalancerController):
            yield _cluster_problem(env, field, "the load balancer controller uses eksctl's maintained policy")
        return
    allowed = _allowed(env).get(key)
    if allowed is None:
        return
    who = f"{key[0]}/{key[1]}"
    if item.wellKnownPolicies is not None or item.permissionPolicyARNs:
        yield _cluster_problem(env, field, f"{who}: only the inline permissionPolicy, which is checked here")
    statements = item.permissionPolicy.Statement if item.permissionPolicy else []
    for s, statement in enumerate(statements):
        where = f"{field}.permissionPolicy.Statement[{s}]"
        if statement.Effect != "Allow":
            continue
        for action in statement.actions():
            if action not in allowed:
                yield _cluster_problem(env, f"{where}.Action", f"{who} may not have {action} (least privilege)")
                continue
            for resource in statement.resources():
                if resource not in allowed[action]:
                    yield _cluster_problem(
                        env, f"{where}.Resource", f"{who}: {action} only on {', '.join(sorted(allowed[action]))}"
                    )
        if key == ("kube-system", "cluster-autoscaler") and SCALING_ACTIONS & set(statement.actions()):
            tags = dig(statement.Condition, "StringEquals") or {}
            if tags.get(f"autoscaling:ResourceTag/k8s.io/cluster-autoscaler/{env.cluster_name}") != "owned":
                yield _cluster_problem(env, f"{where}.Condition", "scale only this cluster's groups (tag: owned)")


def _addon_identity_problems(env: Environment) -> Iterator[Problem]:
    for index, addon in enumerate(env.cluster.addons):
        allowed = ADDON_IDENTITIES.get(addon.name)
        if allowed is None:
            continue
        field = f"addons[{index}]"
        if addon.useDefaultPodIdentityAssociations:
            wanted = "declare its associations" if allowed else "it needs no AWS access, so no roles"
            yield _cluster_problem(env, f"{field}.useDefaultPodIdentityAssociations", f"{addon.name}: {wanted}")
        declared = addon.podIdentityAssociations or []
        for account in sorted(set(allowed) - {item.serviceAccountName for item in declared}):
            yield _cluster_problem(
                env, f"{field}.podIdentityAssociations", f"{addon.name}: no association for {account}"
            )
        for position, item in enumerate(declared):
            where = f"{field}.podIdentityAssociations[{position}]"
            policies = allowed.get(item.serviceAccountName)
            if policies is None:
                yield _cluster_problem(env, where, f"{addon.name}: {item.serviceAccountName} needs no AWS access")
                continue
            if item.permissionPolicy is not None:
                yield _cluster_problem(env, f"{where}.permissionPolicy", f"{addon.name}: only its managed policy")
            for arn in item.permissionPolicyARNs or []:
                if arn not in policies:
                    yield _cluster_problem(
                        env,
                        f"{where}.permissionPolicyARNs",
                        f"{addon.name}/{item.serviceAccountName} may have only {', '.join(sorted(policies))}",
                    )


def identity_model(report: Report) -> Iterator[Problem]:
    """EKS Pod Identity for every workload that calls AWS, each with a least-privilege role."""
    for env in environments(report):
        cluster = env.cluster
        if cluster.iam.withOIDC:
            yield _cluster_problem(env, "iam.withOIDC", "one identity model: Pod Identity, so no IRSA provider")
        if cluster.addon("eks-pod-identity-agent") is None:
            yield _cluster_problem(env, "addons", "Pod Identity needs the eks-pod-identity-agent add-on")
        associations = {(a.namespace, a.serviceAccountName): a for a in cluster.iam.podIdentityAssociations}
        for key in IDENTITIES:
            if key not in associations:
                yield _cluster_problem(
                    env, "iam.podIdentityAssociations", f"no association for service account {key[0]}/{key[1]}"
                )
        for index, item in enumerate(cluster.iam.podIdentityAssociations):
            yield from _association_problems(env, index, item)
        yield from _addon_identity_problems(env)
        controllers = applied(report, env.name, "infra-controllers")
        for (namespace, account), (release_name, path) in IDENTITIES.items():
            if release_name is None or controllers is None:
                continue
            release = controllers.get("HelmRelease", release_name)
            if release is None:
                yield Problem(f"{CLUSTERS_DIR}/{env.name}", f"no HelmRelease {release_name} in infra-controllers")
                continue
            if release.spec.get("targetNamespace") != namespace or dig(helm_values(release), *path) != account:
                yield problem(
                    release,
                    "spec.values." + ".".join(path),
                    f"must be {namespace}/{account}, as cluster.yaml associates",
                )


def cluster_settings(report: Report) -> Iterator[Problem]:
    """Add-ons, network policy enforcement, control-plane logs, secret encryption, version, tags."""
    for env in environments(report):
        cluster = env.cluster
        for name in REQUIRED_ADDONS:
            if cluster.addon(name) is None:
                yield _cluster_problem(env, "addons", f"needs the {name} add-on")
        vpc_cni = cluster.addon("vpc-cni")
        values = json.loads(vpc_cni.configurationValues or "{}") if vpc_cni else {}
        if values.get("enableNetworkPolicy") != "true":
            yield _cluster_problem(
                env, "addons[vpc-cni].configurationValues", 'NetworkPolicies need {"enableNetworkPolicy": "true"}'
            )
        logging = cluster.cloudWatch.clusterLogging if cluster.cloudWatch else None
        if logging is None or not set(REQUIRED_LOG_TYPES) <= set(logging.enableTypes):
            yield _cluster_problem(env, "cloudWatch.clusterLogging.enableTypes", "needs api, audit and authenticator")
        elif logging.logRetentionInDays is None:
            yield _cluster_problem(env, "cloudWatch.clusterLogging.logRetentionInDays", "set a retention")
        if cluster.secretsEncryption is None:
            yield _cluster_problem(env, "secretsEncryption", "Kubernetes Secrets need envelope encryption with KMS")
        if cluster.metadata.version not in EKS_STANDARD_SUPPORT:
            yield _cluster_problem(
                env, "metadata.version", f"use a version in EKS standard support ({', '.join(EKS_STANDARD_SUPPORT)})"
            )
        if not cluster.metadata.tags:
            yield _cluster_problem(env, "metadata.tags", "tag what eksctl creates")


def _shape(cluster: ClusterConfig) -> dict[str, object]:
    return {
        "zones": len(cluster.availabilityZones),
        "nat": cluster.vpc.nat.gateway,
        "node groups": sorted((len(g.availabilityZones), g.privateNetworking) for g in cluster.managedNodeGroups),
        "add-ons": sorted(a.name for a in cluster.addons),
        "identities": sorted((a.namespace, a.serviceAccountName) for a in cluster.iam.podIdentityAssociations),
        "add-on identities": sorted(
            (addon.name, item.serviceAccountName)
            for addon in cluster.addons
            for item in addon.podIdentityAssociations or []
        ),
        "logs": sorted(cluster.cloudWatch.clusterLogging.enableTypes) if cluster.cloudWatch else [],
        "version": cluster.metadata.version,
    }


def same_shape(report: Report) -> Iterator[Problem]:
    """Every environment is prod's shape; only sizes differ."""
    envs = environments(report)
    reference = next((e for e in envs if e.settings.tier == "production"), None)
    if reference is None:
        yield Problem(CLUSTERS_DIR, "no environment has tier: production")
        return
    expected = _shape(reference.cluster)
    for env in envs:
        actual = _shape(env.cluster)
        for key, value in expected.items():
            if actual[key] != value:
                yield _cluster_problem(env, key, f"differs from {reference.name}: {actual[key]} instead of {value}")


FLUX_CHAIN = (
    ("infra-controllers", ()),
    ("infra-configs", ("infra-controllers",)),
)


def flux_entry_points(report: Report) -> Iterator[Problem]:
    """infra-controllers, then infra-configs, then the apps; each waits, retries, times out and prunes."""
    for env_name, kustomizations in sorted(report.kustomizations.items()):
        items = {k.name: k for k in kustomizations}
        for name, deps in FLUX_CHAIN:
            item = items.get(name)
            if item is None:
                yield Problem(f"{CLUSTERS_DIR}/{env_name}", f"no Flux Kustomization {name}")
            elif [d for d, _ in item.depends_on] != list(deps):
                yield Problem(item.origin, f"must depend on {list(deps)}", obj=item.ref, field="spec.dependsOn")
        for item in kustomizations:
            if item.name == "flux-system":
                continue
            for key in ("interval", "retryInterval", "timeout"):
                if not item.spec.get(key):
                    yield Problem(item.origin, "must be set", obj=item.ref, field=f"spec.{key}")
            for key in ("wait", "prune"):
                if item.spec.get(key) is not True:
                    yield Problem(item.origin, "must be true", obj=item.ref, field=f"spec.{key}")
            if not any(is_cluster_vars(s, item.namespace) for s in item.var_sources):
                yield Problem(
                    item.origin, "must read cluster-vars", obj=item.ref, field="spec.postBuild.substituteFrom"
                )
            if item.path.startswith("apps/") and (item.namespace, "infra-configs") not in dependencies(
                kustomizations, item
            ):
                yield Problem(item.origin, "apps depend on the infrastructure", obj=item.ref, field="spec.dependsOn")
            if env_name not in item.path.split("/"):
                yield Problem(item.origin, f"must apply an overlay of {env_name}", obj=item.ref, field="spec.path")


REQUIRED_RELEASES = (
    "aws-load-balancer-controller",
    "external-dns",
    "external-secrets",
    "metrics-server",
    "cluster-autoscaler",
)


def helm_releases(report: Report) -> Iterator[Problem]:
    """Every controller present, drift-corrected, retried on failure, with its CRDs kept current."""
    for env in environments(report):
        controllers = applied(report, env.name, "infra-controllers")
        if controllers is None:
            continue  # flux_entry_points reports the missing Kustomization
        for name in REQUIRED_RELEASES:
            if controllers.get("HelmRelease", name) is None:
                yield Problem(f"{CLUSTERS_DIR}/{env.name}", f"infra-controllers has no HelmRelease {name}")
        for release in everything(report, env.name).of_kind("HelmRelease"):
            spec = release.spec
            if dig(spec, "driftDetection", "mode") != "enabled":
                yield problem(release, "spec.driftDetection.mode", "must be enabled")
            for action in ("install", "upgrade"):
                if dig(spec, action, "strategy", "name") != "RetryOnFailure":
                    yield problem(release, f"spec.{action}.strategy.name", "must be RetryOnFailure")
                if dig(spec, action, "crds") != "CreateReplace":
                    yield problem(release, f"spec.{action}.crds", "must be CreateReplace")
            source = (report.root / release.origin).read_text(encoding="utf-8")
            version = str(dig(spec, "chart", "spec", "version"))
            if not any(version in link for link in re.findall(r"https://github\.com/\S+/values\.yaml", source)):
                yield problem(release, "spec.values", f"link the default values.yaml of chart {version} in a comment")


def controller_values(report: Report) -> Iterator[Problem]:
    """The values that make each controller work here, and work highly available."""
    for env in environments(report):
        controllers = applied(report, env.name, "infra-controllers")
        if controllers is None:
            continue
        production = env.settings.tier == "production"
        lbc = controllers.get("HelmRelease", "aws-load-balancer-controller")
        if lbc is not None:
            values = helm_values(lbc)
            expected = {"clusterName": EXAMPLE.cluster_name, "region": EXAMPLE.aws_region, "vpcId": EXAMPLE.vpc_id}
            for key, value in expected.items():
                if values.get(key) != value:
                    yield problem(lbc, f"spec.values.{key}", "must come from cluster-vars")
            if (values.get("replicaCount") or 0) < 2 or not values.get("podDisruptionBudget"):
                yield problem(lbc, "spec.values.replicaCount", "two replicas with a PodDisruptionBudget")
            if not any(
                t.get("topologyKey") == "topology.kubernetes.io/zone"
                for t in values.get("topologySpreadConstraints") or []
            ):
                yield problem(lbc, "spec.values.topologySpreadConstraints", "spread the replicas over zones")
        dns = controllers.get("HelmRelease", "external-dns")
        if dns is not None:
            values = helm_values(dns)
            if "policy" not in values or (production and values["policy"] != "upsert-only"):
                yield problem(dns, "spec.values.policy", "explicit, and upsert-only in production")
            if values.get("txtOwnerId") != EXAMPLE.cluster_name:
                yield problem(dns, "spec.values.txtOwnerId", "must be the cluster's name")
            if values.get("domainFilters") != [EXAMPLE.domain]:
                yield problem(dns, "spec.values.domainFilters", "only this environment's zone")
            env_vars = {e.get("name"): e.get("value") for e in values.get("env") or []}
            if env_vars.get("AWS_DEFAULT_REGION") != EXAMPLE.aws_region:
                yield problem(dns, "spec.values.env", "the chart takes the region only as AWS_DEFAULT_REGION")
            for ignored in ("region", "aws", "clusterName"):
                if ignored in values:
                    yield problem(dns, f"spec.values.{ignored}", "the chart ignores this key silently")
            if f"--zone-id-filter={EXAMPLE.hosted_zone_id}" not in (values.get("extraArgs") or []):
                yield problem(dns, "spec.values.extraArgs", "needs --zone-id-filter with the hosted zone id")
        autoscaler = controllers.get("HelmRelease", "cluster-autoscaler")
        if autoscaler is not None:
            values = helm_values(autoscaler)
            if dig(values, "autoDiscovery", "clusterName") != EXAMPLE.cluster_name:
                yield problem(autoscaler, "spec.values.autoDiscovery.clusterName", "must be the cluster's name")
            tag = str(dig(values, "image", "tag") or "")
            if not tag.startswith(f"v{env.kubernetes_version}."):
                yield problem(autoscaler, "spec.values.image.tag", f"must be a {env.kubernetes_version} release")
            args = dig(values, "extraArgs") or {}
            ignored = {str(v) for k, v in args.items() if str(k).split("_")[0] == "balancing-ignore-label"}
            if args.get("balance-similar-node-groups") is not True or not ignored >= LAUNCH_TEMPLATE_LABELS:
                yield problem(
                    autoscaler,
                    "spec.values.extraArgs",
                    "balance the per-zone node groups, ignoring their launch-template labels",
                )
        metrics = controllers.get("HelmRelease", "metrics-server")
        if metrics is not None and (helm_values(metrics).get("replicas") or 1) < 2:
            yield problem(metrics, "spec.values.replicas", "two replicas: the HPAs depend on it")


# EKS sets these on every managed node; they differ between node groups (see cluster-autoscaler.yaml).
LAUNCH_TEMPLATE_LABELS = {"eks.amazonaws.com/sourceLaunchTemplateId", "eks.amazonaws.com/sourceLaunchTemplateVersion"}
APP_NAMESPACES = {MISP_NAMESPACE: "baseline", DASHBOARD_NAMESPACE: "restricted"}


def namespaces_and_network(report: Report) -> Iterator[Problem]:
    """App namespaces with Pod Security levels and default-deny NetworkPolicies; the secret store."""
    for env in environments(report):
        configs = applied(report, env.name, "infra-configs")
        if configs is None:
            continue  # flux_entry_points reports the missing Kustomization
        for name, level in APP_NAMESPACES.items():
            namespace = configs.get("Namespace", name)
            if namespace is None:
                yield Problem(f"{CLUSTERS_DIR}/{env.name}", f"infra-configs has no Namespace {name}")
                continue
            if namespace.labels.get("pod-security.kubernetes.io/enforce") != level:
                yield problem(namespace, "metadata.labels", f"enforce Pod Security level {level}")
            deny = configs.get("NetworkPolicy", "default-deny", name)
            if (
                deny is None
                or deny.spec.get("podSelector")
                or sorted(deny.spec.get("policyTypes") or [])
                != [
                    "Egress",
                    "Ingress",
                ]
            ):
                yield problem(namespace, "", "needs a default-deny NetworkPolicy for ingress and egress")
        store = configs.get("ClusterSecretStore", "aws-secrets-manager")
        if store is None:
            yield Problem(f"{CLUSTERS_DIR}/{env.name}", "infra-configs has no ClusterSecretStore aws-secrets-manager")
        else:
            aws = dig(store.spec, "provider", "aws") or {}
            if aws.get("service") != "SecretsManager" or aws.get("region") != EXAMPLE.aws_region:
                yield problem(store, "spec.provider.aws", "Secrets Manager in this environment's region")
            allowed = {n for c in store.spec.get("conditions") or [] for n in c.get("namespaces") or []}
            if not store.spec.get("conditions") or allowed - set(APP_NAMESPACES):
                yield problem(store, "spec.conditions", "only the application namespaces may use the store")


# MISP's shared files: the static volume on the bootstrap's EFS access point, for MISP's claim only
# (kubernetes-sigs/aws-efs-csi-driver examples/kubernetes/efs/access_points at v3.4.1: volume handle
# efs:<file system>::<access point>, pkg/driver/node.go parseVolumeId).
FILES_VOLUME = "misp-files"
FILES_VOLUME_HANDLE = f"efs:{EXAMPLE.efs_file_system_id}::{EXAMPLE.efs_access_point_id}"
FILES_STORAGE_CLASS = "efs"


def _files_volume_problems(volume: Resource) -> Iterator[Problem]:
    spec = volume.spec
    csi = spec.get("csi") or {}
    if csi.get("driver") != "efs.csi.aws.com":
        yield problem(volume, "spec.csi.driver", "must be efs.csi.aws.com, the EFS CSI driver")
    if csi.get("volumeHandle") != FILES_VOLUME_HANDLE:
        yield problem(
            volume,
            "spec.csi.volumeHandle",
            "must be efs:${efs_file_system_id}::${efs_access_point_id} (cluster-vars): "
            "the bootstrap's file system and access point",
        )
    if str((csi.get("volumeAttributes") or {}).get("encryptInTransit", "true")).lower() != "true":
        yield problem(volume, "spec.csi.volumeAttributes.encryptInTransit", "the file system accepts only TLS")
    if "ReadWriteMany" not in (spec.get("accessModes") or []):
        yield problem(volume, "spec.accessModes", "ReadWriteMany: every web and workers pod mounts it")
    if spec.get("persistentVolumeReclaimPolicy") != "Retain":
        yield problem(volume, "spec.persistentVolumeReclaimPolicy", "Retain: deleting the claim keeps the files")
    if spec.get("storageClassName") != FILES_STORAGE_CLASS:
        yield problem(volume, "spec.storageClassName", f"{FILES_STORAGE_CLASS}, the class MISP's claim asks for")
    claim = spec.get("claimRef") or {}
    if (claim.get("namespace"), claim.get("name")) != (MISP_NAMESPACE, FILES_VOLUME):
        yield problem(volume, "spec.claimRef", f"reserved for {MISP_NAMESPACE}/{FILES_VOLUME} only")


def shared_files_storage(report: Report) -> Iterator[Problem]:
    """The volume misp-files: the bootstrap's EFS access point, reserved for MISP's claim, files kept."""
    for env in environments(report):
        configs = applied(report, env.name, "infra-configs")
        if configs is None:
            continue
        volume = configs.get("PersistentVolume", FILES_VOLUME)
        if volume is None:
            yield Problem(f"{CLUSTERS_DIR}/{env.name}", f"infra-configs has no PersistentVolume {FILES_VOLUME}")
            continue
        yield from _files_volume_problems(volume)
        objects = everything(report, env.name)
        claim = objects.get("PersistentVolumeClaim", FILES_VOLUME, MISP_NAMESPACE)
        if claim is not None and claim.spec.get("volumeName") != FILES_VOLUME:
            yield problem(claim, "spec.volumeName", f"{FILES_VOLUME}: the volume that holds the earlier files")
        for storage in objects.of_kind("StorageClass"):
            if storage.obj.get("provisioner") == "efs.csi.aws.com":
                yield problem(storage, "provisioner", "no dynamic EFS volumes: each would be a new access point, empty")


POLICIES = (
    cluster_high_availability,
    identity_model,
    cluster_settings,
    same_shape,
    flux_entry_points,
    helm_releases,
    controller_values,
    namespaces_and_network,
    shared_files_storage,
)
