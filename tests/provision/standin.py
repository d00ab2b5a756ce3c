"""Recording stand-ins for eksctl and flux (run as executables by the end-to-end test).

Each invocation appends ``{"tool", "argv", "stdin", "kubeconfig", "kubeconfig_folder_mode"}`` to the
JSON-lines file in ``STANDIN_LOG``. eksctl and flux accept only the commands and flags of the releases they claim to be
(tests.provision.cli_tables, parsed as pflag parses them) and refuse the rest with the real tool's
message; eksctl makes in the emulator what the real eksctl would leave (tests.provision.emulate) and,
like eksctl, writes the operator's kubeconfig unless told not to; flux refuses a ``--version`` its CLI
may not install (another minor, unless the CLI is a pre-release) and a kubeconfig that names no
reachable cluster; its bootstrap creates in the fake API
server (tests.provision.apiserver), through that kubeconfig, what Flux leaves there, and, like flux,
leaves a discovery cache in ~/.kube/cache unless --cache-dir says where.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import re
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import urlsplit

import boto3
import yaml

from tests.provision import cli_tables, cluster_api, emulate
from tests.provision.pflag import Flag, FlagError, Parsed, parse

EKSCTL_VERSION_ENV = "STANDIN_EKSCTL_VERSION"
REPOSITORY = Path(__file__).resolve().parents[2]
FLUX_VERSION_ENV = "STANDIN_FLUX_VERSION"
"""Set to make the stand-in claim another release (the flag tables stay those of the pinned one)."""


def _state_path() -> Path:
    return Path(os.environ["STANDIN_STATE"])


def load_state() -> dict[str, Any]:
    path = _state_path()
    return json.loads(path.read_text()) if path.exists() else {}


def save_state(state: dict[str, Any]) -> None:
    _state_path().write_text(json.dumps(state, indent=1))


def fail(message: str) -> NoReturn:
    sys.stderr.write(f"Error: {message}\n")
    raise SystemExit(1)


def _words(argv: list[str]) -> list[str]:
    """The leading words of a command line (cobra: the command path, before any flag)."""
    words = []
    for item in argv:
        if item.startswith("-"):
            break
        words.append(item)
    return words


def command(
    argv: list[str],
    table: dict[tuple[str, ...], dict[str, Flag]],
    aliases: dict[tuple[str, ...], tuple[str, ...]],
    refuse: Callable[[str], NoReturn],
) -> tuple[tuple[str, ...], Parsed] | None:
    """The command ``argv`` names (its leading words, aliases resolved) and its flags parsed against
    the table; None if the table does not have it."""
    words = _words(argv)
    for size in (2, 1):
        key = aliases.get(tuple(words[:size]), tuple(words[:size]))
        if len(words) >= size and key in table:
            try:
                return key, parse(argv[size:], table[key])
            except FlagError as error:
                refuse(str(error))
    return None


# --- eksctl ------------------------------------------------------------------------------------------


def _eksctl_region(parsed: Parsed) -> str:
    region = parsed.text("region") or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if not region:
        fail("--region must be set")  # eksctl: no region from flags, config file or AWS config
    return str(region)


def _eksctl_config(parsed: Parsed, stdin: str | None, key: tuple[str, ...]) -> dict[str, Any]:
    """cmdutils/configfile.go commonClusterConfigLoader.Load: the file (``-`` is stdin) and its rules."""
    source = parsed.text("config-file") or ""
    if source == "-":
        text = stdin or ""
    elif source:
        path = Path(source)
        if not path.is_file():
            fail(f"reading config file {source!r}: open {source}: no such file or directory")
        text = path.read_text()
    else:
        raise AssertionError("called without a config file")
    if not text.strip() or "${" in text:
        fail("the config on stdin is missing or not rendered")  # eksctl: a strict YAML decode error
    incompatible = list(cli_tables.EKSCTL_NOT_WITH_CONFIG_FILE)
    if key == ("create", "cluster"):
        incompatible += cli_tables.EKSCTL_CREATE_CLUSTER_NOT_WITH_CONFIG_FILE
    for name in sorted(incompatible):  # findChangedFlag walks sets.List, which is sorted
        if parsed.changed(name):
            fail(f"cannot use --{name} when --config-file/-f is set")
    if parsed.args:
        fail("cannot use name argument when --config-file/-f is set")
    config = yaml.safe_load(text)
    metadata = config.get("metadata") or fail("metadata must be set")
    if not metadata.get("name"):
        fail("metadata.name must be set")
    if not metadata.get("region"):
        fail("metadata.region must be set")
    return dict(config)


def _eks_cluster(name: str, region: str) -> dict[str, Any] | None:
    eks = boto3.client("eks", region_name=region)
    try:
        return dict(eks.describe_cluster(name=name)["cluster"])
    except eks.exceptions.ResourceNotFoundException:
        return None


def _existing_cluster(name: str, region: str) -> dict[str, Any]:
    """cmdutils/cmd.go NewProviderForExistingCluster: the cluster must exist."""
    found = _eks_cluster(name, region)
    if found is None:
        fail(
            f"unable to describe cluster control plane: operation error EKS: DescribeCluster, "
            f"ResourceNotFoundException: No cluster found for name: {name}."
        )
    return found  # type: ignore[return-value]


def _parts(state: dict[str, Any], name: str, region: str) -> dict[str, Any]:
    """What moto does not model (add-ons, pod identity associations), per cluster."""
    return state.setdefault("eksctl", {}).setdefault(
        f"{region}/{name}", {"addons": [], "associations": [], "roles": []}
    )


def _write_operator_kubeconfig(parsed: Parsed, config: dict[str, Any]) -> None:
    """pkg/ctl/create/cluster.go: unless --write-kubeconfig=false, merge the cluster into the kubeconfig
    (--kubeconfig, else $KUBECONFIG, else ~/.kube/config: pkg/utils/kubeconfig DefaultPath) and, unless
    --set-kubeconfig-context=false, make it the current context."""
    if not parsed.flag("write-kubeconfig", True):
        return
    name, region = config["metadata"]["name"], config["metadata"]["region"]
    if parsed.flag("auto-kubeconfig", False):
        path = Path.home() / ".kube" / "eksctl" / "clusters" / name
    else:
        path = Path(parsed.text("kubeconfig") or os.environ.get("KUBECONFIG") or str(Path.home() / ".kube" / "config"))
    found = _existing_cluster(name, region)
    cluster_name = f"{name}.{region}.eksctl.io"
    context = f"eksctl@{cluster_name}"
    existing = yaml.safe_load(path.read_text()) if path.exists() else None
    document = existing or {"apiVersion": "v1", "kind": "Config", "clusters": [], "contexts": [], "users": []}
    entries = {
        "clusters": {
            "name": cluster_name,
            "cluster": {
                "server": found["endpoint"],
                "certificate-authority-data": found["certificateAuthority"]["data"],  # EKS gives it base64
            },
        },
        "users": {
            "name": context,
            "user": {
                "exec": {
                    "apiVersion": "client.authentication.k8s.io/v1beta1",
                    "command": "aws",
                    "args": ["eks", "get-token", "--output", "json", "--cluster-name", name, "--region", region],
                }
            },
        },
        "contexts": {"name": context, "context": {"cluster": cluster_name, "user": context}},
    }
    for section, entry in entries.items():
        document[section] = [item for item in document.get(section) or [] if item["name"] != entry["name"]] + [entry]
    if parsed.flag("set-kubeconfig-context", True):
        document["current-context"] = context
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(document, sort_keys=False))


def _with_id(item: dict[str, str]) -> dict[str, str]:
    """An association as EKS keeps it: an ID of the form a-<17 lower-case letters and digits>."""
    digest = hashlib.sha256(f"{item['Namespace']}/{item['ServiceAccountName']}/{item['RoleARN']}".encode())
    return {**item, "AssociationID": "a-" + digest.hexdigest()[:17]}


def _summaries_addons(parts: dict[str, Any]) -> list[dict[str, Any]]:
    """pkg/actions/addon/get.go Summary, printed by pkg/printers/json.go (no JSON tags: Go field names)."""
    return [
        {
            "Name": addon["name"],
            "Version": addon.get("version") or "v1.0.0-eksbuild.1",
            "NewerVersion": "",
            "IAMRole": "",
            "Status": "ACTIVE",
            "ConfigurationValues": addon.get("configurationValues", ""),
            "NamespaceConfig": None,
            "Issues": None,
            "PodIdentityAssociations": None,
        }
        for addon in parts["addons"]
    ]


def _summaries_associations(parts: dict[str, Any], name: str, region: str, parsed: Parsed) -> list[dict[str, Any]]:
    """pkg/actions/podidentityassociation/getter.go Summary (filtered by --namespace, --service-account-name)."""
    account = boto3.client("sts", region_name=region).get_caller_identity()["Account"]
    return [
        {
            "AssociationARN": f"arn:aws:eks:{region}:{account}:podidentityassociation/{name}/{item['AssociationID']}",
            "Namespace": item["Namespace"],
            "ServiceAccountName": item["ServiceAccountName"],
            "RoleARN": item["RoleARN"],
            "OwnerARN": "",
        }
        for item in parts["associations"]
        if parsed.text("namespace") in (None, item["Namespace"])
        and parsed.text("service-account-name") in (None, item["ServiceAccountName"])
    ]


def _json(value: Any) -> str:
    return json.dumps(value or [], indent=4)  # json.MarshalIndent(obj, "", "    "); nil -> []


def _eksctl_unknown(argv: list[str]) -> NoReturn:
    """What eksctl answers a command it does not have. Under a verb, cobra first parses the verb's own
    flags (only the root's persistent ones), then cmd/eksctl/main.go checkCommand names the word; at the
    root, cobra's legacyArgs. A resource the real eksctl has but the stand-in does not model (``get
    cluster``) is refused the same way: the bootstrap must not run it unnoticed."""
    words = _words(argv)
    if words and words[0] in cli_tables.EKSCTL_VERBS:
        try:
            parse(argv[1:], cli_tables.EKSCTL_ROOT)
        except FlagError as error:
            fail(str(error))
        if len(words) == 1:
            fail(f'please provide a valid resource for "{words[0]}"')
        fail(f'unknown resource type "{words[1]}"')
    fail(f'unknown command "{words[0] if words else " ".join(argv)}" for "eksctl"')


def eksctl(argv: list[str], stdin: str | None) -> None:
    state = load_state()
    found = command(argv, cli_tables.EKSCTL, cli_tables.EKSCTL_ALIASES, fail)
    if found is None:
        _eksctl_unknown(argv)
    key, parsed = found
    if key == ("version",):
        output = parsed.text("output") or ""
        if output not in ("", "json"):
            fail(f"unknown output: {output}")  # pkg/ctl/misc/version.go
        if output == "json":
            fail("the stand-in prints only the plain version")
        print(os.environ.get(EKSCTL_VERSION_ENV, cli_tables.EKSCTL_VERSION))
        return
    if key[0] == "create":
        if not parsed.text("config-file"):
            fail("the stand-in models eksctl create only with --config-file/-f")
        config = _eksctl_config(parsed, stdin, key)
        name, region = config["metadata"]["name"], config["metadata"]["region"]
        key_arn = (config.get("secretsEncryption") or {}).get("keyARN", "")
        if ":key/" not in key_arn:
            fail(f"secretsEncryption.keyARN must be a key ARN, not {key_arn}")
        if key[1] == "cluster":
            if _eks_cluster(name, region) is not None:
                fail(f'creating CloudFormation stack "eksctl-{name}-cluster": stack already exists')
            emulate.create_cluster(config, with_parts=False)
            emulate.create_nodegroups(config)
            associations = config["iam"]["podIdentityAssociations"]
            parts = _parts(state, name, region)
            parts["addons"] = [dict(addon) for addon in config.get("addons", [])]
            parts["associations"] = [_with_id(item) for item in emulate.create_associations(config, associations)]
            parts["roles"] = [item["roleName"] for item in associations]
            save_state(state)
            _write_operator_kubeconfig(parsed, config)
            return
        _existing_cluster(name, region)
        parts = _parts(state, name, region)
        if key[1] == "nodegroup":
            emulate.create_nodegroups(config)
        elif key[1] == "addon":
            known = {addon["name"] for addon in parts["addons"]}
            parts["addons"] += [dict(addon) for addon in config["addons"] if addon["name"] not in known]
        elif key[1] == "podidentityassociation":
            existing = {(item["Namespace"], item["ServiceAccountName"]) for item in parts["associations"]}
            for item in config["iam"]["podIdentityAssociations"]:
                if (item["namespace"], item["serviceAccountName"]) in existing:  # as EKS refuses a second one
                    fail(f"pod identity association {item['namespace']}/{item['serviceAccountName']} already exists")
            made = emulate.create_associations(config, config["iam"]["podIdentityAssociations"])
            parts["associations"] += [_with_id(item) for item in made]
            parts["roles"] += [item["roleName"] for item in config["iam"]["podIdentityAssociations"]]
        save_state(state)
        return
    if key[0] == "get":
        if parsed.text("config-file"):
            fail("the stand-in models eksctl get only with --cluster")
        name = parsed.text("cluster") or (parsed.args[0] if parsed.args else "")
        if not name:
            fail("--cluster must be set")
        output = parsed.text("output") or "table"
        if output not in ("table", "json", "yaml"):
            fail(f"unknown output printer type: {output}")  # pkg/printers NewPrinter
        if output != "json":
            fail("the stand-in prints only -o json")
        region = _eksctl_region(parsed)
        _existing_cluster(name, region)
        parts = _parts(state, name, region)
        if key[1] == "addon":
            print(_json(_summaries_addons(parts)))
        else:
            print(_json(_summaries_associations(parts, name, region, parsed)))
        return
    if key == ("delete", "cluster"):
        name = parsed.text("name") or (parsed.args[0] if parsed.args else "")
        if not name:
            fail("--name must be set")
        if not parsed.flag("wait", False):
            fail("the bootstrap deletes the cluster with --wait")  # the stand-in's rule: the data must go first
        region = _eksctl_region(parsed)
        _existing_cluster(name, region)
        parts = _parts(state, name, region)
        emulate.delete_cluster(name, region, parts["roles"])
        state["eksctl"].pop(f"{region}/{name}")
        save_state(state)
        return
    fail(f"unexpected eksctl {' '.join(argv)}")


# --- flux --------------------------------------------------------------------------------------------


def flux_fail(message: str) -> NoReturn:
    sys.stderr.write(f"✗ {message}\n")  # cmd/flux/main.go: SilenceErrors, then logger.Failuref (log.go: "✗")
    raise SystemExit(1)


# Masterminds/semver v3.5.0 version.go semVerRegex (what fluxcd/pkg/version v0.16.0 ParseVersion calls, after
# asking for three dot-separated parts): a v prefix, no leading zeros, pre-release and build metadata.
_NUMBER = r"(0|[1-9]\d*)"
_IDENTIFIER = r"(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)"
_SEMVER = re.compile(
    rf"v?{_NUMBER}(?:\.{_NUMBER})?(?:\.{_NUMBER})?(?:-({_IDENTIFIER}(?:\.{_IDENTIFIER})*))?"
    r"(?:\+[0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*)?"
)


def _semver(text: str) -> tuple[int, int, str] | None:
    """fluxcd/pkg/version ParseVersion: major, minor and pre-release, or None where it errs."""
    found = _SEMVER.fullmatch(text) if len(text.split(".", 2)) == 3 else None
    return (int(found.group(1)), int(found.group(2) or 0), found.group(4) or "") if found else None


def _flux_target(requested: str, cli: str) -> str:
    """cmd/flux/version_utils.go getVersion and internal/utils/utils.go CompatibleVersion at v2.9.4: a
    pre-release CLI takes any release; a release CLI only one of its own major.minor."""
    if not requested:
        return f"v{cli}"
    if requested != "latest" and not requested.startswith("v"):
        flux_fail(f"targeted version '{requested}' must be prefixed with 'v'")
    if requested == f"v{cli}":
        return requested  # the embedded manifests
    if requested == "latest":
        flux_fail("the stand-in cannot look up the latest release: name one with --version")
    if _semver(requested) is None:  # install.ExistingVersion asks GitHub for the tag; no such tag exists
        flux_fail(f"targeted version '{requested}' does not exist")
    binary, target = _semver(cli), _semver(requested)
    compatible = binary is not None and (bool(binary[2]) or (target is not None and binary[:2] == target[:2]))
    if not compatible:
        flux_fail(f"targeted version '{requested}' is not compatible with your current version of flux ({cli})")
    return requested


def _kubeconfig_cluster(parsed: Parsed) -> str:
    """The cluster the kubeconfig names (client-go loading rules: --kubeconfig, else the first file of
    $KUBECONFIG, else ~/.kube/config), which must be complete and reachable; its EKS name."""
    path = Path(
        parsed.text("kubeconfig")
        or (os.environ.get("KUBECONFIG") or "").split(os.pathsep)[0]
        or str(Path.home() / ".kube" / "config")
    )
    if not path.is_file():
        flux_fail("invalid configuration: no configuration has been provided")
    document = yaml.safe_load(path.read_text()) or {}
    context_name = parsed.text("context") or document.get("current-context")
    if not context_name:
        flux_fail("invalid configuration: no configuration has been provided")

    def entry(section: str, name: str) -> dict[str, Any]:
        found = [item for item in document.get(section) or [] if item.get("name") == name]
        if not found:
            flux_fail(f'invalid configuration: {section[:-1]} "{name}" not found in {path}')
        return dict(found[0].get(section[:-1]) or {})

    context = entry("contexts", str(context_name))
    cluster, user = entry("clusters", context.get("cluster", "")), entry("users", context.get("user", ""))
    server = str(cluster.get("server") or "")
    if urlsplit(server).scheme != "https":
        flux_fail(f"invalid configuration: the cluster of context {context_name} has no https server")
    try:
        authority = base64.b64decode(cluster.get("certificate-authority-data") or "", validate=True)
    except binascii.Error:
        authority = b""
    if not authority:
        flux_fail(f"invalid configuration: the cluster of context {context_name} has no certificate-authority-data")
    if not (user.get("token") or user.get("exec")):
        flux_fail(f"invalid configuration: the user of context {context_name} has no credentials")
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or ""
    eks = boto3.client("eks", region_name=region)
    for name in eks.list_clusters()["clusters"]:
        if eks.describe_cluster(name=name)["cluster"]["endpoint"].rstrip("/") == server.rstrip("/"):
            return str(name)
    address = urlsplit(server)
    try:
        socket.create_connection((address.hostname or "", address.port or 443), timeout=2).close()
    except OSError as error:
        flux_fail(f'cluster info unavailable: Get "{server}/api": dial tcp: {error}')
    return address.netloc


def _discovery_cache(parsed: Parsed, server: str) -> None:
    """What flux's first API discovery leaves: k8s.io/cli-runtime genericclioptions ConfigFlags
    ToDiscoveryClient caches under --cache-dir, else $KUBECACHEDIR, else ~/.kube/cache (getDefaultCacheDir),
    in discovery/<host_port>/ (fluxcd/flux2 v2.9.4 internal/utils/apply.go ToRESTMapper)."""
    root = Path(parsed.text("cache-dir") or os.environ.get("KUBECACHEDIR") or str(Path.home() / ".kube" / "cache"))
    where = root / "discovery" / urlsplit(server).netloc.replace(":", "_")
    where.mkdir(parents=True, exist_ok=True)
    (where / "servergroups.json").write_text("{}\n")


def _kubeconfig_server(parsed: Parsed) -> str:
    path = parsed.text("kubeconfig") or (os.environ.get("KUBECONFIG") or "").split(os.pathsep)[0]
    document = yaml.safe_load(Path(path).read_text()) if path and Path(path).is_file() else {}
    clusters = (document or {}).get("clusters") or [{}]
    return str((clusters[0].get("cluster") or {}).get("server") or "")


def flux(argv: list[str], stdin: str | None) -> None:
    state = load_state()
    cli = os.environ.get(FLUX_VERSION_ENV, cli_tables.FLUX_VERSION)
    found = command(argv, cli_tables.FLUX, cli_tables.FLUX_ALIASES, flux_fail)
    if found is None:
        words = _words(argv)
        if words and words[0] in {key[0] for key in cli_tables.FLUX if len(key) == 2}:
            # flux has more (bootstrap gitlab, suspend source git, ...), and cobra answers a word it does
            # not know under them with the parent's help and exit 0; the stand-in refuses both, so that
            # the bootstrap cannot run a command nobody checked, or mistype one and go on.
            flux_fail(f"the stand-in does not model `flux {' '.join(words[:2])}`")
        flux_fail(f'unknown command "{words[0] if words else " ".join(argv)}" for "flux"')  # cobra legacyArgs
    key, parsed = found
    if key == ("version",):
        if not parsed.flag("client", False):
            flux_fail("the stand-in answers only flux version --client")
        print(f"flux: v{cli}")
        return
    if key[0] == "bootstrap":
        if key[1] == "github" and not os.environ.get("GITHUB_TOKEN") and not (stdin or "").strip():
            flux_fail("could not read token: EOF")  # bootstrap_github.go: readPasswordFromStdin
        if key[1] == "github" and not (parsed.text("owner") and parsed.text("repository")):
            flux_fail("--owner and --repository name the GitHub repository")
        if key[1] == "git" and not parsed.text("url"):
            flux_fail("url is required")
        cluster = _kubeconfig_cluster(parsed)
        _discovery_cache(parsed, _kubeconfig_server(parsed))
        target = _flux_target(str(parsed.get("version") or ""), cli)
        # What flux bootstrap leaves in the cluster, through the same kubeconfig (the fake API server's rules).
        kubeconfig = parsed.text("kubeconfig") or (os.environ.get("KUBECONFIG") or "").split(os.pathsep)[0]
        cluster_api.install_flux(Path(kubeconfig), REPOSITORY, Path(parsed.text("path") or "").name)
        done = state.setdefault("flux", {})
        done[cluster] = {
            "version": target,
            "path": parsed.text("path"),
            "token_auth": parsed.flag("token-auth", False),
            "read_write_key": parsed.flag("read-write-key", False),
        }
        save_state(state)
        print("✔ all components are healthy")
        return
    if key == ("suspend", "kustomization"):
        cluster = _kubeconfig_cluster(parsed)
        _discovery_cache(parsed, _kubeconfig_server(parsed))
        if not parsed.flag("all", False) and not parsed.args:
            flux_fail("Kustomization name is required")  # cmd/flux/suspend.go: "%s name is required"
        state.setdefault("suspended", []).append(cluster)
        save_state(state)
        return
    flux_fail(f"unexpected flux {' '.join(argv)}")


def main() -> None:
    tool = Path(sys.argv[1]).name
    argv = sys.argv[2:]
    stdin = None if sys.stdin is None or sys.stdin.isatty() else sys.stdin.read() or None
    kubeconfig = os.environ.get("KUBECONFIG")
    folder = Path(kubeconfig).parent if kubeconfig else None
    mode = oct(folder.stat().st_mode & 0o777) if folder and folder.is_dir() else None
    entry = {"tool": tool, "argv": argv, "stdin": stdin, "kubeconfig": kubeconfig, "kubeconfig_folder_mode": mode}
    with Path(os.environ["STANDIN_LOG"]).open("a", encoding="utf-8") as log:
        log.write(json.dumps(entry) + "\n")
    {"eksctl": eksctl, "flux": flux}[tool](argv, stdin)


if __name__ == "__main__":
    main()
