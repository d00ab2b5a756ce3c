"""Every GitHub Actions workflow under .github/workflows passes actionlint, zizmor (offline, pedantic persona) and
the SchemaStore workflow schema bundled in check-jsonschema, and pins every action to a full commit SHA; test.yaml's
flux build | kubeconform job builds every Flux Kustomization of every environment with pinned tools."""

from __future__ import annotations

import functools
import re
import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from misp_eks.paths import repository_root
from misp_eks.provision.gitops import FLUX_DISTRIBUTION
from misp_eks.validate.runner import validate_repository
from tests.conftest import venv_tool

WORKFLOWS = sorted(p for p in (repository_root() / ".github" / "workflows").glob("*") if p.suffix in (".yml", ".yaml"))
PINNED = re.compile(r"^[\w.-]+/[\w.-]+(/[\w./-]+)?@[0-9a-f]{40}$")
USES_LINE = re.compile(r"^\s*(?:-\s+)?uses:\s*(?P<ref>\S+)(?P<rest>.*)$")
VERSION_COMMENT = re.compile(r"^\s+#\s+v\d+\.\d+\.\d+\s*$")

BAD_WORKFLOW = """\
on: pull_request_target
jobs:
  greet:
    runs-on: ubuntu-24.04
    steps:
      - uses: actions/checkout@v4
        with:
          ref: ${{ github.event.pull_request.head.sha }}
      - run: echo "${{ github.event.pull_request.title }}"
"""


def run(command: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=300, check=False)


def actionlint(path: Path) -> subprocess.CompletedProcess[str]:
    return run([venv_tool("actionlint"), "-no-color", "-shellcheck", venv_tool("shellcheck"), str(path)], path.parent)


def zizmor(path: Path) -> subprocess.CompletedProcess[str]:
    return run([venv_tool("zizmor"), "--offline", "--persona", "pedantic", "--no-progress", str(path)], path.parent)


def test_there_are_workflows():
    assert WORKFLOWS, "no workflow under .github/workflows"


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda p: p.name)
def test_actionlint(workflow):
    result = actionlint(workflow)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda p: p.name)
def test_zizmor_pedantic_offline(workflow):
    result = zizmor(workflow)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda p: p.name)
def test_github_workflow_schema(workflow):
    result = run(
        [venv_tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows", str(workflow)], workflow.parent
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda p: p.name)
def test_actions_are_pinned_to_commit_shas(workflow):
    document = yaml.safe_load(workflow.read_text())
    uses = []
    for job in (document.get("jobs") or {}).values():
        if "uses" in job:
            uses.append(job["uses"])
        uses.extend(step["uses"] for step in job.get("steps") or [] if "uses" in step)
    for ref in uses:
        if ref.startswith("./"):
            continue
        if ref.startswith("docker://"):
            assert "@sha256:" in ref, f"{workflow.name}: {ref} is not pinned by digest"
            continue
        assert PINNED.match(ref), f"{workflow.name}: {ref} is not pinned to a 40-hex commit SHA"
    # and each pinned line says which release the SHA is, for reviewers and Renovate
    for number, line in enumerate(workflow.read_text().splitlines(), 1):
        match = USES_LINE.match(line)
        if match and PINNED.match(match["ref"]):
            assert VERSION_COMMENT.match(match["rest"]), f"{workflow.name}:{number}: add a '# vX.Y.Z' comment"


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda p: p.name)
def test_checkouts_do_not_persist_credentials(workflow):
    document = yaml.safe_load(workflow.read_text())
    for name, job in (document.get("jobs") or {}).items():
        for step in job.get("steps") or []:
            if str(step.get("uses", "")).startswith("actions/checkout@"):
                assert (step.get("with") or {}).get("persist-credentials") is False, f"{workflow.name}: job {name}"


def test_the_linters_do_fail_on_a_bad_workflow(tmp_path):
    """The checks above are not vacuous: a workflow with script injection and an unpinned action fails each."""
    bad = tmp_path / "bad.yaml"
    bad.write_text(BAD_WORKFLOW)
    linted = actionlint(bad)
    assert linted.returncode != 0
    assert "potentially untrusted" in linted.stdout
    audited = zizmor(bad)
    assert audited.returncode != 0
    assert "template-injection" in audited.stdout + audited.stderr
    assert not PINNED.match("actions/checkout@v4")


# --- the second opinion in test.yaml: flux build | kubeconform over every Flux Kustomization ------------------

