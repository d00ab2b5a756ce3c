"""docs/runbooks: every command block says what it needs, and is checked as far as it can be offline.

- ``sh offline`` blocks run, here, and their output must show the ``text`` block that follows (in
  order; ``<...>`` stands for any text);
- every ``aws`` call, in any block, names an operation (or waiter) of the pinned botocore's model,
  only options that operation takes, every one it requires, and only values its enums allow;
- every ``kubectl`` call names a subcommand and options the pinned kubectl has;
- every ``text`` block shows the output of the command block it follows: each of its lines can fail
  to match; the Kubernetes objects and Flux resources it names are the command's and exist in this
  repository; a ``flux get`` table has the header its flags make; the keys and columns of AWS output
  are those of the calls' botocore output shapes and ``--query`` projections, and what a call prints as
  ``--output text`` is never shown as JSON, nor the reverse.
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


@pytest.mark.parametrize("block", [b for b in ALL if b.info != "text"], ids=lambda b: b.where)
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


# --- text: what a command block prints -------------------------------------------------------------------

TEXT = [b for b in ALL if b.info == "text"]
PLACEHOLDER = re.compile(r"<[^<>]+>")
# kubectl's "<resource>.<group>/<name> <verb>" and rollout's 'deployment "<name>" successfully rolled out'.
KUBECTL_OBJECT = re.compile(r'^(?:(?P<resource>[a-z]+)(?:\.[a-z0-9.-]+)?/(?P<name>[a-z0-9.-]+)(?:-<[^<>]+>)?'
                            r'|(?P<rresource>deployment|statefulset|daemonset) "(?P<rname>[a-z0-9-]+)")\s')  # fmt: skip
EVICTING = re.compile(r"^evicting pod (?P<namespace>[a-z0-9-]+)/(?P<name>[a-z0-9-]+?)-<[^<>]+>$")
KINDS = {
    "deployment": "Deployment",
    "job": "Job",
    "externalsecret": "ExternalSecret",  # pragma: allowlist secret (a kind)
    "pod": "Deployment",  # a pod is named after its Deployment's ReplicaSet
}
FLUX_TABLES = {("get", "kustomizations"): "Kustomization", ("get", "helmreleases"): "HelmRelease"}
FLUX_HEADER = ["NAME", "REVISION", "SUSPENDED", "READY", "MESSAGE"]  # flux2 v2.9.4 cmd/flux/get_*.go headers()
JSON_KEY = re.compile(r'"([A-Za-z][A-Za-z0-9_]*)"\s*:')


def command_of(block: Block, blocks: list[Block]) -> Block | None:
    """The block a text block shows the output of: the one right before it, in the same file."""
    index = blocks.index(block)
    before = blocks[index - 1] if index else None
    return before if before is not None and before.path == block.path and before.info.startswith("sh") else None


def blind_lines(block: Block) -> list[str]:
    """Lines that would match any output line: nothing but placeholders and blanks."""
    return [
        line
        for line in block.body.splitlines()
        if line.strip() and line.strip() != "..." and not PLACEHOLDER.sub("", line).strip()
    ]


@functools.cache
def repository_objects() -> frozenset[tuple[str, str]]:
    """(kind, name) of every object written in clusters/, infrastructure/ and apps/, plus the bootstrap's root."""
    import yaml

    found = {("Kustomization", "flux-system")}  # flux bootstrap creates it (misp_eks.validate.flux.bootstrap_root)
    for top in ("clusters", "infrastructure", "apps"):
        for path in (repository_root() / top).rglob("*.yaml"):
            try:
                documents = list(yaml.safe_load_all(path.read_text()))
            except yaml.YAMLError:
                continue
            for document in documents:
                if isinstance(document, dict) and isinstance(document.get("metadata"), dict):
                    found.add((str(document.get("kind")), str(document["metadata"].get("name"))))
    return frozenset(found)


