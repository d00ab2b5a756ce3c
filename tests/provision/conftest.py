"""Shared fixtures of the bootstrap tests: fake credentials, moto, an environment, contexts, stand-ins.

No test touches the network or an AWS account: credentials are fake, the instance metadata service
is disabled, and every AWS call goes to moto (in-process, or a moto server on 127.0.0.1).
"""

from __future__ import annotations

import io
import json
import os
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import botocore.session
import pytest
import yaml
from moto import mock_aws
from moto.core.responses import EmptyResult
from moto.elasticache.responses import ElastiCacheResponse
from moto.rds.exceptions import DBParameterGroupNotFoundError
from moto.rds.models import RDSBackend
from moto.s3.models import FakeBucket

from misp_eks.environment import Environment, load_environment
from misp_eks.provision import cluster
from misp_eks.provision.aws.calls import CallLog
from misp_eks.provision.aws.session import Aws
from misp_eks.provision.context import Context
from misp_eks.provision.gpg import GpgKey
from misp_eks.provision.progress import PlainProgress, make_console
from misp_eks.provision.tools import Tools
from misp_eks.provision.waiting import Timing
from tests.provision import crowd, emulate, engines, ses_standin
from tests.provision.apiserver import ApiServer, Running, serve
from tests.provision.aws_model import ModelChecker
from tests.provision.cluster_api import report_endpoint, seed_applications
from tests.servers.tls import make_certificates

REGION = "eu-west-1"
ACCOUNT = "123456789012"  # moto's default account
FAKE_PEM = "-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----\n"
FAKE_GPG = GpgKey(
    # pragma: allowlist nextline secret
    private_key="-----BEGIN PGP PRIVATE KEY BLOCK-----\n\nfake\n-----END PGP PRIVATE KEY BLOCK-----\n",
    public_key="-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nfake\n-----END PGP PUBLIC KEY BLOCK-----\n",
    fingerprint="0" * 40,
)
_CLEARED = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_ENDPOINT_URL",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "GITHUB_TOKEN",
    # eksctl and flux would read and write the developer's kubeconfig and discovery cache
    "KUBECONFIG",
    "KUBECACHEDIR",
)


def fake_aws_environment(base: dict[str, str] | None = None) -> dict[str, str]:
    """An environment with fake credentials and nothing that could reach a real account."""
    environ = {key: value for key, value in (base or os.environ).items() if key not in _CLEARED}
    environ.update(
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",  # pragma: allowlist secret
        AWS_DEFAULT_REGION=REGION,
        AWS_EC2_METADATA_DISABLED="true",
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        MOTO_ALLOW_NONEXISTENT_REGION="false",
    )
    return environ