TEST_WORKFLOW = repository_root() / ".github" / "workflows" / "test.yaml"
CHECK_LINE = re.compile(r"^\s*check (?P<env>\S+) (?P<name>\S+) (?P<path>\S+) (?P<file>\S+)\s*$", re.M)
APPLIED_BY_ROOT = re.compile(
    r'--kustomization-file "\$RUNNER_TEMP/(?P<env>[\w-]+)\.yaml" --dry-run\s*>"\$RUNNER_TEMP/(?P=env)-applied\.yaml"'
)
OPERATORS = ("|", "||", "&&", ";", "&")


@dataclass(frozen=True)
class Build:
    env: str
    version: str
    name: str
    path: str


def flux_build_job() -> dict:
    jobs = yaml.safe_load(TEST_WORKFLOW.read_text())["jobs"]
    return next(job for job in jobs.values() if any("flux build" in str(s.get("run", "")) for s in job["steps"]))


def step_script(job: dict, needle: str) -> str:
    return next(str(s["run"]) for s in job["steps"] if needle in str(s.get("run", "")))


def build_script() -> str:
    return step_script(flux_build_job(), "flux build")


def shell_commands(script: str) -> list[list[str]]:
    """Each simple command of a bash script, as unexpanded words (pipelines and lists split apart)."""
    found: list[list[str]] = []
    for line in script.replace("\\\n", " ").splitlines():
        if not line.strip() or line.strip().startswith("#"):
            continue
        lexer = shlex.shlex(line, posix=True, punctuation_chars="|&;")
        lexer.whitespace_split = True
        lexer.commenters = ""
        words: list[str] = []
        for token in [*lexer, ";"]:
            if token in OPERATORS:
                if words:
                    found.append(words)
                words = []
            else:
                words.append(token)
    return found


def expand(word: str, variables: dict[str, str]) -> str:
    """``$NAME`` and ``${NAME}`` of ``variables`` replaced; anything else left as written."""
    return re.sub(
        r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?",
        lambda m: variables.get(m.group(1), m.group(0)),
        word,
    )


def assigned(commands: list[list[str]], given: dict[str, str] | None = None) -> dict[str, str]:
    """``given`` and the variables the script assigns (``name=value`` alone, or after ``local``)."""
    values: dict[str, str] = dict(given or {})
    for words in commands:
        for word in words[1:] if words[0] == "local" else words[:1]:
            match = re.fullmatch(r"([A-Za-z_][A-Za-z0-9_]*)=(.*)", word)
            if match:
                values[match.group(1)] = expand(match.group(2), values)
    return values


def option(words: list[str], name: str) -> str | None:
    for index, word in enumerate(words):
        if word == name and index + 1 < len(words):
            return words[index + 1]
        if word.startswith(f"{name}="):
            return word.split("=", 1)[1]
    return None


@functools.cache
def repository_versions() -> dict[str, str]:
    """Each environment's and the kind cluster's Kubernetes version, as kubeconform takes it (x.y.z)."""
    report = validate_repository(repository_root())
    targets = {**report.environments, **report.kind_clusters}
    return {name: f"{target.kubernetes_version}.0" for name, target in targets.items()}


@functools.cache
def flux_kustomizations() -> frozenset[Build]:
    """Every Flux Kustomization of every environment (and of the kind cluster), as scripts/validate finds them."""
    report = validate_repository(repository_root())
    versions = repository_versions()
    return frozenset(
        Build(env, versions[env], item.name, item.path)
        for env, items in report.kustomizations.items()
        for item in items
    )


def _defines(relative: str, name: str, path: str) -> bool:
    file = repository_root() / relative
    if not file.is_file():
        return False
    return any(
        isinstance(d, dict) and d.get("kind") == "Kustomization" and d["metadata"]["name"] == name
        and d["spec"].get("path") in (path, f"./{path}")
        for d in yaml.safe_load_all(file.read_text())
    )  # fmt: skip


def coverage_problems(script: str, env: dict[str, str], expected: frozenset[Build]) -> list[str]:
    checks = list(CHECK_LINE.finditer(script))
    problems = [
        f"no KUBERNETES_{m['env'].upper()} for {m['env']}"
        for m in checks
        if f"KUBERNETES_{m['env'].upper()}" not in env
    ]
    built = {Build(m["env"], str(env.get(f"KUBERNETES_{m['env'].upper()}")), m["name"], m["path"]) for m in checks}
    problems += [f"not built: {b}" for b in sorted(expected - built, key=str)]
    problems += [f"no such Flux Kustomization: {b}" for b in sorted(built - expected, key=str)]
    applied = {m["env"] for m in APPLIED_BY_ROOT.finditer(script)}
    for m in checks:
        file = m["file"]
        if file == f'"$RUNNER_TEMP/{m["env"]}.yaml"':
            ok = m["name"] == "flux-system"  # the bootstrap's own, written by the script
        elif file == f'"$RUNNER_TEMP/{m["env"]}-applied.yaml"':
            ok = m["env"] in applied
        else:
            ok = _defines(file, m["name"], m["path"])
        if not ok:
            problems.append(f"{m['name']} ({m['env']}): {file} does not define it")
    return problems


