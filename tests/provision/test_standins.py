"""The eksctl and flux stand-ins are as strict as the releases they claim to be.

A stand-in that accepts what the real tool refuses proves nothing: these tests plant the mistakes
the bootstrap could make (an unknown flag, a flag without its value, a Flux release of another
minor, a kubeconfig that names no cluster) and expect the real tool's refusal.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from misp_eks.provision import kube
from misp_eks.provision.tools import EKSCTL, FLUX_DISTRIBUTION
from tests.provision import standin
from tests.provision.apiserver import Running
from tests.provision.conftest import REGION, FakeTools, Run, fake_aws_environment, rendered_config
from tests.provision.pflag import Flag, FlagError, flags, parse

TABLE = flags(
    Flag("config-file", "string", "f"),
    Flag("wait", "bool", "w"),
    Flag("timeout", "duration"),
    Flag("nodes", "int"),
    Flag("zones", "strings"),
    Flag("as-group", "array"),
    Flag("tags", "map"),
    Flag("vpc-cidr", "ipnet"),
)


@pytest.mark.parametrize(
    ("argv", "values", "args"),
    [
        (["-f", "-"], {"config-file": "-"}, []),
        (["-f-"], {"config-file": "-"}, []),
        (["-f=x.yaml", "name"], {"config-file": "x.yaml"}, ["name"]),
        (["--config-file", "-w", "--wait=false"], {"config-file": "-w", "wait": False}, []),
        (["--wait", "--timeout=25m"], {"wait": True, "timeout": "25m"}, []),
        (["-wf", "c.yaml"], {"wait": True, "config-file": "c.yaml"}, []),
        (["--", "--wait"], {}, ["--wait"]),
        (["--timeout=1h30m", "--nodes=0x_1f"], {"timeout": "1h30m", "nodes": "0x_1f"}, []),
        (["--timeout=-1.5µs", "--nodes", "0755"], {"timeout": "-1.5µs", "nodes": "0755"}, []),
        (["--timeout=0", "--nodes=1_000"], {"timeout": "0", "nodes": "1_000"}, []),
        (["--zones=a,b", "--zones", "c"], {"zones": ["a", "b", "c"]}, []),
        (["--as-group=a,b", "--as-group", "c"], {"as-group": ["a,b", "c"]}, []),  # StringArray: no split
        (["--tags", "a=1,b=2", "--tags=c=3"], {"tags": ["a=1", "b=2", "c=3"]}, []),
        (["--vpc-cidr", " 10.0.0.0/16"], {"vpc-cidr": "10.0.0.0/16"}, []),
    ],
)
def test_flags_parse_as_pflag_parses_them(argv: list[str], values: dict[str, Any], args: list[str]) -> None:
    parsed = parse(argv, TABLE)
    assert parsed.values == values and parsed.args == args


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--colour"], "unknown flag: --colour"),
        (["-x"], "unknown shorthand flag: 'x' in -x"),
        (["--config-file"], "flag needs an argument: --config-file"),
        (["-f"], "flag needs an argument: 'f' in -f"),
        (
            ["--wait=yes"],
            'invalid argument "yes" for "-w, --wait" flag: strconv.ParseBool: parsing "yes": invalid syntax',
        ),
        # Go src/time/format.go ParseDuration's three errors, passed through by pflag duration.go
        (["--timeout=25"], 'invalid argument "25" for "--timeout" flag: time: missing unit in duration "25"'),
        (["--timeout=25x"], 'invalid argument "25x" for "--timeout" flag: time: unknown unit "x" in duration "25x"'),
        (["--timeout=m"], 'invalid argument "m" for "--timeout" flag: time: invalid duration "m"'),
        (["--timeout="], 'invalid argument "" for "--timeout" flag: time: invalid duration ""'),
        (
            ["--timeout=1é"],
            'invalid argument "1é" for "--timeout" flag: time: unknown unit "\\xc3\\xa9" in duration "1\\xc3\\xa9"',
        ),
        (
            ["--timeout=9999999999h"],
            'invalid argument "9999999999h" for "--timeout" flag: time: invalid duration "9999999999h"',
        ),
        # strconv.ParseInt(s, 0, 64) (pflag int.go): underscores only between digits, a prefix needs digits
        (["--nodes=1_"], 'invalid argument "1_" for "--nodes" flag: strconv.ParseInt: parsing "1_": invalid syntax'),
        (["--nodes=0o"], 'invalid argument "0o" for "--nodes" flag: strconv.ParseInt: parsing "0o": invalid syntax'),
        (["--nodes=08"], 'invalid argument "08" for "--nodes" flag: strconv.ParseInt: parsing "08": invalid syntax'),
        (
            ["--nodes=9223372036854775808"],
            'invalid argument "9223372036854775808" for "--nodes" flag: strconv.ParseInt: parsing '
            '"9223372036854775808": value out of range',
        ),
        (["--tags=a"], 'invalid argument "a" for "--tags" flag: a must be formatted as key=value'),
        (["--tags=a=1,b,c=2"], 'invalid argument "a=1,b,c=2" for "--tags" flag: b must be formatted as key=value'),
        (["--vpc-cidr=10.0.0.0"], 'invalid argument "10.0.0.0" for "--vpc-cidr" flag: invalid CIDR address: 10.0.0.0'),
        (
            ["--vpc-cidr=10.0.0.0/33"],
            'invalid argument "10.0.0.0/33" for "--vpc-cidr" flag: invalid CIDR address: 10.0.0.0/33',
        ),
        (["---wait"], "bad flag syntax: ---wait"),
    ],
)
def test_flags_are_refused_with_pflags_message(argv: list[str], message: str) -> None:
    with pytest.raises(FlagError) as caught:
        parse(argv, TABLE)
    assert str(caught.value) == message


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("STANDIN_STATE", str(tmp_path / "state.json"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("KUBECONFIG", raising=False)
    return tmp_path / "state.json"


def refusal(tool: str, argv: list[str], stdin: str | None = None) -> str:
    """What the stand-in writes to stderr as it exits 1."""
    import contextlib
    import io

    errors = io.StringIO()
    with contextlib.redirect_stderr(errors), pytest.raises(SystemExit) as caught:
        getattr(standin, tool)(argv, stdin)
    assert caught.value.code == 1
    return errors.getvalue().strip()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["create", "cluster", "-f", "-", "--write-kubeconfig=no"], 'invalid argument "no" for "--write-kubeconfig"'),
        (["create", "cluster", "-f", "-", "--no-kubeconfig"], "Error: unknown flag: --no-kubeconfig"),
        (["get", "addon", "--cluster"], "Error: flag needs an argument: --cluster"),
        # cmd/eksctl/main.go checkCommand; with a flag the verb lacks, cobra's flag error comes first
        (["get", "adons"], 'Error: unknown resource type "adons"'),
        (["get", "adons", "--cluster", "x"], "Error: unknown flag: --cluster"),
        (["get"], 'Error: please provide a valid resource for "get"'),
        (["craete", "cluster"], 'Error: unknown command "craete" for "eksctl"'),
        # no AddCommonFlagsForAWS in pkg/ctl/{create,get}/pod_identity_association.go
        (["get", "podidentityassociations", "--cluster", "x", "-p", "default"], "unknown shorthand flag: 'p' in -p"),
        (["create", "podidentityassociation", "-f", "-", "--profile=x"], "Error: unknown flag: --profile"),
        (["delete", "cluster", "--name", "x", "--yes"], "Error: unknown flag: --yes"),
        (["create", "cluster", "-f", "-", "--region", "eu-west-1"], "Error: cannot use --region when --config-file/-f"),
    ],
)
def test_eksctl_refuses_what_eksctl_refuses(state: Path, argv: list[str], message: str) -> None:
    assert message in refusal("eksctl", argv, "metadata: {name: x, region: eu-west-1}\n")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["bootstrap", "github", "--owner=o", "--repository=r", "--token"], "✗ flag needs an argument: --token"),
        (["bootstrap", "github", "--owner=o", "--repository=r", "--deploy-key"], "✗ unknown flag: --deploy-key"),
        (["bootstrap", "github", "--silent"], "✗ unknown flag: --silent"),  # only bootstrap git has it
        (["suspend", "kustomization", "--all=maybe"], 'invalid argument "maybe" for "--all" flag'),
        # flux answers an unknown word under bootstrap with its help and exit 0; the stand-in refuses it
        (["bootstrap", "gihub", "--owner=o"], "✗ the stand-in does not model `flux bootstrap gihub`"),
        (["boostrap", "github"], '✗ unknown command "boostrap" for "flux"'),
        (["bootstrap", "github", "--as-group=a,b", "--as-user-extra"], "✗ flag needs an argument: --as-user-extra"),
    ],
)
def test_flux_refuses_what_flux_refuses(state: Path, argv: list[str], message: str) -> None:
    assert message in refusal("flux", argv)


@pytest.fixture
def cluster_kubeconfig(run: Run, apiserver: Running, eks: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> Path:
    """The kubeconfig the bootstrap hands flux (kube.kubeconfig), for a cluster that has cluster-vars."""
    server = apiserver.server
    server.put(server.kind("", "v1", "namespaces"), {"metadata": {"name": "flux-system"}})
    server.put(server.kind("", "v1", "configmaps"), {"metadata": {"name": "cluster-vars"}, "data": {}}, "flux-system")
    path = kube.kubeconfig(run.ctx)
    monkeypatch.setenv("KUBECONFIG", str(path))
    monkeypatch.setenv("GITHUB_TOKEN", "test-token-not-real")
    return path


def edit_kubeconfig(path: Path, section: str, change: dict[str, Any]) -> None:
    document = yaml.safe_load(path.read_text())
    document[section][0][section[:-1]].update(change)
    path.write_text(yaml.safe_dump(document))


GITHUB = ["bootstrap", "github", "--owner=o", "--repository=r", "--path=clusters/prod"]


@pytest.mark.parametrize("cli", ["2.8.3", "2.10.0"])
def test_flux_refuses_a_release_of_another_minor(
    state: Path, cluster_kubeconfig: Path, monkeypatch: pytest.MonkeyPatch, cli: str
) -> None:
    monkeypatch.setenv(standin.FLUX_VERSION_ENV, cli)
    assert refusal("flux", [*GITHUB, f"--version={FLUX_DISTRIBUTION}"]) == (
        f"✗ targeted version '{FLUX_DISTRIBUTION}' is not compatible with your current version of flux ({cli})"
    )
    monkeypatch.setenv(standin.FLUX_VERSION_ENV, FLUX_DISTRIBUTION[1:])
    assert "'2.9.4' must be prefixed with 'v'" in refusal("flux", [*GITHUB, "--version=2.9.4"])
    standin.flux([*GITHUB, f"--version={FLUX_DISTRIBUTION}"], None)
    assert json.loads(state.read_text())["flux"]["misp-prod"]["version"] == FLUX_DISTRIBUTION


@pytest.mark.parametrize(
    ("cli", "requested", "taken"),
    [
        ("2.10.0-rc.1", "v2.9.4", True),  # utils.go CompatibleVersion: a pre-release CLI takes any release
        ("2.8.0-rc.1", "v2.9.4", True),
        ("2.9.4+build.7", "v2.9.4", True),  # build metadata: Masterminds/semver parses it
        ("2.9.0", "v2.9.4+build.7", True),
        ("2.10.0+build.7", "v2.9.4", False),  # a release, whatever its metadata
        ("2.9", "v2.9.4", False),  # fluxcd/pkg/version ParseVersion wants three parts
        ("dev", "v2.9.4", False),
    ],
)
def test_flux_takes_the_releases_flux_takes(
    state: Path, cluster_kubeconfig: Path, monkeypatch: pytest.MonkeyPatch, cli: str, requested: str, taken: bool
) -> None:
    monkeypatch.setenv(standin.FLUX_VERSION_ENV, cli)
    if taken:
        standin.flux([*GITHUB, f"--version={requested}"], None)
        assert json.loads(state.read_text())["flux"]["misp-prod"]["version"] == requested
    else:
        assert "is not compatible with your current version of flux" in refusal(
            "flux", [*GITHUB, f"--version={requested}"]
        )


def test_no_stand_in_run_reads_or_writes_the_developers_kubeconfig(
    run: Run, tools: FakeTools, zone_id: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    theirs = tmp_path / "theirs"
    monkeypatch.setenv("KUBECONFIG", str(theirs / "config"))
    monkeypatch.setenv("KUBECACHEDIR", str(theirs / "cache"))
    assert not {"KUBECONFIG", "KUBECACHEDIR"} & set(fake_aws_environment())
    tools.run(EKSCTL, ["create", "cluster", "-f", "-"], stdin=yaml.safe_dump(rendered_config(run)), timeout=60)
    assert not theirs.exists()
    written = yaml.safe_load((Path(tools.environ["HOME"]) / ".kube" / "config").read_text())
    assert written["current-context"] == "eksctl@misp-prod.eu-west-1.eksctl.io"


def test_flux_needs_a_kubeconfig_naming_a_reachable_cluster(
    state: Path, cluster_kubeconfig: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    argv = [*GITHUB, f"--version={FLUX_DISTRIBUTION}"]
    good = cluster_kubeconfig.read_text()
    edit_kubeconfig(cluster_kubeconfig, "users", {"token": None})
    assert "has no credentials" in refusal("flux", argv)
    cluster_kubeconfig.write_text(good)
    edit_kubeconfig(cluster_kubeconfig, "clusters", {"certificate-authority-data": None})
    assert "has no certificate-authority-data" in refusal("flux", argv)
    cluster_kubeconfig.write_text(good)
    edit_kubeconfig(cluster_kubeconfig, "clusters", {"server": "https://127.0.0.1:9"})  # the discard port
    assert "cluster info unavailable" in refusal("flux", argv)
    monkeypatch.delenv("KUBECONFIG")
    assert "no configuration has been provided" in refusal("flux", argv)
    monkeypatch.setenv("KUBECONFIG", str(cluster_kubeconfig))
    cluster_kubeconfig.write_text(good)
    standin.flux(argv, None)


def test_flux_bootstrap_github_asks_for_a_token_it_cannot_read(
    state: Path, cluster_kubeconfig: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GITHUB_TOKEN")
    assert refusal("flux", [*GITHUB, f"--version={FLUX_DISTRIBUTION}"]) == "✗ could not read token: EOF"


def _create_cluster(run: Run, *extra: str) -> None:
    config = rendered_config(run)
    standin.eksctl(["create", "cluster", "-f", "-", *extra], yaml.safe_dump(config))


def test_eksctl_writes_the_operators_kubeconfig_unless_told_not_to(
    run: Run, state: Path, zone_id: str, tmp_path: Path
) -> None:
    config = tmp_path / "home" / ".kube" / "config"
    config.parent.mkdir(parents=True)
    theirs = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "theirs", "cluster": {"server": "https://theirs.example.org"}}],
        "contexts": [{"name": "theirs", "context": {"cluster": "theirs", "user": "theirs"}}],
        "users": [{"name": "theirs", "user": {"token": "t"}}],
        "current-context": "theirs",
    }
    config.write_text(yaml.safe_dump(theirs))
    _create_cluster(run)
    written = yaml.safe_load(config.read_text())
    assert written["current-context"] == "eksctl@misp-prod.eu-west-1.eksctl.io"
    assert {item["name"] for item in written["clusters"]} == {"theirs", "misp-prod.eu-west-1.eksctl.io"}


def test_eksctl_leaves_the_kubeconfig_alone_with_write_kubeconfig_false(
    run: Run, state: Path, zone_id: str, tmp_path: Path
) -> None:
    _create_cluster(run, "--write-kubeconfig=false")
    assert not (tmp_path / "home" / ".kube").exists()
    assert "already exists" in refusal("eksctl", ["create", "cluster", "-f", "-"], yaml.safe_dump(rendered_config(run)))


def test_eksctl_get_prints_the_json_of_the_release(run: Run, state: Path, zone_id: str) -> None:
    import contextlib
    import io

    _create_cluster(run, "--write-kubeconfig=false")
    printed = {}
    for what in ("addon", "podidentityassociation"):
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            standin.eksctl(["get", what, "--cluster", "misp-prod", "--region", REGION, "-o", "json"], None)
        printed[what] = json.loads(out.getvalue())
    # pkg/actions/addon/get.go Summary and pkg/actions/podidentityassociation/getter.go Summary (Go field names).
    assert set(printed["addon"][0]) == {
        "Name",
        "Version",
        "NewerVersion",
        "IAMRole",
        "Status",
        "ConfigurationValues",
        "NamespaceConfig",
        "Issues",
        "PodIdentityAssociations",
    }
    association = printed["podidentityassociation"][0]
    assert set(association) == {"AssociationARN", "Namespace", "ServiceAccountName", "RoleARN", "OwnerARN"}
    assert (
        association["AssociationARN"].startswith(f"arn:aws:eks:{REGION}:")
        and "/misp-prod/a-" in association["AssociationARN"]
    )
    assert "ResourceNotFoundException" in refusal("eksctl", ["get", "addon", "--cluster", "misp-staging", "-o", "json"])
