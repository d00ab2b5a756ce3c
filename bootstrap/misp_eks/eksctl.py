"""A typed model of the eksctl ``ClusterConfig`` fields this project uses.

Field names and enums follow eksctl's schema (``pkg/apis/eksctl.io/v1alpha5/assets/schema.json``,
what ``eksctl utils schema`` prints). Unknown fields fail here as they fail in eksctl, which parses
with ``yaml.UnmarshalStrict``. A field eksctl knows but this model lacks is refused too: add it
here, checked against that schema, before using it.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints, field_validator, model_validator

from misp_eks.models import NonEmpty, StrictModel

# eksctl validates logRetentionInDays against this list (pkg/apis/eksctl.io/v1alpha5/cloudwatch.go).
LOG_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1827, 3653)


class Metadata(StrictModel):
    name: Annotated[str, StringConstraints(pattern=r"^[a-zA-Z][-a-zA-Z0-9]{0,99}$")]
    region: Annotated[str, StringConstraints(pattern=r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d$")]
    version: Annotated[str, StringConstraints(pattern=r"^1\.\d+$")]
    tags: dict[str, str] = Field(default_factory=dict)


class Nat(StrictModel):
    gateway: Literal["HighlyAvailable", "Single", "Disable"] = "Single"


class ClusterEndpoints(StrictModel):
    privateAccess: bool | None = None
    publicAccess: bool | None = None


class Vpc(StrictModel):
    cidr: str | None = None
    nat: Nat = Field(default_factory=Nat)
    clusterEndpoints: ClusterEndpoints | None = None
    publicAccessCIDRs: list[str] | None = None

    @field_validator("cidr")
    @classmethod
    def _cidr(cls, value: str | None) -> str | None:
        if value is not None:
            ipaddress.ip_network(value, strict=True)
        return value


class AccessConfig(StrictModel):
    authenticationMode: Literal["API", "API_AND_CONFIG_MAP", "CONFIG_MAP"] | None = None
    bootstrapClusterCreatorAdminPermissions: bool | None = None


class SecretsEncryption(StrictModel):
    keyARN: NonEmpty


class ClusterLogging(StrictModel):
    enableTypes: list[Literal["api", "audit", "authenticator", "controllerManager", "scheduler", "all", "*"]]
    logRetentionInDays: int | None = None

    @field_validator("logRetentionInDays")
    @classmethod
    def _retention(cls, value: int | None) -> int | None:
        if value is not None and value not in LOG_RETENTION_DAYS:
            raise ValueError(f"must be one of {', '.join(map(str, LOG_RETENTION_DAYS))} (eksctl's list)")
        return value


class CloudWatch(StrictModel):
    clusterLogging: ClusterLogging


class WellKnownPolicies(StrictModel):
    autoScaler: bool | None = None
    awsLoadBalancerController: bool | None = None
    certManager: bool | None = None
    ebsCSIController: bool | None = None
    efsCSIController: bool | None = None
    externalDNS: bool | None = None
    imageBuilder: bool | None = None


class PolicyStatement(StrictModel):
    Sid: str | None = None
    Effect: Literal["Allow", "Deny"]
    Action: str | list[str]
    Resource: str | list[str]
    Condition: dict[str, dict[str, Any]] | None = None

    def actions(self) -> list[str]:
        return [self.Action] if isinstance(self.Action, str) else list(self.Action)

    def resources(self) -> list[str]:
        return [self.Resource] if isinstance(self.Resource, str) else list(self.Resource)


class PolicyDocument(StrictModel):
    Version: Literal["2012-10-17"]
    Statement: list[PolicyStatement] = Field(min_length=1)


class AddonPodIdentityAssociation(StrictModel):
    """An add-on's own association: the add-on's namespace is implied, and eksctl refuses
    wellKnownPolicies and tags on it (validateAddonPodIdentityAssociations in validation.go)."""

    serviceAccountName: NonEmpty
    roleName: str | None = None
    permissionPolicy: PolicyDocument | None = None
    permissionPolicyARNs: list[str] | None = None

    @model_validator(mode="after")
    def _has_permissions(self) -> AddonPodIdentityAssociation:
        if not (self.permissionPolicy or self.permissionPolicyARNs):
            raise ValueError("needs permissionPolicy or permissionPolicyARNs")
        return self


class Addon(StrictModel):
    name: NonEmpty
    version: str | None = None
    configurationValues: str | None = None
    resolveConflicts: Literal["none", "overwrite", "preserve"] | None = None
    useDefaultPodIdentityAssociations: bool | None = None
    podIdentityAssociations: list[AddonPodIdentityAssociation] | None = None
    tags: dict[str, str] | None = None

    @model_validator(mode="after")
    def _one_identity_source(self) -> Addon:
        # eksctl validation.go: "cannot specify both addon.useDefaultPodIdentityAssociations and
        # addon.podIdentityAssociations".
        if self.useDefaultPodIdentityAssociations and self.podIdentityAssociations:
            raise ValueError("set useDefaultPodIdentityAssociations or podIdentityAssociations, not both")
        return self


class AddonsConfig(StrictModel):
    autoApplyPodIdentityAssociations: bool | None = None
    disableDefaultAddons: bool | None = None


class PodIdentityAssociation(StrictModel):
    namespace: NonEmpty
    serviceAccountName: NonEmpty
    roleName: str | None = None
    createServiceAccount: bool | None = None
    wellKnownPolicies: WellKnownPolicies | None = None
    permissionPolicy: PolicyDocument | None = None
    permissionPolicyARNs: list[str] | None = None
    tags: dict[str, str] | None = None

    @model_validator(mode="after")
    def _has_permissions(self) -> PodIdentityAssociation:
        if not (self.wellKnownPolicies or self.permissionPolicy or self.permissionPolicyARNs):
            raise ValueError("needs wellKnownPolicies, permissionPolicy or permissionPolicyARNs")
        return self


class Iam(StrictModel):
    withOIDC: bool | None = None
    podIdentityAssociations: list[PodIdentityAssociation] = Field(default_factory=list)


class UpdateConfig(StrictModel):
    maxUnavailable: int | None = Field(default=None, ge=1)
    maxUnavailablePercentage: int | None = Field(default=None, ge=1, le=100)


class ManagedNodeGroup(StrictModel):
    name: Annotated[str, StringConstraints(pattern=r"^[a-zA-Z0-9][-a-zA-Z0-9_]*$")]
    instanceType: str | None = None
    instanceTypes: list[str] | None = None
    amiFamily: str | None = None
    minSize: int = Field(ge=0)
    maxSize: int = Field(ge=1)
    desiredCapacity: int = Field(ge=0)
    availabilityZones: list[str] = Field(min_length=1)
    privateNetworking: bool = False
    volumeSize: int | None = Field(default=None, ge=1)
    volumeType: Literal["gp2", "gp3", "io1", "io2", "sc1", "st1"] | None = None
    volumeEncrypted: bool | None = None
    disableIMDSv1: bool | None = None
    disablePodIMDS: bool | None = None
    labels: dict[str, str] | None = None
    tags: dict[str, str] | None = None
    propagateASGTags: bool | None = None
    spot: bool | None = None
    updateConfig: UpdateConfig | None = None

    @model_validator(mode="after")
    def _sizes(self) -> ManagedNodeGroup:
        if not (self.minSize <= self.desiredCapacity <= self.maxSize):
            raise ValueError("needs minSize <= desiredCapacity <= maxSize")
        if bool(self.instanceType) == bool(self.instanceTypes):
            raise ValueError("set exactly one of instanceType and instanceTypes")
        return self


class ClusterConfig(StrictModel):
    apiVersion: Literal["eksctl.io/v1alpha5"]
    kind: Literal["ClusterConfig"]
    metadata: Metadata
    availabilityZones: list[str] = Field(default_factory=list)
    vpc: Vpc = Field(default_factory=Vpc)
    accessConfig: AccessConfig | None = None
    secretsEncryption: SecretsEncryption | None = None
    cloudWatch: CloudWatch | None = None
    addonsConfig: AddonsConfig | None = None
    addons: list[Addon] = Field(default_factory=list)
    iam: Iam = Field(default_factory=Iam)
    managedNodeGroups: list[ManagedNodeGroup] = Field(default_factory=list)

    @model_validator(mode="after")
    def _consistent(self) -> ClusterConfig:
        names = [group.name for group in self.managedNodeGroups]
        if len(names) != len(set(names)):
            raise ValueError("managedNodeGroups names must be unique")
        for index, group in enumerate(self.managedNodeGroups):
            outside = set(group.availabilityZones) - set(self.availabilityZones)
            if self.availabilityZones and outside:
                raise ValueError(
                    f"managedNodeGroups[{index}].availabilityZones: node group {group.name}: zones {sorted(outside)} "
                    "are not in availabilityZones"
                )
        for zone in self.availabilityZones:
            if not re.fullmatch(re.escape(self.metadata.region) + r"[a-z]", zone):
                raise ValueError(f"availabilityZones: {zone} is not a zone of {self.metadata.region}")
        return self

    def addon(self, name: str) -> Addon | None:
        return next((addon for addon in self.addons if addon.name == name), None)

    def association(self, namespace: str, service_account: str) -> PodIdentityAssociation | None:
        return next(
            (
                item
                for item in self.iam.podIdentityAssociations
                if item.namespace == namespace and item.serviceAccountName == service_account
            ),
            None,
        )
