"""Typed models of the External Secrets Operator objects this project uses (``external-secrets.io/v1``).

No maintained Python package models these CRDs, so the fields the project uses are modelled here,
checked against the CRDs shipped with chart 2.9.0 (external-secrets/external-secrets
``config/crds/bases/external-secrets.io_{externalsecrets,clustersecretstores}.yaml``). Anything
else is refused as an unknown field: extend the model, against those CRDs, before using it.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, StringConstraints

Duration = Annotated[str, StringConstraints(pattern=r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$")]
NonEmpty = Annotated[str, StringConstraints(min_length=1)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ObjectMeta(_Strict):
    name: NonEmpty
    namespace: str | None = None
    labels: dict[str, str] | None = None
    annotations: dict[str, str] | None = None


class StoreRef(_Strict):
    name: NonEmpty
    kind: Literal["SecretStore", "ClusterSecretStore"] = "SecretStore"


class RemoteRef(_Strict):
    key: NonEmpty
    property: str | None = None
    version: str | None = None
    conversionStrategy: Literal["Default", "Unicode"] | None = None
    decodingStrategy: Literal["Auto", "Base64", "Base64URL", "None"] | None = None


class Data(_Strict):
    secretKey: NonEmpty
    remoteRef: RemoteRef


class Extract(_Strict):
    key: NonEmpty
    property: str | None = None
    version: str | None = None
    conversionStrategy: Literal["Default", "Unicode"] | None = None
    decodingStrategy: Literal["Auto", "Base64", "Base64URL", "None"] | None = None


class DataFrom(_Strict):
    extract: Extract


class TemplateMetadata(_Strict):
    labels: dict[str, str] | None = None
    annotations: dict[str, str] | None = None


class Template(_Strict):
    type: str | None = None
    engineVersion: Literal["v2"] | None = None
    mergePolicy: Literal["Replace", "Merge"] | None = None
    metadata: TemplateMetadata | None = None
    data: dict[str, str] | None = None


class Target(_Strict):
    name: str | None = None
    creationPolicy: Literal["Owner", "Orphan", "Merge", "None", "CreateOrMerge"] | None = None
    deletionPolicy: Literal["Delete", "Merge", "Retain"] | None = None
    immutable: bool | None = None
    template: Template | None = None


class ExternalSecretSpec(_Strict):
    secretStoreRef: StoreRef
    refreshInterval: Duration | None = None
    refreshPolicy: Literal["CreatedOnce", "Periodic", "OnChange"] | None = None
    target: Target | None = None
    data: list[Data] | None = None
    dataFrom: list[DataFrom] | None = None


class ExternalSecret(_Strict):
    apiVersion: Literal["external-secrets.io/v1"]
    kind: Literal["ExternalSecret"]
    metadata: ObjectMeta
    spec: ExternalSecretSpec

    def target_name(self) -> str:
        return (self.spec.target.name if self.spec.target else None) or self.metadata.name


class AwsProvider(_Strict):
    service: Literal["SecretsManager", "ParameterStore", "CertificateManager"]
    region: NonEmpty
    role: str | None = None
    prefix: str | None = None
    # No ``auth``: the controller's own credentials (EKS Pod Identity) are used; see infrastructure/configs.


class Provider(_Strict):
    aws: AwsProvider


class LabelSelector(_Strict):
    matchLabels: dict[str, str] | None = None
    matchExpressions: list[dict[str, Any]] | None = None


class Condition(_Strict):
    namespaceSelector: LabelSelector | None = None
    namespaces: list[str] | None = None
    namespaceRegexes: list[str] | None = None


class SecretStoreSpec(_Strict):
    provider: Provider
    conditions: list[Condition] | None = None
    refreshInterval: int | Duration | None = None


class ClusterSecretStore(_Strict):
    apiVersion: Literal["external-secrets.io/v1"]
    kind: Literal["ClusterSecretStore"]
    metadata: ObjectMeta
    spec: SecretStoreSpec
