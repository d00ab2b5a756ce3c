"""Everything that stops a run, as one line for the operator: never a traceback.

Exit codes: 1 for a failure in AWS or a tool, 2 for bad input or a missing tool (the same as
:class:`misp_eks.problems.UserError`), 130 for Ctrl-C.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
    TokenRetrievalError,
    WaiterError,
)

T = TypeVar("T")

EXIT_FAILURE = 1
EXIT_INPUT = 2
EXIT_INTERRUPTED = 130
RESUME_HINT = "re-run the same command to resume where it stopped"


class BootstrapError(Exception):
    """A failure reported as one line; ``exit_code`` is what the process exits with."""

    exit_code = EXIT_FAILURE

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InputError(BootstrapError):
    """Bad input found by the bootstrap itself (not by the settings models)."""

    exit_code = EXIT_INPUT


class ToolError(BootstrapError):
    """eksctl, flux, kubectl or gpg is missing, too old, or failed."""

    exit_code = EXIT_INPUT


class ToolFailed(BootstrapError):
    """A tool ran and exited non-zero."""


class MissingPrerequisite(BootstrapError):
    """A phase needs something an earlier phase creates."""

    def __init__(self, what: str, phase: str) -> None:
        super().__init__(f"{what} does not exist yet: run the {phase} phase first (--until {phase})")


class WaitTimeout(BootstrapError):
    def __init__(self, what: str, seconds: float, last: str = "") -> None:
        detail = f" (last seen: {last})" if last else ""
        super().__init__(f"timed out after {format_duration(seconds)} waiting for {what}{detail}; {RESUME_HINT}")


class Cancelled(BootstrapError):
    exit_code = EXIT_INTERRUPTED

    def __init__(self) -> None:
        super().__init__(f"interrupted: {RESUME_HINT}")


class AwsCallError(BootstrapError):
    """An AWS error with the action and the resource it concerned."""


def format_duration(seconds: float) -> str:
    seconds = round(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m{secs:02d}s"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"


@dataclass(frozen=True)
class CallContext:
    """What the failing call was: the IAM action and the resource named in its parameters."""

    action: str
    resource: str


_EXPIRED = {
    "ExpiredToken",
    "ExpiredTokenException",
    "RequestExpired",
    "InvalidClientTokenId",
    "UnrecognizedClientException",
    "InvalidSignatureException",
    "SignatureDoesNotMatch",
    "AuthFailure",
}
_DENIED = {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "AuthorizationError", "Forbidden"}
_THROTTLED = {"Throttling", "ThrottlingException", "RequestLimitExceeded", "TooManyRequestsException", "SlowDown"}
# "User: arn:aws:iam::1:user/x is not authorized to perform: rds:CreateDBInstance on resource: arn:... because ..."
_NOT_AUTHORIZED = re.compile(
    r"not authorized to perform:? (?P<action>[\w-]+:[\w*]+)(?: on resource:? (?P<resource>\S+?))?(?:[ .,;]|$)"
)


def is_quota(code: str) -> bool:
    if code in _THROTTLED:
        return False
    # RDS InstanceQuotaExceeded, ElastiCache NodeQuotaForCustomerExceeded, KMS LimitExceededException, ...
    exceeded = code.removesuffix("Fault").removesuffix("Exception").endswith("Exceeded")
    return (exceeded and ("Quota" in code or "Limit" in code)) or code in {"TooManyBuckets"}


def error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def unless_missing(call: Callable[[], T], *missing: str) -> T | None:
    """``call()``, or None when AWS answers with one of the ``missing`` error codes."""
    try:
        return call()
    except ClientError as error:
        if error_code(error) in missing:
            return None
        raise


def _message(error: ClientError) -> str:
    text = str(error.response.get("Error", {}).get("Message", "")).strip()
    return text.splitlines()[0] if text else error_code(error)


def describe_aws_error(error: BaseException, context: CallContext | None = None) -> BootstrapError:
    """Translate a botocore exception into one actionable line."""
    if isinstance(error, NoCredentialsError | PartialCredentialsError):
        return BootstrapError(
            "no AWS credentials found: set AWS_PROFILE (or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY) for the "
            "account of this environment; `aws sts get-caller-identity` must work"
        )
    if isinstance(error, TokenRetrievalError):
        return BootstrapError(f"AWS SSO session expired or missing ({error}): run `aws sso login`, then {RESUME_HINT}")
    if isinstance(error, NoRegionError):
        return InputError("no AWS region: the region comes from the eksctl config (metadata.region)")
    if isinstance(error, EndpointConnectionError):
        return BootstrapError(f"cannot reach AWS at {error.kwargs.get('endpoint_url', '?')}: check the network")
    if isinstance(error, WaiterError):
        return BootstrapError(f"AWS waiter {error.name} failed: {error.last_response}; {RESUME_HINT}")
    if isinstance(error, ClientError):
        return _describe_client_error(error, context)
    if isinstance(error, BotoCoreError):
        return BootstrapError(f"AWS SDK error: {error}")
    return BootstrapError(str(error))


def _describe_client_error(error: ClientError, context: CallContext | None) -> AwsCallError:
    code = error_code(error)
    message = _message(error)
    action = context.action if context else error.operation_name
    resource = context.resource if context and context.resource else ""
    if code in _EXPIRED:
        return AwsCallError(f"AWS credentials expired or invalid ({code}): refresh them, then {RESUME_HINT}")
    if code in _DENIED or "not authorized" in message:
        found = _NOT_AUTHORIZED.search(message)
        if found:
            action = found.group("action")
            resource = found.group("resource") or resource
        target = resource or "the resource"
        return AwsCallError(
            f"access denied: {action} on {target} is not allowed for these credentials; grant it, then {RESUME_HINT}"
        )
    if is_quota(code):
        where = f" ({resource})" if resource else ""
        return AwsCallError(
            f"AWS quota reached by {action}{where}: {code}: {message}; raise it in Service Quotas, then {RESUME_HINT}"
        )
    if code in _THROTTLED:
        return AwsCallError(f"AWS kept throttling {action} after 10 attempts: {message}; {RESUME_HINT}")
    where = f" on {resource}" if resource else ""
    return AwsCallError(f"AWS refused {action}{where}: {code}: {message}")
