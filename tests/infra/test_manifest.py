"""The manifest submodule, evaluated by Terraform on real manifests (the reference app's, the fixture bundle's) and
on broken ones: the queues, prefix, job types and schedules the module creates are the ones the code routes to,
and a manifest the runtime could not run with stops the plan with a message that names the problem."""

from __future__ import annotations

import copy
import hashlib
import json
from typing import Any

import pytest

from oncetask.settings import Settings

from .manifests import FIXTURE_MANIFEST, fixture_manifest_expected, reference_manifest, shop_app
from .tfeval import ManifestModule, PlanFailed, manifest_module  # noqa: F401 - the fixture

QUEUE_FIELDS = ("max_attempts", "min_backoff_seconds", "max_backoff_seconds", "max_doublings",
                "max_retry_duration_seconds", "max_dispatches_per_second", "max_concurrent_dispatches")


@pytest.fixture(scope="module")
def reference(manifest_module: ManifestModule) -> dict[str, Any]:
    return manifest_module.evaluate(reference_manifest())


@pytest.fixture(scope="module")
def fixture(manifest_module: ManifestModule) -> dict[str, Any]:
    return manifest_module.evaluate(FIXTURE_MANIFEST)


def job_ids(count: int) -> list[str]:
    """Job IDs as the code makes them (sha256 hex), spread over every shard."""
    return [hashlib.sha256(str(i).encode()).hexdigest() for i in range(count)]


# The reference app (what cloudbuild.yaml deploys) -----------------------------------------------------------------

def test_every_job_queue_of_the_reference_app_is_created_with_its_settings(reference: dict[str, Any]) -> None:
    manifest = reference_manifest()
    jobs = [q for q in manifest["queues"] if q["purpose"] == "jobs"]
    assert set(reference["job_queues"]) == {q["name"] for q in jobs}
    for queue in jobs:
        created = reference["job_queues"][queue["name"]]
        assert {f: created[f] for f in QUEUE_FIELDS} == {f: queue[f] for f in QUEUE_FIELDS}, queue["name"]


def test_the_reference_apps_callbacks_queue_is_the_one_its_code_sends_callbacks_on(reference: dict[str, Any]) -> None:
    [callbacks] = [q for q in reference_manifest()["queues"] if q["purpose"] == "callbacks"]
    assert reference["callback_queue"]["name"] == callbacks["name"] == Settings().callback_queue
    assert {f: reference["callback_queue"][f] for f in QUEUE_FIELDS} == {f: callbacks[f] for f in QUEUE_FIELDS}


def test_the_prefix_read_back_is_the_one_the_reference_app_named_its_queues_with(reference: dict[str, Any]) -> None:
    assert reference["queue_prefix"] == Settings().queue_prefix


def test_every_queue_the_reference_app_routes_a_job_to_exists(reference: dict[str, Any]) -> None:
    """The functions get the prefix back (ONCETASK_QUEUE_PREFIX): with it, the code's router sends every job of
    every type, in every lane, to a queue the module created."""
    from catalog import app  # noqa: PLC0415

    import oncetask  # noqa: PLC0415

    fresh = oncetask.App(app.name, settings=Settings(queue_prefix=reference["queue_prefix"]),
                         lanes=tuple(app.lanes.values()), default_lane=app.default_lane).include(app)
    router = fresh.router()
    routed = {router.queue(job_id, job_type, lane) for job_type in fresh.job_types() for lane in fresh.lanes
              for job_id in job_ids(50)}
    assert routed <= set(reference["job_queues"])
    assert {spec.name for spec in router.plan()} == set(reference["job_queues"])


def test_the_task_handlers_instances_cover_every_job_queues_concurrency(reference: dict[str, Any]) -> None:
    jobs = [q for q in reference_manifest()["queues"] if q["purpose"] == "jobs"]
    assert reference["job_concurrency"] == sum(q["max_concurrent_dispatches"] for q in jobs)


# The fixture bundle: a sharded lane, a job type's own queues, a schedule ----------------------------------------

def test_the_fixture_manifest_is_the_shop_apps_manifest() -> None:
    """The hand-made bundle's oncetask.json is App.manifest() of its app: it cannot drift from the real format.
    After a change of either, write it again: `.venv/bin/python -m tests.infra.manifests`."""
    assert json.loads(FIXTURE_MANIFEST.read_text()) == fixture_manifest_expected()


def test_every_lane_shard_and_job_types_own_queue_of_the_fixture_is_created(fixture: dict[str, Any]) -> None:
    manifest = json.loads(FIXTURE_MANIFEST.read_text())
    assert fixture["queue_prefix"] == "shop"
    assert set(fixture["job_queues"]) == {
        "shop-interactive-0", "shop-interactive-1", "shop-bulk",
        "shop-interactive-report-export-0", "shop-interactive-report-export-1", "shop-bulk-report-export"}
    for queue in manifest["queues"]:
        created = fixture["job_queues"].get(queue["name"]) or fixture["callback_queue"]
        assert created["name"] == queue["name"]
        assert {f: created[f] for f in QUEUE_FIELDS} == {f: queue[f] for f in QUEUE_FIELDS}, queue["name"]
    # The job type with its own rate: 1 dispatch/s, 2 at once, in every lane; the sharded lane: 20/s per shard.
    assert fixture["job_queues"]["shop-bulk-report-export"]["max_dispatches_per_second"] == 1
    assert fixture["job_queues"]["shop-interactive-1"]["max_dispatches_per_second"] == 20
    assert fixture["job_concurrency"] == 10 + 10 + 4 + 2 + 2 + 2


