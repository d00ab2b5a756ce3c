"""The plan: every resource a run would touch, and whether it exists already, as a table.

Built from the repository alone when there are no AWS credentials (``--dry-run`` on a fresh
machine); with credentials, each resource is looked up with read-only calls.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from rich import box
from rich.table import Table

from misp_eks import naming
from misp_eks.environment import Environment
from misp_eks.provision import (
    alarms,
    bucket,
    caches,
    certificates,
    cluster,
    database,
    db_parameters,
    efs,
    engine_versions,
    gitops,
    hosted_zone,
    kms,
    master_secret,
    network,
    preflight,
    secrets,
    security_groups,
    ses,
    verify,
)
from misp_eks.provision import tags as tagging
from misp_eks.provision.aws.session import Aws
from misp_eks.provision.errors import BootstrapError, describe_aws_error, unless_missing
from misp_eks.provision.names import Names
from misp_eks.provision.phases import Phase
from misp_eks.provision.tools import ALL_TOOLS, Tools, format_version

NO_CREDENTIALS = "create (unknown: no AWS credentials)"
AFTER_CLUSTER = "create (unknown until the cluster exists)"


@dataclass(frozen=True)
class PlanRow:
    phase: str
    kind: str
    name: str
    action: str
    notes: str = ""


@dataclass(frozen=True)
class _Item:
    phase: Phase
    kind: str
    name: str
    notes: str = ""
    probe: Callable[[], bool | str] | None = None
    """Whether it exists; or the action to show (a conflict)."""
    action: str | None = None
    """A fixed action (check, run, write) for what is not an AWS resource."""
    needs_cluster: bool = False
    resolve: Callable[[], str] | None = None
    """A read-only check whose answer is shown (an engine version resolved against what AWS offers)."""


def _exists(call: Callable[[], Any], *missing: str) -> Callable[[], bool]:
    return lambda: unless_missing(call, *missing) is not None


def _owned(found: dict[str, Any] | None, cluster_name: str) -> bool | str:
    """Whether a tagged resource exists; one tagged as another cluster's (or untagged) is a conflict the run refuses."""
    if found is None:
        return False
    owner = tagging.as_dict(found.get("Tags")).get(naming.CLUSTER_TAG)
    return True if owner == cluster_name else f"conflict (tagged {naming.CLUSTER_TAG}={owner or 'none'})"


def _tool_row(tools: Tools, spec: Any) -> PlanRow:
    try:
        found = tools.require(spec)
        notes = f"{format_version(found.version)} at {found.path}"
    except BootstrapError as error:
        notes = error.message
    return PlanRow(Phase.PREFLIGHT, "tool", spec.name, "check", notes)


def _alarms_exist(cw: Any, wanted: list[str]) -> bool:
    found = {item["AlarmName"] for item in cw.describe_alarms(AlarmNames=wanted).get("MetricAlarms", [])}
    return found == set(wanted)


def _engine_version(resolve: Callable[[], str], existing: Callable[[], list[str]]) -> str:
    """The version a run would create with; where the resources exist, one no longer offered is a warning."""
    used, warning = engine_versions.check_existing(resolve, existing)
    return used if warning is None else f"{used} (warning: {warning})"


