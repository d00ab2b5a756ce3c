"""MISP's shared files on EFS: encrypted, backed up, TLS only, one access point, a mount target per zone,
kept on destroy and found again, with the same access point, by the next deployment."""

from __future__ import annotations

import json
import re
from typing import Any

import boto3
import botocore.session
import pytest
from moto.efs.exceptions import EFSError
from moto.efs.models import EFSBackend, efs_backends
from moto.efs.responses import EFSResponse

from misp_eks.provision import destroy, efs, network, plan, security_groups
from misp_eks.provision.errors import BootstrapError, MissingPrerequisite
from misp_eks.provision.phases import Phase
from tests.provision import crowd, emulate
from tests.provision.conftest import ACCOUNT, REGION, Run, mutating

TOKEN = "misp-prod-misp-files"
FILES_GROUP = "misp-prod-files"


def _put_backup_policy(self: EFSResponse) -> tuple[str, dict[str, Any]]:
    """moto has no PutBackupPolicy. As AWS answers it (botocore 1.44.8 data/efs/2015-02-01/service-2.json,
    PutBackupPolicy): FileSystemNotFound for an unknown id; a request starts (ENABLED) or stops
    (DISABLED) backups, ENABLING and DISABLING only describe a transition; the answer is the policy."""
    from moto.efs.exceptions import BadRequest, FileSystemNotFound

    file_system_id = self._get_param("FileSystemId")
    status = (self._get_param("BackupPolicy") or {}).get("Status")
    systems = self.efs_backend.file_systems_by_id
    if file_system_id not in systems:
        raise FileSystemNotFound(file_system_id)
    if status not in ("ENABLED", "DISABLED"):
        raise BadRequest(f"invalid backup policy status {status}")
    systems[file_system_id]._backup = status == "ENABLED"
    return json.dumps({"BackupPolicy": {"Status": status}}), {"Content-Type": "application/json"}


class _Conflict(EFSError):
    code = 409


_CREATE_ACCESS_POINT = EFSBackend.create_access_point


def _create_access_point(self: EFSBackend, client_token: str, tags: Any, file_system_id: str, **kwargs: Any) -> Any:
    """moto makes an access point for any id and any number per ClientToken. AWS (botocore 1.44.8 data/efs/
    2015-02-01/service-2.json, CreateAccessPoint): FileSystemNotFound for an unknown file system, and
    AccessPointAlreadyExists ("already exists, with the creation token you provided") for a second one."""
    from moto.efs.exceptions import FileSystemNotFound

    if file_system_id not in self.file_systems_by_id:
        raise FileSystemNotFound(file_system_id)
    if any(point.client_token == client_token for point in self.access_points.values()):
        raise _Conflict("AccessPointAlreadyExists", f"access point with token {client_token} already exists")
    return _CREATE_ACCESS_POINT(self, client_token, tags, file_system_id, **kwargs)


_DESCRIBE_GROUPS = EFSBackend.describe_mount_target_security_groups


def _describe_mount_target_security_groups(self: EFSBackend, mount_target_id: str) -> Any:
    """moto answers in any state. AWS (service-2.json, DescribeMountTargetSecurityGroups: "requires that the
    network interface of the mount target has been created and the lifecycle state of the mount target is
    not deleted"): IncorrectMountTargetState otherwise; a target still creating may have no interface yet."""
    target = self.mount_targets_by_id.get(mount_target_id)
    if target is not None and target.life_cycle_state in ("creating", "deleted"):
        raise _Conflict("IncorrectMountTargetState", f"mount target {mount_target_id} is {target.life_cycle_state}")
    return _DESCRIBE_GROUPS(self, mount_target_id)


