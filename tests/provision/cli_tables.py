"""The commands and flags of the pinned eksctl and flux releases, as their sources at the tag define them.

Only the commands the bootstrap runs are here; every other command is refused as the stand-ins do
not know it. A flag missing from a table is a flag the release does not have.
"""

from __future__ import annotations

from tests.provision.pflag import Flag, flags

EKSCTL_VERSION = "0.230.0"  # eksctl-io/eksctl v0.230.0 pkg/version/release.go: what `eksctl version` prints
FLUX_VERSION = "2.9.4"  # fluxcd/flux2 v2.9.4: `flux version --client` prints "flux: v2.9.4"

# --- eksctl v0.230.0 ---------------------------------------------------------------------------------

# cmd/eksctl/main.go: persistent flags of the root command.
_EKSCTL_ROOT = (
    Flag("help", "bool", "h"),
    Flag("verbose", "int", "v"),
    Flag("color", "string", "C"),
    Flag("dumpLogs", "bool", "d"),
)
# pkg/ctl/cmdutils/cmdutils.go AddCommonFlagsForAWS (addCfnOptions adds the cfn-* flags).
_AWS = (Flag("profile", "string", "p"),)
_CFN = (Flag("cfn-role-arn"), Flag("cfn-disable-rollback", "bool"))
# pkg/ctl/cmdutils: AddRegionFlag, AddConfigFileFlag (configfile.go), AddTimeoutFlag, AddClusterFlag.
_REGION = Flag("region", "string", "r")
_CONFIG = Flag("config-file", "string", "f")
_TIMEOUT = Flag("timeout", "duration")
_CLUSTER = Flag("cluster", "string", "c")
# cmdutils.go AddCommonFlagsForGetCmd.
_GET = (Flag("chunk-size", "int"), Flag("output", "string", "o"))
# cmdutils.go AddCommonFlagsForKubeconfig.
_KUBECONFIG = (
    Flag("kubeconfig"),
    Flag("authenticator-role-arn"),
    Flag("set-kubeconfig-context", "bool"),
    Flag("auto-kubeconfig", "bool"),
)
# pkg/ctl/cmdutils/nodegroup_flags.go AddCommonCreateNodeGroupFlags.
_NODEGROUP = (
    Flag("node-type", "string", "t"),
    Flag("nodes", "int", "N"),
    Flag("nodes-min", "int", "m"),
    Flag("nodes-max", "int", "M"),
    Flag("node-volume-size", "int"),
    Flag("node-volume-type"),
    Flag("max-pods-per-node", "int"),
    Flag("ssh-access", "bool"),
    Flag("ssh-public-key"),
    Flag("enable-ssm", "bool"),
    Flag("node-ami"),
    Flag("node-ami-family"),
    Flag("node-private-networking", "bool", "P"),
    Flag("node-security-groups", "strings"),
    Flag("node-labels", "map"),
    Flag("node-zones", "strings"),
    Flag("instance-prefix"),
    Flag("instance-name"),
    Flag("disable-pod-imds", "bool"),
    Flag("managed", "bool"),
    Flag("spot", "bool"),
    Flag("enable-node-repair", "bool"),
    Flag("node-repair-max-unhealthy-percentage", "int"),
    Flag("node-repair-max-unhealthy-count", "int"),
    Flag("node-repair-max-parallel-percentage", "int"),
    Flag("node-repair-max-parallel-count", "int"),
    Flag("instance-types", "strings"),
)
# nodegroup_flags.go AddCommonCreateNodeGroupAddonsFlags and addCommonCreateNodeGroupIAMAddonsFlags.
_NODEGROUP_ADDONS = (
    Flag("asg-access", "bool"),
    Flag("external-dns-access", "bool"),
    Flag("full-ecr-access", "bool"),
    Flag("appmesh-access", "bool"),
    Flag("appmesh-preview-access", "bool"),
    Flag("alb-ingress-access", "bool"),
    Flag("install-neuron-plugin", "bool"),
    Flag("install-nvidia-plugin", "bool"),
    Flag("nodegroup-parallelism", "int"),
)
# nodegroup_flags.go AddInstanceSelectorOptions.
_INSTANCE_SELECTOR = (
    Flag("instance-selector-vcpus", "int"),
    Flag("instance-selector-memory"),
    Flag("instance-selector-cpu-architecture"),
    Flag("instance-selector-gpus", "int"),
    Flag("instance-selector-neuron-devices", "int"),
)

