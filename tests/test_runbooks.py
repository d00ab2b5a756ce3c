"""docs/runbooks: every command block says what it needs, and is checked as far as it can be offline.

- ``sh offline`` blocks run, here, and their output must show the ``text`` block that follows (in
  order; ``<...>`` stands for any text);
- every ``aws`` call, in any block, names an operation (or waiter) of the pinned botocore's model,
  only options that operation takes, every one it requires, and only values its enums allow;
- every ``kubectl`` call names a subcommand and options the pinned kubectl has.
``flux``, ``eksctl`` and the calls themselves need a cluster and AWS: they are not run.
"""

from __future__ import annotations

import functools
import os
import re
import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path

import botocore.session
import pytest
from botocore import xform_name

from misp_eks.paths import repository_root
from tests.conftest import venv_tool

RUNBOOKS = sorted((repository_root() / "docs" / "runbooks").glob("*.md"))
TAGS = ("sh offline", "sh aws", "sh cluster", "text")
FENCE = re.compile(r"^(?P<indent>[ \t]*)```(?P<info>[^\n`]*)\n(?P<body>.*?)^(?P=indent)```[ \t]*$", re.M | re.S)
SUBSTITUTION = re.compile(r"\$\(([^()]*)\)")
AWS_GLOBALS = {"--region", "--output", "--query", "--profile", "--no-cli-pager", "--endpoint-url", "--debug"}
AWS_SERVICES = {"s3api": "s3"}  # the CLI's name -> botocore's
# Commands the AWS CLI adds beyond the API, with their options (aws-cli awscli/customizations/eks/update_kubeconfig.py).
AWS_CUSTOM = {
    ("eks", "update-kubeconfig"): {
        "--name",
        "--kubeconfig",
        "--role-arn",
        "--dry-run",
        "--verbose",
        "--alias",
        "--user-alias",
    }
}
KUBECTL_GROUPS = {"rollout", "config", "create", "set", "auth", "top", "certificate"}


@dataclass(frozen=True)
class Block:
    path: Path
    line: int
    info: str
    body: str

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(repository_root())}:{self.line}"


def blocks(path: Path) -> list[Block]:
    text = path.read_text()
    found = []
    for match in FENCE.finditer(text):
        indent = match["indent"]
        body = "".join(line.removeprefix(indent) for line in match["body"].splitlines(keepends=True))
        found.append(Block(path, text.count("\n", 0, match.start()) + 1, match["info"].strip(), body))
    return found


ALL = [b for path in RUNBOOKS for b in blocks(path)]


def commands(block: Block) -> list[list[str]]:
    """Each simple command of the block as tokens, those inside $(...) included."""
    joined = block.body.replace("\\\n", " ")
    found: list[list[str]] = []
    for line in joined.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        for inner in SUBSTITUTION.findall(line):
            found.extend(_split(inner))
        found.extend(_split(SUBSTITUTION.sub("SUBSTITUTED", line)))
    return found


REDIRECTION = re.compile(r"\s\d?>(?:&\d|\s*/dev/null)")
SHELL_WORDS = {"until", "while", "do", "done", "then", "if", "fi", "!"}


def _split(line: str) -> list[list[str]]:
    lexer = shlex.shlex(REDIRECTION.sub("", line), posix=True, punctuation_chars="|&;")
    lexer.whitespace_split = True
    parts: list[list[str]] = [[]]
    for token in lexer:
        if token in ("|", "||", "&&", ";", "&"):
            parts.append([])
        else:
            parts[-1].append(token)
    result = []
    for part in parts:
        while part and part[0] in SHELL_WORDS:
            part = part[1:]
        while part and re.fullmatch(r"[A-Za-z_][A-Za-z_0-9]*=.*", part[0]):
            part = part[1:]  # NAME=value before a command, or an assignment alone
        if part and part[0] == "export":
            continue
        if part:
            result.append(part)
    return result


def test_there_are_runbooks_with_commands():
    names = {p.name for p in RUNBOOKS}
    assert {"upgrade.md", "failover.md", "restore.md", "rotation.md", "dashboard-access.md"} <= names
    for kind in ("sh offline", "sh aws", "sh cluster"):
        assert any(b.info == kind for b in ALL), kind


@pytest.mark.parametrize("block", ALL, ids=lambda b: b.where)
def test_every_block_says_what_it_needs(block: Block):
    assert block.info in TAGS, f"{block.where}: a block must be one of {TAGS}, not {block.info!r}"
    names = {c[0] for c in commands(block)} if block.info.startswith("sh") else set()
    if "aws" in names:
        assert block.info == "sh aws", f"{block.where}: calls aws, so it needs AWS: tag it sh aws"
    if names & {"flux", "eksctl"}:
        assert block.info in ("sh cluster", "sh aws"), f"{block.where}: needs the cluster"


