""".github/workflows/e2e.yaml, read against what it runs on: the kind graph it waits for, the trees whose
Services and network policies its checks go through, staging's Flux flags, and the runner it needs. The
workflow itself runs only on GitHub; these checks fail on a workflow that could not prove what it claims."""

from __future__ import annotations

import http.server
import ipaddress
import json
import math
import re
import shutil
import socket
import subprocess
import threading
import urllib.parse
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml

from misp_eks import kind
from misp_eks.paths import repository_root
from misp_eks.policies.common import everything
from misp_eks.provision.flux_wait import step_seconds
from misp_eks.validate.netpol import NAMESPACE_NAME_LABEL, Endpoint, Match, Port, Verdict, connection, resolve_port
from misp_eks.validate.resources import Resource, Tree, containers, pod_labels, pod_template, selector_matches
from tests.conftest import venv_tool

E2E_WORKFLOW = repository_root() / ".github" / "workflows" / "e2e.yaml"
STAGING_FLUX = repository_root() / "clusters" / "staging" / "flux-system" / "kustomization.yaml"
FEED_AND_LOGIN = "clusters/kind/checks/feed-and-login.sh"
WAIT = re.compile(
    r"^kubectl -n flux-system wait kustomization/(?P<name>[\w-]+) --for=condition=ready --timeout=(?P<minutes>\d+)m$"
)
PROBE_URL = re.compile(r"http://(?P<service>[\w-]+)\.(?P<namespace>[\w-]+)\.svc\.cluster\.local(?::(?P<port>\d+))?")
FLUX_CONTROLLERS = ("source-controller", "kustomize-controller", "helm-controller", "notification-controller")
GIB = Decimal(2**30)


def workflow() -> dict[str, Any]:
    return yaml.safe_load(E2E_WORKFLOW.read_text())


def job() -> dict[str, Any]:
    jobs = workflow()["jobs"]
    assert list(jobs) == ["kind"]
    return jobs["kind"]


def steps() -> list[dict[str, Any]]:
    return job()["steps"]


def step(name: str) -> dict[str, Any]:
    found = [s for s in steps() if s.get("name") == name]
    assert len(found) == 1, name
    return found[0]


def waits(document: dict[str, Any]) -> list[tuple[str, int, int]]:
    """(Kustomization, wait minutes, step timeout-minutes) of every wait step, in order."""
    found = []
    for item in document["jobs"]["kind"]["steps"]:
        match = WAIT.match(str(item.get("run", "")).strip())
        if match:
            found.append((match["name"], int(match["minutes"]), int(item.get("timeout-minutes", 0))))
    return found


@pytest.fixture(scope="module")
def cluster() -> kind.KindEnvironment:
    found = kind.load(repository_root())
    assert found is not None
    return found


def kind_trees(report: Any) -> list[Resource]:
    return [resource for tree in report.applied_trees("kind") for resource in tree.tree]


def deployment(report: Any, namespace: str, name: str) -> dict[str, Any]:
    found = [r.obj for r in kind_trees(report) if (r.kind, r.namespace, r.name) == ("Deployment", namespace, name)]
    assert len(found) == 1, (namespace, name)
    return found[0]


def container(obj: dict[str, Any], name: str) -> dict[str, Any]:
    return container_of(obj["spec"]["template"]["spec"], name)


def container_of(pod: dict[str, Any], name: str) -> dict[str, Any]:
    return next(c for c in pod["containers"] if c["name"] == name)


# --- 3. waits that fit the job -----------------------------------------------------------------------


def check_waits(document: dict[str, Any], report: Any) -> None:
    items = [k for k in report.kustomizations["kind"] if k.name != "flux-system"]
    found = waits(document)
    assert sorted(name for name, _, _ in found) == sorted(k.name for k in items), "a wait for every Kustomization"
    position = {name: index for index, (name, _, _) in enumerate(found)}
    by_name = {k.name: k for k in items}
    for name, minutes, limit in found:
        for dependency, _namespace in by_name[name].depends_on:
            assert position[dependency] < position[name], f"{name} is waited for before {dependency}"
        expected = math.ceil(step_seconds(by_name[name]) / 60)
        assert minutes == expected, f"{name}: wait {minutes}m, its timeout plus retryInterval is {expected}m"
        assert limit > minutes, f"{name}: the step's timeout-minutes must outlast its wait"