def test_every_queue_the_fixture_app_routes_a_job_to_exists(fixture: dict[str, Any]) -> None:
    import oncetask  # noqa: PLC0415

    app = shop_app()
    fresh = oncetask.App(app.name, settings=Settings(queue_prefix=fixture["queue_prefix"]),
                         lanes=tuple(app.lanes.values()), default_lane=app.default_lane).include(app)
    router = fresh.router()
    routed = {router.queue(job_id, job_type, lane) for job_type in fresh.job_types() for lane in fresh.lanes
              for job_id in job_ids(50)}
    assert routed == set(fixture["job_queues"])  # 50 IDs reach both shards of every sharded queue


def test_the_fixture_apps_schedule_is_read_with_its_cron_and_time_zone(fixture: dict[str, Any]) -> None:
    assert fixture["schedules"] == {"nightly-export": {"name": "nightly-export", "cron": "0 3 * * *",
                                                       "time_zone": "Europe/Berlin", "job_type": "report.export",
                                                       "lane": None}}


# Manifests the runtime could not run with -----------------------------------------------------------------------

def broken(change: Any) -> dict[str, Any]:
    manifest = copy.deepcopy(json.loads(FIXTURE_MANIFEST.read_text()))
    change(manifest)
    return manifest


def queue_named(manifest: dict[str, Any], name: str) -> dict[str, Any]:
    [queue] = [q for q in manifest["queues"] if q["name"] == name]
    return queue


def test_a_version_1_manifest_stops_the_plan_asking_for_a_new_bundle(manifest_module: ManifestModule) -> None:
    old = {"manifest_version": 1, "app": "shop", "job_types": [
        {"name": "invoice.render", "stages": ["load"], "stage_timeout_seconds": 120, "max_attempts": 5,
         "queue": "shop-jobs"}],
        "queues": [{"name": "shop-jobs", "max_attempts": 5, "min_backoff_seconds": 10.0, "max_backoff_seconds": 300.0,
                    "max_doublings": 4, "max_retry_duration_seconds": 7200.0, "max_dispatches_per_second": 20.0,
                    "max_concurrent_dispatches": 10}]}
    with pytest.raises(PlanFailed) as failure:
        manifest_module.evaluate(old)
    message = str(failure.value)
    assert "is a version 1 manifest; this module reads version 2" in message
    assert message.count("Error:") == 1, message  # that alone: nothing else of the old format is reported


@pytest.mark.parametrize(("change", "message"), [
    (lambda m: queue_named(m, "shop-bulk-report-export").update(name="shop-bulk-export"),
     "shop-bulk-export (expected shop-bulk-report-export)"),
    (lambda m: queue_named(m, "shop-interactive-0").update(max_dispatches_per_second=501.0),
     "max_dispatches_per_second is not in (0, 500] or max_concurrent_dispatches not in [1, 5000]: shop-interactive-0"),
    (lambda m: queue_named(m, "shop-bulk").update(max_concurrent_dispatches=0),
     "max_concurrent_dispatches not in [1, 5000]: shop-bulk"),
    (lambda m: queue_named(m, "shop-callbacks").update(name="oncetask-callbacks"),
     "The callbacks queue oncetask-callbacks does not start with the queue prefix \"shop-\": bundle with "
     "ONCETASK_CALLBACK_QUEUE=shop-callbacks"),
    (lambda m: m["queues"].append({**queue_named(m, "shop-callbacks"), "name": "shop-callbacks-2"}),
     "must name exactly one queue with purpose \"callbacks\"; it names 2"),
    (lambda m: m["job_types"][0]["queues"].append("shop-gone"),
     "Job types whose queues the manifest does not define: invoice.render"),
    (lambda m: m["schedules"][0].update(job_type="report.gone"),
     "Schedules naming a job type or lane the manifest does not define: nightly-export"),
    (lambda m: m["schedules"][0].update(lane="overnight"),
     "Schedules naming a job type or lane the manifest does not define: nightly-export"),
    (lambda m: m["lanes"].pop(),
     "Job queues of a lane the manifest does not list: shop-bulk"),
    (lambda m: queue_named(m, "shop-interactive-1").update(name="shop interactive 1"),
     "Not valid Cloud Tasks queue IDs"),
], ids=["misnamed-queue", "rate-over-500", "no-concurrency", "callbacks-outside-prefix", "two-callbacks-queues",
        "job-type-queue-missing", "schedule-job-type-missing", "schedule-lane-missing", "lane-missing",
        "invalid-queue-id"])
def test_a_manifest_the_runtime_could_not_run_with_stops_the_plan(manifest_module: ManifestModule, change: Any,
                                                                  message: str) -> None:
    with pytest.raises(PlanFailed) as failure:
        manifest_module.evaluate(broken(change))
    assert message in str(failure.value)


def test_a_stage_timeout_beyond_the_dispatch_deadline_stops_the_plan(manifest_module: ManifestModule) -> None:
    # invoice.render declares 120 s; report.export declares none, so its stages get nine tenths of the deadline
    # the deployment has, whatever it is.
    with pytest.raises(PlanFailed) as failure:
        manifest_module.evaluate(FIXTURE_MANIFEST, dispatch_deadline_seconds=100)
    assert "exceeds dispatch_deadline_seconds (100): invoice.render (120 s)" in str(failure.value)
    assert "report.export" not in str(failure.value)
    assert manifest_module.evaluate(FIXTURE_MANIFEST, dispatch_deadline_seconds=120)["queue_prefix"] == "shop"