@pytest.fixture
def aws_environment(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    for name in _CLEARED:
        monkeypatch.delenv(name, raising=False)
    environ = fake_aws_environment()
    for key, value in environ.items():
        monkeypatch.setenv(key, value)
    return environ


def _delete_replication_group(self: ElastiCacheResponse) -> Any:
    """moto leaves a deleted group 'deleting' forever and ignores FinalSnapshotIdentifier; AWS
    finishes the deletion and keeps the final snapshot. Emulate AWS."""
    backend = self.elasticache_backend
    group_id = self._get_param("ReplicationGroupId")
    snapshot = self._get_param("FinalSnapshotIdentifier")
    if group_id in backend.replication_groups and snapshot:
        backend.create_snapshot(
            snapshot_name=snapshot, replication_group_id=group_id, cache_cluster_id=None, kms_key_id=None, tags=[]
        )
    result = _ORIGINAL_DELETE(self)
    backend.replication_groups.pop(group_id, None)
    return result


_ORIGINAL_DELETE = ElastiCacheResponse.delete_replication_group


def _delete_cache_subnet_group(self: ElastiCacheResponse) -> Any:
    """moto has no DeleteCacheSubnetGroup; AWS does."""
    self.elasticache_backend.cache_subnet_groups.pop(self._get_param("CacheSubnetGroupName"), None)
    return EmptyResult()


def _describe_db_parameter_groups(self: RDSBackend, kwargs: dict[str, Any]) -> list[Any]:
    """moto answers an unknown DBParameterGroupName with an empty list; RDS with DBParameterGroupNotFound
    (botocore rds service-2.json: DescribeDBParameterGroups errors DBParameterGroupNotFoundFault)."""
    name = kwargs.get("db_parameter_group_name")
    if name and name not in self.db_parameter_groups:
        raise DBParameterGroupNotFoundError(name)
    return _ORIGINAL_DESCRIBE_PARAMETER_GROUPS(self, kwargs)


_ORIGINAL_DESCRIBE_PARAMETER_GROUPS = RDSBackend.describe_db_parameter_groups


# What S3 knows of every request the bootstrap and the tests make: boto3 speaks HTTPS to AWS, with
# TLS 1.2 or later (the aws:SecureTransport and s3:TlsVersion condition keys of S3's bucket policies).
_REQUEST_CONTEXT = {"aws:securetransport": "true", "s3:tlsversion": "1.2"}
_CONDITIONS: dict[str, Any] = {
    "Bool": lambda actual, wanted: actual.lower() == str(wanted).lower(),
    "NumericLessThan": lambda actual, wanted: float(actual) < float(wanted),
}


def _condition_holds(condition: dict[str, dict[str, Any]]) -> bool:
    """Every operator of a statement's Condition block, for the keys of _REQUEST_CONTEXT only: anything
    else is an error of this emulation rather than a guess."""
    for operator, tests in condition.items():
        check = _CONDITIONS.get(operator)
        if check is None:
            raise NotImplementedError(f"bucket policy condition operator {operator} is not emulated")
        for key, wanted in tests.items():
            actual = _REQUEST_CONTEXT.get(key.lower())
            if actual is None:
                raise NotImplementedError(f"bucket policy condition key {key} is not emulated")
            if not any(check(actual, item) for item in (wanted if isinstance(wanted, list) else [wanted])):
                return False
    return True


def _bucket_permission(self: FakeBucket, action: str, resource: str) -> Any:
    """moto ignores bucket policy conditions and denies when one is unmet (FakeBucket.get_permission,
    moto s3/models.py put_bucket_policy: "Conditions are not taken into account"); S3 applies a
    statement only where its conditions hold (IAM policy evaluation logic)."""
    from moto.iam.access_control import IAMPolicy, PermissionResult

    if self.policy is None:
        return PermissionResult.NEUTRAL
    policy = json.loads(self.policy)
    statements = policy["Statement"] if isinstance(policy["Statement"], list) else [policy["Statement"]]
    applicable = [
        {key: value for key, value in item.items() if key != "Condition"}
        for item in statements
        if _condition_holds(item.get("Condition", {}))
    ]
    if not applicable:
        return PermissionResult.NEUTRAL
    return IAMPolicy(json.dumps({**policy, "Statement": applicable})).is_action_permitted(action, resource)


def patch_moto_gaps(monkeypatch: pytest.MonkeyPatch) -> None:
    import moto.settings

    monkeypatch.setattr(moto.settings, "ACM_VALIDATION_WAIT", 0)
    monkeypatch.setattr(ElastiCacheResponse, "delete_replication_group", _delete_replication_group)
    monkeypatch.setattr(ElastiCacheResponse, "delete_cache_subnet_group", _delete_cache_subnet_group, raising=False)
    monkeypatch.setattr(RDSBackend, "describe_db_parameter_groups", _describe_db_parameter_groups)
    engines.register(monkeypatch)
    ses_standin.register(monkeypatch)
    monkeypatch.setattr(FakeBucket, "get_permission", _bucket_permission)


@pytest.fixture
def model_checker(monkeypatch: pytest.MonkeyPatch) -> Iterator[ModelChecker]:
    """Every request of the test, checked against botocore's service models (tests/provision/aws_model.py):
    each botocore session the test creates (the bootstrap's Aws, boto3's) gets the checker."""
    checker = ModelChecker()
    original = botocore.session.get_session

    def checked_session(*args: Any, **kwargs: Any) -> botocore.session.Session:
        session = original(*args, **kwargs)
        checker.attach(session.get_component("event_emitter"))
        return session

    monkeypatch.setattr(botocore.session, "get_session", checked_session)
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)
    yield checker
    assert checker.problems == [], "requests departing from botocore's service models"


@pytest.fixture
def moto(
    aws_environment: dict[str, str], monkeypatch: pytest.MonkeyPatch, model_checker: ModelChecker
) -> Iterator[None]:
    patch_moto_gaps(monkeypatch)
    with mock_aws():
        yield


@pytest.fixture(scope="session")
def prod(repo: Path) -> Environment:
    return load_environment(repo, "prod")