def test_each_wait_is_its_kustomizations_timeout_plus_retry_interval_in_dependency_order(real_report):
    check_waits(workflow(), real_report)


def test_a_wait_longer_than_its_kustomization_allows_fails_the_check(real_report):
    document = workflow()
    for item in document["jobs"]["kind"]["steps"]:
        if "kustomization/misp-backend " in str(item.get("run", "")):
            item["run"] = item["run"].replace("--timeout=47m", "--timeout=50m")
    with pytest.raises(AssertionError, match="misp-backend: wait 50m"):
        check_waits(document, real_report)


def check_limits(document: dict[str, Any]) -> None:
    kind_job = document["jobs"]["kind"]
    limits = [item.get("timeout-minutes") for item in kind_job["steps"]]
    assert all(isinstance(limit, int) for limit in limits), "every step has its timeout-minutes"
    assert kind_job["timeout-minutes"] >= sum(limits), f"the job's limit holds its steps' ({sum(limits)} minutes)"


def test_every_step_has_a_limit_and_the_job_holds_their_sum():
    check_limits(workflow())
    document = workflow()
    document["jobs"]["kind"]["timeout-minutes"] = 120
    with pytest.raises(AssertionError, match="the job's limit holds"):
        check_limits(document)


def test_diagnostics_run_when_the_job_fails_or_is_cancelled():
    last = steps()[-1]
    assert last["if"] == "failure() || cancelled()"
    script = last["run"]
    for needed in (
        "--previous",
        "--timestamps",
        "kubectl describe nodes",
        "kubectl get events",
        "df -h",
        "docker system df",
    ):
        assert needed in script, needed


# --- 4. the first start ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["misp-workers", "misp-web"])
def test_misp_cores_startup_probe_outlasts_the_job(real_report, name):
    """A runner is slow: neither the workers' import nor the web pods' configure_misp.sh may be cut by
    the startup probe while the job runs (a restart runs the entrypoint again)."""
    probe = container(deployment(real_report, "misp", name), "misp-core")["startupProbe"]
    budget = probe["periodSeconds"] * probe["failureThreshold"]
    assert budget >= job()["timeout-minutes"] * 60
    for item in real_report.kustomizations["kind"]:
        if item.name in ("misp-backend", "misp-web"):
            assert budget > step_seconds(item), item.name


def test_the_first_start_is_timed_and_must_not_restart():
    script = step("The workers pod's first start, with its times")["run"]
    assert "--timestamps" in script and "restartCount" in script and "exit 1" in script
    names = [item.get("name") for item in steps()]
    backend = next(i for i, item in enumerate(steps()) if "kustomization/misp-backend " in str(item.get("run", "")))
    assert names.index("The workers pod's first start, with its times") == backend + 1


# --- 1. through the Services, from another namespace, under the policies -----------------------------

PROBES_STEP = "MISP and the dashboard answer through their Services, and the policies hold"
REFUSED = "clusters/kind/checks/refused.sh"
MODULES = ("misp", "misp-modules", 6666)


def test_no_check_bypasses_the_services():
    text = E2E_WORKFLOW.read_text()
    assert "port-forward" not in text
    assert re.fullmatch(r"curlimages/curl:[\d.]+@sha256:[0-9a-f]{64}", workflow()["env"]["PROBE_IMAGE"])


def _target(match: re.Match[str]) -> tuple[str, str, int]:
    return match["namespace"], match["service"], int(match["port"] or 80)


def refused_url() -> tuple[str, str, int]:
    """What the probe must not reach: the URL the step hands refused.sh (as $modules)."""
    run = step(PROBES_STEP)["run"]
    assigned = re.search(r"^modules=(\S+)$", run, re.MULTILINE)
    assert assigned, "the step names the URL the probe must not reach"
    match = PROBE_URL.fullmatch(assigned[1].removesuffix("/healthcheck"))
    assert match, assigned[1]
    return _target(match)


def probe_urls() -> list[tuple[str, str, int]]:
    """What the probes must reach, from the step and the feed-and-login script."""
    text = step(PROBES_STEP)["run"] + (repository_root() / FEED_AND_LOGIN).read_text()
    return sorted({_target(m) for m in PROBE_URL.finditer(text)} - {refused_url()})


