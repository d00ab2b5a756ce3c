"""The kind cluster of the end-to-end workflow: ``clusters/kind/``, and what stands in for AWS there.

``.github/workflows/e2e.yaml`` creates a kind cluster from ``clusters/kind/kind-cluster.yaml``,
installs Flux, and reconciles ``clusters/kind``: staging's Flux Kustomizations, pointed at the kind
overlays, which drop what needs AWS (the load balancer controller, external-dns, the autoscaler,
the Ingresses) and add an in-cluster MariaDB and two Redis servers, with TLS and passwords, in place
of RDS and ElastiCache, and a TLS proxy in place of MISP's load balancer (``LOAD_BALANCER_HOST``:
MISP's hostname in kind, which the dashboard logs in through). ``python -m misp_eks.kind DIR``
writes what the workflow applies besides:

- ``before-flux.yaml``: the namespaces, ``cluster-vars`` with the in-cluster endpoints, the data
  servers' TLS and passwords, and the CA the MISP and dashboard containers trust;
- ``secret-store.yaml``: the ClusterSecretStore ``aws-secrets-manager`` of External Secrets' fake
  provider, holding every application secret, made now by the bootstrap's own generators, and,
  in kind only, MISP's admin API key (``ADMIN_KEY`` in misp/app), with which the workflow creates
  an event.

Nothing of it is in git: every run makes new secrets and a new CA.
"""

from __future__ import annotations

import base64
import json
import os
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import certifi
import yaml
from pydantic import Field

from misp_eks import local_tls, naming
from misp_eks.cluster_vars import ClusterVars
from misp_eks.environment import CLUSTERS_DIR, parse_model
from misp_eks.models import StrictModel
from misp_eks.paths import repository_root
from misp_eks.problems import Problem, UserError
from misp_eks.provision import credentials, gpg
from misp_eks.provision.errors import BootstrapError
from misp_eks.provision.secrets import Sources, generate
from misp_eks.provision.tools import Tools
from misp_eks.settings import EmailSettings, Misp
from misp_eks.yamlio import load_mapping

NAME = "kind"
CONFIG_FILE = "kind-cluster.yaml"
STORE_NAME = naming.SECRET_STORE
"""The name the applications' ExternalSecrets use (infrastructure/configs/base)."""
STORE_NAMESPACES = ("misp", "misp-dashboard")
DATA_NAMESPACE = "e2e-data"
PROBE_NAMESPACE = "e2e-probe"
"""Where the workflow's throwaway client pods run: outside the applications' namespaces, under no policy."""
DATA_SECRET = "e2e-data"  # noqa: S105  # pragma: allowlist secret (a Secret's name)
"""The data servers' passwords (clusters/kind/data)."""
DATA_TLS_SECRET = "e2e-data-tls"  # noqa: S105  # pragma: allowlist secret (a Secret's name)
TRUST_SECRET = "e2e-trust"  # noqa: S105  # pragma: allowlist secret (a Secret's name)
"""In each application namespace: this run's CA alone, and the public CAs plus it as one bundle."""
TRUST_BUNDLE_KEY = "ca-certificates.crt"
TRUST_CA_KEY = "ca.crt"
DATABASE_HOST = f"mariadb.{DATA_NAMESPACE}.svc.cluster.local"
MISP_REDIS_HOST = f"misp-redis.{DATA_NAMESPACE}.svc.cluster.local"
DASHBOARD_REDIS_HOST = f"dashboard-redis.{DATA_NAMESPACE}.svc.cluster.local"
LOAD_BALANCER_HOST = f"misp.{DATA_NAMESPACE}.svc.cluster.local"
"""MISP's hostname in kind: the TLS proxy that stands in for its load balancer (apps/misp/kind/load-balancer)."""
SERVER_HOSTS = (DATABASE_HOST, MISP_REDIS_HOST, DASHBOARD_REDIS_HOST, LOAD_BALANCER_HOST)
"""The names the run's one server certificate is valid for."""
ADMIN_KEY = "ADMIN_KEY"
"""misp-docker's variable for the admin's API key (core/files/configure_misp.sh, init_user): kind only."""
ADMIN_KEY_LENGTH = 40  # alphanumeric, as MISP app/Console/Command/UserShell.php change_authkey requires
DATABASE_MASTER_USER = "root"  # the mariadb image's superuser (MARIADB_ROOT_PASSWORD)
DATABASE_MASTER_KEY = "kind/database-master"
"""Where cluster-vars' db_master_secret_arn points in the fake store."""
NODE_IMAGE = re.compile(r"^kindest/node:v(?P<major>\d+)\.(?P<minor>\d+)\.\d+@sha256:[0-9a-f]{64}$")