def kubectl_output_problems(command: Block, text: Block) -> list[str]:
    found = []
    for line in text.body.splitlines():
        match = KUBECTL_OBJECT.match(line) or EVICTING.match(line)
        if not match:
            continue
        groups = match.groupdict()
        resource = groups.get("resource") or groups.get("rresource") or "pod"
        name = groups.get("name") or groups.get("rname")
        if resource not in KINDS:
            continue  # nodes and the like: the cluster's, not the repository's
        if resource != "pod" and name not in command.body:  # pods go by label (drain), objects by name
            found.append(f"{line.strip()!r}: the command never names {name}")
        if (KINDS[resource], name) not in repository_objects():
            found.append(f"{line.strip()!r}: no {KINDS[resource]} {name} in this repository")
    return found


def flux_header(tokens: list[str]) -> list[str]:
    """The header flux get prints: flux2 v2.9.4 cmd/flux/get_kustomization.go and get_helmrelease.go headers()
    put SOURCE after NAME with --show-source and NAMESPACE first with -A (cmd/flux/get.go); the table printer
    upper-cases them (pkg/printers/table_printer.go SetAutoFormatHeaders)."""
    header = ["NAME", *(["SOURCE"] if "--show-source" in tokens else []), *FLUX_HEADER[1:]]
    return ["NAMESPACE", *header] if {"-A", "--all-namespaces"} & set(tokens) else header


def flux_output_problems(command: Block, text: Block) -> list[str]:
    every = commands(command)
    calls = [c for c in every if c[0] == "flux" and tuple(c[1:3]) in FLUX_TABLES]
    if not calls:
        return []
    kinds = [FLUX_TABLES[tuple(c[1:3])] for c in calls]  # type: ignore[index]
    rows = [line.split() for line in text.body.splitlines() if line.strip() and line.strip() != "..."]
    if not rows:
        return []
    headers = [flux_header(c) for c in calls]
    if rows[0] not in headers:
        if rows[0][0] in ("NAME", "NAMESPACE") or len(every) == len(calls):
            return [f"a flux get table starts with {' or '.join(' '.join(h) for h in headers)}"]
        return []  # the output shown is another command's (kubectl rollout status after flux get --watch)
    column = rows[0].index("NAME")
    return [
        f"{row[column]}: no {' or '.join(kinds)} of that name in this repository"
        for row in rows[1:]
        if len(row) <= column or not any((kind, row[column]) in repository_objects() for kind in kinds)
    ]


def _members(shape, seen: set[str]) -> set[str]:
    if shape is None or shape.name in seen:
        return set()
    seen.add(shape.name)
    if shape.type_name == "structure":
        names = set(shape.members)
        for member in shape.members.values():
            names |= _members(member, seen)
        return names
    if shape.type_name == "list":
        return _members(shape.member, seen)
    if shape.type_name == "map":
        return _members(shape.value, seen)
    return set()


def _operation(tokens: list[str]):
    if len(tokens) < 3 or tokens[2] == "wait" or (tokens[1], tokens[2]) in AWS_CUSTOM:
        return None
    service = AWS_SERVICES.get(tokens[1], tokens[1])
    model = _session().get_service_model(service)
    by_cli = {xform_name(name, "-"): name for name in model.operation_names}
    return model.operation_model(by_cli[tokens[2]]) if tokens[2] in by_cli else None


def _option(tokens: list[str], name: str) -> str | None:
    """The value of ``--name value`` or ``--name=value``."""
    for index, token in enumerate(tokens):
        if token == name and index + 1 < len(tokens):
            return tokens[index + 1]
        if token.startswith(f"{name}="):
            return token.split("=", 1)[1]
    return None