def pod_addresses(cluster: kind.KindEnvironment) -> tuple[Any, Any]:
    """The first and last addresses of kind's pod network: ipBlocks are ranges, so a pod anywhere in
    between is matched as these are."""
    subnet = ipaddress.ip_network(cluster.config.networking.podSubnet)
    return subnet[1], subnet[-2]


@dataclass(frozen=True)
class KindNetwork:
    """kind's pods and NetworkPolicies, every pod at one address: kube-network-policies v0.8.0 (kind
    v0.31.0's kindnetd), pkg/networkpolicy, matches an ipBlock against a pod's address, which netpol's
    Match.MAYBE does exactly for a one-address network."""

    tree: Tree
    pods: list[Endpoint]

    def pod(self, kind_: str, namespace: str, name: str) -> Endpoint:
        found = [p for p in self.pods if p.name == f"{kind_} {namespace}/{name}"]
        assert len(found) == 1, (kind_, namespace, name)
        return found[0]

    def targets(self, namespace: str, service: str, port: int) -> list[tuple[Endpoint, Port]]:
        """The pods and container ports behind a Service port (core/v1 ServicePort.targetPort: a name is
        looked up in the pod's container ports; unset, it is the port)."""
        found = self.tree.get("Service", service, namespace)
        assert found is not None, f"no Service {namespace}/{service} in the kind trees"
        entry = next((p for p in found.spec["ports"] if p["port"] == port), None)
        assert entry is not None, f"Service {namespace}/{service} has no port {port}"
        protocol = str(entry.get("protocol") or "TCP")
        targets = []
        for pod in self.pods:
            if pod.namespace == namespace and selector_matches(found.spec.get("selector"), dict(pod.labels)):
                number = resolve_port(entry.get("targetPort", port), pod, protocol)
                if number is not None:
                    targets.append((pod, Port(number, protocol)))
        assert targets, f"no pod behind {namespace}/{service}:{port} in the kind trees"
        return targets

    def verdicts(self, source: Endpoint, namespace: str, service: str, port: int) -> list[Verdict]:
        """``source`` to every pod behind the Service port, under egress and ingress policies both."""
        policies = self.tree.of_kind("NetworkPolicy")
        return [
            connection(policies, source, pod, target, Match.MAYBE)
            for pod, target in self.targets(namespace, service, port)
        ]


def world(report: Any, address: Any) -> KindNetwork:
    tree = everything(report, kind.NAME)
    labels = {ns.name: {**ns.labels, NAMESPACE_NAME_LABEL: ns.name} for ns in tree.of_kind("Namespace")}
    one = ipaddress.ip_network(address)
    pods = [
        Endpoint(
            r.ref,
            one,
            r.namespace,
            labels.get(r.namespace, {NAMESPACE_NAME_LABEL: r.namespace}),
            pod_labels(r),
            tuple(
                Port(p["containerPort"], str(p.get("protocol") or "TCP"), str(p.get("name") or ""))
                for item in containers(r)
                for p in item.get("ports") or []
            ),
        )
        for r in tree
        if pod_template(r) is not None and r.namespace
    ]
    return KindNetwork(tree, pods)


def probe_pod(address: Any, name: str) -> Endpoint:
    """A pod as `kubectl run probe-NAME --namespace=e2e-probe` makes it (kubectl labels it run=NAME)."""
    labels = {NAMESPACE_NAME_LABEL: kind.PROBE_NAMESPACE}
    return Endpoint(
        f"probe-{name}", ipaddress.ip_network(address), kind.PROBE_NAMESPACE, labels, {"run": f"probe-{name}"}
    )


def test_the_probes_reach_the_web_tiers_through_their_policies_and_not_misp_modules(real_report, cluster):
    urls = probe_urls()
    assert ("misp", "misp-web", 80) in urls and ("misp-dashboard", "misp-dashboard-web", 80) in urls
    assert refused_url() == MODULES
    for address in pod_addresses(cluster):
        found = world(real_report, address)
        probe = probe_pod(address, "heartbeat")
        for target in urls:
            for verdict in found.verdicts(probe, *target):
                assert verdict.open, (target, verdict.explain())
        for verdict in found.verdicts(probe, *MODULES):
            assert not verdict.open, ("misp-modules must refuse the probe", verdict.explain())
        # the control: misp-modules answers a pod its policy admits
        web = found.pod("Deployment", "misp", "misp-web")
        for verdict in found.verdicts(web, *MODULES):
            assert verdict.open, verdict.explain()