def test_flux_build_covers_every_flux_kustomization():
    assert coverage_problems(build_script(), flux_build_job()["env"], flux_kustomizations()) == []


def test_one_kubernetes_version_per_environment():
    """One variable per cluster, equal to the repository's version: nothing repeated line by line."""
    env = flux_build_job()["env"]
    versions = {k.removeprefix("KUBERNETES_").lower(): str(v) for k, v in env.items() if k.startswith("KUBERNETES_")}
    assert versions == repository_versions()
    assert not re.search(r"\b\d+\.\d+\.\d+\b", "\n".join(m.group(0) for m in CHECK_LINE.finditer(build_script())))


def test_a_flux_kustomization_left_out_fails():
    script, env = build_script(), flux_build_job()["env"]
    line = next(m.group(0) for m in CHECK_LINE.finditer(script) if m["name"] == "misp-web" and m["env"] == "prod")
    assert "not built: " in "".join(coverage_problems(script.replace(line, ""), env, flux_kustomizations()))
    extra = Build("prod", env["KUBERNETES_PROD"], "misp-new", "apps/misp-new/prod")
    assert f"not built: {extra}" in coverage_problems(script, env, flux_kustomizations() | {extra})
    wrong_file = line.replace("clusters/prod/apps.yaml", "clusters/prod/infrastructure.yaml")
    assert any(
        "does not define it" in p
        for p in coverage_problems(script.replace(line, wrong_file), env, flux_kustomizations())
    )
    unbuilt = APPLIED_BY_ROOT.sub("", script)
    found = coverage_problems(unbuilt, env, flux_kustomizations())
    assert any("(kind):" in p and "does not define it" in p for p in found)
    assert any(
        "no such Flux Kustomization" in p
        for p in coverage_problems(script, {**env, "KUBERNETES_PROD": "1.34.0"}, flux_kustomizations())
    )
    without = {k: v for k, v in env.items() if k != "KUBERNETES_STAGING"}
    assert "no KUBERNETES_STAGING for staging" in coverage_problems(script, without, flux_kustomizations())


def installer_problems(script: str, env: dict[str, str]) -> list[str]:
    """What a kubeconform installer must do: download the pinned release, check the pinned sha256 of the
    very file it unpacks, and find that sha256 in the release's CHECKSUMS."""
    commands = shell_commands(script)
    variables = assigned(commands, {k: str(v) for k, v in env.items()})
    release = f"https://github.com/yannh/kubeconform/releases/download/{env['KUBECONFORM_VERSION']}"
    downloads = {
        expand(option(c, "--output") or "", variables): expand(c[-1], variables) for c in commands if c[0] == "curl"
    }
    archive = next((f for f, url in downloads.items() if url == f"{release}/kubeconform-linux-amd64.tar.gz"), None)
    checksums = next((f for f, url in downloads.items() if url == f"{release}/CHECKSUMS"), None)
    problems = []
    if archive is None:
        problems.append("no curl --output FILE of the pinned release's kubeconform-linux-amd64.tar.gz")
    if checksums is None:
        problems.append("no curl --output FILE of the pinned release's CHECKSUMS")
    echoed = [expand(c[1], variables) for c in commands if c[0] == "echo" and len(c) == 2]
    checked = any(c[:2] == ["sha256sum", "--check"] for c in commands)
    if not checked or f"{env['KUBECONFORM_SHA256']}  {archive}" not in echoed:
        problems.append("the archive's sha256 is not checked against KUBECONFORM_SHA256")
    listed = [
        c for c in commands
        if c[0] == "grep" and "--fixed-strings" in c and checksums is not None and expand(c[-1], variables) == checksums
        and expand(c[-2], variables) == f"{env['KUBECONFORM_SHA256']}  kubeconform-linux-amd64.tar.gz"
    ]  # fmt: skip
    if not listed:
        problems.append("KUBECONFORM_SHA256 is not looked up in the release's CHECKSUMS")
    unpacked = [c for c in commands if c[0] == "tar" and archive is not None and expand(c[2], variables) == archive]
    if not unpacked:
        problems.append("the archive checked is not the one unpacked")
    return problems