@dataclass
class Run:
    """A context for calling the bootstrap's functions directly, and what it recorded."""

    ctx: Context
    output: io.StringIO
    calls: CallLog
    services: dict[str, Any] = field(default_factory=dict)

    def outcomes(self, kind: str) -> list[Any]:
        return [item for item in self.ctx.progress.outcomes if item.kind == kind]

    def action(self, kind: str, name: str) -> str:
        found = [item.action for item in self.ctx.progress.outcomes if item.kind == kind and item.name == name]
        assert found, f"nothing recorded for {kind} {name}: {self.ctx.progress.outcomes}"
        return found[-1]


def make_run(env: Environment, workdir: Path, *, environ: dict[str, str] | None = None, **services: Any) -> Run:
    calls = CallLog()
    output = io.StringIO()
    environment = environ or dict(os.environ)
    defaults: dict[str, Any] = {"gpg_key": lambda _email, _passphrase: FAKE_GPG, "rds_ca": lambda _region: FAKE_PEM}
    ctx = Context(
        env=env,
        aws=Aws(env.region, calls),
        tools=Tools(environment),
        progress=PlainProgress(make_console(output)),
        environ=environment,
        timing=Timing.fast(),
        cancel=threading.Event(),
        services={**defaults, **services},
        workdir=workdir,
    )
    return Run(ctx=ctx, output=output, calls=calls)


@pytest.fixture
def run(moto: None, prod: Environment, tmp_path: Path) -> Run:
    return make_run(prod, tmp_path)


@pytest.fixture
def zone_id(moto: None) -> str:
    zone = boto3.client("route53").create_hosted_zone(Name="example.org", CallerReference="tests")["HostedZone"]
    return str(zone["Id"].split("/")[-1])


@pytest.fixture
def crowded(moto: None, zone_id: str) -> crowd.Foreign:
    """Another team's look-alike resources in the same account, region and hosted zone (tests/provision/crowd.py)."""
    return crowd.populate_foreign(REGION, zone_id)


KEY_ARN = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/00000000-0000-0000-0000-000000000000"


def rendered_config(run: Run, key_arn: str = KEY_ARN) -> dict[str, Any]:
    return yaml.safe_load(run.ctx.env.render_cluster_config(cluster.template_values(run.ctx, key_arn)))


@pytest.fixture
def eks(run: Run, zone_id: str) -> dict[str, Any]:
    """The cluster as eksctl leaves it: stack with outputs, EKS cluster, node groups, pod identity roles."""
    config = rendered_config(run)
    emulate.create_cluster(config)
    return config


def mutating(calls: CallLog) -> list[str]:
    return [f"{call.service}:{call.operation}" for call in calls.mutating()]


def last_params(calls: CallLog, operation: str) -> dict[str, Any]:
    found = [call.params for call in calls.calls if call.operation == operation]
    assert found, f"no {operation} call"
    return found[-1]


# Stand-ins for eksctl, flux and kubectl, first on PATH.


@dataclass(frozen=True)
class StandIns:
    bin: Path
    log: Path
    state: Path

    def environ(self, base: dict[str, str]) -> dict[str, str]:
        return {
            **base,
            "PATH": f"{self.bin}{os.pathsep}{base.get('PATH', os.defpath)}",
            "STANDIN_LOG": str(self.log),
            "STANDIN_STATE": str(self.state),
        }

    def invocations(self, tool: str | None = None) -> list[dict[str, Any]]:
        if not self.log.exists():
            return []
        items = [json.loads(line) for line in self.log.read_text().splitlines() if line.strip()]
        return [item for item in items if tool is None or item["tool"] == tool]

    def read_state(self) -> dict[str, Any]:
        return json.loads(self.state.read_text()) if self.state.exists() else {}


def install_standins(directory: Path, repo: Path) -> StandIns:
    directory.mkdir(parents=True, exist_ok=True)
    paths = [str(repo), str(repo / "bootstrap")]
    for tool in ("eksctl", "flux"):
        script = directory / tool
        script.write_text(
            f"#!{sys.executable}\n"
            "import sys\n"
            f"sys.path[:0] = {paths!r}\n"
            f"sys.argv.insert(1, {tool!r})\n"
            "from tests.provision.standin import main\n"
            "main()\n"
        )
        script.chmod(0o755)
    return StandIns(bin=directory, log=directory.parent / "standins.jsonl", state=directory.parent / "standins.json")


@pytest.fixture
def standins(tmp_path: Path, repo: Path) -> StandIns:
    return install_standins(tmp_path / "bin", repo)


