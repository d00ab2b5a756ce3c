"""An environment: ``clusters/<env>/`` with its eksctl ClusterConfig and its settings file."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from misp_eks import envsubst
from misp_eks.cluster_vars import ClusterVars
from misp_eks.eksctl import ClusterConfig
from misp_eks.models import field_errors
from misp_eks.problems import Problem, UserError
from misp_eks.settings import Settings
from misp_eks.yamlio import load_mapping, parse_documents, read_text

M = TypeVar("M", bound=BaseModel)

CLUSTERS_DIR = "clusters"
CLUSTER_FILE = "cluster.yaml"
SETTINGS_FILE = "settings.yaml"

# What the bootstrap knows before eksctl runs, and so may substitute into cluster.yaml
# (eksctl itself expands no variables). Rendering fails on any other ${name}.
CLUSTER_TEMPLATE_VARS = (
    "cluster_name",
    "aws_region",
    "aws_account_id",
    "hosted_zone_id",
    "secrets_prefix",
    "attachments_bucket",
    "eks_kms_key_arn",
)
_EKS_KMS_KEY_EXAMPLE = "arn:aws:kms:eu-west-1:111122223333:key/00000000-0000-0000-0000-000000000000"


def cluster_template_examples(cluster_name: str, region: str) -> dict[str, str]:
    """Example values for cluster.yaml's placeholders (the cluster-vars examples where they overlap)."""
    example = ClusterVars.example().data()
    values = {name: example[name] for name in CLUSTER_TEMPLATE_VARS if name in example}
    return {
        **values,
        "cluster_name": cluster_name,
        "aws_region": region,
        "eks_kms_key_arn": _EKS_KMS_KEY_EXAMPLE,
    }


def validation_problems(error: ValidationError, where: str, obj: str) -> list[Problem]:
    """Turn a pydantic error into one problem per failing field."""
    return [Problem(where, message, obj=obj, field=location) for location, message in field_errors(error)]


def parse_model(model: type[M], data: object, where: str, obj: str) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as error:
        problems = validation_problems(error, where, obj)
        raise UserError(problems[0]) from None


@dataclass(frozen=True)
class Environment:
    name: str
    root: Path
    cluster: ClusterConfig
    settings: Settings
    cluster_text: str
    """cluster.yaml as committed, with its ${...} placeholders."""

    @property
    def directory(self) -> Path:
        return self.root / CLUSTERS_DIR / self.name

    @property
    def cluster_name(self) -> str:
        return self.cluster.metadata.name

    @property
    def region(self) -> str:
        return self.cluster.metadata.region

    @property
    def kubernetes_version(self) -> str:
        return self.cluster.metadata.version

    def render_cluster_config(self, values: dict[str, str]) -> str:
        """cluster.yaml with the bootstrap's values filled in, for ``eksctl create cluster -f -``."""
        return render_cluster_text(self.cluster_text, values, f"{CLUSTERS_DIR}/{self.name}/{CLUSTER_FILE}")


REQUIRED_ZONES = 3
"""MISP, its database and its caches must survive the loss of any one zone: exactly three."""


def availability_problems(environment: Environment) -> list[Problem]:
    """High-availability rules on the eksctl config that the bootstrap enforces before any AWS call."""
    where = f"{CLUSTERS_DIR}/{environment.name}/{CLUSTER_FILE}"
    cluster = environment.cluster
    problems = []
    zones = cluster.availabilityZones
    if len(zones) != REQUIRED_ZONES or len(set(zones)) != len(zones):
        problems.append(
            Problem(
                where,
                f"needs exactly {REQUIRED_ZONES} distinct zones (has {len(set(zones))}: {', '.join(zones) or 'none'})",
                obj="ClusterConfig",
                field="availabilityZones",
            )
        )
    for index, group in enumerate(cluster.managedNodeGroups):
        if not group.privateNetworking:
            problems.append(
                Problem(
                    where,
                    f"node group {group.name} must set privateNetworking: true (nodes stay in private subnets)",
                    obj="ClusterConfig",
                    field=f"managedNodeGroups[{index}].privateNetworking",
                )
            )
    if environment.settings.tier == "production" and cluster.vpc.nat.gateway != "HighlyAvailable":
        problems.append(
            Problem(
                where,
                "production needs HighlyAvailable (one NAT gateway per zone)",
                obj="ClusterConfig",
                field="vpc.nat.gateway",
            )
        )
    return problems


def environment_names(root: Path) -> list[str]:
    base = root / CLUSTERS_DIR
    if not base.is_dir():
        return []
    return sorted(p.name for p in base.iterdir() if (p / CLUSTER_FILE).is_file())


def render_cluster_text(text: str, values: dict[str, str], where: str) -> str:
    result = envsubst.substitute(text, values)
    if result.unsupported:
        raise UserError(Problem(where, f"{result.unsupported[0]}: unsupported substitution expression"))
    unknown = result.used - set(CLUSTER_TEMPLATE_VARS)
    if unknown:
        raise UserError(
            Problem(
                where,
                f"uses ${{{sorted(unknown)[0]}}}, which the bootstrap does not provide "
                f"(it provides {', '.join(CLUSTER_TEMPLATE_VARS)})",
            )
        )
    if result.undefined:
        raise UserError(Problem(where, f"cannot render ${{{result.undefined[0]}}}: no value"))
    return result.text


def load_environment(root: Path, name: str) -> Environment:
    """Load and validate ``clusters/<name>/``; any problem is a :class:`UserError` naming file and field."""
    directory = root / CLUSTERS_DIR / name
    if not (directory / CLUSTER_FILE).is_file():
        known = ", ".join(environment_names(root)) or "none"
        raise UserError(Problem(f"{CLUSTERS_DIR}/{name}", f"no such environment (known: {known})"))
    cluster_where = f"{CLUSTERS_DIR}/{name}/{CLUSTER_FILE}"
    settings_where = f"{CLUSTERS_DIR}/{name}/{SETTINGS_FILE}"
    cluster_text = read_text(directory / CLUSTER_FILE, cluster_where)
    # The committed file is validated with example values in its placeholders; its own name
    # and region are read first, since the rest of the file may refer to them.
    raw = parse_documents(cluster_text, cluster_where)
    if len(raw) != 1 or not isinstance(raw[0], dict):
        raise UserError(Problem(cluster_where, "expected exactly one ClusterConfig document"))
    metadata = raw[0].get("metadata") if isinstance(raw[0].get("metadata"), dict) else {}
    examples = cluster_template_examples(str(metadata.get("name", "")), str(metadata.get("region", "")))
    rendered = render_cluster_text(cluster_text, examples, cluster_where)
    cluster = parse_model(ClusterConfig, parse_documents(rendered, cluster_where)[0], cluster_where, "ClusterConfig")
    settings = parse_model(
        Settings, load_mapping(directory / SETTINGS_FILE, settings_where), settings_where, "settings"
    )
    return Environment(name=name, root=root, cluster=cluster, settings=settings, cluster_text=cluster_text)