def _items(env: Environment, names: Names, aws: Aws | None) -> list[_Item]:
    settings = env.settings
    config = env.cluster
    client = aws.client if aws else (lambda _service: None)
    kms_client, cfn, eks, sm, ec2, rds, ec, s3, iam, sns, cw, acm, route53 = (
        client(name)
        for name in (
            "kms",
            "cloudformation",
            "eks",
            "secretsmanager",
            "ec2",
            "rds",
            "elasticache",
            "s3",
            "iam",
            "sns",
            "cloudwatch",
            "acm",
            "route53",
        )
    )
    database_settings = settings.database
    settings_file = f"clusters/{env.name}/settings.yaml"

    def vpc() -> str | None:
        return network.vpc_of(cfn, names.cluster_stack)

    items = [
        _Item(Phase.PREFLIGHT, "availability zones", names.region, ", ".join(config.availabilityZones), action="check"),
        _Item(
            Phase.PREFLIGHT,
            engine_versions.DATABASE_KIND,
            f"{database_settings.engine} {database_settings.engine_version}",
            "the newest minor RDS offers for a major.minor",
            action="check",
            resolve=lambda: _engine_version(
                lambda: engine_versions.resolve_database(
                    rds,
                    engine=database_settings.engine,
                    configured=database_settings.engine_version,
                    settings_file=settings_file,
                    region=names.region,
                ),
                lambda: preflight.existing_database(rds, names.db_instance),
            ),
        ),
        _Item(
            Phase.PREFLIGHT,
            engine_versions.CACHE_KIND,
            f"{settings.caches.engine} {settings.caches.engine_version}",
            "offered by ElastiCache",
            action="check",
            resolve=lambda: _engine_version(
                lambda: engine_versions.resolve_cache(
                    ec,
                    engine=settings.caches.engine,
                    configured=settings.caches.engine_version,
                    settings_file=settings_file,
                    region=names.region,
                ),
                lambda: preflight.existing_caches(ec, [names.cache_group(app) for app in caches.APPS]),
            ),
        ),
        _Item(
            Phase.PREFLIGHT,
            "Route53 hosted zone",
            settings.domain,
            "must exist (never created)",
            probe=lambda: hosted_zone.find(route53, settings.domain) is not None,
            action="check",
        ),
        _Item(
            Phase.CLUSTER,
            kms.KIND,
            names.kms_alias,
            "rotation on; encrypts Kubernetes Secrets",
            probe=lambda: kms.find(kms_client, names.kms_alias) is not None,
        ),
        _Item(
            Phase.CLUSTER,
            cluster.KIND,
            names.cluster,
            f"eksctl create cluster: Kubernetes {config.metadata.version}, {', '.join(config.availabilityZones)}, "
            f"{len(config.managedNodeGroups)} private node groups, {len(config.addons)} add-ons, "
            f"{len(config.iam.podIdentityAssociations)} pod identity associations",
            probe=lambda: (
                cluster.stack(cfn, names.cluster_stack) is not None or cluster.describe(eks, names.cluster) is not None
            ),
        ),
    ]
    for spec in naming.SECRETS:
        notes = (
            "operator fills in (created empty)" if spec.operator_supplied else f"generated once: {', '.join(spec.keys)}"
        )
        if spec.filled_by:
            notes = f"created empty; the {spec.filled_by} phase fills it once when settings ask for it"
        items.append(
            _Item(
                Phase.SECRETS,
                "secret",
                names.secret(spec),
                notes,
                probe=lambda spec=spec: secrets.find(sm, names.secret(spec)) is not None,
            )
        )
    items += [
        _Item(
            Phase.DATA,
            security_groups.KIND,
            names.db_security_group,
            f"tcp/{naming.DATABASE_PORT} from the cluster security group only",
            needs_cluster=True,
            probe=lambda: security_groups.find_owned(ec2, names.cluster, names.db_security_group, vpc()) is not None,
        ),
        _Item(
            Phase.DATA,
            security_groups.KIND,
            names.cache_security_group,
            f"tcp/{naming.CACHE_PORT} from the cluster security group only",
            needs_cluster=True,
            probe=lambda: security_groups.find_owned(ec2, names.cluster, names.cache_security_group, vpc()) is not None,
        ),
        _Item(
            Phase.DATA,
            database.SUBNET_GROUP_KIND,
            names.db_subnet_group,
            "the cluster's private subnets",
            needs_cluster=True,
            probe=lambda: database.find_subnet_group(rds, names.db_subnet_group) is not None,
        ),
        _Item(
            Phase.DATA,
            db_parameters.KIND,
            names.db_parameter_group,
            f"{db_parameters.family(database_settings)}: MISP's MySQL settings, sql_mode without ONLY_FULL_GROUP_BY",
            probe=lambda: db_parameters.find(rds, names.db_parameter_group) is not None,
        ),
        _Item(
            Phase.DATA,
            caches.SUBNET_GROUP_KIND,
            names.cache_subnet_group,
            "the cluster's private subnets",
            needs_cluster=True,
            probe=lambda: caches.find_subnet_group(ec, names.cache_subnet_group) is not None,
        ),
        _Item(
            Phase.DATA,
            alarms.TOPIC_KIND,
            names.alarm_topic,
            f"e-mail to {settings.alarm_email}",
            probe=lambda: alarms.topic_exists(sns, names.alarm_topic_arn),
        ),
        _Item(
            Phase.DATA,
            bucket.KIND,
            names.attachments_bucket,
            f"versioned, SSE-S3, public access blocked, TLS only, noncurrent versions {bucket.NONCURRENT_DAYS} days",
            probe=lambda: bucket.exists(s3, names.attachments_bucket),
        ),
        _Item(
            Phase.DATA,
            security_groups.KIND,
            names.files_security_group,
            f"tcp/{efs.NFS_PORT} from the cluster security group only: the file system's mount targets",
            needs_cluster=True,
            probe=lambda: security_groups.find_owned(ec2, names.cluster, names.files_security_group, vpc()) is not None,
        ),
        _Item(
            Phase.DATA,
            efs.KIND,
            names.files_creation_token,
            f"MISP's shared files: {efs.THROUGHPUT_MODE} throughput (billed per GB transferred) and storage per "
            "GB-month, encrypted, automatic backups, TLS only, a mount target per zone; kept by --destroy",
            probe=lambda: efs.find(client("efs"), names.files_creation_token, names.cluster) is not None,
        ),
        _Item(
            Phase.DATA,
            efs.ACCESS_POINT_KIND,
            names.files_creation_token,
            f"{efs.ROOT_DIRECTORY} as www-data: the directory of the volume misp-files, the same after every "
            "re-deploy; no charge; kept by --destroy",
            probe=lambda: efs.access_point_exists(client("efs"), names),
        ),
        _Item(
            Phase.DATA,
            database.KIND,
            names.db_instance,
            f"Multi-AZ {database_settings.engine} {database_settings.engine_version} "
            f"{database_settings.instance_class}, {database_settings.allocated_storage_gib}-"
            f"{database_settings.max_allocated_storage_gib} GiB gp3, encrypted, "
            f"backups {database_settings.backup_retention_days} days, deletion protection",
            probe=lambda: database.find(rds, names.db_instance) is not None,
        ),
    ]
    if database_settings.enhanced_monitoring_seconds:
        items.append(
            _Item(
                Phase.DATA,
                "IAM role",
                names.db_monitoring_role,
                "RDS enhanced monitoring",
                probe=_exists(lambda: iam.get_role(RoleName=names.db_monitoring_role), "NoSuchEntity"),
            )
        )
    for app in caches.APPS:
        cache = getattr(settings.caches, app)
        items.append(
            _Item(
                Phase.DATA,
                caches.KIND,
                names.cache_group(app),
                f"{settings.caches.engine} {settings.caches.engine_version} {cache.node_type} x{cache.nodes} "
                "over zones, failover, TLS, AUTH, encrypted",
                probe=lambda app=app: caches.find(ec, names.cache_group(app)) is not None,
            )
        )
    items += [
        _Item(
            Phase.DATA,
            master_secret.KIND,
            f"{names.external_secrets_role}/{naming.RDS_MASTER_SECRET_POLICY}",
            "read the RDS master secret only",
            needs_cluster=True,
            probe=_exists(
                lambda: iam.get_role_policy(
                    RoleName=names.external_secrets_role, PolicyName=naming.RDS_MASTER_SECRET_POLICY
                ),
                "NoSuchEntity",
            ),
        ),
        _Item(
            Phase.DATA,
            alarms.EVENTS_KIND,
            names.db_event_subscription,
            ", ".join(alarms.RDS_EVENT_CATEGORIES),
            probe=lambda: alarms.find_event_subscription(rds, names.db_event_subscription) is not None,
        ),
        _Item(
            Phase.DATA,
            alarms.ALARM_KIND + "s",
            names.cluster,
            "CPU, free storage, memory, replication lag",
            # By exact names (a prefix matches other teams' alarms too): all of the database's.
            probe=lambda: _alarms_exist(
                cw,
                [
                    alarm.name
                    for alarm in alarms.database_alarms_of(names.db_instance, database_settings.allocated_storage_gib)
                ],
            ),
        ),
    ]
    for app, domain in (("misp", settings.hostnames.misp), ("dashboard", settings.hostnames.dashboard)):
        items.append(
            _Item(
                Phase.DNS,
                certificates.KIND,
                domain,
                f"DNS-validated in {settings.domain} ({app})",
                probe=lambda domain=domain: certificates.find(acm, domain, names.cluster) is not None,
            )
        )
    if settings.email.enabled:
        sesv2 = client("sesv2")
        items += [
            _Item(
                Phase.DNS,
                ses.IDENTITY,
                settings.email_domain,
                "Easy DKIM (3 CNAMEs in the hosted zone); sending USD 0.10 per 1000 e-mails; in the SES sandbox "
                "until production access is granted (only verified recipients)",
                probe=lambda: _owned(ses.find_identity(sesv2, settings.email_domain), names.cluster),
            ),
            _Item(
                Phase.DNS,
                ses.USER,
                names.ses_smtp_user,
                f"one access key (SMTP password in {names.secret(naming.MISP_SMTP)}): may send only from "
                f"{settings.misp.sender}; a leaked key can send mail as MISP",
                probe=lambda: _owned(
                    unless_missing(lambda: iam.get_user(UserName=names.ses_smtp_user)["User"], "NoSuchEntity"),
                    names.cluster,
                ),
            ),
        ]
    else:
        items.append(
            _Item(
                Phase.DNS,
                ses.ACCESS_KEY,
                names.ses_smtp_user,
                "email.enabled is false: a sending user left from when it was true loses its access keys",
                probe=lambda: _owned(
                    unless_missing(lambda: iam.get_user(UserName=names.ses_smtp_user)["User"], "NoSuchEntity"),
                    names.cluster,
                ),
                action="delete",
            )
        )
    gitops_settings = settings.gitops
    if settings.email.enabled:
        items.append(
            _Item(
                Phase.GITOPS,
                "ExternalSecret",
                f"{naming.MISP_NAMESPACE}/{naming.SMTP_SECRET}",
                "in a running cluster: force-sync before cluster-vars, until its Secret holds the SMTP credentials",
                action="check",
            )
        )
    items += [
        _Item(
            Phase.GITOPS,
            "ConfigMap",
            "flux-system/cluster-vars",
            "every ClusterVars value; nothing secret",
            action="write",
        ),
        _Item(
            Phase.GITOPS,
            "Flux",
            names.cluster,
            f"flux bootstrap {gitops_settings.provider} {gitops_settings.url} branch {gitops_settings.branch} "
            f"path clusters/{env.name}"
            + (f" (needs {gitops.GITHUB_TOKEN_ENV})" if gitops_settings.provider == "github" else ""),
            action="run",
        ),
        _Item(Phase.VERIFY, "Flux Kustomizations", "flux-system", "all Ready", action="check"),
    ]
    items += [
        _Item(Phase.VERIFY, "endpoint", label, url, action="check")
        for label, url in verify.endpoints(settings.hostnames).items()
    ]
    return items


