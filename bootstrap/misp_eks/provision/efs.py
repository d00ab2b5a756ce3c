"""MISP's shared files: an encrypted Amazon EFS file system, one access point, a mount target per private subnet.

MISP writes organisation logos (app/files/img/orgs) and the images of "Manage files"
(app/files/img/custom) to its own file system; on EFS every replica sees them and a restart keeps
them. Pods reach it through the EFS CSI driver (the ``aws-efs-csi-driver`` add-on in cluster.yaml)
and the static PersistentVolume ``misp-files`` (infrastructure/configs/base/files-volume.yaml),
whose volume handle names this file system and this access point.

- Found again by its CreationToken, derived from the cluster name, so a re-run (or a new deployment
  of the same environment after a destroy) finds the same file system.
- One access point, found again by its ClientToken (the same name): it roots every mount at
  ``/misp`` (created 0700, owned by www-data) and acts as www-data, so a new deployment mounts the
  same directory and sees the same files. Volumes are never provisioned dynamically: the driver
  would give every new claim a new access point and an empty directory.
- Encrypted at rest with the AWS-managed key ``aws/elasticfilesystem``, like the database and the
  caches with theirs: the environment's own KMS key may be scheduled for deletion by
  ``--destroy --delete-secrets``, which must never make kept files unreadable.
- The file-system policy lets clients in only through a mount target and denies every connection
  without TLS (aws:SecureTransport false); the CSI driver mounts through access points, always over TLS.
- The mount targets admit TCP 2049 from the cluster security group only (security_groups.py).
- ``--destroy`` removes the mount targets and their security group (network interfaces in the
  cluster's VPC would keep eksctl from deleting it) and keeps the file system, its access point and
  its backups.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from misp_eks import naming
from misp_eks.provision import tags as tagging
from misp_eks.provision.context import Context
from misp_eks.provision.errors import BootstrapError, MissingPrerequisite, unless_missing
from misp_eks.provision.names import Names
from misp_eks.provision.network import ClusterNetwork
from misp_eks.provision.security_groups import Firewall
from misp_eks.provision.waiting import Poll

KIND = "EFS file system"
ACCESS_POINT_KIND = "EFS access point"
MOUNT_TARGETS_KIND = "EFS mount targets"
NFS_PORT = 2049
# www-data in misp-core (Debian's fixed uid/gid 33), which runs PHP-FPM and the workers: the access
# point makes every client act as it and creates its root directory for it, private to it.
WWW_DATA = 33
ROOT_DIRECTORY = "/misp"
ROOT_PERMISSIONS = "0700"
# Elastic throughput scales with the load and bills per byte transferred: MISP's files are small and
# read in bursts, which would drain bursting's credits or pay for idle provisioned throughput. Elastic
# throughput needs the generalPurpose performance mode (EFS User Guide, "Throughput modes").
THROUGHPUT_MODE = "elastic"
PERFORMANCE_MODE = "generalPurpose"
# One transition per LifecyclePolicy object, as PutLifecycleConfiguration requires (botocore efs
# service-2.json, shape LifecyclePolicy): files unread for 30 days move to Infrequent Access and come
# back on their first access.
LIFECYCLE = [{"TransitionToIA": "AFTER_30_DAYS"}, {"TransitionToPrimaryStorageClass": "AFTER_1_ACCESS"}]
BACKUP_ON = frozenset({"ENABLED", "ENABLING"})
FAILED = frozenset({"error", "deleting", "deleted"})
# DescribeMountTargetSecurityGroups needs the target's network interface (botocore efs service-2.json,
# IncorrectMountTargetState): its groups are checked once it is available.
PASSING = frozenset({"deleting", "deleted"})
POLICY_MISSING = "PolicyNotFound"
# The EFS console's own statements for "Enforce in-transit encryption for all clients" on top of the
# default access through mount targets (EFS User Guide, "Creating file system policies"); the Allow is
# not public because it holds only for elasticfilesystem:AccessedViaMountTarget ("Blocking public access").
CLIENT_ACTIONS = ["elasticfilesystem:ClientMount", "elasticfilesystem:ClientWrite"]


@dataclass(frozen=True)
class FileSystem:
    id: str
    arn: str
    access_point_id: str


def policy_statements(arn: str) -> list[dict[str, Any]]:
    """No root access (the access points set uid/gid 33), only through mount targets, only over TLS."""
    return [
        {
            "Sid": "AllowClientsThroughMountTargets",
            "Effect": "Allow",
            "Principal": {"AWS": "*"},
            "Action": CLIENT_ACTIONS,
            "Resource": arn,
            "Condition": {"Bool": {"elasticfilesystem:AccessedViaMountTarget": "true"}},
        },
        {
            "Sid": "DenyInsecureTransport",
            "Effect": "Deny",
            "Principal": {"AWS": "*"},
            "Action": "*",
            "Resource": arn,
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        },
    ]


def find(efs: Any, token: str, cluster: str) -> dict[str, Any] | None:
    """The file system of this CreationToken; one made by someone else is refused, never adopted."""
    systems = efs.describe_file_systems(CreationToken=token).get("FileSystems", [])
    if not systems:
        return None
    system: dict[str, Any] = systems[0]
    owner = tagging.as_dict(system.get("Tags")).get(naming.CLUSTER_TAG)
    if owner != cluster:
        raise BootstrapError(
            f"{KIND} {token} ({system['FileSystemId']}) exists but is not tagged {naming.CLUSTER_TAG}={cluster}: "
            "another environment uses this cluster name in this account and region"
        )
    return system


def require(ctx: Context) -> str:
    """The id of the available file system (for cluster-vars)."""
    names = ctx.names
    found = find(ctx.client("efs"), names.files_creation_token, names.cluster)
    if found is None or found.get("LifeCycleState") != "available":
        raise MissingPrerequisite(f"{KIND} {names.files_creation_token} (available)", "data")
    return str(found["FileSystemId"])


def require_access_point(ctx: Context) -> str:
    """The id of the available access point (for cluster-vars)."""
    efs = ctx.client("efs")
    token = ctx.names.files_creation_token
    found = find_access_point(efs, require(ctx), token)
    if found is None or found.get("LifeCycleState") != "available":
        raise MissingPrerequisite(f"{ACCESS_POINT_KIND} {token} (available)", "data")
    return str(found["AccessPointId"])


def find_access_point(efs: Any, file_system_id: str, token: str) -> dict[str, Any] | None:
    """The file system's access point of this ClientToken; other access points are someone else's."""
    pages = efs.get_paginator("describe_access_points").paginate(FileSystemId=file_system_id)
    points = [point for page in pages for point in page.get("AccessPoints", []) if point.get("ClientToken") == token]
    return points[0] if points else None


def access_point_exists(efs: Any, names: Names) -> bool:
    """For the plan: this environment's access point, on its file system."""
    system = find(efs, names.files_creation_token, names.cluster)
    return system is not None and find_access_point(efs, system["FileSystemId"], names.files_creation_token) is not None


