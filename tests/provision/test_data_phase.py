"""The data phase as a whole: order, concurrency, and a converged re-run."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from misp_eks.provision import caches, data, database, secrets
from misp_eks.provision.errors import BootstrapError
from tests.provision.conftest import Run, inject_error, make_run, mutating


def test_database_and_caches_are_created_concurrently(
    run: Run, eks: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    together = threading.Barrier(3, timeout=10)  # breaks unless all three run at the same time
    real_database, real_cache = database.ensure, caches.ensure

    def database_ensure(*args: Any, **kwargs: Any) -> Any:
        together.wait()
        return real_database(*args, **kwargs)

    def cache_ensure(*args: Any, **kwargs: Any) -> Any:
        together.wait()
        return real_cache(*args, **kwargs)

    monkeypatch.setattr(database, "ensure", database_ensure)
    monkeypatch.setattr(caches, "ensure", cache_ensure)
    data.run(run.ctx)
    assert run.action("RDS instance", "misp-prod-misp") == "created"
    assert run.action("ElastiCache replication group", "misp-prod-misp") == "created"
    assert run.action("ElastiCache replication group", "misp-prod-dashboard") == "created"


def test_data_phase_works_alone_and_a_rerun_writes_nothing(run: Run, eks: dict[str, Any]) -> None:
    data.run(run.ctx)  # without the secrets phase: it makes the two AUTH tokens itself
    assert run.action("secret", "misp-prod/misp/redis") == "created"
    run.calls.calls.clear()
    data.run(run.ctx)
    assert mutating(run.calls) == []
    assert not [call for call in run.calls.calls if call.operation == "GetSecretValue"]


def test_the_caches_use_the_tokens_in_secrets_manager(run: Run, eks: dict[str, Any]) -> None:
    secrets.ensure_all(run.ctx)
    data.run(run.ctx)
    sent = {
        call.params["ReplicationGroupId"]: call.params["AuthToken"]
        for call in run.calls.calls
        if call.operation == "CreateReplicationGroup"
    }
    assert sent == {
        "misp-prod-misp": secrets.read(run.ctx, caches.secret_spec("misp"))["auth_token"],
        "misp-prod-dashboard": secrets.read(run.ctx, caches.secret_spec("dashboard"))["auth_token"],
    }


def test_a_run_that_failed_half_way_is_resumed(run: Run, eks: dict[str, Any]) -> None:
    inject_error(
        run.ctx.aws.session.events,
        "elasticache",
        "CreateReplicationGroup",
        "InsufficientCacheClusterCapacity",
        "no capacity in eu-west-1b",
    )
    with pytest.raises(BootstrapError, match="InsufficientCacheClusterCapacity"):
        data.run(run.ctx)
    run.ctx.aws.session.events.unregister("before-call.elasticache.CreateReplicationGroup")
    fresh = make_run(run.ctx.env, run.ctx.workdir)
    data.run(fresh.ctx)
    assert fresh.action("RDS instance", "misp-prod-misp") == "exists"
    assert fresh.action("ElastiCache replication group", "misp-prod-misp") == "created"
    assert fresh.action("security group", "misp-prod-database") == "exists"
