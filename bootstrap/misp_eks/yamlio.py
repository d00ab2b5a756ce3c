"""Strict YAML reading: duplicate keys are errors, and every error names the file and line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from misp_eks.problems import Problem, UserError

# libyaml's parser when PyYAML was built with it (every wheel is): several times faster.
_BaseLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _StrictLoader(_BaseLoader):  # type: ignore[misc,valid-type]
    """A safe loader that rejects duplicate mapping keys (PyYAML silently keeps the last one)."""


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    mapping: dict[Any, Any] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in mapping:
            raise yaml.constructor.ConstructorError(
                "while constructing a mapping",
                node.start_mark,
                f"found duplicate key {key!r}",
                key_node.start_mark,
            )
        mapping[key] = loader.construct_object(value_node, deep=deep)
    return mapping


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _describe(error: yaml.YAMLError) -> str:
    mark = getattr(error, "problem_mark", None)
    problem = getattr(error, "problem", None) or str(error)
    if mark is not None:
        return f"line {mark.line + 1}, column {mark.column + 1}: {problem}"
    return str(problem)


def parse_documents(text: str, where: str) -> list[Any]:
    """Parse every YAML document in ``text``, dropping empty ones; ``where`` names the source in errors."""
    try:
        return [doc for doc in yaml.load_all(text, Loader=_StrictLoader) if doc is not None]
    except yaml.YAMLError as error:
        raise UserError(Problem(where, f"malformed YAML: {_describe(error)}")) from None


def read_text(path: Path, where: str | None = None) -> str:
    """A UTF-8 text file; a missing, unreadable or undecodable file is a one-line error."""
    label = where or str(path)
    try:
        return path.read_text(encoding="utf-8")
    except OSError as error:
        raise UserError(Problem(label, f"cannot read file: {error.strerror}")) from None
    except UnicodeDecodeError as error:
        raise UserError(Problem(label, f"not UTF-8 text (byte {error.start})")) from None


def load_documents(path: Path, where: str | None = None) -> list[Any]:
    """Read and parse a YAML file; a missing or unreadable file is a one-line error."""
    label = where or str(path)
    return parse_documents(read_text(path, label), label)


def load_mapping(path: Path, where: str | None = None) -> dict[str, Any]:
    """Read a YAML file that must hold exactly one mapping."""
    label = where or str(path)
    docs = load_documents(path, label)
    if len(docs) != 1 or not isinstance(docs[0], dict):
        raise UserError(Problem(label, "expected exactly one YAML mapping"))
    return docs[0]


def dump(data: Any) -> str:
    """Serialise for files the project writes (stable key order as given)."""
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=False)


def dump_all(documents: list[Any]) -> str:
    return yaml.safe_dump_all(documents, sort_keys=False, default_flow_style=False)