def access_point_request(ctx: Context, file_system_id: str) -> dict[str, Any]:
    token = ctx.names.files_creation_token
    return {
        "ClientToken": token,
        "FileSystemId": file_system_id,
        "PosixUser": {"Uid": WWW_DATA, "Gid": WWW_DATA},
        "RootDirectory": {
            "Path": ROOT_DIRECTORY,
            "CreationInfo": {"OwnerUid": WWW_DATA, "OwnerGid": WWW_DATA, "Permissions": ROOT_PERMISSIONS},
        },
        "Tags": tagging.key_value({**ctx.tags, "Name": token}),
    }


def access_point_drift(point: dict[str, Any]) -> list[str]:
    """Access points cannot be changed: what differs is reported, never replaced (the files are there)."""
    user = point.get("PosixUser") or {}
    path = (point.get("RootDirectory") or {}).get("Path")
    found = {"Uid": user.get("Uid"), "Gid": user.get("Gid"), "Path": path}
    wanted = {"Uid": WWW_DATA, "Gid": WWW_DATA, "Path": ROOT_DIRECTORY}
    return [f"{key}={found[key]}" for key in wanted if found[key] != wanted[key]]


def create_request(ctx: Context) -> dict[str, Any]:
    token = ctx.names.files_creation_token
    return {
        "CreationToken": token,
        "PerformanceMode": PERFORMANCE_MODE,
        "ThroughputMode": THROUGHPUT_MODE,
        "Encrypted": True,
        "Backup": True,
        "Tags": tagging.key_value({**ctx.tags, "Name": token}),
    }