def shown_commands(block: Block) -> list[list[str]]:
    """The commands whose output the terminal shows: not inside $(...), not piped on, not redirected."""
    shown = []
    for line in block.body.replace("\\\n", " ").splitlines():
        if not line.strip() or line.strip().startswith("#"):
            continue
        lexer = shlex.shlex(
            REDIRECTION.sub("", SUBSTITUTION.sub("SUBSTITUTED", line)), posix=True, punctuation_chars="|&;"
        )
        lexer.whitespace_split = True
        part: list[str] = []
        for token in [*lexer, ";"]:
            if token in ("|", "||", "&&", ";", "&"):
                if part and token != "|" and not any(t.startswith(">") for t in part):
                    shown.extend(_split(shlex.join(part)))
                part = []
            else:
                part.append(token)
    return shown


def text_columns(tokens: list[str]) -> int | None:
    """Columns per line of ``--output text``: a trailing multiselect list's length, 1 for a single value,
    None when a projection may put any number of values on a line."""
    query = _option(tokens, "--query") or ""
    selected = re.search(r"\[([^\[\]]+)\]$", query)
    if selected:
        return len(selected.group(1).split(","))
    if re.search(r"\|\s*\[\d+\]$", query) or not re.search(r"\[(?:\]|\?|\*)", query):
        return 1
    return None


def _json_line(line: str) -> bool:
    plain = line.strip().removeprefix("...").strip()
    return plain[:1] in ("{", "}", "[", "]", '"')


def aws_output_problems(command: Block, text: Block) -> list[str]:
    calls = [c for c in commands(command) if c[0] == "aws"]
    if not calls:
        return []
    keys: set[str] = set()
    for tokens in calls:
        operation = _operation(tokens)
        if operation is not None:
            keys |= _members(operation.output_shape, set())
        keys |= set(re.findall(r"[{,]\s*([A-Za-z_]+)\s*:", _option(tokens, "--query") or ""))  # multiselect keys
    found = [f"{key}: no call of the block outputs it" for key in JSON_KEY.findall(text.body) if key not in keys]
    every = [c for c in shown_commands(command) if not (c[0] == "aws" and c[2:3] == ["wait"])]  # waiters: silent
    shown = [c for c in every if c[0] == "aws" and _operation(c) is not None]
    if len(shown) < len(every):
        return found  # other commands print too (aws eks update-kubeconfig, echo): a line may be theirs
    as_text = [c for c in shown if _option(c, "--output") == "text"]
    as_json = [c for c in shown if _option(c, "--output") in (None, "json")]
    columns = {text_columns(c) for c in as_text}
    for line in text.body.splitlines():
        plain = line.strip()
        if not plain or plain == "...":
            continue
        if _json_line(plain):
            if not as_json:
                found.append(f"{plain!r}: JSON, but every call shown prints --output text")
        elif not as_text:
            found.append(f"{plain!r}: not JSON, but every call shown prints JSON")
        elif as_text and None not in columns and len(plain.split()) not in columns:
            counts = sorted(c for c in columns if c is not None)
            found.append(f"{plain!r}: {len(plain.split())} columns, the queries select {counts}")
    return found


def text_problems(text: Block, blocks: list[Block] = ALL) -> list[str]:
    command = command_of(text, blocks)
    if command is None:
        return ["shows output, but follows no command block"]
    blind = [f"{line!r} matches any line: say something literal" for line in blind_lines(text)]
    return [
        *blind,
        *kubectl_output_problems(command, text),
        *flux_output_problems(command, text),
        *aws_output_problems(command, text),
    ]


@pytest.mark.parametrize("block", TEXT, ids=lambda b: b.where)
def test_output_is_that_of_its_command(block: Block):
    assert text_problems(block) == [], block.where


def _fake(info: str, body: str, line: int) -> Block:
    return Block(repository_root() / "docs" / "runbooks" / "fake.md", line, info, body)