# --- sh offline: run them --------------------------------------------------------------------------------


def _expected(block: Block) -> Block | None:
    index = ALL.index(block)
    following = ALL[index + 1] if index + 1 < len(ALL) else None
    return following if following and following.path == block.path and following.info == "text" else None


def _pattern(line: str) -> re.Pattern[str]:
    parts = re.split(r"<[^<>]+>", line.strip())
    return re.compile(r"\s*" + r".+?".join(re.escape(p) for p in parts) + r"\s*")


def shows(output: str, expected: str) -> bool:
    """``expected``'s lines appear in ``output``, in order, each as a whole line (``...`` lines skipped)."""
    lines = iter(output.splitlines())
    for wanted in expected.splitlines():
        if not wanted.strip() or wanted.strip() == "...":
            continue
        pattern = _pattern(wanted)
        if not any(pattern.fullmatch(line) for line in lines):
            return False
    return True


OFFLINE = [b for b in ALL if b.info == "sh offline"]


@pytest.mark.parametrize("block", OFFLINE, ids=lambda b: b.where)
def test_offline_blocks_run_and_show_what_the_runbook_says(block: Block):
    environ = {**os.environ, "PATH": f"{Path(venv_tool('kubectl')).parent}{os.pathsep}{os.environ['PATH']}"}
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", block.body],
        cwd=repository_root(), env=environ, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert result.returncode == 0, f"{block.where}:\n{result.stdout}\n{result.stderr}"
    expected = _expected(block)
    if expected is not None:
        assert shows(result.stdout, expected.body), f"{block.where} printed:\n{result.stdout}\nnot:\n{expected.body}"


def test_commands_are_found_in_loops_pipes_and_substitutions():
    block = Block(
        Path("x.md"),
        1,
        "sh aws",
        'until aws rds describe-db-instances --db-instance-identifier "$X" >/dev/null 2>&1; do sleep 15; done\n'
        'V=$(aws eks describe-addon-versions --addon-name a --output text) && echo "$V" | tr a b\n',
    )
    names = [c[:3] for c in commands(block)]
    assert ["aws", "rds", "describe-db-instances"] in names
    assert ["aws", "eks", "describe-addon-versions"] in names
    assert ["tr", "a", "b"] in names
    described = next(c for c in commands(block) if c[:2] == ["aws", "rds"])
    assert described == ["aws", "rds", "describe-db-instances", "--db-instance-identifier", "$X"]


def test_shows_matches_in_order_with_placeholders():
    assert shows("a\nsummary: 3 trees in 1.0s\nz\n", "summary: <n> trees in <t>s")
    assert shows("x 1\ny 2\n", "x <a>\n...\ny <b>")
    assert not shows("y 2\nx 1\n", "x <a>\ny <b>")
    assert not shows("summary: 3 trees\n", "summary: <n> objects")


# --- aws: against botocore's model ---------------------------------------------------------------------


@functools.cache
def _session() -> botocore.session.Session:
    return botocore.session.get_session()


def aws_problems(tokens: list[str]) -> list[str]:
    if len(tokens) < 3:
        return [f"{shlex.join(tokens)}: no operation"]
    custom = AWS_CUSTOM.get((tokens[1], tokens[2]))
    if custom is not None:
        unknown = [t for t in tokens[3:] if t.startswith("--") and t.split("=")[0] not in custom | AWS_GLOBALS]
        return [f"aws {tokens[1]} {tokens[2]}: no option {t}" for t in unknown]
    service = AWS_SERVICES.get(tokens[1], tokens[1])
    try:
        model = _session().get_service_model(service)
    except botocore.exceptions.UnknownServiceError:
        return [f"no AWS service {tokens[1]}"]
    if tokens[2] == "wait":
        waiters = _session().get_waiter_model(service)
        by_cli = {xform_name(name, "-"): name for name in waiters.waiter_names}
        if len(tokens) < 4 or tokens[3] not in by_cli:
            return [f"aws {tokens[1]} wait: no waiter {tokens[3:4]}"]
        operation = model.operation_model(waiters.get_waiter(by_cli[tokens[3]]).operation)
        arguments = tokens[4:]
    else:
        by_cli = {xform_name(name, "-"): name for name in model.operation_names}
        if tokens[2] not in by_cli:
            return [f"aws {tokens[1]}: no operation {tokens[2]}"]
        operation = model.operation_model(by_cli[tokens[2]])
        arguments = tokens[3:]
    members = operation.input_shape.members if operation.input_shape else {}
    options = {f"--{xform_name(name, '-')}": shape for name, shape in members.items()}
    booleans = {f"--no-{option[2:]}" for option, shape in options.items() if shape.type_name == "boolean"}
    problems = []
    given: set[str] = set()
    for index, token in enumerate(arguments):
        if not token.startswith("--"):
            continue
        option = token.split("=", 1)[0]
        given.add(option.replace("--no-", "--", 1) if option in booleans else option)
        if option in AWS_GLOBALS or option in booleans:
            continue
        if option not in options:
            problems.append(f"aws {tokens[1]} {tokens[2]}: no option {option}")
            continue
        shape = options[option]
        value = arguments[index + 1] if index + 1 < len(arguments) else ""
        enum = getattr(shape, "enum", None)
        if enum and not value.startswith(("$", "<")) and value not in enum:
            problems.append(f"aws {tokens[1]} {tokens[2]} {option}: {value} is not one of {enum}")
    required = operation.input_shape.required_members if operation.input_shape else []
    for name in required:
        if f"--{xform_name(name, '-')}" not in given:
            problems.append(f"aws {tokens[1]} {tokens[2]}: --{xform_name(name, '-')} is required")
    return problems


