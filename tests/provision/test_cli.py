"""The command line: bad input, the plan, confirmation, and every fault as one line with the right exit code."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path
from typing import Any

import boto3
import pytest

from misp_eks.provision import cli, phases
from misp_eks.provision.aws.calls import CallLog
from misp_eks.provision.aws.session import Aws
from misp_eks.provision.tools import FLUX_DISTRIBUTION
from tests.provision.conftest import StandIns, fake_aws_environment, inject_error


def run_cli(argv: list[str], environ: dict[str, str], stdin: str = "") -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(argv, environ=environ, stdin=io.StringIO(stdin), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def one_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1, text
    assert "Traceback" not in text
    return lines[0]


@pytest.fixture
def repo_copy(tmp_path: Path, repo: Path) -> Path:
    root = tmp_path / "repo"
    shutil.copytree(repo / "clusters", root / "clusters")
    return root


def edit(root: Path, name: str, old: str, new: str) -> None:
    """Replace each of the |-separated strings in ``old`` by its counterpart in ``new``, everywhere."""
    path = root / "clusters" / "prod" / name
    text = path.read_text()
    for before, after in zip(old.split("|"), new.split("|"), strict=True):
        assert before in text, before
        text = text.replace(before, after)
    path.write_text(text)


BAD_INPUT = [
    (
        "settings.yaml",
        "tier: production",
        "tier: production\ncolour: blue",
        "settings.yaml: settings: colour: unknown field",
    ),
    (
        "settings.yaml",
        "    nodes: 2",
        "    nodes: two",
        "settings.yaml: settings: caches.misp.nodes: Input should be a valid integer",
    ),
    (
        "settings.yaml",
        "misp: misp.example.org",
        "misp: misp.example.com",
        "settings.yaml: settings: hostnames.misp: misp.example.com is not inside the domain example.org",
    ),
    (
        "settings.yaml",
        "backup_retention_days: 30",
        "backup_retention_days: 3",
        "settings.yaml: settings: database.backup_retention_days: production keeps at least 7 days",
    ),
    (
        "settings.yaml",
        "alarm_email: secops@example.org",
        "alarm_email: secops",
        "settings.yaml: settings: alarm_email: String should match pattern",
    ),
    (  # one zone; the node groups move there too, so that only the zone rule is broken
        "cluster.yaml",
        "availabilityZones: [eu-west-1a, eu-west-1b, eu-west-1c]|[eu-west-1b]|[eu-west-1c]",
        "availabilityZones: [eu-west-1a]|[eu-west-1a]|[eu-west-1a]",
        "cluster.yaml: ClusterConfig: availabilityZones: needs exactly 3 distinct zones (has 1: eu-west-1a)",
    ),
    (
        "cluster.yaml",
        "    privateNetworking: true",
        "    privateNetworking: false",
        "cluster.yaml: ClusterConfig: managedNodeGroups[0].privateNetworking: node group general-a must set",
    ),
    (
        "cluster.yaml",
        "  name: misp-prod",
        "  name: MISP-Prod",
        "cluster.yaml: ClusterConfig: metadata.name: 'MISP-Prod' must be lower-case letters",
    ),
    (
        "cluster.yaml",
        "    gateway: HighlyAvailable",
        "    gateway: Single",
        "cluster.yaml: ClusterConfig: vpc.nat.gateway: production needs HighlyAvailable",
    ),
]


@pytest.mark.parametrize(
    ("file", "old", "new", "expected"), BAD_INPUT, ids=[item[3].split(": ")[2] for item in BAD_INPUT]
)
@pytest.mark.parametrize("mode", ["--dry-run", "--yes"])
def test_bad_input_is_one_line_exit_2_and_no_aws_call(
    repo_copy: Path, tmp_path: Path, file: str, old: str, new: str, expected: str, mode: str
) -> None:
    edit(repo_copy, file, old, new)
    calls = tmp_path / "calls.jsonl"
    environ = {**fake_aws_environment(), "MISP_EKS_RECORD_CALLS": str(calls)}
    code, out, err = run_cli(["--env", "prod", mode, "--repository", str(repo_copy)], environ)
    assert code == 2
    assert one_line(err).startswith(f"error: clusters/prod/{expected}")
    assert not calls.exists() and out == ""


def test_unknown_environment(repo_copy: Path) -> None:
    code, _, err = run_cli(["--env", "qa", "--dry-run", "--repository", str(repo_copy)], fake_aws_environment())
    assert code == 2 and one_line(err) == "error: clusters/qa: no such environment (known: prod, staging)"


def test_options_that_do_not_go_together(repo_copy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["--destroy", "--only", "data"], ["--delete-bucket"], ["--only", "data", "--until", "dns"]):
        with pytest.raises(SystemExit) as caught:
            run_cli(["--env", "prod", *argv], fake_aws_environment())
        assert caught.value.code == 2
    assert "usage:" in capsys.readouterr().err


def test_dry_run_without_credentials_plans_from_the_repository(tmp_path: Path) -> None:
    calls = tmp_path / "calls.jsonl"
    environ = {
        key: value
        for key, value in fake_aws_environment().items()
        if key not in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
    }
    environ.update(MISP_EKS_RECORD_CALLS=str(calls), PATH=str(tmp_path))
    code, out, err = run_cli(["--env", "prod", "--dry-run", "--plain"], environ)
    assert code == 0, err
    assert not calls.exists()  # no AWS call at all
    assert "create (unknown: no AWS credentials)" in out
    for name in (
        "misp-prod-misp",
        "misp-prod/misp/app",
        "misp-prod-attachments-<account id>",
        "alias/misp-prod-eks",
        "misp.example.org",
        "flux-system/cluster-vars",
    ):
        assert name in out
    assert "eksctl not found on PATH" in out and "nothing was changed" in out


def test_dry_run_never_asks_the_instance_metadata_service() -> None:
    resolver = Aws("eu-west-1", CallLog(), instance_metadata=False).session._session.get_component(
        "credential_provider"
    )
    assert "iam-role" not in [provider.METHOD for provider in resolver.providers]
    resolver = Aws("eu-west-1", CallLog()).session._session.get_component("credential_provider")
    assert "iam-role" in [provider.METHOD for provider in resolver.providers]


def test_dry_run_with_credentials_reads_only(moto: None, tmp_path: Path, aws_environment: dict[str, str]) -> None:
    boto3.client("route53").create_hosted_zone(Name="example.org", CallerReference="x")
    boto3.client("kms").create_alias(
        AliasName="alias/misp-prod-eks", TargetKeyId=boto3.client("kms").create_key()["KeyMetadata"]["KeyId"]
    )
    calls = tmp_path / "calls.jsonl"
    code, out, err = run_cli(
        ["--env", "prod", "--dry-run", "--plain"], {**aws_environment, "MISP_EKS_RECORD_CALLS": str(calls)}
    )
    assert code == 0, err
    recorded = [json.loads(line) for line in calls.read_text().splitlines()]
    assert recorded and not [item for item in recorded if item["mutating"]]
    rows = {
        (cells[2].strip(), cells[3].strip()): cells[4].strip()
        for cells in (line.split("|") for line in out.splitlines() if line.count("|") > 5)
    }
    assert rows["KMS key", "alias/misp-prod-eks"] == "exists"
    assert rows["EKS cluster", "misp-prod"] == "create" and rows["secret", "misp-prod/misp/app"] == "create"
    assert rows["security group", "misp-prod-database"] == "create (unknown until the cluster exists)"
    assert rows["Route53 hosted zone", "example.org"] == "check: found"


def test_missing_credentials_is_one_line(tmp_path: Path) -> None:
    environ = {
        key: value
        for key, value in fake_aws_environment().items()
        if key not in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
    }
    code, _, err = run_cli(["--env", "prod", "--yes"], environ)
    assert code == 1
    assert one_line(err).startswith("error: no AWS credentials found: set AWS_PROFILE")


@pytest.fixture
def live(moto: None, aws_environment: dict[str, str], standins: StandIns, tmp_path: Path) -> dict[str, str]:
    boto3.client("route53").create_hosted_zone(Name="example.org", CallerReference="x")
    return {
        **standins.environ(aws_environment),
        "MISP_EKS_TIMING": "fast",
        "MISP_EKS_RECORD_CALLS": str(tmp_path / "calls.jsonl"),
    }


@pytest.fixture
def faults(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str, str, str]]:
    """AWS errors to answer with, hooked into the session the CLI creates."""
    wanted: list[tuple[str, str, str, str]] = []
    attach = CallLog.attach

    def attach_with_faults(self: CallLog, events: Any) -> None:
        attach(self, events)
        for service, operation, code, message in wanted:
            inject_error(events, service, operation, code, message)

    monkeypatch.setattr(CallLog, "attach", attach_with_faults)
    return wanted


def test_access_denied_names_the_action_and_the_resource(live: dict[str, str], faults: list) -> None:
    faults.append(
        (
            "secretsmanager",
            "CreateSecret",
            "AccessDeniedException",
            "User: arn:aws:iam::123456789012:user/ops is not authorized to perform: secretsmanager:CreateSecret "
            "on resource: misp-prod/misp/app because no identity-based policy allows the action",
        )
    )
    code, _, err = run_cli(["--env", "prod", "--yes", "--plain", "--only", "secrets"], live)
    assert code == 1
    assert one_line(err) == (
        "error: access denied: secretsmanager:CreateSecret on misp-prod/misp/app is not allowed for these "
        "credentials; grant it, then re-run the same command to resume where it stopped"
    )


def test_access_denied_without_details_uses_the_call(live: dict[str, str], faults: list) -> None:
    faults.append(("kms", "CreateKey", "AccessDeniedException", "Access denied"))
    code, _, err = run_cli(["--env", "prod", "--yes", "--plain", "--only", "cluster"], live)
    assert code == 1
    assert one_line(err).startswith("error: access denied: kms:CreateKey on ")


def test_quota_is_one_line(live: dict[str, str], faults: list) -> None:
    faults.append(("kms", "CreateKey", "LimitExceededException", "Too many keys in this account"))
    code, _, err = run_cli(["--env", "prod", "--yes", "--plain", "--only", "cluster"], live)
    assert code == 1
    assert one_line(err).startswith("error: AWS quota reached by kms:CreateKey")
    assert "Service Quotas" in err


def test_expired_credentials_are_one_line(live: dict[str, str], faults: list) -> None:
    faults.append(("sts", "GetCallerIdentity", "ExpiredToken", "The security token included in the request is expired"))
    code, _, err = run_cli(["--env", "prod", "--yes", "--plain"], live)
    assert code == 1
    assert one_line(err).startswith("error: AWS credentials expired or invalid (ExpiredToken)")


def test_missing_tool_is_one_line(moto: None, aws_environment: dict[str, str], tmp_path: Path) -> None:
    boto3.client("route53").create_hosted_zone(Name="example.org", CallerReference="x")
    code, _, err = run_cli(["--env", "prod", "--yes", "--plain"], {**aws_environment, "PATH": str(tmp_path)})
    assert code == 2
    assert one_line(err).startswith("error: eksctl not found on PATH (creates and deletes the cluster): install eksctl")


def test_tool_too_old_is_one_line(live: dict[str, str], standins: StandIns) -> None:
    (standins.bin / "eksctl").write_text("#!/bin/sh\necho 0.200.0\n")
    code, _, err = run_cli(["--env", "prod", "--yes", "--plain", "--only", "preflight"], live)
    assert code == 2
    assert one_line(err).startswith("error: eksctl 0.200.0 at ") and "0.222.0 or newer is needed" in err


@pytest.mark.parametrize("claimed", ["2.8.3", "2.10.0", "3.9.4"])
def test_a_flux_cli_of_another_minor_is_refused_naming_the_one_to_install(live: dict[str, str], claimed: str) -> None:
    # flux bootstrap --version=v2.9.4 fails with any CLI but a 2.9.x (fluxcd/flux2 cmd/flux/version_utils.go).
    code, _, err = run_cli(
        ["--env", "prod", "--yes", "--plain", "--only", "preflight"], {**live, "STANDIN_FLUX_VERSION": claimed}
    )
    assert code == 2
    line = one_line(err)
    assert line.startswith(f"error: flux {claimed} at ")
    assert line.endswith(
        "will not do (flux bootstrap from a CLI release installs only Flux releases of the CLI's own minor, and "
        f"the bootstrap installs Flux {FLUX_DISTRIBUTION}): install flux {FLUX_DISTRIBUTION[1:]} (any 2.9.x) from "
        f"https://github.com/fluxcd/flux2/releases/tag/{FLUX_DISTRIBUTION}"
    )


def test_a_flux_cli_of_the_same_minor_will_do(live: dict[str, str]) -> None:
    code, out, err = run_cli(
        ["--env", "prod", "--yes", "--plain", "--only", "preflight"], {**live, "STANDIN_FLUX_VERSION": "2.9.0"}
    )
    assert code == 0, err
    assert "tool flux: exists (2.9.0 at " in out


def test_region_without_three_zones(
    moto: None, aws_environment: dict[str, str], standins: StandIns, repo_copy: Path
) -> None:
    for file in ("cluster.yaml",):
        path = repo_copy / "clusters" / "prod" / file
        path.write_text(path.read_text().replace("eu-west-1", "us-west-1"))
    boto3.client("route53").create_hosted_zone(Name="example.org", CallerReference="x")
    code, _, err = run_cli(
        ["--env", "prod", "--yes", "--plain", "--only", "preflight", "--repository", str(repo_copy)],
        standins.environ(aws_environment),
    )
    assert code == 2
    assert one_line(err).startswith("error: region us-west-1 has 2 available zone(s)")


def test_missing_hosted_zone_is_one_line(moto: None, aws_environment: dict[str, str], standins: StandIns) -> None:
    code, _, err = run_cli(
        ["--env", "prod", "--yes", "--plain", "--only", "preflight"], standins.environ(aws_environment)
    )
    assert code == 2
    assert one_line(err) == (
        "error: clusters/prod/settings.yaml: domain: no public Route53 hosted zone example.org in this account: "
        "create or delegate it first"
    )


def test_declined_plan_changes_nothing(live: dict[str, str], tmp_path: Path) -> None:
    code, out, err = run_cli(["--env", "prod", "--plain"], live, stdin="n\n")
    assert code == 1 and "Apply this plan" in out and one_line(err) == "aborted: nothing was changed"
    recorded = [json.loads(line) for line in Path(live["MISP_EKS_RECORD_CALLS"]).read_text().splitlines()]
    assert not [item for item in recorded if item["mutating"]]


def test_destroy_asks_for_the_environment_name(live: dict[str, str]) -> None:
    code, out, err = run_cli(["--env", "prod", "--destroy", "--plain"], live, stdin="yes\n")
    assert code == 2 and "Type the environment's name (prod)" in out
    assert one_line(err) == "error: aborted: the answer did not match; nothing was deleted"
    recorded = [json.loads(line) for line in Path(live["MISP_EKS_RECORD_CALLS"]).read_text().splitlines()]
    assert not [item for item in recorded if item["mutating"]]


def test_interrupt_says_rerun_resumes(live: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(*_args: Any) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(phases, "run", interrupted)
    code, _, err = run_cli(["--env", "prod", "--yes", "--plain"], live)
    assert code == 130
    assert one_line(err) == "interrupted: re-run the same command to resume where it stopped"


def test_unexpected_error_is_still_one_line(live: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_args: Any) -> None:
        raise ValueError("surprise")

    monkeypatch.setattr(phases, "run", broken)
    code, _, err = run_cli(["--env", "prod", "--yes", "--plain"], live)
    assert code == 1
    assert one_line(err).startswith("error: unexpected ValueError: surprise")