# In-process tools: the stand-ins' logic, called directly so that it sees the in-process moto.


@dataclass
class FakeTools:
    """A Tools replacement that runs standin.py's eksctl, flux and kubectl in this process."""

    workdir: Path
    environ: dict[str, str] = field(default_factory=dict)
    runs: list[tuple[str, list[str], str | None]] = field(default_factory=list)
    on_line: Any = None

    def __post_init__(self) -> None:
        self.environ.setdefault("STANDIN_STATE", str(self.workdir / "standins.json"))
        self.environ.setdefault("STANDIN_LOG", str(self.workdir / "standins.jsonl"))
        self.environ.setdefault("HOME", str(self.workdir / "home"))  # eksctl writes ~/.kube/config unless told

    def require(self, spec: Any) -> Any:
        from misp_eks.provision.tools import Found

        return Found(spec, Path(f"/fake/{spec.name}"), spec.minimum)

    def run(
        self,
        spec: Any,
        args: Any,
        *,
        timeout: float,
        stdin: str | None = None,
        env: Any = None,
        stream: bool = False,
        interactive: bool = False,
        what: str | None = None,
    ) -> str:
        import contextlib

        from misp_eks.provision.errors import ToolFailed
        from tests.provision import standin

        self.runs.append((spec.name, list(args), stdin))
        output, errors = io.StringIO(), io.StringIO()
        patched = {**self.environ, **(env or {})}
        with pytest.MonkeyPatch.context() as patch:
            for name in ("KUBECONFIG", "KUBECACHEDIR"):  # only the run's own, never the developer's
                patch.delenv(name, raising=False)
            for key, value in patched.items():
                patch.setenv(key, value)
            try:
                with contextlib.redirect_stdout(output), contextlib.redirect_stderr(errors):
                    getattr(standin, spec.name)(list(args), stdin)
            except SystemExit as exit_:
                raise ToolFailed(f"{what or spec.name} failed: {errors.getvalue().strip() or exit_}") from None
        return output.getvalue()

    def calls(self, tool: str) -> list[list[str]]:
        return [args for name, args, _ in self.runs if name == tool]

    def state(self) -> dict[str, Any]:
        path = Path(self.environ["STANDIN_STATE"])
        return json.loads(path.read_text()) if path.exists() else {}


HOSTS = ["misp.example.org", "misp-dashboard.example.org"]


@pytest.fixture
def apiserver(moto: None, tmp_path: Path) -> Iterator[Running]:
    """The Kubernetes API of misp-prod (tests.provision.apiserver), with the applications running; EKS
    reports its endpoint and CA. Deleted Ingresses take their load balancers with them."""
    server = ApiServer(
        cluster="misp-prod",
        # what STS knows: fake_aws_environment's keys, and those mock_aws sets (moto/core/models.py)
        secrets={"testing": "testing", "FOOBARKEY": "FOOBARSECRET"},  # pragma: allowlist secret
        on_ingress_gone=lambda _ingress: emulate.remove_controller_leftovers(REGION, "misp-prod", None, HOSTS, "sync"),
    )
    seed_applications(server)
    with serve(server, make_certificates(tmp_path / "apiserver")) as running, report_endpoint({"misp-prod": running}):
        yield running


@pytest.fixture
def tools(run: Run, tmp_path: Path, apiserver: Running) -> FakeTools:
    fake = FakeTools(tmp_path, environ={"GITHUB_TOKEN": "test-token-not-real"})
    run.ctx.tools = fake  # type: ignore[assignment]
    run.ctx.environ = {**run.ctx.environ, "GITHUB_TOKEN": "test-token-not-real"}
    return fake


# Injected AWS errors: a before-call handler answers instead of AWS (as botocore's Stubber does).


def inject_error(events: Any, service: str, operation: str, code: str, message: str, status: int = 400) -> None:
    from botocore.awsrequest import AWSResponse

    def answer(**_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        parsed = {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": status}}
        return AWSResponse("https://example.invalid", status, {}, None), parsed

    events.register(f"before-call.{service}.{operation}", answer)


@pytest.fixture
def converged(run: Run, tools: FakeTools, zone_id: str) -> Run:
    """Every AWS phase done (cluster through dns), with eksctl in-process."""
    from misp_eks.provision import certificates, cluster, data, secrets

    cluster.ensure(run.ctx)
    secrets.ensure_all(run.ctx)
    data.run(run.ctx)
    certificates.ensure_all(run.ctx)
    return run