AWS_CALLS = [(b, c) for b in ALL if b.info.startswith("sh") for c in commands(b) if c[0] == "aws"]


@pytest.mark.parametrize(("block", "tokens"), AWS_CALLS, ids=lambda x: x.where if isinstance(x, Block) else "")
def test_aws_calls_match_the_api(block: Block, tokens: list[str]):
    assert aws_problems(tokens) == [], block.where


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("aws rds reboot-db-instance --db-instance-identifier x --force-fail-over", "no option --force-fail-over"),
        ("aws rds reboot-db-instance --force-failover", "--db-instance-identifier is required"),
        ("aws rds restart-db-instance --db-instance-identifier x", "no operation restart-db-instance"),
        ("aws rds wait db-instance-ready --db-instance-identifier x", "no waiter"),
        (
            "aws elasticache modify-replication-group --replication-group-id x --auth-token y "
            "--auth-token-update-strategy ROTATED",
            "ROTATED is not one of",
        ),
    ],
)
def test_the_aws_check_catches_mistakes(line: str, problem: str):
    found = aws_problems(shlex.split(line))
    assert any(problem in p for p in found), found


# --- kubectl: against the pinned kubectl ---------------------------------------------------------------


@functools.cache
def _kubectl_help(*words: str) -> str:
    result = subprocess.run(
        [venv_tool("kubectl"), *words, "--help"], capture_output=True, text=True, timeout=60, check=False
    )
    return result.stdout if result.returncode == 0 else ""


@functools.cache
def _kubectl_options() -> str:
    """The options every kubectl command takes."""
    return subprocess.run(
        [venv_tool("kubectl"), "options"], capture_output=True, text=True, timeout=60, check=True
    ).stdout


def _flags(help_text: str) -> set[str]:
    return set(re.findall(r"(?<![\w-])(--[a-z0-9-]+|-[a-zA-Z])(?=[=,:\s])", help_text))


def kubectl_problems(tokens: list[str]) -> list[str]:
    arguments = tokens[1 : tokens.index("--")] if "--" in tokens else tokens[1:]
    globals_help = _kubectl_options()
    positionals = []
    skip = False
    for token in arguments:
        if skip:
            skip = False
            continue
        if token in ("-n", "--namespace", "--context", "-c", "-l", "-o", "-L"):
            skip = True
            continue
        if not token.startswith("-"):
            positionals.append(token)
    if not positionals:
        return [f"{shlex.join(tokens)}: no subcommand"]
    words = positionals[:2] if positionals[0] in KUBECTL_GROUPS else positionals[:1]
    help_text = _kubectl_help(*words)
    if f"kubectl {' '.join(words)}" not in help_text:
        return [f"kubectl has no subcommand {' '.join(words)}"]
    known = _flags(help_text) | _flags(globals_help)
    return [
        f"kubectl {' '.join(words)}: no option {token.split('=', 1)[0]}"
        for token in arguments
        if token.startswith("-") and token.split("=", 1)[0] not in known
    ]


KUBECTL_CALLS = [(b, c) for b in ALL if b.info.startswith("sh") for c in commands(b) if c[0] == "kubectl"]


@pytest.mark.parametrize(("block", "tokens"), KUBECTL_CALLS, ids=lambda x: x.where if isinstance(x, Block) else "")
def test_kubectl_calls_match_the_pinned_kubectl(block: Block, tokens: list[str]):
    assert kubectl_problems(tokens) == [], block.where


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("kubectl -n misp rollout restrat deployment/misp-web", "no subcommand rollout restrat"),
        ("kubectl drain -l zone=a --ignore-daemonset", "no option --ignore-daemonset"),
    ],
)
def test_the_kubectl_check_catches_mistakes(line: str, problem: str):
    assert any(problem in p for p in kubectl_problems(shlex.split(line)))
