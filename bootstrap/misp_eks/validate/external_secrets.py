"""Typed models of the External Secrets Operator objects this project uses (``external-secrets.io/v1``).

No maintained Python package models these CRDs, so the fields the project uses are modelled here,
checked against the CRDs shipped with chart 2.9.0 (external-secrets/external-secrets
``config/crds/bases/external-secrets.io_{externalsecrets,clustersecretstores}.yaml``). Anything
else is refused as an unknown field: extend the model, against those CRDs, before using it.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import StringConstraints, model_validator

from misp_eks.models import DURATION_PATTERN, NonEmpty, StrictModel

Duration = Annotated[str, StringConstraints(pattern=DURATION_PATTERN)]


class ObjectMeta(StrictModel):
    name: NonEmpty
    namespace: str | None = None
    labels: dict[str, str] | None = None
    annotations: dict[str, str] | None = None


class StoreRef(StrictModel):
    name: NonEmpty
    kind: Literal["SecretStore", "ClusterSecretStore"] = "SecretStore"


class RemoteRef(StrictModel):
    key: NonEmpty
    property: str | None = None
    version: str | None = None
    conversionStrategy: Literal["Default", "Unicode"] | None = None
    decodingStrategy: Literal["Auto", "Base64", "Base64URL", "None"] | None = None


class Data(StrictModel):
    secretKey: NonEmpty
    remoteRef: RemoteRef


class Extract(StrictModel):
    key: NonEmpty
    property: str | None = None
    version: str | None = None
    conversionStrategy: Literal["Default", "Unicode"] | None = None
    decodingStrategy: Literal["Auto", "Base64", "Base64URL", "None"] | None = None


class DataFrom(StrictModel):
    extract: Extract


class TemplateMetadata(StrictModel):
    labels: dict[str, str] | None = None
    annotations: dict[str, str] | None = None


class Template(StrictModel):
    type: str | None = None
    engineVersion: Literal["v2"] | None = None
    mergePolicy: Literal["Replace", "Merge"] | None = None
    metadata: TemplateMetadata | None = None
    data: dict[str, str] | None = None


class Target(StrictModel):
    name: str | None = None
    creationPolicy: Literal["Owner", "Orphan", "Merge", "None", "CreateOrMerge"] | None = None
    deletionPolicy: Literal["Delete", "Merge", "Retain"] | None = None
    immutable: bool | None = None
    template: Template | None = None


class ExternalSecretSpec(StrictModel):
    secretStoreRef: StoreRef
    refreshInterval: Duration | None = None
    refreshPolicy: Literal["CreatedOnce", "Periodic", "OnChange"] | None = None
    target: Target | None = None
    data: list[Data] | None = None
    dataFrom: list[DataFrom] | None = None


class ExternalSecret(StrictModel):
    apiVersion: Literal["external-secrets.io/v1"]
    kind: Literal["ExternalSecret"]
    metadata: ObjectMeta
    spec: ExternalSecretSpec


class AwsProvider(StrictModel):
    service: Literal["SecretsManager", "ParameterStore", "CertificateManager"]
    region: NonEmpty
    role: str | None = None
    prefix: str | None = None
    # No ``auth``: the controller's own credentials (EKS Pod Identity) are used; see infrastructure/configs.


class FakeData(StrictModel):
    key: NonEmpty
    value: str
    version: str | None = None


class FakeProvider(StrictModel):
    """Static values (apis/externalsecrets/v1/secretstore_fake_types.go): the kind cluster's store only."""

    data: list[FakeData]


class Provider(StrictModel):
    aws: AwsProvider | None = None
    fake: FakeProvider | None = None

    @model_validator(mode="after")
    def one_provider(self) -> Provider:
        if (self.aws is None) == (self.fake is None):
            raise ValueError("exactly one provider: aws, or fake (kind only)")
        return self


class LabelSelector(StrictModel):
    matchLabels: dict[str, str] | None = None
    matchExpressions: list[dict[str, Any]] | None = None


class Condition(StrictModel):
    namespaceSelector: LabelSelector | None = None
    namespaces: list[str] | None = None
    namespaceRegexes: list[str] | None = None


class SecretStoreSpec(StrictModel):
    provider: Provider
    conditions: list[Condition] | None = None
    refreshInterval: int | Duration | None = None


class ClusterSecretStore(StrictModel):
    apiVersion: Literal["external-secrets.io/v1"]
    kind: Literal["ClusterSecretStore"]
    metadata: ObjectMeta
    spec: SecretStoreSpec
