"""Every AWS request the tests see, checked against the installed botocore's service model.

Emulators accept requests AWS refuses, and botocore's own parameter validation checks only what it
needs to serialise (required members, unknown names, types, minimums). This checker applies the rest
of the model as AWS applies it: enum values, maximum lengths, values and counts, patterns (Smithy
patterns are not anchored: a match anywhere is enough), and members whose documentation says AWS
ignores them ("isn't currently supported"), which silently turn a lookup into "list everything".

It is hooked on every boto3 session the in-process tests create (``attach``), and reads the call
log the bootstrap writes in the end-to-end tests (``check_recorded``).
"""

from __future__ import annotations

import datetime
import json
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import botocore.session
from botocore.model import OperationModel, Shape

from misp_eks.provision.aws.calls import REDACTED_VALUES

# A member AWS ignores altogether: its documentation opens with the statement (botocore rds
# service-2.json: "This parameter isn't currently supported." on 18 Filters, "is not" on 4). A member
# that documents one unsupported value (elasticache IncreaseReplicaCount ApplyImmediately: "False
# is not currently supported") is supported.
UNSUPPORTED = re.compile(
    r"^(?:This parameter (?:isn't|is not|is currently not) currently supported|(?:Not|Currently not) supported)\b",
    re.IGNORECASE,
)


def _unsupported(shape: Shape) -> bool:
    text = " ".join(re.sub(r"<[^>]+>", " ", shape.documentation or "").split())
    return bool(UNSUPPORTED.match(text))


def _check_scalar(shape: Shape, value: Any, path: str) -> list[str]:
    kind = shape.type_name
    meta = shape.metadata
    problems: list[str] = []
    if kind == "string":
        if not isinstance(value, str):
            return [f"{path}: expected a string, got {type(value).__name__}"]
        if shape.enum and value not in shape.enum:
            problems.append(f"{path}: {value!r} is not one of {', '.join(shape.enum)}")
        pattern = meta.get("pattern")
        if pattern:
            try:
                compiled = re.compile(pattern)
            except re.error:
                compiled = None  # a Java-only construct: the length checks still apply
            if compiled is not None and not compiled.search(value):
                problems.append(f"{path}: {value!r} does not match {pattern}")
    elif kind in ("integer", "long"):
        if isinstance(value, bool) or not isinstance(value, int):
            return [f"{path}: expected an integer, got {type(value).__name__}"]
    elif kind in ("double", "float"):
        if isinstance(value, bool) or not isinstance(value, int | float):
            return [f"{path}: expected a number, got {type(value).__name__}"]
    elif kind == "boolean":
        if not isinstance(value, bool):
            return [f"{path}: expected a boolean, got {type(value).__name__}"]
    elif kind == "blob":
        if not isinstance(value, bytes | bytearray | str) and not hasattr(value, "read"):
            return [f"{path}: expected bytes, got {type(value).__name__}"]
        if hasattr(value, "read"):
            return []
    elif kind == "timestamp":
        if not isinstance(value, datetime.datetime | datetime.date | str | int | float):
            return [f"{path}: expected a timestamp, got {type(value).__name__}"]
        return []
    if kind in ("integer", "long", "double", "float"):
        if "min" in meta and value < meta["min"]:
            problems.append(f"{path}: {value} is below the minimum {meta['min']}")
        if "max" in meta and value > meta["max"]:
            problems.append(f"{path}: {value} is above the maximum {meta['max']}")
    elif kind in ("string", "blob"):
        length = len(value)
        if "min" in meta and length < meta["min"]:
            problems.append(f"{path}: {length} characters, fewer than the minimum {meta['min']}")
        if "max" in meta and length > meta["max"]:
            problems.append(f"{path}: {length} characters, more than the maximum {meta['max']}")
    return problems


def check_value(shape: Shape, value: Any, path: str) -> list[str]:
    """Problems of ``value`` against ``shape``; redacted values (call logs) are not inspected."""
    if isinstance(value, str) and value in REDACTED_VALUES:
        return []
    kind = shape.type_name
    if kind == "structure":
        if not isinstance(value, dict):
            return [f"{path}: expected a structure, got {type(value).__name__}"]
        return check_structure(shape, value, path)
    if kind == "list":
        if not isinstance(value, list | tuple):
            return [f"{path}: expected a list, got {type(value).__name__}"]
        problems = []
        meta = shape.metadata
        if "min" in meta and len(value) < meta["min"]:
            problems.append(f"{path}: {len(value)} items, fewer than the minimum {meta['min']}")
        if "max" in meta and len(value) > meta["max"]:
            problems.append(f"{path}: {len(value)} items, more than the maximum {meta['max']}")
        for index, item in enumerate(value):
            problems += check_value(shape.member, item, f"{path}[{index}]")
        return problems
    if kind == "map":
        if not isinstance(value, dict):
            return [f"{path}: expected a map, got {type(value).__name__}"]
        problems = []
        meta = shape.metadata
        if "min" in meta and len(value) < meta["min"]:
            problems.append(f"{path}: {len(value)} entries, fewer than the minimum {meta['min']}")
        if "max" in meta and len(value) > meta["max"]:
            problems.append(f"{path}: {len(value)} entries, more than the maximum {meta['max']}")
        for key, item in value.items():
            problems += check_value(shape.key, key, f"{path} key")
            problems += check_value(shape.value, item, f"{path}[{key!r}]")
        return problems
    return _check_scalar(shape, value, path)


def check_structure(shape: Shape, value: dict[str, Any], path: str) -> list[str]:
    problems = []
    for name in shape.required_members:
        if name not in value:
            problems.append(f"{path}.{name}: required, missing" if path else f"{name}: required, missing")
    for name, item in value.items():
        where = f"{path}.{name}" if path else name
        if name not in shape.members:
            problems.append(f"{where}: not a member of {shape.name}")
            continue
        member = shape.members[name]
        if _unsupported(member):
            problems.append(f"{where}: the model documents it as not currently supported (AWS ignores it)")
        problems += check_value(member, item, where)
    return problems


def check(service: str, operation: str, params: dict[str, Any]) -> list[str]:
    """Every way ``params`` departs from ``service``'s model of ``operation`` (boto3 service and API names)."""
    model = botocore.session.get_session().get_service_model(service)
    if operation not in model.operation_names:
        return [f"{service}: no operation {operation}"]
    return check_operation(model.operation_model(operation), params)


def check_operation(model: OperationModel, params: dict[str, Any]) -> list[str]:
    shape = model.input_shape
    if shape is None:
        return [f"{name}: {model.name} takes no parameters" for name in params]
    prefix = f"{model.service_model.service_name}:{model.name}"
    return [f"{prefix} {problem}" for problem in check_structure(shape, params, "")]


@dataclass
class ModelChecker:
    """Checks every request of the sessions it is attached to; a departure fails the call and is kept."""

    problems: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def attach(self, events: Any) -> None:
        events.register("before-parameter-build", self._check, unique_id="misp-eks-tests-aws-model")

    def _check(self, params: dict[str, Any], model: OperationModel, **_: Any) -> None:
        found = check_operation(model, params)
        if found:
            with self._lock:
                self.problems += found
            raise AssertionError("request departs from botocore's service model: " + "; ".join(found))


def check_recorded(path: Path) -> list[str]:
    """The problems of every call in a MISP_EKS_RECORD_CALLS log (secret values are redacted there)."""
    if not path.exists():
        return []
    problems = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            call = json.loads(line)
            problems += check(call["api"], call["operation"], call["params"])
    return problems
