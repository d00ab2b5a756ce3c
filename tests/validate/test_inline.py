"""misp_eks.validate.inline: the cluster-vars written into Flux Kustomizations for flux build --dry-run."""

from __future__ import annotations

import yaml

from misp_eks.cluster_vars import ClusterVars
from misp_eks.kind import cluster_vars
from misp_eks.validate import inline

EXAMPLE = ClusterVars.example().data()


def kustomization(name: str, post_build: dict | None) -> dict:
    spec = {"path": f"./{name}", "sourceRef": {"kind": "GitRepository", "name": "flux-system"}}
    if post_build is not None:
        spec["postBuild"] = post_build
    return {"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
            "metadata": {"name": name, "namespace": "flux-system"}, "spec": spec}  # fmt: skip


TAKES = {"substituteFrom": [{"kind": "ConfigMap", "name": "cluster-vars"}]}


def test_only_kustomizations_that_take_the_cluster_vars_get_them():
    documents = [
        kustomization("a", TAKES),
        kustomization("b", None),
        kustomization("c", {"substituteFrom": [{"kind": "Secret", "name": "cluster-vars"}]}),
        {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization", **TAKES},
    ]
    result = inline.inline(documents, {"vpc_cidr": "10.0.0.0/8"})
    assert result[0]["spec"]["postBuild"]["substitute"] == {"vpc_cidr": "10.0.0.0/8"}
    assert result[0]["spec"]["postBuild"]["substituteFrom"] == TAKES["substituteFrom"]
    assert result[1:] == documents[1:]
    assert "substitute" not in documents[0]["spec"]["postBuild"], "the input is left alone"


def test_an_inline_value_wins():
    """kustomize-controller applies postBuild.substitute over what substituteFrom loads."""
    document = kustomization("a", {**TAKES, "substitute": {"vpc_cidr": "192.168.0.0/16"}})
    result = inline.inline([document], {"vpc_cidr": "10.0.0.0/8", "environment": "prod"})
    assert result[0]["spec"]["postBuild"]["substitute"] == {"vpc_cidr": "192.168.0.0/16", "environment": "prod"}


def test_every_environment_file_gets_the_example_values(repo, tmp_path):
    for env in ("prod", "staging"):
        for name in ("infrastructure", "apps"):
            output = tmp_path / f"{env}-{name}.yaml"
            assert inline.main(["--env", env, "--output", str(output), str(repo / f"clusters/{env}/{name}.yaml")]) == 0
            written = [d for d in yaml.safe_load_all(output.read_text()) if inline.takes_cluster_vars(d)]
            assert written, f"clusters/{env}/{name}.yaml"
            for document in written:
                assert document["spec"]["postBuild"]["substitute"] == EXAMPLE


def test_kind_gets_its_own_values(real_report, repo):
    """What kind's flux-system Kustomization applies (the CI job's kind-applied.yaml) gets kind's cluster-vars."""
    applied = [r.obj for r in real_report.applied("kind", "flux-system") if r.kind == "Kustomization"]
    result = [d for d in inline.inline(applied, inline.variables_of(repo, "kind")) if inline.takes_cluster_vars(d)]
    assert {d["metadata"]["name"] for d in result} >= {"infra-configs", "misp-backend", "e2e-data"}
    expected = cluster_vars(real_report.kind_clusters["kind"].config).data()
    assert all(d["spec"]["postBuild"]["substitute"] == expected for d in result)
    assert expected["vpc_cidr"] != EXAMPLE["vpc_cidr"]


def test_unknown_environment(repo, tmp_path, capsys):
    assert (
        inline.main(["--env", "qa", "--output", str(tmp_path / "x.yaml"), str(repo / "clusters/prod/apps.yaml")]) == 1
    )
    assert "clusters/prod/apps.yaml: no environment 'qa'" in capsys.readouterr().err
    assert not (tmp_path / "x.yaml").exists()


def test_missing_file(tmp_path, capsys):
    assert inline.main(["--env", "prod", "--output", str(tmp_path / "x.yaml"), str(tmp_path / "none.yaml")]) == 1
    assert "none.yaml" in capsys.readouterr().err