class KindNode(StrictModel):
    role: Literal["control-plane", "worker"]
    image: str = Field(pattern=NODE_IMAGE.pattern)
    labels: dict[str, str] = Field(default_factory=dict)


class KindNetworking(StrictModel):
    podSubnet: str
    serviceSubnet: str


class KindCluster(StrictModel):
    """The part of kind's v1alpha4 Cluster config this project uses (kind pkg/apis/config/v1alpha4)."""

    kind: Literal["Cluster"]
    apiVersion: Literal["kind.x-k8s.io/v1alpha4"]
    name: str
    nodes: list[KindNode] = Field(min_length=1)
    networking: KindNetworking


@dataclass(frozen=True)
class KindEnvironment:
    name: str
    config: KindCluster

    @property
    def kubernetes_version(self) -> str:
        images = {node.image for node in self.config.nodes}
        match = NODE_IMAGE.match(sorted(images)[0])
        assert match is not None  # the model's pattern
        return f"{match['major']}.{match['minor']}"


def config_path(root: Path) -> Path:
    return root / CLUSTERS_DIR / NAME / CONFIG_FILE


def load(root: Path) -> KindEnvironment | None:
    """``clusters/kind/`` when it exists; a :class:`UserError` naming the field when it is wrong."""
    path = config_path(root)
    if not path.is_file():
        return None
    where = path.relative_to(root).as_posix()
    config = parse_model(KindCluster, load_mapping(path, where), where, "Cluster")
    if len({node.image for node in config.nodes}) != 1:
        raise UserError(Problem(where, "every node must run the same image", obj="Cluster", field="nodes"))
    return KindEnvironment(NAME, config)


def cluster_vars(config: KindCluster) -> ClusterVars:
    """cluster-vars for kind: in-cluster endpoints; the AWS-only values name nothing that is used."""
    return ClusterVars(
        environment=NAME,
        cluster_name=config.name,
        aws_region="eu-west-1",
        aws_account_id="000000000000",
        vpc_id="vpc-kind",
        # The data servers are pods and Services: the network policies' "VPC" is the cluster's networks.
        vpc_cidr="10.0.0.0/8",
        domain="kind.test",
        hosted_zone_id="none",
        # In kind, MISP's hostname is the TLS proxy in place of its load balancer: BASE_URL and the
        # dashboard's DASHBOARD_MISP_URL (https only) then name a host that resolves and answers.
        misp_hostname=LOAD_BALANCER_HOST,
        dashboard_hostname="dashboard.kind.test",
        misp_certificate_arn="none",
        dashboard_certificate_arn="none",
        ingress_scheme="internal",
        ingress_allowed_cidrs="10.0.0.0/8",
        waf_acl_arn="none",
        secrets_prefix=config.name,
        db_master_secret_arn=DATABASE_MASTER_KEY,
        db_endpoint=DATABASE_HOST,
        misp_redis_endpoint=MISP_REDIS_HOST,
        dashboard_redis_endpoint=DASHBOARD_REDIS_HOST,
        attachments_bucket=f"{config.name}-attachments",
        misp_email_delivery=EmailSettings().delivery,  # kind has no settings.yaml: its defaults
        # No EFS in kind: infrastructure/configs/kind deletes the volume that would use these.
        efs_file_system_id="none",
        efs_access_point_id="none",
    )


@dataclass(frozen=True)
class Generated:
    """One run's secrets: the application secrets by Secrets Manager name, the CA, the data servers' TLS."""

    secrets: dict[str, dict[str, str]]
    authority: local_tls.Pem
    server: local_tls.Pem


def generate_all(
    variables: ClusterVars, gpg_key: Callable[[str, str], gpg.GpgKey], public_cas: str
) -> tuple[Generated, str]:
    """Every application secret and the TLS material; also the trust bundle (public CAs + this CA)."""
    authority = local_tls.new_authority(f"{variables.cluster_name} e2e CA", days=2)
    server = local_tls.issue(authority, SERVER_HOSTS, days=2)
    made: dict[str, dict[str, str]] = {}
    sources = Sources(
        misp_hostname=variables.misp_hostname,
        misp=Misp(admin_email=f"admin@{variables.domain}", org="MISP on kind"),
        gpg_key=gpg_key,
        rds_ca=lambda: authority.cert.decode(),
        read=lambda spec: made[spec.name(variables.secrets_prefix)],
    )
    for spec in naming.SECRETS:  # in order: misp/gpg reads misp/app's passphrase
        made[spec.name(variables.secrets_prefix)] = generate(spec, sources)
    made[naming.MISP_APP.name(variables.secrets_prefix)][ADMIN_KEY] = credentials.alphanumeric(ADMIN_KEY_LENGTH)
    made[DATABASE_MASTER_KEY] = {"username": DATABASE_MASTER_USER, "password": credentials.database_password()}
    return Generated(made, authority, server), public_cas + "\n" + authority.cert.decode()


