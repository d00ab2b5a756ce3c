"""Every AWS name derived from the cluster name fits its service's limit, or one message names the field."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import botocore.session
import pytest

from misp_eks import naming
from misp_eks.environment import Environment, load_environment
from misp_eks.provision import names
from misp_eks.provision.names import derived_names, name_problems
from tests.validate.fixtures import CLUSTER, expect, write_repository

PROD = load_environment(Path(__file__).resolve().parents[2], "prod")


def _named(env: Environment, length: int) -> Environment:
    name = ("misp-" + "x" * length)[:length]
    metadata = env.cluster.metadata.model_copy(update={"name": name})
    return dataclasses.replace(env, cluster=env.cluster.model_copy(update={"metadata": metadata}))


def _tightest(env: Environment) -> int:
    return min(item.longest_cluster_name for item in derived_names(env))


def test_the_longest_cluster_name_passes_and_one_more_character_fails() -> None:
    longest = _tightest(PROD)
    assert longest == 40 - len("-dashboard")  # ElastiCache's replication group IDs are the tightest today
    assert name_problems(_named(PROD, longest)) == []
    (problem,) = name_problems(_named(PROD, longest + 1))
    assert (problem.where, problem.obj, problem.field) == (
        "clusters/prod/cluster.yaml",
        "ClusterConfig",
        "metadata.name",
    )
    assert f"ElastiCache replication group ID {'misp-' + 'x' * (longest - 4)}-dashboard (41 > 40)" in problem.message
    assert problem.message.endswith(f"shorten it to {longest} characters or fewer")


@pytest.mark.parametrize("index", range(len(derived_names(PROD))), ids=[d.name for d in derived_names(PROD)])
def test_each_derived_name_at_its_limit(index: int) -> None:
    item = derived_names(PROD)[index]
    at_limit = derived_names(_named(PROD, item.longest_cluster_name))[index]
    assert len(at_limit.name) == item.rule.limit and not at_limit.too_long
    over = derived_names(_named(PROD, item.longest_cluster_name + 1))[index]
    assert len(over.name) == item.rule.limit + 1 and over.too_long


def test_cache_groups_are_never_cut() -> None:
    long = "a" * 45
    assert naming.cache_group(long, "misp") == f"{long}-misp"


def test_role_names_come_from_cluster_yaml() -> None:
    roles = {item.name for item in derived_names(PROD) if item.rule is names.IAM_ROLE}
    assert "misp-prod-aws-load-balancer-controller" in roles and "misp-prod-external-secrets" in roles
    template = "roleName: ${cluster_name}-external-dns"
    assert template in PROD.cluster_text
    text = PROD.cluster_text.replace(template, "roleName: ${cluster_name}-" + "r" * 60)
    (problem,) = name_problems(dataclasses.replace(PROD, cluster_text=text))
    assert f"IAM role name misp-prod-{'r' * 60} (70 > 64)" in problem.message


def test_a_name_with_upper_case_or_double_hyphens_is_refused() -> None:
    for bad in ("Misp-prod", "misp--prod", "misp-prod-"):
        env = dataclasses.replace(
            PROD,
            cluster=PROD.cluster.model_copy(
                update={"metadata": PROD.cluster.metadata.model_copy(update={"name": bad})}
            ),
        )
        (problem,) = name_problems(env)
        assert "lower-case letters, digits and single hyphens" in problem.message


@pytest.mark.parametrize("rule", names.RULES, ids=[rule.what for rule in names.RULES])
def test_limits_are_the_service_models_own(rule: names.NameRule) -> None:
    shape = botocore.session.get_session().get_service_model(rule.service).operation_model(rule.operation)
    member = shape.input_shape.members[rule.member]
    if rule is names.BUCKET:
        return  # S3's bucket naming rules (3 to 63 characters) are not in its service model
    if "max" in member.metadata:
        assert member.metadata["max"] == rule.limit
        return
    text = re.sub(r"<[^>]+>", " ", member.documentation)
    stated = {int(number) for number in re.findall(r"\b(\d+) (?:letters|alphanumeric|characters)", text)}
    stated |= {int(number) - 1 for number in re.findall(r"less than (\d+) characters", text)}
    stated |= {int(number) for number in re.findall(r"longer than (\d+) characters", text)}
    stated |= {int(number) for number in re.findall(r"Up to (\d+) characters", text)}
    assert rule.limit in stated, text


def test_scripts_validate_reports_a_name_too_long(tmp_path: Path) -> None:
    repo = write_repository(tmp_path)
    repo.replace(CLUSTER, "  name: demo-prod\n", "  name: demo-prod-with-a-long-name-xxxx\n")  # 31 characters
    found = expect(repo.validate(), where=CLUSTER, obj="ClusterConfig", field="metadata.name", message="too long")
    assert "ElastiCache replication group ID demo-prod-with-a-long-name-xxxx-dashboard (41 > 40)" in found.message