def test_the_refusal_counts_only_after_a_control_and_through_refused_sh():
    run = step(PROBES_STEP)["run"]
    control = run.index("kubectl -n misp exec deployment/misp-web -c misp-core -- \\\n")
    assert "curl --fail --silent --show-error" in run[control:] and '"$modules"' in run[control:]
    denied = run.index(f'probe denied sh -c "$(cat {REFUSED})" refused.sh "$modules"')
    assert control < denied
    assert "curl" not in run[denied:].replace(REFUSED, ""), "the refused probe runs refused.sh only"


def run_refused(url: str) -> subprocess.CompletedProcess[str]:
    """refused.sh as the probe pod runs it (sh -c SCRIPT refused.sh URL), with the machine's curl."""
    script = (repository_root() / REFUSED).read_text()
    return subprocess.run(
        ["sh", "-c", script, "refused.sh", url],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"PATH": "/usr/bin:/bin", "CONNECT_TIMEOUT": "2"},
    )


@pytest.fixture
def dropping_port() -> Any:
    """A port whose SYNs are dropped, as kube-network-policies drops them (nfqueue NfDrop,
    pkg/networkpolicy/controller.go at v0.8.0): a listener with a full accept queue (Linux drops a
    SYN when the queue is full, net/ipv4/tcp_input.c tcp_conn_request)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    filling = []
    for _ in range(3):
        client = socket.socket()
        client.setblocking(False)
        client.connect_ex(listener.getsockname())
        filling.append(client)
    yield listener.getsockname()[1]
    for item in [*filling, listener]:
        item.close()


@pytest.fixture
def answering_port() -> Any:
    server = http.server.HTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.fixture
def silent_port() -> Any:
    """A port that accepts and never answers: a slow Service, not a policy."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    yield listener.getsockname()[1]
    listener.close()


@pytest.fixture
def closed_port() -> int:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    listener.close()
    return port


@pytest.mark.skipif(shutil.which("curl", path="/usr/bin:/bin") is None, reason="no curl on this machine")
def test_refused_sh_passes_on_a_dropped_connection_only(dropping_port, answering_port, silent_port, closed_port):
    dropped = run_refused(f"http://127.0.0.1:{dropping_port}/healthcheck")
    assert dropped.returncode == 0, dropped.stderr
    assert "the connection was dropped" in dropped.stdout
    for url, says in (
        (f"http://127.0.0.1:{answering_port}/", "answered"),
        (f"http://127.0.0.1:{silent_port}/", "connected, then timed out"),
        (f"http://127.0.0.1:{closed_port}/", "curl exit 7"),
        ("http://misp-modules.misp.svc.invalid:6666/healthcheck", "did not resolve"),
    ):
        result = run_refused(url)
        assert result.returncode == 1 and says in result.stderr, (url, result.stdout, result.stderr)


def test_the_probe_namespace_is_made_before_flux_and_has_no_policy(real_report, cluster):
    variables = kind.cluster_vars(cluster.config)
    made = kind.before_flux(variables, kind.placeholder(variables), "")
    assert {"kind": "Namespace", "apiVersion": "v1", "metadata": {"name": kind.PROBE_NAMESPACE}} in made
    assert not [r for r in kind_trees(real_report) if r.namespace == kind.PROBE_NAMESPACE]
    for item in steps():
        if "kubectl run" in str(item.get("run", "")):
            assert f"--namespace={kind.PROBE_NAMESPACE}" in item["run"]


def test_the_network_policies_of_kind_match_the_pod_network(cluster):
    """The policies admit cluster-vars' vpc_cidr, the load balancers' network in the cloud; in kind the
    probes and the load balancer stand-in are pods, so the pod network must lie inside it."""
    variables = kind.cluster_vars(cluster.config)
    assert ipaddress.ip_network(cluster.config.networking.podSubnet).subnet_of(ipaddress.ip_network(variables.vpc_cidr))