def builder_problems(script: str) -> list[str]:
    """Every build runs on a file with the cluster-vars inlined, strictly substituted, piped into a strict
    kubeconform of the environment's version."""
    commands = shell_commands(script)
    problems = []
    if "set -euo pipefail" not in script:
        problems.append("a failing flux build must fail the pipe: set -euo pipefail")
    builds = [c for c in commands if c[:3] == ["flux", "build", "kustomization"] and "$2" in c]
    if len(builds) != 1:
        return [*problems, "check() must run one flux build kustomization of its Kustomization"]
    build = builds[0]
    for flag in ("--dry-run", "--strict-substitute"):
        if flag not in build:
            problems.append(f"flux build without {flag}")
    inlined = option(build, "--kustomization-file")
    writers = [
        c for c in commands
        if "misp_eks.validate.inline" in c and option(c, "--env") == "$1" and option(c, "--output") == inlined
        and c[-1] == "$4"
    ]  # fmt: skip
    if not writers:
        problems.append("the kustomization file flux builds is not misp_eks.validate.inline's copy of $4")
    validators = [c for c in commands if c[0].endswith("/kubeconform")]
    if len(validators) != 1:
        return [*problems, "one kubeconform after the build"]
    validator = validators[0]
    if "-strict" not in validator:
        problems.append("kubeconform without -strict")
    if option(validator, "-kubernetes-version") != "${!version}":
        problems.append("kubeconform's -kubernetes-version is not the environment's KUBERNETES_<ENV>")
    if assigned(commands).get("version") != "KUBERNETES_${1^^}":
        problems.append("check() must take the version from KUBERNETES_<ENV>")
    locations = [validator[i + 1] for i, w in enumerate(validator[:-1]) if w == "-schema-location"]
    if "default" not in locations or not any(loc.startswith("$CRD_CATALOG/") for loc in locations):
        problems.append("kubeconform needs the default schemas and the pinned CRD catalog")
    return problems


def test_flux_build_tools_are_pinned():
    job = flux_build_job()
    setup = next(s for s in job["steps"] if str(s.get("uses", "")).startswith("fluxcd/flux2/action@"))
    assert f"v{setup['with']['version']}" == FLUX_DISTRIBUTION, "the CLI must be the Flux the bootstrap installs"
    env = job["env"]
    assert re.fullmatch(r"v\d+\.\d+\.\d+", env["KUBECONFORM_VERSION"])
    assert re.fullmatch(r"[0-9a-f]{64}", env["KUBECONFORM_SHA256"])
    assert re.fullmatch(r"https://raw\.githubusercontent\.com/datreeio/CRDs-catalog/[0-9a-f]{40}", env["CRD_CATALOG"])
    assert installer_problems(step_script(job, "kubeconform-linux-amd64"), env) == []
    assert builder_problems(build_script()) == []


@pytest.mark.parametrize(
    ("old", "new", "problem"),
    [
        ('"$release/CHECKSUMS"', '"$release/CHECKSUM"', "CHECKSUMS"),
        ('--output "$archive" "$release', '--output "$archive.other" "$release', "sha256 is not checked"),
        ('echo "$KUBECONFORM_SHA256  $archive"', 'echo "$KUBECONFORM_SHA256  $RUNNER_TEMP/x"', "sha256 is not checked"),
        ("| sha256sum --check --strict", "| cat", "sha256 is not checked"),
        ('"$KUBECONFORM_SHA256  kubeconform-linux-amd64.tar.gz"', '"kubeconform-linux-amd64.tar.gz"', "CHECKSUMS"),
        ('tar -xzf "$archive"', 'tar -xzf "$RUNNER_TEMP/other.tar.gz"', "not the one unpacked"),
        ("/download/$KUBECONFORM_VERSION", "/download/v0.6.7", "kubeconform-linux-amd64.tar.gz"),
    ],
)
def test_a_loose_installer_fails(old, new, problem):
    job = flux_build_job()
    script = step_script(job, "kubeconform-linux-amd64")
    assert old in script
    assert any(problem in p for p in installer_problems(script.replace(old, new), job["env"]))


@pytest.mark.parametrize(
    ("old", "new", "problem"),
    [
        (" --dry-run --strict-substitute", " --dry-run", "without --strict-substitute"),
        ('--kustomization-file "$inlined"', '--kustomization-file "$4"', "not misp_eks.validate.inline's copy"),
        ('--output "$inlined" "$4"', '--output "$inlined" clusters/prod/apps.yaml', "not misp_eks.validate.inline's"),
        ("-strict -summary", "-summary", "without -strict"),
        ('-kubernetes-version "${!version}"', "-kubernetes-version 1.35.0", "-kubernetes-version"),
        ("set -euo pipefail", "set -eu", "pipefail"),
        ('-schema-location "$CRD_CATALOG', '-schema-location "https://example.org', "CRD catalog"),
    ],
)
def test_a_loose_builder_fails(old, new, problem):
    script = build_script()
    assert old in script
    assert any(problem in p for p in builder_problems(script.replace(old, new)))
