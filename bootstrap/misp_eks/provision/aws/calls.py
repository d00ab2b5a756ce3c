"""A record of every AWS operation a run makes: for error messages, tests and debugging.

Set ``MISP_EKS_RECORD_CALLS=<file>`` to append one JSON line per operation
(``{"service", "api", "operation", "mutating", "params"}``; secret values are redacted, their keys kept,
so that the requests can still be checked against botocore's service models). Tests use it to
prove that a re-run on a converged environment makes no mutating call; operators can use it to see
exactly what the bootstrap did.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from misp_eks.provision.errors import CallContext

READ_PREFIXES = ("Describe", "List", "Get", "Head")
READ_ONLY_OPERATIONS = frozenset({"BatchGetSecretValue", "LookupEvents"})
"""Operations that change nothing although their names do not start with a read prefix."""
# IAM action prefixes that differ from the signing name of the service.
_ACTION_PREFIX = {"monitoring": "cloudwatch"}
# Request members that carry a secret, by exact name (botocore service models): CreationToken,
# ClientToken, IdempotencyToken and NextToken name or page resources and stay visible.
_SENSITIVE = frozenset(
    {
        "AuthToken",
        "SecretString",
        "SecretBinary",
        "MasterUserPassword",
        "NewPassword",
        "OldPassword",
        "Password",
        "Passphrase",
        "PrivateKey",
        "Plaintext",
        "SecretAccessKey",
        "SessionToken",
    }
)
# Parameters that name the resource an operation acts on, most specific first.
_RESOURCE_KEYS = (
    "DBInstanceIdentifier",
    "ReplicationGroupId",
    "MountTargetId",
    "FileSystemId",
    "CreationToken",
    "DBSubnetGroupName",
    "CacheSubnetGroupName",
    "DBParameterGroupName",
    "SubscriptionName",
    "Bucket",
    "SecretId",
    "RoleName",
    "AliasName",
    "KeyId",
    "StackName",
    "CertificateArn",
    "DomainName",
    "HostedZoneId",
    "TopicArn",
    "AlarmName",
    "AlarmNames",
    "GroupId",
    "GroupName",
    "GroupIds",
    "clusterName",
    "name",
    "Name",
)


def is_mutating(operation: str) -> bool:
    return not (operation.startswith(READ_PREFIXES) or operation in READ_ONLY_OPERATIONS)


REDACTED = "<redacted>"
BYTES = "<bytes>"
REDACTED_VALUES = frozenset({REDACTED, BYTES})
"""What stands in a log for a value that is not written out."""


def redact(value: Any) -> Any:
    """Parameters with anything secret replaced, for logs."""
    if isinstance(value, dict):
        return {key: REDACTED if key in _SENSITIVE else redact(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [redact(item) for item in value]
    if isinstance(value, bytes | bytearray):
        return BYTES
    return value


def resource_of(params: dict[str, Any]) -> str:
    for key in _RESOURCE_KEYS:
        if params.get(key):
            value = params[key]
            return ", ".join(map(str, value)) if isinstance(value, list) else str(value)
    return ""


@dataclass(frozen=True)
class Call:
    service: str
    operation: str
    params: dict[str, Any]
    api: str = ""
    """botocore's name of the service (boto3.client's), where ``service`` is its signing name."""

    @property
    def mutating(self) -> bool:
        return is_mutating(self.operation)

    @property
    def action(self) -> str:
        return f"{_ACTION_PREFIX.get(self.service, self.service)}:{self.operation}"

    def as_json(self) -> dict[str, Any]:
        return {
            "service": self.service,
            "api": self.api,
            "operation": self.operation,
            "mutating": self.mutating,
            "params": redact(self.params),
        }


@dataclass
class CallLog:
    """Collects the operations of one run; thread-safe. Hooked into a boto3 session by ``attach``."""

    path: Path | None = None
    calls: list[Call] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _local: threading.local = field(default_factory=threading.local, repr=False)

    def attach(self, events: Any) -> None:
        events.register("before-parameter-build", self._record)

    def _record(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        call = Call(model.service_model.signing_name, model.name, dict(params), model.service_model.service_name)
        self._local.last = call
        with self._lock:
            self.calls.append(call)
            if self.path is not None:
                with self.path.open("a", encoding="utf-8") as stream:
                    stream.write(json.dumps(call.as_json(), default=str) + "\n")

    def last_context(self) -> CallContext | None:
        """The action and resource of the last call this thread made."""
        call: Call | None = getattr(self._local, "last", None)
        if call is None:
            return None
        return CallContext(call.action, resource_of(call.params))

    def mutating(self) -> list[Call]:
        with self._lock:
            return [call for call in self.calls if call.mutating]
