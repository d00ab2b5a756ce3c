"""Tools, waits, the call log, error translation and retries."""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ClientError

from misp_eks.provision.aws.calls import CallLog, is_mutating, redact
from misp_eks.provision.aws.session import RETRIES, Aws
from misp_eks.provision.errors import (
    CallContext,
    Cancelled,
    ToolError,
    ToolFailed,
    WaitTimeout,
    describe_aws_error,
    is_quota,
)
from misp_eks.provision.progress import PlainProgress, make_console
from misp_eks.provision.tools import EKSCTL, Tools, parse_version
from misp_eks.provision.waiting import Poll, run_concurrently, wait_until


def _script(directory: Path, name: str, body: str) -> None:
    path = directory / name
    path.write_text(f"#!{sys.executable}\nimport sys\n{body}\n")
    path.chmod(0o755)


def test_tools_are_found_on_path_and_version_checked(tmp_path: Path) -> None:
    tools = Tools({"PATH": str(tmp_path)})
    with pytest.raises(ToolError, match=r"eksctl not found on PATH .*install eksctl >= 0\.222\.0"):
        tools.require(EKSCTL)
    _script(tmp_path, "eksctl", "print('0.231.0')")
    assert Tools({"PATH": str(tmp_path)}).require(EKSCTL).version == (0, 231, 0)
    _script(tmp_path, "eksctl", "print('0.221.0-rc.1')")
    with pytest.raises(ToolError, match=r"eksctl 0\.221\.0 at .* is too old"):
        Tools({"PATH": str(tmp_path)}).require(EKSCTL)
    assert parse_version("flux: v2.7.1") == (2, 7, 1)


def test_a_failing_tool_reports_its_last_error_line(tmp_path: Path) -> None:
    _script(
        tmp_path,
        "eksctl",
        "if sys.argv[1:] == ['version']:\n    print('0.231.0')\nelse:\n"
        "    sys.stderr.write('starting\\nError: AlreadyExistsException: Stack exists\\n'); sys.exit(1)",
    )
    lines: list[str] = []
    tools = Tools({"PATH": str(tmp_path)}, on_line=lines.append)
    with pytest.raises(ToolFailed, match=r"eksctl create cluster x failed \(exit 1\): Error: AlreadyExistsException"):
        tools.run(EKSCTL, ["create", "cluster"], timeout=30, stream=True, what="eksctl create cluster x")
    assert "eksctl: starting" in lines


def test_a_tool_that_hangs_times_out_naming_the_command(tmp_path: Path) -> None:
    _script(
        tmp_path,
        "eksctl",
        "import time\nif sys.argv[1:] == ['version']:\n    print('0.231.0')\nelse:\n    time.sleep(30)",
    )
    with pytest.raises(WaitTimeout, match="waiting for eksctl delete cluster"):
        Tools({"PATH": str(tmp_path)}).run(EKSCTL, ["delete"], timeout=0.5, what="eksctl delete cluster")


def test_tool_input_goes_on_stdin(tmp_path: Path) -> None:
    _script(
        tmp_path,
        "eksctl",
        "if sys.argv[1:] == ['version']:\n    print('0.231.0')\nelse:\n    print(sys.stdin.read().upper())",
    )
    assert Tools({"PATH": str(tmp_path)}).run(EKSCTL, ["x"], stdin="rendered", timeout=30).strip() == "RENDERED"


def _progress() -> PlainProgress:
    import io

    return PlainProgress(make_console(io.StringIO()))


def test_wait_times_out_naming_what_and_the_last_status() -> None:
    with pytest.raises(WaitTimeout) as caught:
        wait_until(
            "the thing to be ready",
            lambda: Poll(False, "still creating"),
            timeout=0.2,
            interval=0.05,
            progress=_progress(),
            cancel=threading.Event(),
        )
    assert caught.value.message.startswith(
        "timed out after 0s waiting for the thing to be ready (last seen: still creating)"
    )
    assert caught.value.message.endswith("re-run the same command to resume where it stopped")


def test_wait_returns_at_once_when_done_and_can_be_cancelled() -> None:
    progress = _progress()
    assert (
        wait_until("x", lambda: Poll(True, "", 42), timeout=1, interval=1, progress=progress, cancel=threading.Event())
        == 42
    )
    assert progress.console.file.getvalue() == ""  # type: ignore[attr-defined]
    cancel = threading.Event()
    threading.Timer(0.1, cancel.set).start()
    started = time.monotonic()
    with pytest.raises(Cancelled):
        wait_until("x", lambda: Poll(False), timeout=30, interval=10, progress=progress, cancel=cancel)
    assert time.monotonic() - started < 5


def test_concurrent_tasks_run_together_and_the_first_failure_stops_the_rest() -> None:
    barrier = threading.Barrier(2, timeout=5)
    assert run_concurrently(
        {"a": lambda: (barrier.wait(), "a")[1], "b": lambda: (barrier.wait(), "b")[1]}, threading.Event()
    ) == {"a": "a", "b": "b"}
    cancel = threading.Event()

    def slow() -> str:
        cancel.wait(10)
        raise Cancelled

    def broken() -> str:
        raise ValueError("first")

    with pytest.raises(ValueError, match="first"):
        run_concurrently({"slow": slow, "broken": broken}, cancel)
    assert cancel.is_set()