def placeholder(variables: ClusterVars) -> Generated:
    """The shape of a run's secrets with empty values: what validation checks references against."""
    secrets = {spec.name(variables.secrets_prefix): dict.fromkeys(spec.keys, "") for spec in naming.SECRETS}
    secrets[naming.MISP_APP.name(variables.secrets_prefix)][ADMIN_KEY] = ""
    secrets[DATABASE_MASTER_KEY] = {"username": DATABASE_MASTER_USER, "password": ""}
    empty = local_tls.Pem(b"", b"")
    return Generated(secrets, empty, empty)


def prepared(config: KindCluster) -> list[dict[str, Any]]:
    """Every object the workflow applies besides Flux's, with empty values."""
    variables = cluster_vars(config)
    generated = placeholder(variables)
    return [*before_flux(variables, generated, ""), secret_store(generated)]


def _secret(name: str, namespace: str, data: dict[str, str]) -> dict[str, Any]:
    encoded = {key: base64.b64encode(value.encode()).decode() for key, value in data.items()}
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": namespace}, "data": encoded}


def before_flux(variables: ClusterVars, generated: Generated, trust_bundle: str) -> list[dict[str, Any]]:
    """What must exist before Flux applies clusters/kind."""
    secrets = generated.secrets
    namespaces = [*STORE_NAMESPACES, DATA_NAMESPACE, PROBE_NAMESPACE]
    passwords = {
        "MARIADB_ROOT_PASSWORD": secrets[DATABASE_MASTER_KEY]["password"],
        "MISP_REDIS_PASSWORD": secrets[naming.MISP_REDIS.name(variables.secrets_prefix)]["auth_token"],
        "DASHBOARD_REDIS_PASSWORD": secrets[naming.DASHBOARD_REDIS.name(variables.secrets_prefix)]["auth_token"],
    }
    tls = {
        "tls.crt": generated.server.cert.decode(),
        "tls.key": generated.server.key.decode(),
        "ca.crt": generated.authority.cert.decode(),
    }
    return [
        *({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": n}} for n in namespaces),
        variables.configmap(),
        _secret(DATA_SECRET, DATA_NAMESPACE, passwords),
        _secret(DATA_TLS_SECRET, DATA_NAMESPACE, tls),
        *(
            _secret(TRUST_SECRET, n, {TRUST_BUNDLE_KEY: trust_bundle, TRUST_CA_KEY: tls["ca.crt"]})
            for n in STORE_NAMESPACES
        ),
    ]


def secret_store(generated: Generated) -> dict[str, Any]:
    """The ClusterSecretStore the applications read, with External Secrets' fake provider
    (external-secrets providers/v1/fake: ``key`` matches remoteRef.key, ``property`` is a gjson path)."""
    data = [{"key": name, "value": json.dumps(value)} for name, value in sorted(generated.secrets.items())]
    return {
        "apiVersion": "external-secrets.io/v1",
        "kind": "ClusterSecretStore",
        "metadata": {"name": STORE_NAME},
        "spec": {
            "provider": {"fake": {"data": data}},
            "conditions": [{"namespaces": list(STORE_NAMESPACES)}],
        },
    }


def write(directory: Path, documents: dict[str, list[dict[str, Any]]]) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, objects in documents.items():
        path = directory / name
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as stream:
            yaml.safe_dump_all(objects, stream, sort_keys=False)
        written.append(path)
    return written


def main(argv: list[str] | None = None, root: Path | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m misp_eks.kind DIR   (writes before-flux.yaml and secret-store.yaml)", file=sys.stderr)
        return 2
    try:
        environment = load(root or repository_root())
        if environment is None:
            raise UserError(Problem(f"{CLUSTERS_DIR}/{NAME}/{CONFIG_FILE}", "missing"))
        variables = cluster_vars(environment.config)
        tools = Tools(os.environ)
        generated, bundle = generate_all(
            variables, lambda email, secret: gpg.generate(tools, email, secret), Path(certifi.where()).read_text()
        )
    except UserError as error:
        print(f"error: {error.problem}", file=sys.stderr)
        return 2
    except BootstrapError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    paths = write(
        Path(args[0]),
        {"before-flux.yaml": before_flux(variables, generated, bundle), "secret-store.yaml": [secret_store(generated)]},
    )
    for path in paths:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