@pytest.mark.parametrize(
    ("command", "output", "problem"),
    [
        (None, "64 32\n", "follows no command block"),
        ("sh offline\nsomething", "<n> <m>\n...\n", "matches any line"),
        ("sh cluster\nkubectl -n misp rollout status deployment/misp-web",
         'deployment "misp-workers" successfully rolled out\n', "never names misp-workers"),
        ("sh cluster\nkubectl -n misp rollout restart deployment/misp-webb",
         "deployment.apps/misp-webb restarted\n", "no Deployment misp-webb"),
        ("sh cluster\nkubectl drain -l a=b", "evicting pod misp/misp-modulez-<hash>\n", "no Deployment misp-modulez"),
        ("sh cluster\nflux get kustomizations",
         "NAME REVISION SUSPENDED READY MESSAGE\nmisp-app main False True ok\n", "misp-app: no Kustomization"),
        ("sh cluster\nflux get helmreleases", "NAME READY\naws-load-balancer-controller True\n",
         "a flux get table starts with"),
        ("sh aws\naws rds describe-events --duration 30",
         '...  "Mesage": "Multi-AZ instance failover completed" ...\n', "Mesage: no call"),
        ("sh aws\naws rds describe-db-instances --query 'DBInstances[0].[AvailabilityZone]' --output text",
         "eu-west-1a      eu-west-1b\n", "2 columns, the queries select [1]"),
        ("sh cluster\nflux get kustomizations", "misp-app main False True ok\n", "a flux get table starts with NAME"),
        ("sh cluster\nflux get kustomizations -A",
         "NAMESPACE NAME REVISION SUSPENDED READY MESSAGE\nflux-system misp-app main False True ok\n",
         "misp-app: no Kustomization"),
        ("sh cluster\nflux get kustomizations --all-namespaces",
         "NAME REVISION SUSPENDED READY MESSAGE\nmisp-web main False True ok\n",
         "a flux get table starts with NAMESPACE NAME"),
        ("sh cluster\nflux get kustomizations --show-source",
         "NAME REVISION SUSPENDED READY MESSAGE\nmisp-web main False True ok\n",
         "a flux get table starts with NAME SOURCE REVISION"),
        ("sh aws\naws rds describe-db-instances --query='DBInstances[0].[AvailabilityZone]' --output=text",
         "eu-west-1a      eu-west-1b\n", "2 columns, the queries select [1]"),
        ("sh aws\naws rds describe-db-instances --query 'DBInstances[0].[AvailabilityZone]' --output text",
         "... eu-west-1b\n", "2 columns, the queries select [1]"),
        ("sh aws\naws rds describe-db-instances --query 'DBInstances[0].[AvailabilityZone]' --output text",
         '"eu-west-1a"\n', "JSON, but every call shown prints --output text"),
        ("sh aws\naws rds describe-events --duration 30", "eu-west-1a\n", "not JSON, but every call shown prints JSON"),
        ("sh aws\nZ=$(aws rds describe-db-instances --query 'DBInstances[0].[AvailabilityZone]' --output text)\n"
         "aws rds describe-db-instances --output text\\\n  --query 'DBInstances[0].[AvailabilityZone,MultiAZ]'",
         "eu-west-1a\n", "1 columns, the queries select [2]"),
    ],
    ids=["orphan", "blind", "other-object", "unknown-object", "evicted", "flux-name", "flux-header", "aws-key",
         "aws-columns", "flux-no-header", "flux-all-namespaces-name", "flux-all-namespaces-header",
         "flux-show-source-header", "aws-columns-equals", "aws-columns-elided", "aws-json-in-text",
         "aws-text-in-json", "aws-substituted-not-shown"],
)  # fmt: skip
def test_the_output_checks_catch_mistakes(command: str | None, output: str, problem: str):
    text = _fake("text", output, 5)
    blocks = [text]
    if command is not None:
        info, body = command.split("\n", 1)
        blocks.insert(0, _fake(info, body + "\n", 1))
    found = text_problems(text, blocks)
    assert any(problem in p for p in found), found


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