EKSCTL: dict[tuple[str, ...], dict[str, Flag]] = {
    # pkg/ctl/misc/version.go
    ("version",): flags(_EKSCTL_ROOT, Flag("output", "string", "o")),
    # pkg/ctl/create/cluster.go createClusterCmdWithRunFunc
    ("create", "cluster"): flags(
        _EKSCTL_ROOT,
        Flag("name", "string", "n"),
        Flag("tags", "map"),
        _REGION,
        Flag("with-oidc", "bool"),
        Flag("zones", "strings"),
        Flag("support-type"),
        Flag("version"),
        _CONFIG,
        _TIMEOUT,
        Flag("install-vpc-controllers", "bool"),
        Flag("fargate", "bool"),
        Flag("dry-run", "bool"),
        Flag("nodegroup-name"),
        Flag("without-nodegroup", "bool"),
        _NODEGROUP,
        _NODEGROUP_ADDONS,
        Flag("vpc-cidr", "ipnet"),
        Flag("vpc-private-subnets", "strings"),
        Flag("vpc-public-subnets", "strings"),
        Flag("vpc-from-kops-cluster"),
        Flag("vpc-nat-mode"),
        Flag("enable-auto-mode", "bool"),
        _INSTANCE_SELECTOR,
        _AWS,
        _CFN,
        _KUBECONFIG,
        Flag("write-kubeconfig", "bool"),
    ),
    # pkg/ctl/create/nodegroup.go
    ("create", "nodegroup"): flags(
        _EKSCTL_ROOT,
        _CLUSTER,
        Flag("tags", "map"),
        _REGION,
        Flag("version"),
        _CONFIG,
        Flag("only", "strings"),
        Flag("include", "strings"),
        Flag("exclude", "strings"),
        Flag("update-auth-configmap", "bool"),
        _TIMEOUT,
        Flag("subnet-ids", "strings"),
        Flag("dry-run", "bool"),
        Flag("skip-outdated-addons-check", "bool"),
        Flag("name", "string", "n"),
        _NODEGROUP,
        _NODEGROUP_ADDONS,
        _INSTANCE_SELECTOR,
        _AWS,
        _CFN,
    ),
    # pkg/ctl/create/addon.go
    ("create", "addon"): flags(
        _EKSCTL_ROOT,
        Flag("name"),
        Flag("version"),
        Flag("service-account-role-arn"),
        Flag("auto-apply-pod-identity-associations", "bool"),
        Flag("force", "bool"),
        Flag("wait", "bool"),
        Flag("namespace-config"),
        Flag("attach-policy-arn", "strings"),
        _CLUSTER,
        _REGION,
        _CONFIG,
        _TIMEOUT,
        _AWS,
    ),
    # pkg/ctl/create/pod_identity_association.go
    ("create", "podidentityassociation"): flags(
        _EKSCTL_ROOT,
        Flag("namespace"),
        Flag("service-account-name"),
        Flag("role-arn"),
        Flag("role-name"),
        Flag("permission-boundary-arn"),
        Flag("target-role-arn"),
        Flag("disable-session-tags", "bool"),
        Flag("policy"),
        Flag("create-service-account", "bool"),
        Flag("permission-policy-arns", "strings"),
        Flag("well-known-policies", "value"),
        Flag("tags", "map"),
        _CLUSTER,
        _REGION,
        _CONFIG,
        _TIMEOUT,
    ),  # no AddCommonFlagsForAWS there: no --profile
    # pkg/ctl/get/addon.go
    ("get", "addon"): flags(_EKSCTL_ROOT, Flag("name"), _CLUSTER, _REGION, _CONFIG, _GET, _TIMEOUT, _AWS),
    # pkg/ctl/get/pod_identity_association.go configureGetPodIdentityAssociationCmd (no --profile either)
    ("get", "podidentityassociation"): flags(
        _EKSCTL_ROOT, Flag("namespace"), Flag("service-account-name"), _CLUSTER, _REGION, _CONFIG, _GET, _TIMEOUT
    ),
    # pkg/ctl/delete/cluster.go
    ("delete", "cluster"): flags(
        _EKSCTL_ROOT,
        Flag("name", "string", "n"),
        _REGION,
        Flag("wait", "bool", "w"),
        Flag("force", "bool"),
        Flag("disable-nodegroup-eviction", "bool"),
        Flag("pod-eviction-wait-period", "duration"),
        Flag("parallel", "int"),
        _CONFIG,
        _TIMEOUT,
        _AWS,
        _CFN,
    ),
}
# cmdutils/cmd.go SetDescription's aliases: pkg/ctl/create/nodegroup.go "ng", pkg/ctl/get/addon.go
# "addons", pkg/ctl/get/pod_identity_association.go "podidentityassociations".
EKSCTL_ALIASES = {
    ("create", "ng"): ("create", "nodegroup"),
    ("get", "addons"): ("get", "addon"),
    ("get", "podidentityassociations"): ("get", "podidentityassociation"),
}
# The verbs with resources under them: cmd/eksctl/main.go checkCommand makes each answer a word it does
# not know with `unknown resource type "<word>"` (a verb alone: `please provide a valid resource`).
EKSCTL_VERBS = frozenset(key[0] for key in EKSCTL if len(key) == 2)
EKSCTL_ROOT = flags(_EKSCTL_ROOT)
# cmdutils/configfile.go defaultFlagsIncompatibleWithConfigFile, plus NewCreateClusterLoader's
# clusterFlagsIncompatibleWithConfigFile and commonNGFlagsIncompatibleWithConfigFile for create cluster.
EKSCTL_NOT_WITH_CONFIG_FILE = ("name", "region", "version", "cluster", "support-type")
EKSCTL_CREATE_CLUSTER_NOT_WITH_CONFIG_FILE = (
    "tags",
    "zones",
    "fargate",
    "vpc-private-subnets",
    "vpc-public-subnets",
    "vpc-cidr",
    "vpc-nat-mode",
    "vpc-from-kops-cluster",
    "enable-auto-mode",
    "managed",
    "spot",
    "enable-node-repair",
    "instance-types",
    "nodes",
    "nodes-min",
    "nodes-max",
    "node-type",
    "node-volume-size",
    "node-volume-type",
    "max-pods-per-node",
    "node-ami",
    "node-ami-family",
    "ssh-access",
    "ssh-public-key",
    "enable-ssm",
    "node-private-networking",
    "node-security-groups",
    "node-labels",
    "node-zones",
    "asg-access",
    "external-dns-access",
    "full-ecr-access",
    "instance-name",
    "instance-prefix",
)

