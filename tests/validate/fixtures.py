"""A small but complete repository of the project's shape, written into a temporary directory.

Every test that proves a check catches something starts from this valid repository, breaks exactly
one file with the helpers of :class:`FixtureRepo`, validates, and looks for the one expected problem.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from misp_eks.paths import repository_root
from misp_eks.problems import Problem
from misp_eks.validate.runner import Report, validate_repository
from misp_eks.yamlio import dump_all

ENV = "prod"
CLUSTER = f"clusters/{ENV}/cluster.yaml"
SETTINGS = f"clusters/{ENV}/settings.yaml"
INFRA = f"clusters/{ENV}/infrastructure.yaml"
APPS = f"clusters/{ENV}/apps.yaml"
RELEASE = "infrastructure/controllers/podinfo.yaml"
BASE = "apps/demo/base"
DEPLOYMENT = f"{BASE}/deployment.yaml"
SERVICE = f"{BASE}/service.yaml"
INGRESS = f"{BASE}/ingress.yaml"
AUTOSCALING = f"{BASE}/autoscaling.yaml"
CONFIG = f"{BASE}/config.yaml"
EXTERNAL_SECRET = f"{BASE}/external-secret.yaml"
NETWORK_POLICY = f"{BASE}/network-policy.yaml"
NAMESPACE = "demo"

CLUSTER_YAML = """\
apiVersion: eksctl.io/v1alpha5
kind: ClusterConfig
metadata:
  name: demo-prod
  region: eu-west-1
  version: "1.35"
  tags:
    environment: prod
availabilityZones: [eu-west-1a, eu-west-1b, eu-west-1c]
vpc:
  cidr: 10.20.0.0/16
  nat:
    gateway: HighlyAvailable
accessConfig:
  authenticationMode: API
secretsEncryption:
  keyARN: ${eks_kms_key_arn}
