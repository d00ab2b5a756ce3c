"""Flux post-build variable substitution, as kustomize-controller performs it.

Upstream: fluxcd/pkg ``kustomize/kustomize_varsub.go`` and ``envsubst/`` (a fork of drone/envsubst).
Only the ``${...}`` form is expanded; ``$$`` is an escaped ``$``; the names of the variables
provided must match ``^[_[:alpha:]][_[:alpha:][:digit:]]*$`` (``varsubRegex``); newlines are
stripped from values. Flux replaces an undefined variable with an empty string; here it is reported
instead, because that is never intended. This project uses the default forms only (``${var}``,
``${var:=default}``, ``${var:-default}``, ``${var=default}``; all three default forms are
``toDefault`` upstream, which also replaces an empty value); the string functions are refused so that
nothing subtle hides here, and so is ``${var-default}``, which upstream's parser rejects
(``parseFunc`` has no ``-`` case).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

VAR_NAME = re.compile(r"^[_A-Za-z][_A-Za-z0-9]*$")
_EXPRESSION = re.compile(r"^(?P<name>[_A-Za-z][_A-Za-z0-9]*)(?:(?P<op>:=|:-|=)(?P<default>[^$]*))?$")
DISABLE_KEY = "kustomize.toolkit.fluxcd.io/substitute"


@dataclass
class Substitution:
    text: str
    undefined: list[str] = field(default_factory=list)
    """Variables used without a default that the variables do not define."""
    unsupported: list[str] = field(default_factory=list)
    """Expressions outside the supported forms, verbatim."""
    used: set[str] = field(default_factory=set)


def _expand(expression: str, variables: Mapping[str, str], result: Substitution) -> str:
    match = _EXPRESSION.match(expression)
    if match is None:
        result.unsupported.append("${" + expression + "}")
        return ""
    name, op, default = match.group("name"), match.group("op"), match.group("default")
    result.used.add(name)
    value = variables.get(name)
    if op is not None:
        return value if value else (default or "")
    if value is None:
        result.undefined.append(name)
        return ""
    return value


def substitute(text: str, variables: Mapping[str, str]) -> Substitution:
    """Expand ``${...}`` in ``text`` with ``variables``; problems are returned, not raised."""
    clean = {key: value.replace("\n", "") for key, value in variables.items()}
    result = Substitution(text="")
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        char = text[i]
        if char == "$" and i + 1 < n and text[i + 1] == "$":
            out.append("$")
            i += 2
        elif char == "$" and i + 1 < n and text[i + 1] == "{":
            end = text.find("}", i + 2)
            if end == -1:
                result.unsupported.append(text[i : i + 20])
                out.append(text[i:])
                break
            out.append(_expand(text[i + 2 : end], clean, result))
            i = end + 1
        else:
            out.append(char)
            i += 1
    result.text = "".join(out)
    return result


def invalid_names(variables: Mapping[str, str]) -> list[str]:
    """Names Flux refuses ("var name is invalid"), failing the whole Kustomization."""
    return sorted(name for name in variables if not VAR_NAME.match(name))


def references(text: str) -> set[str]:
    """Names of the variables ``text`` uses (escaped ``$${...}`` excluded)."""
    return substitute(text, {}).used


def is_disabled(obj: Mapping[str, object]) -> bool:
    """Flux skips objects labelled or annotated ``kustomize.toolkit.fluxcd.io/substitute: disabled``."""
    metadata = obj.get("metadata") or {}
    if not isinstance(metadata, Mapping):
        return False
    for key in ("labels", "annotations"):
        values = metadata.get(key) or {}
        if isinstance(values, Mapping) and values.get(DISABLE_KEY) == "disabled":
            return True
    return False