# --- 2. the feed and the login -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def generated(cluster: kind.KindEnvironment) -> kind.Generated:
    made, _ = kind.generate_all(
        kind.cluster_vars(cluster.config), lambda _e, _p: kind.gpg.GpgKey("private", "public", "0" * 40), ""
    )
    return made


def dashboard_env(report: Any) -> dict[str, str]:
    return next(
        r.obj["data"]
        for r in kind_trees(report)
        if (r.kind, r.namespace) == ("ConfigMap", "misp-dashboard") and r.name.startswith("misp-dashboard-env")
    )


def test_the_dashboard_logs_in_through_the_load_balancer_stand_in(real_report, cluster, generated):
    url = dashboard_env(real_report)["DASHBOARD_MISP_URL"]
    assert url == f"https://{kind.LOAD_BALANCER_HOST}", "MISP's hostname in kind is the stand-in"
    # MISP's BASE_URL names the same host, so its redirects and links do too
    assert generated.secrets[f"{cluster.config.name}/misp/app"]["BASE_URL"] == url
    host, namespace = kind.LOAD_BALANCER_HOST.split(".")[:2]
    for address in pod_addresses(cluster):
        found = world(real_report, address)
        dashboard = found.pod("Deployment", "misp-dashboard", "misp-dashboard-web")
        for verdict in found.verdicts(dashboard, namespace, host, 443):
            assert verdict.open, verdict.explain()
        # and the stand-in reaches misp-web as the ALB does
        for stand_in, _port in found.targets(namespace, host, 443):
            for verdict in found.verdicts(stand_in, "misp", "misp-web", 80):
                assert verdict.open, verdict.explain()
    config = next(
        r.obj["data"]["nginx.conf"]
        for r in kind_trees(real_report)
        if r.kind == "ConfigMap" and r.name.startswith("misp-load-balancer")
    )
    assert "proxy_pass http://misp-web.misp.svc.cluster.local;" in config
    assert "ssl_certificate /tls/tls.crt;" in config
    # /tls holds the run's server certificate, which names the stand-in (test_kind verifies it)
    pod = deployment(real_report, namespace, "misp-load-balancer")["spec"]["template"]["spec"]
    tls = next(v["name"] for v in pod["volumes"] if v.get("secret", {}).get("secretName") == kind.DATA_TLS_SECRET)
    assert {"name": tls, "mountPath": "/tls", "readOnly": True} in container_of(pod, "nginx")["volumeMounts"]


def test_the_dashboard_verifies_misp_against_the_runs_ca(real_report):
    env = next(
        r.obj["data"]
        for r in kind_trees(real_report)
        if (r.kind, r.namespace) == ("ConfigMap", "misp-dashboard") and r.name.startswith("misp-dashboard-env")
    )
    web = container(deployment(real_report, "misp-dashboard", "misp-dashboard-web"), "web")
    volumes = deployment(real_report, "misp-dashboard", "misp-dashboard-web")["spec"]["template"]["spec"]["volumes"]
    trust = next(v for v in volumes if v.get("secret", {}).get("secretName") == kind.TRUST_SECRET)
    mount = next(m for m in web["volumeMounts"] if m["name"] == trust["name"])
    assert env["REQUESTS_CA_BUNDLE"] == f"{mount['mountPath']}/{kind.TRUST_BUNDLE_KEY}"


def test_the_feed_and_login_check_reads_what_kind_makes(real_report, cluster, generated):
    script = step("An event reaches the dashboard, and the login through MISP works")["run"]
    fields = re.findall(r"\$\(field (\w+)\)", script)
    assert fields == [kind.ADMIN_KEY, "ADMIN_EMAIL", "ADMIN_PASSWORD"]
    app = next(
        r.obj["spec"]
        for r in kind_trees(real_report)
        if (r.kind, r.namespace, r.name) == ("ExternalSecret", "misp", "misp-app")
    )
    assert app["dataFrom"] == [{"extract": {"key": f"{cluster.config.name}/misp/app"}}], "every key, ADMIN_KEY too"
    values = generated.secrets[f"{cluster.config.name}/misp/app"]
    assert set(fields) <= set(values) and all(values[f] for f in fields)
    assert re.fullmatch(r"[A-Za-z0-9]{40}", values[kind.ADMIN_KEY]), "MISP's change_authkey takes 40 alphanumerics"
    assert f'sh -c "$(cat {FEED_AND_LOGIN})"' in script and "--stdin" in script
    assert "::add-mask::$key" in script and "::add-mask::$password" in script