iam:
  podIdentityAssociations:
    - namespace: demo
      serviceAccountName: demo
      roleName: ${cluster_name}-demo
      permissionPolicy:
        Version: "2012-10-17"
        Statement:
          - Effect: Allow
            Action: [secretsmanager:GetSecretValue]
            Resource: arn:aws:secretsmanager:${aws_region}:${aws_account_id}:secret:${secrets_prefix}/*
managedNodeGroups:
  - name: general-a
    availabilityZones: [eu-west-1a]
    instanceTypes: [m7i.large]
    minSize: 1
    desiredCapacity: 1
    maxSize: 3
    privateNetworking: true
  - name: general-b
    availabilityZones: [eu-west-1b]
    instanceTypes: [m7i.large]
    minSize: 1
    desiredCapacity: 1
    maxSize: 3
    privateNetworking: true
  - name: general-c
    availabilityZones: [eu-west-1c]
    instanceTypes: [m7i.large]
    minSize: 1
    desiredCapacity: 1
    maxSize: 3
    privateNetworking: true
"""

SETTINGS_YAML = """\
tier: production
domain: example.org
hostnames:
  misp: misp.example.org
  dashboard: misp-dashboard.example.org
ingress:
  scheme: internet-facing
  allowed_cidrs: [0.0.0.0/0]
  waf_acl_arn: null
misp:
  admin_email: misp-admin@example.org
  org: Example Sharing Community
  email: misp@example.org
database:
  engine: mariadb
  engine_version: "11.4.5"
  instance_class: db.m7g.large
  allocated_storage_gib: 100
  max_allocated_storage_gib: 500
  backup_retention_days: 30
caches:
  engine: valkey
  engine_version: "8.0"
  snapshot_retention_days: 7
  misp:
    node_type: cache.m7g.large
    nodes: 2
  dashboard:
    node_type: cache.t4g.medium
    nodes: 2
gitops:
  provider: github
  url: https://github.com/example-org/misp-eks
  branch: main
alarm_email: secops@example.org
tags:
  owner: secops
"""

KUSTOMIZE_HEADER = "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"


def flux_kustomization(name: str, path: str, depends_on: Iterable[str] = ()) -> str:
    depends = "".join(f"    - name: {dep}\n" for dep in depends_on)
    return f"""\
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: {name}
  namespace: flux-system
spec:
{"  dependsOn:" + chr(10) + depends if depends else ""}  interval: 1h
  sourceRef:
    kind: GitRepository
    name: flux-system
  path: ./{path}
  prune: true
  wait: true
  postBuild:
    substituteFrom:
      - kind: ConfigMap
        name: cluster-vars
"""


FILES: dict[str, str] = {
    CLUSTER: CLUSTER_YAML,
    SETTINGS: SETTINGS_YAML,
    f"clusters/{ENV}/kustomization.yaml": KUSTOMIZE_HEADER
    + "resources:\n  - flux-system\n  - infrastructure.yaml\n  - apps.yaml\n",
    f"clusters/{ENV}/flux-system/kustomization.yaml": KUSTOMIZE_HEADER
    + "resources:\n  - gotk-components.yaml\n  - gotk-sync.yaml\n",
    f"clusters/{ENV}/flux-system/gotk-components.yaml": "# Written by `flux bootstrap`.\n",
    f"clusters/{ENV}/flux-system/gotk-sync.yaml": "# Written by `flux bootstrap`.\n",
    INFRA: flux_kustomization("infra-controllers", "infrastructure/controllers"),
    APPS: flux_kustomization("demo", "apps/demo/prod", depends_on=["infra-controllers"]),
    "infrastructure/controllers/kustomization.yaml": KUSTOMIZE_HEADER
    + "resources:\n  - podinfo.yaml\n  - secret-store.yaml\n",
    RELEASE: """\
apiVersion: source.toolkit.fluxcd.io/v1
kind: HelmRepository
metadata:
  name: podinfo
  namespace: flux-system
spec:
  interval: 24h
  url: https://stefanprodan.github.io/podinfo
---
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata:
  name: podinfo
  namespace: flux-system
spec:
  interval: 1h
  releaseName: podinfo
  targetNamespace: podinfo
  chart:
    spec:
      chart: podinfo
      version: 6.7.1
      sourceRef:
        kind: HelmRepository
        name: podinfo
  install:
    strategy:
      name: RetryOnFailure
      retryInterval: 5m
  upgrade:
    strategy:
      name: RetryOnFailure
  driftDetection:
    mode: enabled
  values:
    ingress:
      hosts:
        - host: podinfo.${domain}
""",
    "infrastructure/controllers/secret-store.yaml": """\
apiVersion: external-secrets.io/v1
kind: ClusterSecretStore
metadata:
  name: aws-secrets-manager
spec:
  provider:
    aws:
      service: SecretsManager
      region: ${aws_region}
  conditions:
    - namespaces: [demo]
""",
    f"{BASE}/kustomization.yaml": KUSTOMIZE_HEADER
    + """\
namespace: demo
labels:
  - pairs:
      app.kubernetes.io/part-of: demo
resources:
  - deployment.yaml
  - service.yaml
  - ingress.yaml
  - autoscaling.yaml
  - config.yaml
  - external-secret.yaml
  - network-policy.yaml
""",
    DEPLOYMENT: """\
apiVersion: v1
kind: ServiceAccount
metadata:
  name: demo
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: demo
  labels:
    app.kubernetes.io/name: demo
spec:
  replicas: 2
  selector:
    matchLabels:
      app.kubernetes.io/name: demo
  template:
    metadata:
      labels:
        app.kubernetes.io/name: demo
    spec:
      serviceAccountName: demo
      containers:
        - name: web
          image: ghcr.io/example/demo:1.0.0
          ports:
            - name: http
              containerPort: 8080
          readinessProbe:
            httpGet:
              path: /healthz
              port: http
          env:
            - name: DEMO_URL
              value: https://${misp_hostname}/
            - name: DEMO_MODE
              valueFrom:
                configMapKeyRef:
                  name: demo-config
                  key: mode
            - name: DEMO_TOKEN
              valueFrom:
                secretKeyRef:
                  name: demo-credentials
                  key: token
          envFrom:
            - configMapRef:
                name: demo-config
          volumeMounts:
            - name: config
              mountPath: /etc/demo
              readOnly: true
      volumes:
        - name: config
          configMap:
            name: demo-config
""",
    SERVICE: """\
apiVersion: v1
kind: Service
metadata:
  name: demo
spec:
  selector:
    app.kubernetes.io/name: demo
  ports:
    - name: http
      port: 80
      targetPort: http
""",
    INGRESS: """\
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: demo
  annotations:
    alb.ingress.kubernetes.io/scheme: ${ingress_scheme}
    alb.ingress.kubernetes.io/certificate-arn: ${misp_certificate_arn}
    alb.ingress.kubernetes.io/success-codes: "200"
spec:
  ingressClassName: alb
  rules:
    - host: ${misp_hostname}
      http:
        paths:
          - path: /
            pathType: Prefix
            backend:
              service:
                name: demo
                port:
                  name: http
""",
    AUTOSCALING: """\
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: demo
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: demo
  minReplicas: 2
  maxReplicas: 4
  metrics:
    - type: Resource
      resource:
        name: cpu
        target:
          type: Utilization
          averageUtilization: 70
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: demo
spec:
  maxUnavailable: 1
  selector:
    matchLabels:
      app.kubernetes.io/name: demo
""",
    CONFIG: """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: demo-config
data:
  mode: production
  domain: ${domain}
""",
    EXTERNAL_SECRET: """\
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata:
  name: demo-credentials
spec:
  refreshInterval: 1h
  secretStoreRef:
    kind: ClusterSecretStore
    name: aws-secrets-manager
  target:
    name: demo-credentials
  data:
    - secretKey: token
      remoteRef:
        key: ${secrets_prefix}/demo
        property: token
""",
    NETWORK_POLICY: """\
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: demo
spec:
  podSelector:
    matchLabels:
      app.kubernetes.io/name: demo
  policyTypes: [Ingress]
  ingress:
    - from:
        - ipBlock:
            cidr: ${vpc_cidr}
      ports:
        - protocol: TCP
          port: 8080
""",
    "apps/demo/prod/kustomization.yaml": KUSTOMIZE_HEADER + "resources:\n  - ../base\n",
}


@dataclass
class FixtureRepo:
    root: Path

    def path(self, relative: str) -> Path:
        return self.root / relative

    def read(self, relative: str) -> str:
        return self.path(relative).read_text(encoding="utf-8")

    def write(self, relative: str, text: str) -> None:
        target = self.path(relative)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")

    def replace(self, relative: str, old: str, new: str) -> None:
        """Replace the one occurrence of ``old`` (a test that breaks nothing would prove nothing)."""
        text = self.read(relative)
        assert text.count(old) == 1, f"{relative}: expected {old!r} exactly once"
        self.write(relative, text.replace(old, new))

    def append(self, relative: str, text: str) -> None:
        self.write(relative, self.read(relative) + text)

    def documents(self, relative: str) -> list[Any]:
        return [doc for doc in yaml.safe_load_all(self.read(relative)) if doc is not None]

    def edit(self, relative: str, change: Callable[[dict[str, Any]], None], kind: str | None = None) -> None:
        """Load ``relative``, apply ``change`` to its only document (or its one document of ``kind``), dump it."""
        docs = self.documents(relative)
        chosen = [d for d in docs if kind is None or d.get("kind") == kind]
        assert len(chosen) == 1, f"{relative}: expected one document of kind {kind}, found {len(chosen)}"
        change(chosen[0])
        self.write(relative, dump_all(docs))

    def add_resource(self, kustomization_dir: str, name: str, text: str) -> None:
        """Write ``name`` into ``kustomization_dir`` and list it in that directory's resources."""
        self.write(f"{kustomization_dir}/{name}", text)
        self.edit(f"{kustomization_dir}/kustomization.yaml", lambda k: k["resources"].append(name))

    def validate(self) -> Report:
        return validate_repository(self.root, workers=2)


def write_repository(root: Path) -> FixtureRepo:
    for relative, text in FILES.items():
        target = root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    return FixtureRepo(root)


def problems(report: Report) -> list[Problem]:
    return sorted(set(report.all_problems()))


def render(found: Iterable[Problem]) -> str:
    return "\n".join(str(p) for p in found) or "(no problems)"


def matching(
    report: Report,
    where: str | None = None,
    obj: str | None = None,
    field: str | None = None,
    message: str = "",
) -> list[Problem]:
    """The problems with exactly these where/obj/field (those given) whose message contains ``message``."""
    return [
        p
        for p in problems(report)
        if (where is None or p.where == where)
        and (obj is None or p.obj == obj)
        and (field is None or p.field == field)
        and message in p.message
    ]


def expect(
    report: Report,
    where: str | None = None,
    obj: str | None = None,
    field: str | None = None,
    message: str = "",
) -> Problem:
    """Assert that the report holds such a problem, and return it; on failure, print every problem."""
    found = matching(report, where, obj, field, message)
    wanted = f"where={where!r} obj={obj!r} field={field!r} message~{message!r}"
    assert found, f"no problem with {wanted}; got:\n{render(problems(report))}"
    return found[0]


@cache
def repository_report() -> Report:
    """The real repository, validated with every project policy: once per test process.

    test_repository.py needs the trees at collection time (one test per tree) and its tests need the
    report: both get this one cached run.
    """
    from misp_eks.policies import ALL_POLICIES

    return validate_repository(repository_root(), policies=ALL_POLICIES)