# --- flux v2.9.4 -------------------------------------------------------------------------------------

# cmd/flux/main.go init: --timeout, --verbose, --ns-follows-kube-context, --server; the kubeconfig
# flags of k8s.io/cli-runtime v0.36.2 genericclioptions.ConfigFlags.AddFlags (flux's go.mod), without
# --request-timeout (set to nil there); --kube-api-qps and --kube-api-burst from fluxcd/pkg/runtime
# client.Options.BindFlags.
_FLUX_ROOT = (
    Flag("help", "bool", "h"),
    Flag("timeout", "duration"),
    Flag("verbose", "bool"),
    Flag("ns-follows-kube-context", "bool"),
    Flag("server"),
    Flag("kubeconfig"),
    Flag("cache-dir"),
    Flag("certificate-authority"),
    Flag("client-certificate"),
    Flag("client-key"),
    Flag("token"),
    Flag("as"),
    Flag("as-uid"),
    Flag("as-group", "array"),
    Flag("as-user-extra", "array"),
    Flag("username"),
    Flag("password"),
    Flag("cluster"),
    Flag("user"),
    Flag("namespace", "string", "n"),
    Flag("context"),
    Flag("tls-server-name"),
    Flag("insecure-skip-tls-verify", "bool"),
    Flag("disable-compression", "bool"),
    Flag("kube-api-qps", "value"),
    Flag("kube-api-burst", "int"),
)
# cmd/flux/bootstrap.go init: bootstrapCmd.PersistentFlags().
_FLUX_BOOTSTRAP = (
    Flag("version", "string", "v"),
    Flag("components", "strings"),
    Flag("components-extra", "strings"),
    Flag("registry"),
    Flag("registry-creds"),
    Flag("image-pull-secret"),
    Flag("branch"),
    Flag("recurse-submodules", "bool"),
    Flag("sparse-checkout", "strings"),
    Flag("manifests"),
    Flag("watch-all-namespaces", "bool"),
    Flag("network-policy", "bool"),
    Flag("token-auth", "bool"),
    Flag("log-level", "value"),
    Flag("cluster-domain"),
    Flag("toleration-keys", "strings"),
    Flag("secret-name"),
    Flag("ssh-key-algorithm", "value"),
    Flag("ssh-rsa-bits", "value"),
    Flag("ssh-hostkey-algos", "strings"),
    Flag("ssh-ecdsa-curve", "value"),
    Flag("ssh-hostname"),
    Flag("ca-file"),
    Flag("private-key-file"),
    Flag("author-name"),
    Flag("author-email"),
    Flag("gpg-key-ring"),
    Flag("gpg-passphrase"),
    Flag("gpg-key-id"),
    Flag("ssh-signing-key-file"),
    Flag("ssh-signing-password"),
    Flag("ssh-signing-passphrase"),
    Flag("ssh-signing-reuse-private-key", "bool"),
    Flag("commit-message-appendix"),
    Flag("force", "bool"),
)