def drift(system: dict[str, Any]) -> list[str]:
    """What departs from :func:`create_request` and cannot, or should not, be changed automatically."""
    checks = {
        "Encrypted": (system.get("Encrypted"), True),
        "PerformanceMode": (system.get("PerformanceMode"), PERFORMANCE_MODE),
        "ThroughputMode": (system.get("ThroughputMode"), THROUGHPUT_MODE),
    }
    return [f"{key}={found}" for key, (found, wanted) in checks.items() if found is not None and found != wanted]


def firewall(names: Names) -> Firewall:
    return Firewall(names.files_security_group, f"MISP files of {names.cluster}", NFS_PORT)


def ensure(ctx: Context, network: ClusterNetwork, group_id: str) -> FileSystem:
    """The file system, its settings and a mount target per zone behind ``group_id``, each written only
    when it differs."""
    efs = ctx.client("efs")
    names = ctx.names
    token = names.files_creation_token
    system = find(efs, token, names.cluster)
    created = system is None
    if system is None:
        system = efs.create_file_system(**create_request(ctx))
    elif system.get("LifeCycleState") in FAILED:
        raise BootstrapError(f"{KIND} {token} ({system['FileSystemId']}) is {system['LifeCycleState']}")
    elif differences := drift(system):
        ctx.progress.warn(
            f"{KIND} {token} differs from the bootstrap's settings: {', '.join(differences)} "
            "(not changed automatically)"
        )
    file_system_id, arn = str(system["FileSystemId"]), str(system["FileSystemArn"])
    _await_file_system(ctx, efs, token, just_created=created)
    changed = _converge_settings(efs, file_system_id, arn)
    detail = f"{file_system_id}: {THROUGHPUT_MODE} throughput, encrypted, backups on, TLS only"
    if created:
        ctx.record(KIND, token, "created", detail)
    elif changed:
        ctx.record(KIND, token, "updated", ", ".join(changed))
    else:
        ctx.record(KIND, token, "exists", detail)
    access_point_id = _ensure_access_point(ctx, efs, file_system_id)
    targets_action, targets_detail = _converge_mount_targets(ctx, efs, file_system_id, network, group_id)
    ctx.record(MOUNT_TARGETS_KIND, token, targets_action, targets_detail)
    return FileSystem(id=file_system_id, arn=arn, access_point_id=access_point_id)


def _ensure_access_point(ctx: Context, efs: Any, file_system_id: str) -> str:
    token = ctx.names.files_creation_token
    point = find_access_point(efs, file_system_id, token)
    created = point is None
    if point is None:
        # EFS refuses a second access point of this ClientToken (AccessPointAlreadyExists): never two.
        point = efs.create_access_point(**access_point_request(ctx, file_system_id))
    elif point.get("LifeCycleState") in FAILED:
        raise BootstrapError(f"{ACCESS_POINT_KIND} {token} ({point['AccessPointId']}) is {point['LifeCycleState']}")
    elif differences := access_point_drift(point):
        ctx.progress.warn(
            f"{ACCESS_POINT_KIND} {token} ({point['AccessPointId']}) differs from the bootstrap's settings: "
            f"{', '.join(differences)} (access points cannot be changed; the files under it are kept)"
        )
    access_point_id = str(point["AccessPointId"])

    def probe() -> Poll[None]:
        current = find_access_point(efs, file_system_id, token)
        state = str(current.get("LifeCycleState", "")) if current else "missing"
        if state in FAILED or (state == "missing" and not created):
            raise BootstrapError(f"{ACCESS_POINT_KIND} {token} became {state}")
        return Poll(state == "available", state)

    ctx.wait(f"{ACCESS_POINT_KIND} {token} to become available", probe, timeout=ctx.timing.file_system)
    detail = f"{access_point_id}: {ROOT_DIRECTORY} as uid/gid {WWW_DATA}, mode {ROOT_PERMISSIONS}"
    ctx.record(ACCESS_POINT_KIND, token, "created" if created else "exists", detail)
    return access_point_id


