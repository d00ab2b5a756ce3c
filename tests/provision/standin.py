"""Recording stand-ins for eksctl, flux and kubectl (run as executables by the end-to-end test).

Each invocation appends ``{"tool", "argv", "stdin", "kubeconfig"}`` to the JSON-lines file in
``STANDIN_LOG`` and asserts how it was called. eksctl makes in the emulator what the real eksctl
would leave (tests.provision.emulate); kubectl answers from a small state file and, on
``delete ingress``, does what the load balancer controller and external-dns would do.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import yaml

from misp_eks.provision.gitops import FLUX_DISTRIBUTION
from tests.provision import emulate

EKSCTL_VERSION = "0.231.0"
FLUX_VERSION = "v2.9.4"  # the CLI this stand-in claims to be; what it installs is --version
KUBECTL_VERSION = "v1.35.0"
KUSTOMIZATIONS = "kustomizations.kustomize.toolkit.fluxcd.io"


def _state_path() -> Path:
    return Path(os.environ["STANDIN_STATE"])


def load_state() -> dict[str, Any]:
    path = _state_path()
    return json.loads(path.read_text()) if path.exists() else {}


def save_state(state: dict[str, Any]) -> None:
    _state_path().write_text(json.dumps(state, indent=1))


def fail(message: str) -> None:
    sys.stderr.write(f"Error: {message}\n")
    raise SystemExit(1)


def option(argv: list[str], name: str) -> str | None:
    for index, item in enumerate(argv):
        if item == name and index + 1 < len(argv):
            return argv[index + 1]
        if item.startswith(name + "="):
            return item.split("=", 1)[1]
    return None


def require_kubeconfig() -> None:
    path = os.environ.get("KUBECONFIG")
    if not path or not Path(path).is_file():
        fail("KUBECONFIG does not name the kubeconfig eksctl wrote")
    if "misp-prod" not in Path(path).read_text():
        fail("KUBECONFIG is not for misp-prod")


def eksctl(argv: list[str], stdin: str | None) -> None:
    state = load_state()
    if argv == ["version"]:
        print(EKSCTL_VERSION)
        return
    if argv[:2] == ["utils", "write-kubeconfig"]:
        Path(option(argv, "--kubeconfig") or fail("no --kubeconfig")).write_text(
            f"apiVersion: v1\nkind: Config\ncurrent-context: {option(argv, '--cluster')}\n"
        )
        return
    if argv[0] == "create" and argv[2:] == ["-f", "-"]:
        if not stdin or "${" in stdin:
            fail("the config on stdin is missing or not rendered")
        config = yaml.safe_load(stdin)
        key = config["secretsEncryption"]["keyARN"]
        if ":key/" not in key:
            fail(f"secretsEncryption.keyARN must be a key ARN, not {key}")
        what = argv[1]
        if what == "cluster":
            emulate.create_cluster(config)
            state["addons"] = [addon["name"] for addon in config.get("addons", [])]
            state["associations"] = [
                {"Namespace": item["namespace"], "ServiceAccountName": item["serviceAccountName"]}
                for item in config["iam"]["podIdentityAssociations"]
            ]
            state["roles"] = [item["roleName"] for item in config["iam"]["podIdentityAssociations"]]
        elif what == "nodegroup":
            emulate.create_nodegroups(config)
        elif what == "addon":
            state["addons"] = sorted(set(state.get("addons", [])) | {addon["name"] for addon in config["addons"]})
        elif what == "podidentityassociation":
            existing = {(item["Namespace"], item["ServiceAccountName"]) for item in state.get("associations", [])}
            for item in config["iam"]["podIdentityAssociations"]:
                if (item["namespace"], item["serviceAccountName"]) in existing:  # as EKS refuses a second one
                    fail(f"pod identity association {item['namespace']}/{item['serviceAccountName']} already exists")
            made = emulate.create_associations(config, config["iam"]["podIdentityAssociations"])
            state.setdefault("associations", []).extend(made)
            state.setdefault("roles", []).extend(item["roleName"] for item in config["iam"]["podIdentityAssociations"])
        else:
            fail(f"unexpected eksctl create {what}")
        save_state(state)
        return
    if argv[:1] == ["get"] and option(argv, "-o") == "json":
        if option(argv, "--cluster") != "misp-prod" or option(argv, "--region") != "eu-west-1":
            fail("eksctl get without --cluster misp-prod --region eu-west-1")
        if argv[1] == "addon":
            print(json.dumps([{"Name": name, "Status": "ACTIVE"} for name in state.get("addons", [])]))
        elif argv[1] == "podidentityassociation":
            print(json.dumps(state.get("associations", [])))
        else:
            fail(f"unexpected eksctl get {argv[1]}")
        return
    if argv[:2] == ["delete", "cluster"]:
        if "--wait" not in argv:
            fail("eksctl delete cluster without --wait")
        emulate.delete_cluster(option(argv, "--name") or "", option(argv, "--region") or "", state.get("roles", []))
        state["deleted"] = True
        save_state(state)
        return
    fail(f"unexpected eksctl {' '.join(argv)}")


def flux(argv: list[str], _stdin: str | None) -> None:
    state = load_state()
    if argv == ["version", "--client"]:
        print(f"flux: {FLUX_VERSION}")
        return
    require_kubeconfig()
    if argv[:2] == ["bootstrap", "github"]:
        if not os.environ.get("GITHUB_TOKEN"):
            fail("GITHUB_TOKEN is not set")
        for flag in (
            "--token-auth",
            "--owner=example-org",
            "--repository=misp-eks",
            "--branch=main",
            "--path=clusters/prod",
            f"--version={FLUX_DISTRIBUTION}",
        ):
            if flag not in argv:
                fail(f"flux bootstrap github without {flag}")
        if not state.get("cluster_vars"):
            fail("cluster-vars must exist before flux bootstrap")
        state["bootstrapped"] = True
        save_state(state)
        print("✔ all components are healthy")
        return
    if argv == ["suspend", "kustomization", "--all", "-n", "flux-system"]:
        state["suspended"] = True
        save_state(state)
        return
    fail(f"unexpected flux {' '.join(argv)}")


WORKLOADS = {
    "misp": ["deployment.apps/misp-web", "deployment.apps/misp-workers", "deployment.apps/misp-modules"],
    "misp-dashboard": ["deployment.apps/misp-dashboard"],
}


def kubectl(argv: list[str], stdin: str | None) -> None:
    state = load_state()
    if argv == ["version", "--client", "-o", "json"]:
        print(json.dumps({"clientVersion": {"gitVersion": KUBECTL_VERSION}}))
        return
    require_kubeconfig()
    if argv[:1] == ["api-resources"]:
        if state.get("bootstrapped"):
            print(KUSTOMIZATIONS)
        return
    if argv[:3] == ["get", KUSTOMIZATIONS, "flux-system"]:
        if state.get("bootstrapped"):
            print("kustomization.kustomize.toolkit.fluxcd.io/flux-system")
        return
    if argv[:2] == ["get", KUSTOMIZATIONS] and option(argv, "-o") == "json":
        ready = {"type": "Ready", "status": "True", "reason": "ReconciliationSucceeded"}
        names = ["flux-system", "infra-controllers", "infra-configs", "apps"]
        print(
            json.dumps({"items": [{"metadata": {"name": name}, "status": {"conditions": [ready]}} for name in names]})
        )
        return
    if argv[:3] == ["get", "configmap", "cluster-vars"]:
        if state.get("cluster_vars") is not None:
            print(json.dumps({"kind": "ConfigMap", "data": state["cluster_vars"]}))
        return
    if argv == ["apply", "-f", "-"]:
        document = json.loads(stdin or "{}")
        for item in document.get("items", [document]):
            if item.get("kind") == "ConfigMap" and item["metadata"]["name"] == "cluster-vars":
                if item["metadata"].get("namespace") != "flux-system":
                    fail("cluster-vars outside flux-system")
                state["cluster_vars"] = item["data"]
        save_state(state)
        return
    if argv[:4] == ["delete", "ingress", "--all", "-A"]:
        if not state.get("suspended"):
            fail("Ingresses deleted while Flux still reconciles")
        emulate.remove_controller_leftovers(
            "eu-west-1",
            "misp-prod",
            os.environ.get("STANDIN_ZONE_ID"),
            ["misp.example.org", "misp-dashboard.example.org"],
            os.environ.get("STANDIN_DNS_POLICY", "upsert-only"),  # prod's external-dns policy
        )
        state["ingresses_deleted"] = True
        save_state(state)
        return
    if argv[:2] == ["get", "namespace"]:
        if argv[2] in WORKLOADS:
            print(f"namespace/{argv[2]}")
        return
    if argv[:2] == ["get", "deployment,statefulset"]:
        namespace = option(argv, "-n") or ""
        if not state.get("scaled", {}).get(namespace):
            print("\n".join(WORKLOADS.get(namespace, [])))
        return
    if argv[:2] == ["get", "pods"]:
        namespace = option(argv, "-n") or ""
        if not state.get("pods_gone", {}).get(namespace):
            print(f"pod/{namespace}-0")
        return
    if argv[:2] == ["scale", "--replicas=0"]:
        if not state.get("ingresses_deleted"):
            fail("workloads scaled before the Ingresses were deleted")
        state.setdefault("scaled", {})[option(argv, "-n") or ""] = True
        save_state(state)
        return
    if argv[:2] == ["wait", "--for=delete"]:
        state.setdefault("pods_gone", {})[option(argv, "-n") or ""] = True
        save_state(state)
        return
    fail(f"unexpected kubectl {' '.join(argv)}")


def main() -> None:
    tool = Path(sys.argv[1]).name
    argv = sys.argv[2:]
    stdin = None if sys.stdin is None or sys.stdin.isatty() else sys.stdin.read() or None
    with Path(os.environ["STANDIN_LOG"]).open("a", encoding="utf-8") as log:
        log.write(
            json.dumps({"tool": tool, "argv": argv, "stdin": stdin, "kubeconfig": os.environ.get("KUBECONFIG")}) + "\n"
        )
    {"eksctl": eksctl, "flux": flux, "kubectl": kubectl}[tool](argv, stdin)


if __name__ == "__main__":
    main()