def test_mutating_operations_and_redaction(tmp_path: Path) -> None:
    assert not any(
        map(is_mutating, ["DescribeDBInstances", "ListSecrets", "GetSecretValue", "HeadBucket", "BatchGetSecretValue"])
    )
    assert all(map(is_mutating, ["CreateDBInstance", "PutBucketPolicy", "TagResource", "Subscribe"]))
    assert redact({"AuthToken": "x", "SecretString": "y", "Nested": [{"MasterUserPassword": "z", "Name": "n"}]}) == {
        "AuthToken": "<redacted>",
        "SecretString": "<redacted>",
        "Nested": [{"MasterUserPassword": "<redacted>", "Name": "n"}],
    }
    # Tokens that name or page a resource are not secrets: the call log keeps them.
    visible = {"CreationToken": "misp-prod-files", "ClientToken": "misp-prod-files", "NextToken": "page-2"}
    assert redact({**visible, "IdempotencyToken": "abc"}) == {**visible, "IdempotencyToken": "abc"}


def test_the_call_log_records_every_operation(moto: None, tmp_path: Path) -> None:
    log = CallLog(path=tmp_path / "calls.jsonl")
    aws = Aws("eu-west-1", log)
    aws.client("secretsmanager").create_secret(Name="a", SecretString="secret-value")  # pragma: allowlist secret
    aws.client("secretsmanager").describe_secret(SecretId="a")
    lines = [json.loads(line) for line in (tmp_path / "calls.jsonl").read_text().splitlines()]
    assert [(item["operation"], item["mutating"]) for item in lines] == [
        ("CreateSecret", True),
        ("DescribeSecret", False),
    ]
    assert "secret-value" not in (tmp_path / "calls.jsonl").read_text()
    assert log.last_context() == CallContext("secretsmanager:DescribeSecret", "a")


def test_clients_retry_adaptively() -> None:
    assert RETRIES.retries == {"mode": "adaptive", "total_max_attempts": 11}  # botocore: 10 retries after the first
    client = Aws("eu-west-1", CallLog()).client("rds")
    assert client.meta.config.retries["mode"] == "adaptive"


def test_throttling_is_retried(moto: None) -> None:
    aws = Aws("eu-west-1", CallLog())
    client = aws.client("secretsmanager")
    attempts: list[int] = []

    def throttle(**_: Any) -> AWSResponse | None:
        attempts.append(1)
        if len(attempts) <= 2:
            body = json.dumps({"__type": "ThrottlingException", "message": "Rate exceeded"}).encode()
            return AWSResponse("https://secretsmanager.eu-west-1.amazonaws.com", 400, {}, _Raw(body))
        return None

    client.meta.events.register("before-send.secrets-manager.ListSecrets", throttle)
    client.list_secrets()
    assert len(attempts) == 3


class _Raw:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Any:
        yield self._body


@pytest.mark.parametrize(
    ("code", "quota"),
    [
        ("LimitExceededException", True),
        ("InstanceQuotaExceeded", True),
        ("NodeQuotaForCustomerExceeded", True),
        ("TooManyBuckets", True),
        ("VpcLimitExceeded", True),
        ("RequestLimitExceeded", False),
        ("Throttling", False),
        ("AccessDenied", False),
    ],
)
def test_quota_codes(code: str, quota: bool) -> None:
    assert is_quota(code) is quota


def test_aws_errors_become_one_actionable_line() -> None:
    def error(code: str, message: str, operation: str = "CreateDBInstance") -> ClientError:
        return ClientError({"Error": {"Code": code, "Message": message}}, operation)

    context = CallContext("ec2:CreateSecurityGroup", "misp-prod-database")
    denied = describe_aws_error(
        error(
            "UnauthorizedOperation",
            "You are not authorized to perform this operation. Encoded authorization failure message: xyz",
        ),
        context,
    )
    assert denied.message.startswith("access denied: ec2:CreateSecurityGroup on misp-prod-database")
    quota = describe_aws_error(error("DBInstanceQuotaExceeded", "quota"), CallContext("rds:CreateDBInstance", "db"))
    assert quota.message.startswith("AWS quota reached by rds:CreateDBInstance (db): DBInstanceQuotaExceeded")
    other = describe_aws_error(error("InvalidParameterCombination", "no"), CallContext("rds:CreateDBInstance", "db"))
    assert other.message == "AWS refused rds:CreateDBInstance on db: InvalidParameterCombination: no"
    assert "\n" not in describe_aws_error(error("X", "line one\nline two")).message


def test_region_availability_is_checked_in_the_emulator(moto: None) -> None:
    zones = boto3.client("ec2", region_name="us-west-1").describe_availability_zones()["AvailabilityZones"]
    assert len(zones) == 2  # what the region-without-three-zones test relies on