def _await_file_system(ctx: Context, efs: Any, token: str, *, just_created: bool) -> None:
    def probe() -> Poll[None]:
        current = find(efs, token, ctx.names.cluster)
        state = str(current.get("LifeCycleState", "")) if current else "missing"
        if state == "missing" and just_created:  # not listed yet: EFS is eventually consistent
            return Poll(False, "not listed yet")
        if state in FAILED or state == "missing":
            raise BootstrapError(f"{KIND} {token} became {state}")
        return Poll(state == "available", state)

    ctx.wait(f"{KIND} {token} to become available", probe, timeout=ctx.timing.file_system)


def _converge_settings(efs: Any, file_system_id: str, arn: str) -> list[str]:
    changed: list[str] = []
    backup = unless_missing(lambda: efs.describe_backup_policy(FileSystemId=file_system_id), POLICY_MISSING) or {}
    if backup.get("BackupPolicy", {}).get("Status") not in BACKUP_ON:
        efs.put_backup_policy(FileSystemId=file_system_id, BackupPolicy={"Status": "ENABLED"})
        changed.append("automatic backups")
    current = efs.describe_lifecycle_configuration(FileSystemId=file_system_id).get("LifecyclePolicies", [])
    if _canonical(current) != _canonical(LIFECYCLE):
        efs.put_lifecycle_configuration(FileSystemId=file_system_id, LifecyclePolicies=LIFECYCLE)
        changed.append("lifecycle")
    if _converge_policy(efs, file_system_id, arn):
        changed.append("TLS-only policy")
    return changed


def _converge_policy(efs: Any, file_system_id: str, arn: str) -> bool:
    """Our statements by Sid; statements someone else added are kept."""
    answer = unless_missing(lambda: efs.describe_file_system_policy(FileSystemId=file_system_id), POLICY_MISSING)
    current = json.loads(answer["Policy"]) if answer and answer.get("Policy") else {"Statement": []}
    wanted = policy_statements(arn)
    ours = {statement["Sid"] for statement in wanted}
    statements = current.get("Statement", [])
    present = [statement for statement in statements if statement.get("Sid") in ours]
    if _canonical(present) == _canonical(wanted):
        return False
    kept = [statement for statement in statements if statement.get("Sid") not in ours]
    policy = {"Version": "2012-10-17", "Statement": [*kept, *wanted]}
    efs.put_file_system_policy(FileSystemId=file_system_id, Policy=json.dumps(policy))
    return True


def _canonical(items: list[dict[str, Any]]) -> list[str]:
    return sorted(json.dumps(item, sort_keys=True) for item in items)


def mount_targets(efs: Any, file_system_id: str) -> list[dict[str, Any]]:
    pages = efs.get_paginator("describe_mount_targets").paginate(FileSystemId=file_system_id)
    return [target for page in pages for target in page.get("MountTargets", [])]


def _converge_mount_targets(
    ctx: Context, efs: Any, file_system_id: str, network: ClusterNetwork, group_id: str
) -> tuple[str, str]:
    """One mount target per zone of the cluster, in its private subnet, behind ``group_id`` only."""
    _await_passing(ctx, efs, file_system_id)  # a re-run right after --destroy: those leave first
    existing = mount_targets(efs, file_system_id)
    foreign = sorted({target["VpcId"] for target in existing if target.get("VpcId") != network.vpc_id})
    if foreign:
        raise BootstrapError(
            f"{KIND} {file_system_id} has mount targets in {', '.join(foreign)}, not in the cluster's "
            f"{network.vpc_id}: delete them (aws efs delete-mount-target), then re-run"
        )
    covered = {target["AvailabilityZoneName"] for target in existing}
    subnets = {subnet.zone: subnet.id for subnet in reversed(network.private_subnets)}
    created = []
    for zone in sorted(set(subnets) - covered):
        efs.create_mount_target(FileSystemId=file_system_id, SubnetId=subnets[zone], SecurityGroups=[group_id])
        created.append(zone)
    _await_mount_targets(ctx, efs, file_system_id, set(subnets))
    repaired = []
    for target in existing:  # available now, so their groups can be read
        groups = efs.describe_mount_target_security_groups(MountTargetId=target["MountTargetId"])
        if groups.get("SecurityGroups") != [group_id]:
            efs.modify_mount_target_security_groups(MountTargetId=target["MountTargetId"], SecurityGroups=[group_id])
            repaired.append(target["AvailabilityZoneName"])
    zones = ", ".join(sorted(set(subnets) | covered))
    if created:
        return "created", f"{', '.join(created)} (tcp/{NFS_PORT} from the cluster security group)"
    if repaired:
        return "updated", f"security group {group_id} in {', '.join(sorted(repaired))}"
    return "exists", zones


