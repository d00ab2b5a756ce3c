"""What every phase works with: the environment, AWS, the tools, the display and the clock."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, TypeVar

from botocore.exceptions import BotoCoreError, ClientError

from misp_eks.environment import Environment
from misp_eks.provision.aws.session import Aws
from misp_eks.provision.errors import describe_aws_error
from misp_eks.provision.names import Names
from misp_eks.provision.progress import Progress
from misp_eks.provision.tags import common_tags
from misp_eks.provision.tools import Tools
from misp_eks.provision.waiting import Poll, Timing, run_concurrently, wait_until
from misp_eks.settings import Settings

T = TypeVar("T")


@dataclass
class Context:
    env: Environment
    aws: Aws
    tools: Tools
    progress: Progress
    environ: Mapping[str, str]
    workdir: Path
    """A private directory (mode 0700) for this run: the kubeconfig and flux's cache; the CLI removes it at the end."""
    timing: Timing = field(default_factory=Timing)
    cancel: threading.Event = field(default_factory=threading.Event)
    services: dict[str, Any] = field(default_factory=dict)
    """Injected collaborators that tests replace: ``http_get`` (verify), ``gpg_key`` (secrets)."""
    facts: dict[str, Any] = field(default_factory=dict)
    """What this run has learnt from AWS and may reuse (the hosted zone, for example)."""

    def fact(self, key: str, compute: Callable[[], T]) -> T:
        if key not in self.facts:
            self.facts[key] = compute()
        return self.facts[key]  # type: ignore[no-any-return]

    @property
    def settings(self) -> Settings:
        return self.env.settings

    @cached_property
    def names(self) -> Names:
        identity = self.aws.identity()
        return Names(
            environment=self.env.name,
            cluster=self.env.cluster_name,
            region=self.env.region,
            account=identity.account,
            partition=identity.partition,
        )

    @cached_property
    def tags(self) -> dict[str, str]:
        return common_tags(self.names, self.settings.tags)

    def client(self, service: str) -> Any:
        return self.aws.client(service)

    def wait(
        self, what: str, probe: Callable[[], Poll[T]], *, timeout: float, interval: float | None = None
    ) -> T | None:
        return wait_until(
            what,
            probe,
            timeout=timeout,
            interval=self.timing.poll if interval is None else interval,
            progress=self.progress,
            cancel=self.cancel,
        )

    def record(self, kind: str, name: str, action: str, detail: str = "") -> None:
        self.progress.record(kind, name, action, detail)

    def concurrently(self, tasks: Mapping[str, Callable[[], T]]) -> dict[str, T]:
        """Run ``tasks`` in threads; an AWS error is described in the thread that made the call."""

        def guarded(task: Callable[[], T]) -> Callable[[], T]:
            def call() -> T:
                try:
                    return task()
                except (BotoCoreError, ClientError) as error:
                    raise describe_aws_error(error, self.aws.calls.last_context()) from None

            return call

        return run_concurrently({name: guarded(task) for name, task in tasks.items()}, self.cancel)