def build(env: Environment, aws: Aws | None, tools: Tools, phases: tuple[Phase, ...]) -> list[PlanRow]:
    """The plan rows of ``phases``; read-only."""
    base = Names(environment=env.name, cluster=env.cluster_name, region=env.region)
    identity_note = "no AWS credentials"
    names = base
    usable = aws
    if aws is not None:
        try:
            if aws.has_credentials():
                identity = aws.identity()
                names = replace(base, account=identity.account, partition=identity.partition)
                identity_note = f"{identity.arn} (account {identity.account})"
            else:
                usable = None
        except (BotoCoreError, ClientError) as error:
            identity_note = describe_aws_error(error).message
            usable = None
    rows: list[PlanRow] = []
    if Phase.PREFLIGHT in phases:
        rows += [_tool_row(tools, spec) for spec in ALL_TOOLS]
        rows.append(PlanRow(Phase.PREFLIGHT, "AWS identity", "sts:GetCallerIdentity", "check", identity_note))
    cluster_exists = False
    items = _items(env, names, usable)
    if usable is not None:
        cluster_item = next(item for item in items if item.kind == cluster.KIND)
        cluster_exists = _probe(cluster_item) == "exists"
    for item in items:
        if item.phase not in phases:
            continue
        rows.append(PlanRow(item.phase, item.kind, item.name, _action(item, usable, cluster_exists), item.notes))
    return rows