FLUX: dict[tuple[str, ...], dict[str, Flag]] = {
    # cmd/flux/version.go
    ("version",): flags(_FLUX_ROOT, Flag("client", "bool"), Flag("output", "string", "o")),
    # cmd/flux/bootstrap_github.go init
    ("bootstrap", "github"): flags(
        _FLUX_ROOT,
        _FLUX_BOOTSTRAP,
        Flag("owner"),
        Flag("repository"),
        Flag("team", "strings"),
        Flag("personal", "bool"),
        Flag("private", "bool"),
        Flag("interval", "duration"),
        Flag("hostname"),
        Flag("path", "value"),
        Flag("read-write-key", "bool"),
        Flag("reconcile", "bool"),
    ),
    # cmd/flux/bootstrap_git.go init
    ("bootstrap", "git"): flags(
        _FLUX_ROOT,
        _FLUX_BOOTSTRAP,
        Flag("url"),
        Flag("interval", "duration"),
        Flag("path", "value"),
        Flag("username", "string", "u"),
        Flag("password", "string", "p"),
        Flag("silent", "bool", "s"),
        Flag("allow-insecure-http", "bool"),
        Flag("with-bearer-token", "bool"),
    ),
    # cmd/flux/suspend.go (--all) and suspend_kustomization.go (alias ks)
    ("suspend", "kustomization"): flags(_FLUX_ROOT, Flag("all", "bool")),
}
FLUX_ALIASES = {("suspend", "ks"): ("suspend", "kustomization")}
