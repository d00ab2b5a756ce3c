"""Engine versions: settings name a major.minor (or a full version), resolved against what AWS offers."""

from __future__ import annotations

from typing import Any

import pytest

from misp_eks.provision import caches, db_parameters, engine_versions, plan, preflight
from misp_eks.provision.errors import InputError
from misp_eks.provision.phases import Phase
from tests.provision import engines
from tests.provision.conftest import FakeTools, Run, mutating
from tests.provision.test_caches import _request as cache_request
from tests.provision.test_database import _create as create_database


def _with(run: Run, section: str, **values: object) -> None:
    current = getattr(run.ctx.settings, section)
    settings = run.ctx.env.settings.model_copy(update={section: current.model_copy(update=values)})
    run.ctx.env = type(run.ctx.env)(**{**run.ctx.env.__dict__, "settings": settings})
    run.ctx.facts.clear()


@pytest.mark.parametrize(
    ("configured", "offered", "expected"),
    [
        ("11.4", ["11.4.5", "11.4.10", "11.4.7", "11.8.3"], "11.4.10"),
        ("11.4.5", ["11.4.5", "11.4.7"], "11.4.5"),
        ("11.4.3", ["11.4.5", "11.4.7"], None),
        ("11.5", ["11.4.5", "11.8.3"], None),
        ("11.4", ["11.40.1", "11.4"], "11.4"),
        ("8.0", ["7.2", "8.0", "8.1"], "8.0"),
        ("1.4", ["11.4.5"], None),
    ],
)
def test_pick(configured: str, offered: list[str], expected: str | None) -> None:
    assert engine_versions.pick(configured, offered) == expected


def test_a_major_minor_takes_the_newest_available_minor(run: Run) -> None:
    assert run.ctx.settings.database.engine_version == "11.4"
    assert engine_versions.database(run.ctx) == engines.NEWEST_MARIADB_11_4
    assert engine_versions.cache(run.ctx) == "8.0"
    calls = [call for call in run.calls.calls if call.operation == "DescribeDBEngineVersions"]
    # IncludeAll lists the deprecated minors too (11.4.8 here, newer than 11.4.7): only Status leaves them out.
    assert [call.params for call in calls] == [{"Engine": "mariadb", "IncludeAll": True}]
    engine_versions.database(run.ctx)
    assert len([call for call in run.calls.calls if call.operation == "DescribeDBEngineVersions"]) == 1


def test_a_withdrawn_minor_is_one_clear_error_listing_what_is_offered(run: Run, tools: FakeTools) -> None:
    _with(run, "database", engine_version="11.4.3")  # deprecated in the emulated catalogue
    with pytest.raises(InputError) as raised:
        preflight.run(run.ctx, ())
    assert run.outcomes("availability zones")  # after the zones, before anything is created
    message = raised.value.message
    assert message.startswith("clusters/prod/settings.yaml database.engine_version: RDS mariadb 11.4.3 is not offered")
    assert "offered: 10.6.21, 10.11.11, 11.4.5, 11.4.7, 11.8.3" in message


def test_a_full_version_still_offered_is_used_as_it_is(run: Run) -> None:
    _with(run, "database", engine_version="11.4.5")
    assert engine_versions.database(run.ctx) == "11.4.5"


def test_an_unknown_cache_version_is_refused(run: Run) -> None:
    _with(run, "caches", engine_version="9.0")
    with pytest.raises(InputError, match=r"caches.engine_version: ElastiCache valkey 9.0 .* offered: 7.2, 8.0, 8.1"):
        engine_versions.cache(run.ctx)


def test_preflight_and_plan_show_the_resolved_versions(run: Run, zone_id: str) -> None:
    preflight.check_engine_versions(run.ctx)
    assert [item.detail for item in run.outcomes(engine_versions.DATABASE_KIND)] == [engines.NEWEST_MARIADB_11_4]
    rows = plan.build(run.ctx.env, run.ctx.aws, run.ctx.tools, (Phase.PREFLIGHT,))
    actions = {row.kind: row.action for row in rows}
    assert actions[engine_versions.DATABASE_KIND] == f"check: {engines.NEWEST_MARIADB_11_4}"
    assert actions[engine_versions.CACHE_KIND] == "check: 8.0"
    _with(run, "database", engine_version="10.5")
    rows = plan.build(run.ctx.env, run.ctx.aws, run.ctx.tools, (Phase.PREFLIGHT,))
    action = next(row.action for row in rows if row.kind == engine_versions.DATABASE_KIND)
    assert action.startswith("check: failed (clusters/prod/settings.yaml database.engine_version: RDS mariadb 10.5")


def test_a_withdrawn_version_only_warns_where_the_instance_and_caches_exist(run: Run, eks: dict[str, Any]) -> None:
    create_database(run)
    for app in caches.APPS:
        request = cache_request(run, app)
        caches.ensure(run.ctx, request["ReplicationGroupId"], lambda request=request: request)
    _with(run, "database", engine_version="11.4.3")  # withdrawn since the instance was created
    _with(run, "caches", engine_version="7.1")  # never offered for valkey
    run.calls.calls.clear()
    preflight.check_engine_versions(run.ctx)
    output = " ".join(run.output.getvalue().split())  # the console wraps long lines
    assert output.count("warning:") == 2
    assert "RDS mariadb 11.4.3 is not offered" in output
    assert "misp-prod-misp keep their version, only creating needs an offered one" in output
    assert "ElastiCache valkey 7.1 is not offered" in output
    assert "misp-prod-misp, misp-prod-dashboard keep their version" in output
    assert [item.detail for item in run.outcomes(engine_versions.DATABASE_KIND)][-1] == "kept by misp-prod-misp"
    rows = plan.build(run.ctx.env, run.ctx.aws, run.ctx.tools, (Phase.PREFLIGHT,))
    action = next(row.action for row in rows if row.kind == engine_versions.DATABASE_KIND)
    assert action.startswith("check: kept by misp-prod-misp (warning: clusters/prod/settings.yaml database.engine")
    # The data phase never asks for a version to create with: the instance's own is used.
    run.calls.calls.clear()
    run.ctx.facts.clear()
    create_database(run)
    assert [call for call in run.calls.calls if call.operation == "DescribeDBEngineVersions"] == []
    assert mutating(run.calls) == []


def test_a_withdrawn_version_stops_a_run_that_would_create(run: Run, eks: dict[str, Any]) -> None:
    for app in caches.APPS[:1]:  # one group of two: the other would be created
        request = cache_request(run, app)
        caches.ensure(run.ctx, request["ReplicationGroupId"], lambda request=request: request)
    _with(run, "caches", engine_version="7.1")
    with pytest.raises(InputError, match=r"ElastiCache valkey 7\.1 is not offered"):
        preflight.check_engine_versions(run.ctx)
    _with(run, "database", engine_version="11.4.3")
    with pytest.raises(InputError, match=r"RDS mariadb 11\.4\.3 is not offered"):
        preflight.check_engine_versions(run.ctx)


def test_the_parameter_group_follows_the_resolved_version_not_the_major_minor(run: Run) -> None:
    _with(run, "database", engine="mysql", engine_version="8.0")  # resolves to 8.0.41: redo log capacity
    db_parameters.converge(run.ctx)
    written = [
        item["ParameterName"]
        for call in run.calls.calls
        if call.operation == "ModifyDBParameterGroup"
        for item in call.params["Parameters"]
    ]
    assert "innodb_change_buffering" in written
    assert "innodb_log_file_size" not in written  # MySQL 8.0.30+ sizes redo logs with innodb_redo_log_capacity