def _probe(item: _Item) -> str:
    if item.probe is None:
        return "unknown"
    try:
        found = item.probe()
        if isinstance(found, str):
            return found
        return "exists" if found else "create"
    except BootstrapError as error:
        return f"unknown ({error.message})"
    except (BotoCoreError, ClientError) as error:
        return f"unknown ({describe_aws_error(error).message})"


def _action(item: _Item, aws: Aws | None, cluster_exists: bool) -> str:
    if aws is None:
        if item.action and item.probe is not None:  # an action on what may not exist: say it is unknown
            return f"{item.action} if found (unknown: no AWS credentials)"
        return item.action or NO_CREDENTIALS
    if item.resolve is not None:
        try:
            return f"{item.action}: {item.resolve()}"
        except BootstrapError as error:
            return f"{item.action}: failed ({error.message})"
        except (BotoCoreError, ClientError) as error:
            return f"{item.action}: unknown ({describe_aws_error(error).message})"
    if item.action and item.probe is None:
        return item.action
    if item.needs_cluster and not cluster_exists:
        return AFTER_CLUSTER
    found = _probe(item)
    if item.action:
        return f"{item.action}: {'found' if found == 'exists' else 'missing' if found == 'create' else found}"
    return found


def table(rows: list[PlanRow], *, title: str, terminal: bool) -> Table:
    result = Table(title=title, box=box.SIMPLE_HEAD if terminal else box.ASCII)
    for column in ("phase", "resource", "name", "action", "notes"):
        result.add_column(column, overflow="fold")
    for row in rows:
        style = "green" if row.action == "exists" else ("yellow" if row.action.startswith("create") else "")
        action = f"[{style}]{row.action}[/{style}]" if style and terminal else row.action
        result.add_row(row.phase, row.kind, row.name, action, row.notes.replace("[", r"\["))
    return result