@pytest.fixture
def files(run: Run, eks: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> Run:
    monkeypatch.setattr(EFSResponse, "put_backup_policy", _put_backup_policy, raising=False)
    monkeypatch.setattr(EFSBackend, "create_access_point", _create_access_point)
    monkeypatch.setattr(EFSBackend, "describe_mount_target_security_groups", _describe_mount_target_security_groups)
    return run


def _backend() -> EFSBackend:
    return efs_backends[ACCOUNT][REGION]


class _SlowTargets:
    """Mount targets that take time, as on AWS: each one ``creating`` or ``deleting`` stays so for two
    DescribeMountTargets, then becomes available or is gone. moto finishes both at once."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.seen: dict[str, int] = {}
        self.checked_while: list[str] = []
        original_describe = EFSBackend.describe_mount_targets
        original_create = EFSBackend.create_mount_target

        def describe(backend: EFSBackend, *args: Any, **kwargs: Any) -> Any:
            answer = original_describe(backend, *args, **kwargs)
            for target in list(backend.mount_targets_by_id.values()):
                if target.life_cycle_state not in ("creating", "deleting"):
                    continue
                self.seen[target.mount_target_id] = self.seen.get(target.mount_target_id, 0) + 1
                if self.seen[target.mount_target_id] > 2:
                    if target.life_cycle_state == "creating":
                        target.life_cycle_state = "available"
                    else:
                        backend.delete_mount_target(target.mount_target_id)
            return answer

        def create(backend: EFSBackend, *args: Any, **kwargs: Any) -> Any:
            target = original_create(backend, *args, **kwargs)
            target.life_cycle_state = "creating"
            return target

        monkeypatch.setattr(EFSBackend, "describe_mount_targets", describe)
        monkeypatch.setattr(EFSBackend, "create_mount_target", create)


@pytest.fixture
def slow_targets(files: Run, monkeypatch: pytest.MonkeyPatch) -> _SlowTargets:
    return _SlowTargets(monkeypatch)


def _ensure(run: Run) -> efs.FileSystem:
    net = network.read(run.ctx)
    group = security_groups.ensure(run.ctx, net, efs.firewall(run.ctx.names))
    return efs.ensure(run.ctx, net, group)


def _system() -> dict[str, Any]:
    (system,) = boto3.client("efs").describe_file_systems(CreationToken=TOKEN)["FileSystems"]
    return system


def _policy(file_system_id: str) -> dict[str, Any]:
    return json.loads(boto3.client("efs").describe_file_system_policy(FileSystemId=file_system_id)["Policy"])


def test_file_system_is_encrypted_elastic_backed_up_and_tls_only(files: Run) -> None:
    made = _ensure(files)
    system = _system()
    assert made.id == system["FileSystemId"] and made.arn == system["FileSystemArn"]
    assert system["Encrypted"] is True and not system.get("KmsKeyId")  # aws/elasticfilesystem, not the EKS key
    assert system["ThroughputMode"] == "elastic" and system["PerformanceMode"] == "generalPurpose"
    tags = {tag["Key"]: tag["Value"] for tag in system["Tags"]}
    assert tags["misp-eks/cluster"] == "misp-prod" and tags["environment"] == "prod" and tags["Name"] == TOKEN
    client = boto3.client("efs")
    assert client.describe_backup_policy(FileSystemId=made.id)["BackupPolicy"]["Status"] == "ENABLED"
    assert client.describe_lifecycle_configuration(FileSystemId=made.id)["LifecyclePolicies"] == [
        {"TransitionToIA": "AFTER_30_DAYS"},
        {"TransitionToPrimaryStorageClass": "AFTER_1_ACCESS"},
    ]
    statements = {item["Sid"]: item for item in _policy(made.id)["Statement"]}
    deny = statements["DenyInsecureTransport"]
    assert deny["Effect"] == "Deny" and deny["Action"] == "*" and deny["Resource"] == made.arn
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    allow = statements["AllowClientsThroughMountTargets"]
    assert allow["Condition"] == {"Bool": {"elasticfilesystem:AccessedViaMountTarget": "true"}}
    assert "elasticfilesystem:ClientRootAccess" not in allow["Action"]
    assert files.action("EFS file system", TOKEN) == "created"


def test_a_mount_target_in_each_private_subnet_behind_nfs_from_the_cluster_only(files: Run) -> None:
    made = _ensure(files)
    net = network.read(files.ctx)
    targets = boto3.client("efs").describe_mount_targets(FileSystemId=made.id)["MountTargets"]
    assert sorted(target["SubnetId"] for target in targets) == sorted(net.subnet_ids)
    assert sorted(target["AvailabilityZoneName"] for target in targets) == list(net.zones)
    ec2 = boto3.client("ec2")
    group = security_groups.find_owned(ec2, "misp-prod", FILES_GROUP)
    assert group is not None
    for target in targets:
        groups = boto3.client("efs").describe_mount_target_security_groups(MountTargetId=target["MountTargetId"])
        assert groups["SecurityGroups"] == [group["GroupId"]]
    (rule,) = group["IpPermissions"]
    assert (rule["IpProtocol"], rule["FromPort"], rule["ToPort"]) == ("tcp", 2049, 2049)
    assert [pair["GroupId"] for pair in rule["UserIdGroupPairs"]] == [net.cluster_security_group]
    assert not rule.get("IpRanges") and not rule.get("Ipv6Ranges")
    assert group["IpPermissionsEgress"] == []
    assert files.action("EFS mount targets", TOKEN) == "created"


def test_one_access_point_roots_every_mount_at_a_directory_of_www_data(files: Run) -> None:
    made = _ensure(files)
    (point,) = boto3.client("efs").describe_access_points(FileSystemId=made.id)["AccessPoints"]
    assert point["AccessPointId"] == made.access_point_id and point["ClientToken"] == TOKEN
    assert point["PosixUser"] == {"Uid": 33, "Gid": 33}
    assert point["RootDirectory"] == {
        "Path": "/misp",
        "CreationInfo": {"OwnerUid": 33, "OwnerGid": 33, "Permissions": "0700"},
    }
    tags = {tag["Key"]: tag["Value"] for tag in point["Tags"]}
    assert tags["misp-eks/cluster"] == "misp-prod" and tags["Name"] == TOKEN
    assert efs.require_access_point(files.ctx) == made.access_point_id
    assert files.action("EFS access point", TOKEN) == "created"


def test_another_access_point_on_the_file_system_is_not_ours(files: Run) -> None:
    made = _ensure(files)
    client = boto3.client("efs")
    client.create_access_point(ClientToken="someone-else", FileSystemId=made.id, RootDirectory={"Path": "/other"})
    _ensure(files)
    points = client.describe_access_points(FileSystemId=made.id)["AccessPoints"]
    assert len(points) == 2 and efs.require_access_point(files.ctx) == made.access_point_id


def test_a_changed_access_point_is_reported_never_replaced(files: Run) -> None:
    client = boto3.client("efs")
    system = client.create_file_system(**efs.create_request(files.ctx))["FileSystemId"]
    wrong = client.create_access_point(
        ClientToken=TOKEN, FileSystemId=system, PosixUser={"Uid": 0, "Gid": 0}, RootDirectory={"Path": "/"}
    )["AccessPointId"]
    made = _ensure(files)
    assert made.access_point_id == wrong
    assert "CreateAccessPoint" not in [call.operation for call in files.calls.mutating()]
    assert "access points cannot be changed" in files.output.getvalue()
    assert "Uid=0" in files.output.getvalue() and "Path=/" in files.output.getvalue()


def test_a_converged_file_system_is_not_written(files: Run) -> None:
    _ensure(files)
    files.calls.calls.clear()
    _ensure(files)
    assert mutating(files.calls) == []
    assert files.action("EFS file system", TOKEN) == "exists"
    assert files.action("EFS access point", TOKEN) == "exists"
    assert files.action("EFS mount targets", TOKEN) == "exists"


def test_a_creation_interrupted_after_create_file_system_is_resumed(files: Run) -> None:
    client = boto3.client("efs")
    request = {**efs.create_request(files.ctx), "Backup": False}  # what a bare CreateFileSystem leaves
    system = client.create_file_system(**request)
    net = network.read(files.ctx)
    group = security_groups.ensure(files.ctx, net, efs.firewall(files.ctx.names))
    client.create_mount_target(FileSystemId=system["FileSystemId"], SubnetId=net.subnet_ids[0], SecurityGroups=[group])
    made = efs.ensure(files.ctx, net, group)
    assert made.id == system["FileSystemId"]
    assert len(client.describe_file_systems()["FileSystems"]) == 1
    assert client.describe_backup_policy(FileSystemId=made.id)["BackupPolicy"]["Status"] == "ENABLED"
    assert {item["Sid"] for item in _policy(made.id)["Statement"]} == {
        "AllowClientsThroughMountTargets",
        "DenyInsecureTransport",
    }
    assert len(client.describe_mount_targets(FileSystemId=made.id)["MountTargets"]) == len(net.zones)
    assert files.action("EFS file system", TOKEN) == "updated"
    created = [call.params["SubnetId"] for call in files.calls.calls if call.operation == "CreateMountTarget"]
    assert created == net.subnet_ids[1:]  # only the zones still missing one


def test_mount_targets_left_creating_are_awaited_before_their_groups_are_read(
    files: Run, slow_targets: _SlowTargets
) -> None:
    client = boto3.client("efs")
    system = client.create_file_system(**efs.create_request(files.ctx))["FileSystemId"]
    net = network.read(files.ctx)
    group = security_groups.ensure(files.ctx, net, efs.firewall(files.ctx.names))
    client.create_mount_target(FileSystemId=system, SubnetId=net.subnet_ids[0], SecurityGroups=[group])
    assert [target.life_cycle_state for target in _backend().mount_targets_by_id.values()] == ["creating"]
    efs.ensure(files.ctx, net, group)  # the double refuses to read a creating target's groups
    targets = client.describe_mount_targets(FileSystemId=system)["MountTargets"]
    assert {target["LifeCycleState"] for target in targets} == {"available"} and len(targets) == len(net.zones)
    operations = [call.operation for call in files.calls.calls]
    assert operations.index("DescribeMountTargetSecurityGroups") > operations.index("CreateMountTarget")


def test_mount_targets_still_deleting_are_waited_out_then_made_again(files: Run, slow_targets: _SlowTargets) -> None:
    made = _ensure(files)
    for target in _backend().mount_targets_by_id.values():  # a destroy interrupted while they go
        target.life_cycle_state = "deleting"
    files.calls.calls.clear()
    _ensure(files)
    targets = boto3.client("efs").describe_mount_targets(FileSystemId=made.id)["MountTargets"]
    net = network.read(files.ctx)
    assert sorted(target["SubnetId"] for target in targets) == sorted(net.subnet_ids)
    assert {target["LifeCycleState"] for target in targets} == {"available"}
    assert [call.operation for call in files.calls.mutating()] == ["CreateMountTarget"] * len(net.zones)
    assert files.action("EFS mount targets", TOKEN) == "created"


def test_drift_is_repaired_and_foreign_policy_statements_kept(files: Run) -> None:
    made = _ensure(files)
    client, ec2 = boto3.client("efs"), boto3.client("ec2")
    net = network.read(files.ctx)
    other = ec2.create_security_group(GroupName="wide-open", Description="drift", VpcId=net.vpc_id)["GroupId"]
    target = client.describe_mount_targets(FileSystemId=made.id)["MountTargets"][0]["MountTargetId"]
    client.modify_mount_target_security_groups(MountTargetId=target, SecurityGroups=[other])
    audit = {
        "Sid": "AuditRead",
        "Effect": "Allow",
        "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
        "Action": "elasticfilesystem:ClientMount",
        "Resource": made.arn,
    }
    client.put_file_system_policy(FileSystemId=made.id, Policy=json.dumps({"Statement": [audit]}))
    client.put_lifecycle_configuration(FileSystemId=made.id, LifecyclePolicies=[])
    _ensure(files)
    files_group = security_groups.find_owned(ec2, "misp-prod", FILES_GROUP)
    assert files_group is not None
    assert client.describe_mount_target_security_groups(MountTargetId=target)["SecurityGroups"] == [
        files_group["GroupId"]
    ]
    sids = {item["Sid"] for item in _policy(made.id)["Statement"]}
    assert sids == {"AuditRead", "AllowClientsThroughMountTargets", "DenyInsecureTransport"}
    assert client.describe_lifecycle_configuration(FileSystemId=made.id)["LifecyclePolicies"] == efs.LIFECYCLE
    assert files.action("EFS file system", TOKEN) == "updated"
    assert files.action("EFS mount targets", TOKEN) == "updated"


def test_a_file_system_of_another_environment_is_refused(files: Run) -> None:
    boto3.client("efs").create_file_system(CreationToken=TOKEN, Tags=[{"Key": "misp-eks/cluster", "Value": "other"}])
    with pytest.raises(BootstrapError, match="is not tagged misp-eks/cluster=misp-prod"):
        _ensure(files)


def _foreign_files() -> dict[str, Any]:
    """Another team's look-alikes: a file system whose token starts with ours, with a mount target in its
    VPC behind a group of our group's name (EC2 group names are unique per VPC only)."""
    crowd.populate_foreign("eu-west-1")
    client, ec2 = boto3.client("efs"), boto3.client("ec2")
    outputs = emulate.stack_outputs("eu-west-1", "eksctl-misp-prod-old-cluster")
    tags = [{"Key": key, "Value": value} for key, value in crowd.FOREIGN_TAGS.items()]
    group = ec2.create_security_group(GroupName=FILES_GROUP, Description="theirs", VpcId=outputs["VPC"])["GroupId"]
    system = client.create_file_system(CreationToken=f"{TOKEN}-old", Tags=tags)["FileSystemId"]
    subnet = outputs["SubnetsPrivate"].split(",")[0]
    client.create_mount_target(FileSystemId=system, SubnetId=subnet, SecurityGroups=[group])
    return {"file system": system, "group": group}


def _described(foreign: dict[str, Any]) -> Any:
    client, ec2 = boto3.client("efs"), boto3.client("ec2")
    return (
        client.describe_file_systems(FileSystemId=foreign["file system"])["FileSystems"][0]["NumberOfMountTargets"],
        client.describe_mount_targets(FileSystemId=foreign["file system"])["MountTargets"],
        ec2.describe_security_groups(GroupIds=[foreign["group"]])["SecurityGroups"],
    )


def test_another_teams_file_system_and_group_are_left_alone(files: Run) -> None:
    foreign = _foreign_files()
    before = _described(foreign)
    made = _ensure(files)
    assert made.id != foreign["file system"]
    destroy.delete_data_layer(files.ctx)
    destroy.keep_or_delete(files.ctx, destroy.DestroyOptions())
    assert _described(foreign) == before


def test_mount_targets_in_another_vpc_stop_the_run_with_what_to_do(files: Run) -> None:
    client, ec2 = boto3.client("efs"), boto3.client("ec2")
    system = client.create_file_system(**efs.create_request(files.ctx))
    vpc = ec2.create_vpc(CidrBlock="10.99.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.99.1.0/24", AvailabilityZone="eu-west-1a")["Subnet"]
    client.create_mount_target(FileSystemId=system["FileSystemId"], SubnetId=subnet["SubnetId"])
    with pytest.raises(BootstrapError, match=f"mount targets in {vpc}.*aws efs delete-mount-target"):
        _ensure(files)


def test_cluster_vars_need_the_available_file_system_and_access_point(files: Run) -> None:
    with pytest.raises(MissingPrerequisite, match="EFS file system misp-prod-misp-files"):
        efs.require(files.ctx)
    with pytest.raises(MissingPrerequisite, match="EFS file system misp-prod-misp-files"):
        efs.require_access_point(files.ctx)
    system = boto3.client("efs").create_file_system(**efs.create_request(files.ctx))["FileSystemId"]
    with pytest.raises(MissingPrerequisite, match="EFS access point misp-prod-misp-files"):
        efs.require_access_point(files.ctx)
    made = _ensure(files)
    assert made.id == system
    assert (efs.require(files.ctx), efs.require_access_point(files.ctx)) == (made.id, made.access_point_id)


def test_destroy_removes_the_mount_targets_and_their_group_and_keeps_the_files(files: Run) -> None:
    made = _ensure(files)
    files.calls.calls.clear()
    destroy.delete_data_layer(files.ctx)
    destroy.keep_or_delete(files.ctx, destroy.DestroyOptions(delete_bucket=True, delete_secrets=True))
    client = boto3.client("efs")
    assert client.describe_mount_targets(FileSystemId=made.id)["MountTargets"] == []
    assert security_groups.find_owned(boto3.client("ec2"), "misp-prod", FILES_GROUP) is None
    assert _system()["FileSystemId"] == made.id  # kept, even with every --delete-* option
    assert not {"DeleteFileSystem", "DeleteAccessPoint"} & {call.operation for call in files.calls.calls}
    (point,) = client.describe_access_points(FileSystemId=made.id)["AccessPoints"]
    assert point["AccessPointId"] == made.access_point_id
    operations = [call.operation for call in files.calls.mutating()]
    last_mount_target = len(operations) - 1 - operations[::-1].index("DeleteMountTarget")
    assert last_mount_target < operations.index("DeleteSecurityGroup")
    assert files.action("EFS mount targets", TOKEN) == "deleted"
    assert files.action("EFS file system", TOKEN) == "kept"
    assert files.action("EFS access point", TOKEN) == "kept"
    destroy.delete_data_layer(files.ctx)  # a second destroy finds nothing to do
    assert files.action("EFS mount targets", TOKEN) == "skipped"


def test_the_next_deployment_mounts_the_same_directory(files: Run, eks: dict[str, Any]) -> None:
    """--destroy, then a new cluster (a new VPC): the same file system and the same access point, so the
    volume misp-files (efs:<file system>::<access point>) reaches the files of the earlier deployment."""
    made = _ensure(files)
    old_vpc = network.read(files.ctx).vpc_id
    destroy.delete_data_layer(files.ctx)
    destroy.keep_or_delete(files.ctx, destroy.DestroyOptions(delete_bucket=True, delete_secrets=True))
    stack = files.ctx.names.cluster_stack
    cfn = boto3.client("cloudformation")
    cfn.delete_stack(StackName=stack)
    template = emulate.stack_template("10.21.0.0/16", eks["availabilityZones"])
    cfn.create_stack(StackName=stack, TemplateBody=json.dumps(template))
    files.ctx.facts.pop("network", None)
    files.calls.calls.clear()
    again = _ensure(files)
    net = network.read(files.ctx)
    assert net.vpc_id != old_vpc
    assert (again.id, again.access_point_id) == (made.id, made.access_point_id)
    targets = boto3.client("efs").describe_mount_targets(FileSystemId=made.id)["MountTargets"]
    assert {target["VpcId"] for target in targets} == {net.vpc_id}
    assert sorted(target["SubnetId"] for target in targets) == sorted(net.subnet_ids)
    created = {call.operation for call in files.calls.mutating()}
    assert not {"CreateFileSystem", "CreateAccessPoint"} & created and "CreateMountTarget" in created
    assert files.action("EFS access point", TOKEN) == "exists"


def test_every_request_fits_the_efs_api_model() -> None:
    """botocore validates types and required members, not enums or the one-transition rule."""
    model = botocore.session.get_session().get_service_model("efs")
    create = model.operation_model("CreateFileSystem").input_shape.members
    assert efs.THROUGHPUT_MODE in create["ThroughputMode"].enum
    assert efs.PERFORMANCE_MODE in create["PerformanceMode"].enum
    policy = model.shape_for("LifecyclePolicy")
    for item in efs.LIFECYCLE:
        ((key, value),) = item.items()  # PutLifecycleConfiguration: one transition per LifecyclePolicy
        assert value in policy.members[key].enum
    root = model.shape_for("RootDirectory").members["Path"].metadata["pattern"]
    assert re.fullmatch(root.replace("(?!\\.)", ""), efs.ROOT_DIRECTORY)
    assert re.fullmatch(
        model.shape_for("CreationInfo").members["Permissions"].metadata["pattern"], efs.ROOT_PERMISSIONS
    )
    statements = efs.policy_statements("arn:aws:elasticfilesystem:eu-west-1:1:file-system/fs-1")
    assert len({item["Sid"] for item in statements}) == len(statements)
    assert len(json.dumps({"Version": "2012-10-17", "Statement": statements})) <= 20000  # EFS policy limit


def test_the_plan_shows_the_file_system_its_access_point_and_its_group(files: Run) -> None:
    def actions() -> dict[str, str]:
        rows = plan.build(files.ctx.env, files.ctx.aws, files.ctx.tools, (Phase.DATA,))
        return {row.kind: row.action for row in rows if row.name in (TOKEN, FILES_GROUP)}

    kinds = ("security group", "EFS file system", "EFS access point")
    _foreign_files()  # another team's look-alikes make nothing look as if it existed
    assert actions() == dict.fromkeys(kinds, "create")
    _ensure(files)
    assert actions() == dict.fromkeys(kinds, "exists")


class _CreatingEfs:
    """An EFS whose file system never leaves 'creating'."""

    def describe_file_systems(self, **_: Any) -> dict[str, Any]:
        system = {
            "FileSystemId": "fs-0123456789abcdef0",
            "FileSystemArn": "arn:aws:elasticfilesystem:eu-west-1:123456789012:file-system/fs-0123456789abcdef0",
            "LifeCycleState": "creating",
            "Tags": [{"Key": "misp-eks/cluster", "Value": "misp-prod"}],
        }
        return {"FileSystems": [system]}


def test_a_wait_that_times_out_names_what_it_waited_for(files: Run) -> None:
    net = network.read(files.ctx)
    group = security_groups.ensure(files.ctx, net, efs.firewall(files.ctx.names))
    files.ctx.aws._clients["efs"] = _CreatingEfs()
    with pytest.raises(BootstrapError) as caught:
        efs.ensure(files.ctx, net, group)
    assert f"waiting for EFS file system {TOKEN} to become available (last seen: creating)" in caught.value.message
    assert "re-run" in caught.value.message
