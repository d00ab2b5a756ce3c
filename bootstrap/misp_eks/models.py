"""What every pydantic model of the project shares: strictness, and one way of naming what failed."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import BaseModel, ConfigDict, StringConstraints, ValidationError

from misp_eks.problems import field_path

NonEmpty = Annotated[str, StringConstraints(min_length=1)]
# A Go duration as the Flux and External Secrets CRDs accept it (metav1.Duration pattern).
DURATION_PATTERN = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$"

# A model-level rule names its field at the start of its message ("hostnames.misp: ...").
_FIELD_PREFIX = re.compile(r"^(?P<field>[A-Za-z_][\w]*(?:\.[A-Za-z_][\w]*|\[\d+\])*): (?P<message>.+)$", re.DOTALL)


class StrictModel(BaseModel):
    """Unknown fields fail, as they fail in eksctl (UnmarshalStrict) and in the API server (strict)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def field_errors(error: ValidationError) -> list[tuple[str, str]]:
    """(field, message) for each failure: "unknown field" for an extra one, a rule's own field if it names one."""
    found = []
    for item in error.errors():
        message = item["msg"]
        location = field_path(item["loc"])
        if item["type"] == "extra_forbidden":
            message = "unknown field"
        elif item["type"] == "value_error":
            message = str(item.get("ctx", {}).get("error", message.removeprefix("Value error, ")))
            named = _FIELD_PREFIX.match(message)
            if named:
                inner = named.group("field")
                location = inner if not location or inner.startswith(location) else f"{location}.{inner}"
                message = named.group("message")
        found.append((location, message))
    return found
