"""Flux post-build substitution (misp_eks.envsubst) and label-selector matching (validate.resources)."""

from __future__ import annotations

import pytest

from misp_eks.envsubst import DISABLE_KEY, invalid_names, is_disabled, references, substitute
from misp_eks.validate.resources import selector_matches

VARIABLES = {"name": "misp", "empty": "", "port": "3306"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("${name}", "misp"),
        ("https://${name}.example.org:${port}/", "https://misp.example.org:3306/"),
        ("${name}${name}", "mispmisp"),
        ("${empty}", ""),
        # Every default form (toDefault upstream) is used when the variable is undefined or empty.
        ("${name:=other}", "misp"),
        ("${empty:=other}", "other"),
        ("${undefined:=other}", "other"),
        ("${name:-other}", "misp"),
        ("${empty:-other}", "other"),
        ("${undefined:-other}", "other"),
        ("${name=other}", "misp"),
        ("${empty=other}", "other"),
        ("${undefined=other}", "other"),
        # An empty default.
        ("${undefined:-}", ""),
        ("${undefined=}", ""),
        # Defaults may hold what YAML values hold.
        ("${undefined:-a b/c:d=e}", "a b/c:d=e"),
        # Only the braced form is a variable; $$ is an escaped $.
        ("$name", "$name"),
        ("$${name}", "${name}"),
        ("$$name", "$name"),
        ("cost: 5$", "cost: 5$"),
        ("a $ b", "a $ b"),
        ("", ""),
    ],
)
def test_supported_forms(text: str, expected: str):
    result = substitute(text, VARIABLES)
    assert result.text == expected
    assert not result.undefined
    assert not result.unsupported


def test_undefined_variable_is_reported_and_replaced_by_nothing():
    result = substitute("host: ${host}.${name}.${host}", VARIABLES)
    assert result.text == "host: .misp."
    assert result.undefined == ["host", "host"]
    assert result.used == {"host", "name"}


def test_a_variable_with_a_default_is_never_undefined():
    for op in (":=", ":-", "="):
        assert not substitute(f"${{nope{op}x}}", {}).undefined


@pytest.mark.parametrize(
    "expression",
    [
        "${name^^}",
        "${name,,}",
        "${name^}",
        "${#name}",
        "${name:1}",
        "${name:1:2}",
        "${name/m/n}",
        "${name//m/n}",
        "${name#m}",
        "${name%p}",
        "${name:-${port}}",
        "${1name}",
        "${}",
        "${name:?required}",
        # Upstream's parser has no "-" case: the whole Kustomization would fail.
        "${name-other}",
    ],
)
def test_unsupported_forms_are_reported_verbatim(expression: str):
    result = substitute(f"a: {expression}", VARIABLES)
    assert result.unsupported, result
    assert result.unsupported[0] in expression
    assert result.unsupported[0].startswith("${")


def test_unterminated_expression_is_reported():
    result = substitute("a: ${name", VARIABLES)
    assert result.unsupported == ["${name"]
    assert result.text == "a: ${name"


def test_variable_names_flux_refuses_are_listed():
    assert invalid_names({"ok_1": "", "_x": "", "my-var": "", "1st": "", "a.b": ""}) == ["1st", "a.b", "my-var"]


def test_newlines_are_stripped_from_values():
    assert substitute("key: ${pem}", {"pem": "line1\nline2\n"}).text == "key: line1line2"


def test_references_exclude_escaped_variables():
    text = "a: ${one}\nb: $${two}\nc: ${three:-x}\nd: $four\ne: ${one}"
    assert references(text) == {"one", "three"}


def test_substitution_does_not_rescan_values():
    assert substitute("${a}", {"a": "${b}", "b": "no"}).text == "${b}"


@pytest.mark.parametrize(
    ("obj", "disabled"),
    [
        ({"metadata": {"labels": {DISABLE_KEY: "disabled"}}}, True),
        ({"metadata": {"annotations": {DISABLE_KEY: "disabled"}}}, True),
        ({"metadata": {"annotations": {DISABLE_KEY: "enabled"}}}, False),
        ({"metadata": {"annotations": {"other": "disabled"}}}, False),
        ({"metadata": {"labels": None, "annotations": None}}, False),
        ({"metadata": {"name": "x"}}, False),
        ({"metadata": "not a mapping"}, False),
        ({"metadata": {"annotations": ["not", "a", "mapping"]}}, False),
        ({}, False),
    ],
)
def test_is_disabled(obj: dict, disabled: bool):
    assert is_disabled(obj) is disabled


LABELS = {"app": "misp", "tier": "web"}


@pytest.mark.parametrize(
    ("selector", "matches"),
    [
        # A plain map, as Services and ReplicationControllers use.
        ({"app": "misp"}, True),
        ({"app": "misp", "tier": "web"}, True),
        ({"app": "misp", "tier": "worker"}, False),
        ({"app": "dashboard"}, False),
        ({"missing": "x"}, False),
        # matchLabels.
        ({"matchLabels": {"app": "misp"}}, True),
        ({"matchLabels": {"app": "misp", "tier": "worker"}}, False),
        ({"matchLabels": {}}, True),  # an empty LabelSelector matches everything
        # Each operator, with the key present and absent.
        ({"matchExpressions": [{"key": "tier", "operator": "In", "values": ["web", "api"]}]}, True),
        ({"matchExpressions": [{"key": "tier", "operator": "In", "values": ["api"]}]}, False),
        ({"matchExpressions": [{"key": "missing", "operator": "In", "values": ["web"]}]}, False),
        ({"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["api"]}]}, True),
        ({"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["web"]}]}, False),
        ({"matchExpressions": [{"key": "missing", "operator": "NotIn", "values": ["web"]}]}, True),
        ({"matchExpressions": [{"key": "tier", "operator": "Exists"}]}, True),
        ({"matchExpressions": [{"key": "missing", "operator": "Exists"}]}, False),
        ({"matchExpressions": [{"key": "missing", "operator": "DoesNotExist"}]}, True),
        ({"matchExpressions": [{"key": "tier", "operator": "DoesNotExist"}]}, False),
        # matchLabels and matchExpressions together: all must hold.
        (
            {
                "matchLabels": {"app": "misp"},
                "matchExpressions": [{"key": "tier", "operator": "In", "values": ["web"]}],
            },
            True,
        ),
        (
            {
                "matchLabels": {"app": "misp"},
                "matchExpressions": [{"key": "tier", "operator": "In", "values": ["worker"]}],
            },
            False,
        ),
        (
            {
                "matchLabels": {"app": "other"},
                "matchExpressions": [{"key": "tier", "operator": "Exists"}],
            },
            False,
        ),
        (
            {
                "matchExpressions": [
                    {"key": "tier", "operator": "Exists"},
                    {"key": "app", "operator": "NotIn", "values": ["misp"]},
                ]
            },
            False,
        ),
        # No selector at all selects nothing.
        (None, False),
        ({}, False),
    ],
)
def test_selector_matches(selector: dict | None, matches: bool):
    assert selector_matches(selector, LABELS) is matches