def _await_passing(ctx: Context, efs: Any, file_system_id: str) -> None:
    def probe() -> Poll[None]:
        leaving = sorted(
            target["AvailabilityZoneName"]
            for target in mount_targets(efs, file_system_id)
            if target.get("LifeCycleState") in PASSING
        )
        return Poll(not leaving, f"still deleting: {', '.join(leaving)}" if leaving else "none")

    ctx.wait(f"{MOUNT_TARGETS_KIND} of {file_system_id} being deleted", probe, timeout=ctx.timing.teardown)


def _await_mount_targets(ctx: Context, efs: Any, file_system_id: str, zones: set[str]) -> None:
    def probe() -> Poll[None]:
        states = {
            target["AvailabilityZoneName"]: target["LifeCycleState"] for target in mount_targets(efs, file_system_id)
        }
        if failed := sorted(zone for zone, state in states.items() if state in FAILED):
            raise BootstrapError(f"{MOUNT_TARGETS_KIND} of {file_system_id} in {', '.join(failed)} failed")
        waiting = sorted(zone for zone in zones if states.get(zone) != "available")
        return Poll(not waiting, f"{len(waiting)} not available: {', '.join(waiting)}" if waiting else "available")

    ctx.wait(f"{MOUNT_TARGETS_KIND} of {file_system_id}", probe, timeout=ctx.timing.file_system)


def remove_mount_targets(ctx: Context) -> None:
    """--destroy: the mount targets go (their network interfaces are in the cluster's VPC); the files stay."""
    efs = ctx.client("efs")
    token = ctx.names.files_creation_token
    system = find(efs, token, ctx.names.cluster)
    if system is None:
        ctx.record(MOUNT_TARGETS_KIND, token, "skipped", "no file system")
        return
    file_system_id = system["FileSystemId"]
    targets = mount_targets(efs, file_system_id)
    for target in targets:
        if target.get("LifeCycleState") not in ("deleting", "deleted"):
            efs.delete_mount_target(MountTargetId=target["MountTargetId"])

    def gone() -> Poll[None]:
        left = mount_targets(efs, file_system_id)
        return Poll(not left, f"{len(left)} left")

    ctx.wait(f"{MOUNT_TARGETS_KIND} of {file_system_id} to be deleted", gone, timeout=ctx.timing.teardown)
    zones = ", ".join(sorted(target["AvailabilityZoneName"] for target in targets))
    ctx.record(MOUNT_TARGETS_KIND, token, "deleted" if targets else "skipped", zones or "none left")


def keep(ctx: Context) -> None:
    """--destroy never deletes the files: the file system and its access point stay, so a new deployment of
    this environment finds both (CreationToken, ClientToken) and mounts the same directory. EFS's default
    backup plan keeps each daily recovery point for 35 days, then lets it expire."""
    efs = ctx.client("efs")
    token = ctx.names.files_creation_token
    system = find(efs, token, ctx.names.cluster)
    if system is None:
        ctx.record(KIND, token, "skipped", "not found")
        return
    file_system_id = system["FileSystemId"]
    ctx.record(KIND, token, "kept", f"{file_system_id}: `aws efs delete-file-system --file-system-id {file_system_id}`")
    point = find_access_point(efs, file_system_id, token)
    if point is not None:
        ctx.record(ACCESS_POINT_KIND, token, "kept", f"{point['AccessPointId']} ({ROOT_DIRECTORY})")