def test_the_feed_and_login_script_passes_shellcheck():
    path = repository_root() / FEED_AND_LOGIN
    result = subprocess.run([venv_tool("shellcheck"), str(path)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout
    text = path.read_text()
    assert text.startswith("#!/bin/sh\n") and "set -eu" in text  # curl's image has no bash
    assert "curl --fail --silent --show-error --retry 3 --retry-all-errors" in text, "MISP's API calls retry"


KEY, EMAIL, LABEL = "k" * 40, "admin@kind.test", "e2e-1-1"
PASSWORD = "not-a-password"  # pragma: allowlist secret (the fake server's own)
SESSION = "session=signed"


class MispAndDashboard(http.server.BaseHTTPRequestHandler):
    """MISP's API and the dashboard, each as far as feed-and-login.sh uses them, told apart by Host.
    ``lost`` saves are published while no subscriber listens (a ZeroMQ PUB socket drops them)."""

    lost = 0
    reject_session = False
    saves: list[str]

    def log_message(self, *_args: Any) -> None:
        pass

    def answer(self, status: int, body: str = "", headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body.encode())

    def login_redirect(self) -> None:
        # misp-dashboard server.py (3c11250) unauthorized_handler and login: back to the login form
        self.answer(302, headers={"Location": "/login?auth_error=True"})

    def do_POST(self) -> None:  # http.server's name
        body = self.rfile.read(int(self.headers.get("Content-Length", "0"))).decode()
        host, path = self.headers["Host"].split(".")[0], self.path
        if host == "misp-web":
            if self.headers["Authorization"] != KEY:
                self.answer(403)
            elif path in ("/user_settings/setSetting/1/dashboard_access", "/events/add", "/events/edit/7"):
                json.loads(body)
                if path != "/user_settings/setSetting/1/dashboard_access":
                    self.saves.append(path)
                # MISP's REST answer to add and edit: the event, its id first (EventsController add/edit)
                self.answer(200, json.dumps({"Event": {"id": "7", "orgc_id": "1", "info": LABEL}}))
            else:
                self.answer(404)
        elif (host, path) == ("misp-dashboard-web", "/login"):
            form = urllib.parse.parse_qs(body)
            if form == {"username": [EMAIL], "password": [PASSWORD]}:
                # server.py login: login_user, then to the index; flask's session cookie
                self.answer(302, headers={"Location": "/", "Set-Cookie": f"{SESSION}; Secure; HttpOnly; Path=/"})
            else:
                self.login_redirect()
        else:
            self.answer(404)

    def do_GET(self) -> None:  # http.server's name
        url = urllib.parse.urlsplit(self.path)
        if url.path != "/_getTrendingEvents" or not self.headers["Host"].startswith("misp-dashboard-web."):
            self.answer(404)
        elif self.headers.get("Cookie") != SESSION or self.reject_session:
            self.login_redirect()
        else:
            # trendings_helper.py getSpecificTrending: per day, [label, score] once the label is counted
            label = urllib.parse.parse_qs(url.query)["specificLabel"][0]
            counted = [[label, 1.0]] if len(self.saves) > self.lost else []
            self.answer(200, json.dumps([[1765152000, counted]]))


def run_feed_and_login(tmp_path: Path, lost: int, reject_session: bool = False) -> tuple[Any, list[str]]:
    """feed-and-login.sh under sh with the machine's curl, every connection sent to a local server
    (curl --connect-to keeps the names, and so the Host headers); its sleeps are skipped."""
    saves: list[str] = []
    handler = type("Handler", (MispAndDashboard,), {"lost": lost, "reject_session": reject_session, "saves": saves})
    server = http.server.HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    tools = tmp_path / "bin"
    tools.mkdir(parents=True)
    (tools / "curl").write_text(
        f'#!/bin/sh\nexec /usr/bin/curl --connect-to ::127.0.0.1:{server.server_address[1]} "$@"\n'
    )
    (tools / "sleep").write_text("#!/bin/sh\n")
    for tool in tools.iterdir():
        tool.chmod(0o755)
    script = (repository_root() / FEED_AND_LOGIN).read_text()
    try:
        result = subprocess.run(
            ["sh", "-c", script],
            input=f"{KEY}\n{EMAIL}\n{PASSWORD}\n",
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            cwd=tmp_path,
            env={"PATH": f"{tools}:/usr/bin:/bin", "LABEL": LABEL},
        )
    finally:
        server.shutdown()
        server.server_close()
    return result, saves


@pytest.mark.skipif(not Path("/usr/bin/curl").is_file(), reason="no curl on this machine")
def test_the_event_is_saved_again_until_the_dashboard_counts_it(tmp_path):
    result, saves = run_feed_and_login(tmp_path, lost=2)
    assert result.returncode == 0, result.stderr
    assert saves == ["/events/add", "/events/edit/7", "/events/edit/7"]
    assert "dashboard: logged in through MISP" in result.stdout and f"event {LABEL} counted" in result.stdout


@pytest.mark.skipif(not Path("/usr/bin/curl").is_file(), reason="no curl on this machine")
def test_a_rejected_session_or_an_event_never_counted_says_so(tmp_path):
    result, _ = run_feed_and_login(tmp_path / "session", lost=0, reject_session=True)
    assert result.returncode == 1 and "rejected the session (302" in result.stderr, result.stderr
    result, saves = run_feed_and_login(tmp_path / "never", lost=100)
    assert result.returncode == 1, result.stderr
    assert "did not count event e2e-1-1 within 5 minutes, saved 10 times" in result.stderr
    assert len(saves) == 10


def test_kind_keeps_attachments_out_of_s3(real_report):
    for name in ("misp-workers", "misp-web"):
        env = {e["name"]: e.get("value") for e in container(deployment(real_report, "misp", name), "misp-core")["env"]}
        assert not env["ATTACHMENTS_DIR"].startswith("s3"), name


# --- 5. disk and runner size -------------------------------------------------------------------------


def test_the_disk_is_freed_before_anything_lands_on_it():
    names = [item.get("name") for item in steps()]
    freed = names.index("Free the runner's disk")
    assert freed < names.index("Check out") and freed < names.index("Create the kind cluster")
    for directory in ("/usr/share/dotnet", "/usr/local/lib/android", "/opt/ghc", "/opt/hostedtoolcache/CodeQL"):
        assert directory in steps()[freed]["run"], directory


_QUANTITY = re.compile(r"^(?P<number>\d+(?:\.\d+)?)(?P<unit>m|Ki|Mi|Gi)?$")
_UNITS = {None: Decimal(1), "m": Decimal("0.001"), "Ki": Decimal(2**10), "Mi": Decimal(2**20), "Gi": Decimal(2**30)}


def quantity(text: str) -> Decimal:
    match = _QUANTITY.match(str(text))
    assert match, text
    return Decimal(match["number"]) * _UNITS[match["unit"]]


def requested(report: Any) -> tuple[Decimal, Decimal]:
    """CPU and memory (bytes) the kind trees' Deployments request at their least: replicas, or the
    HorizontalPodAutoscaler's minimum; per pod, its containers' sum or its largest init container."""
    resources = kind_trees(report)
    minimum = {
        (r.namespace, r.obj["spec"]["scaleTargetRef"]["name"]): r.obj["spec"]["minReplicas"]
        for r in resources
        if r.kind == "HorizontalPodAutoscaler"
    }
    cpu = memory = Decimal(0)
    for resource in resources:
        if resource.kind != "Deployment":
            continue
        spec = resource.obj["spec"]
        replicas = spec.get("replicas", minimum.get((resource.namespace, resource.name), 1))
        pod = spec["template"]["spec"]

        def total(containers: list[dict[str, Any]], key: str) -> Decimal:
            return sum(
                (quantity(c.get("resources", {}).get("requests", {}).get(key, "0")) for c in containers), Decimal(0)
            )

        inits = pod.get("initContainers", [])
        pod_cpu = max([total(pod["containers"], "cpu"), *(total([c], "cpu") for c in inits)])
        pod_memory = max([total(pod["containers"], "memory"), *(total([c], "memory") for c in inits)])
        cpu += replicas * pod_cpu
        memory += replicas * pod_memory
    return cpu, memory


def test_the_stated_runner_size_follows_from_the_requests(real_report):
    cpu, memory = requested(real_report)
    header = E2E_WORKFLOW.read_text()
    stated = re.search(r"request (?P<cpu>[\d.]+) CPU and (?P<memory>[\d.]+) GiB", header.replace("\n#", ""))
    assert stated, "the header states the requests"
    assert Decimal(stated["cpu"]) == round(cpu, 1) and Decimal(stated["memory"]) == round(memory / GIB, 1), (
        f"requests are {cpu} CPU and {memory / GIB:.2f} GiB"
    )
    # A 2-vCPU 7 GB runner: the applications alone take nearly all its memory, before Flux, the
    # controllers, Kubernetes and the nodes; 4 vCPUs and 16 GB leave room for them.
    assert memory > Decimal("0.9") * 7 * 10**9 and cpu > 2
    assert memory < Decimal("0.5") * 16 * 10**9 and cpu <= 4
    assert "4 vCPUs and 16 GB" in header.replace("\n# ", " ")
    readme = (repository_root() / "README.md").read_text().replace("\n", " ")
    assert "4 vCPUs and 16 GB" in readme
    assert f"request {stated['cpu']} CPU and {stated['memory']} GiB" in readme, "README states the same requests"


# --- 6. staging's Flux flags ------------------------------------------------------------------------


def test_flux_runs_with_stagings_controller_flags(tmp_path: Path):
    """The install step builds staging's flux-system kustomization over `flux install --export`: done
    here with the pinned kubectl over stand-ins for Flux's controller Deployments, the lockdown flags land."""
    script = step("Install Flux with staging's controller flags")["run"]
    assert "cp clusters/staging/flux-system/kustomization.yaml" in script
    assert 'flux install --export > "$dir/gotk-components.yaml"' in script
    assert ': > "$dir/gotk-sync.yaml"' in script and 'kubectl apply --server-side -k "$dir"' in script
    staging = yaml.safe_load(STAGING_FLUX.read_text())
    assert sorted(staging["resources"]) == ["gotk-components.yaml", "gotk-sync.yaml"], "the two files the step writes"
    shutil.copy(STAGING_FLUX, tmp_path / "kustomization.yaml")
    (tmp_path / "gotk-sync.yaml").write_text("")
    stand_ins = [
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name, "namespace": "flux-system"},
            "spec": {"template": {"spec": {"containers": [{"name": "manager", "args": ["--log-level=info"]}]}}},
        }
        for name in FLUX_CONTROLLERS
    ]
    (tmp_path / "gotk-components.yaml").write_text(yaml.safe_dump_all(stand_ins))
    built = subprocess.run(
        [venv_tool("kubectl"), "kustomize", str(tmp_path)], capture_output=True, text=True, check=True, timeout=60
    )
    args = {
        d["metadata"]["name"]: d["spec"]["template"]["spec"]["containers"][0]["args"]
        for d in yaml.safe_load_all(built.stdout)
    }
    assert "--no-remote-bases=true" in args["kustomize-controller"]
    for name in ("kustomize-controller", "helm-controller", "notification-controller"):
        assert "--no-cross-namespace-refs=true" in args[name], name
    assert "flux install\n" not in script and not script.rstrip().endswith("flux install")


# --- 7. loading the dashboard image -----------------------------------------------------------------


def test_the_dashboard_image_is_loaded_as_a_single_platform_archive():
    script = step("Build and load the dashboard image")["run"]
    assert "kind load docker-image" not in script
    assert re.search(r"docker image save --platform \S+ --output (\S+) .*\n.*kind load image-archive \1", script)
    # the daemon's platform, which docker build built for, never a fixed one
    assert "platform=\"$(docker version --format '{{.Server.Os}}/{{.Server.Arch}}')\"" in script
    assert 'docker image save --platform "$platform" ' in script


# --- the ref Flux follows ----------------------------------------------------------------------------


def test_only_a_branch_is_reconciled_and_that_is_checked_first():
    first = steps()[0]
    assert '[[ "$GITHUB_REF_TYPE" != branch ]]' in first["run"] and "exit 1" in first["run"]
    assert workflow()[True]["push"] == {"branches": ["**"]}, "pushes of tags do not start it"
    source = step("Reconcile this commit from clusters/kind")["run"]
    assert '--branch="${GITHUB_REF_NAME}"' in source and '--commit="${GITHUB_SHA}"' in source
