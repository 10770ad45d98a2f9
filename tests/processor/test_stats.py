"""GET /stats and /stats/timeline against the emulators: exact figures for a known mix of jobs, made of count
aggregations and queue stats (no scan), what one call costs, the per-process cache, and who may see them."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from fixtures.tasks import wait_until
from oncetask.job import JOBS
from oncetask.states import JobState

from .conftest import Stack, mint_token


def _mix(make_stack) -> tuple[Stack, dict[str, list[str]]]:
    """A stack holding: 2 completed and 1 failed test.pipeline jobs; 2 scheduled, 1 cancelled, 3 queued and one
    "running" noop jobs, the last one's worker gone (its lease lapsed an hour ago)."""
    stack = make_stack(stats_cache_seconds=300.0)
    made: dict[str, list[str]] = {}
    made["completed"] = [stack.submit_ok("test.pipeline", {}, key=f"ok-{n}") for n in range(2)]
    made["failed"] = [stack.submit_ok("test.pipeline", {"fail_times": 1, "fail_kind": "permanent"}, key="bad")]
    for job_id in made["completed"]:
        stack.wait_state(job_id, JobState.COMPLETED)
    stack.wait_state(made["failed"][0], JobState.FAILED)
    made["scheduled"] = [stack.submit_ok("noop", {}, key=f"later-{n}", delay_seconds=3600) for n in range(3)]
    made["cancelled"] = [made["scheduled"].pop()]
    assert stack.api_client.post(f"/jobs/{made['cancelled'][0]}/cancel").get_json()["status"] == "cancelled"
    stack.pause()
    made["queued"] = [stack.submit_ok("noop", {}, key=f"waiting-{n}") for n in range(4)]
    made["running"] = [made["queued"].pop()]
    # A worker that took this job and died an hour ago: what the cleanup would find (set by hand, as its take).
    stack.services.store.ref(made["running"][0]).update({
        "state": "running", "lease_owner": "gone-worker", "fencing": 1, "attempts": 1,
        "lease_renewed_at": datetime.now(timezone.utc) - timedelta(hours=1), "lease_ttl": 1.0})
    return stack, made


def test_stats_count_a_known_mix_exactly_with_counts_not_a_scan(make_stack) -> None:
    stack, made = _mix(make_stack)
    job_types = sorted(stack.app.job_types())
    before = stack.firestore_calls()
    answer = stack.api_client.get("/stats")
    assert answer.status_code == 200 and "max-age" in answer.headers["Cache-Control"]
    stats = answer.get_json()
    calls = {rpc: n - before.get(rpc, 0) for rpc, n in stack.firestore_calls().items() if n != before.get(rpc, 0)}

    assert stats["states"] == {"queued": 3, "scheduled": 2, "running": 1, "waiting": 0, "retrying": 0,
                               "completed": 2, "failed": 1, "cancelled": 1}
    assert stats["job_types"]["test.pipeline"] == {"total": 3, "active": 0, "failed": 1}
    assert stats["job_types"]["noop"] == {"total": 7, "active": 6, "failed": 0}
    assert set(stats["job_types"]) == set(job_types)
    assert stats["lapsed_leases"] == 1
    assert stats["dead_letters"] == {"hour": 1, "day": 1}
    sample = stats["durations"]
    assert (sample["size"], sample["limit"], sample["window_seconds"]) == (3, 100, 3600.0)
    pipeline = sample["by_job_type"]["test.pipeline"]
    assert (pipeline["completed"], pipeline["failed"]) == (2, 1)
    assert 0 <= pipeline["run_p50_seconds"] <= pipeline["run_p95_seconds"] <= pipeline["end_to_end_p95_seconds"]

    # The default lane's queue holds the queued (and the "running") jobs' tasks and the scheduled ones'; the
    # cancelled job's task was deleted. Paused: nothing in flight.
    default = next(q for q in stats["queues"] if q["purpose"] == "jobs" and q["lane"] == "interactive")
    assert (default["depth"], default["in_flight"], default["state"]) == (6, 0, "PAUSED")
    assert default["oldest_task_age_seconds"] >= 0 and default["error"] is None
    assert {q["name"] for q in stats["queues"]} == {*(q.rsplit("/", 1)[1] for q in stack.queues),
                                                    stack.settings.callback_queue}

    # Count aggregations and one bounded sample; what the answer says it cost is what the emulator served.
    counts = 8 + 3 * len(job_types) + 3
    assert calls == {"RunAggregationQuery": counts, "RunQuery": 1}
    assert stats["cost"] == {"firestore_queries": counts + 1, "firestore_reads": counts + 3,
                             "cloud_tasks_calls": len(stats["queues"])}


def test_stats_are_cached_per_process_and_say_how_old_they_are(make_stack) -> None:
    stack = make_stack(stats_cache_seconds=300.0)
    stack.submit_ok("noop", {}, key="one")
    first = stack.api_client.get("/stats").get_json()
    calls = stack.firestore_calls()
    second = stack.api_client.get("/stats").get_json()
    assert stack.firestore_calls() == calls  # answered from the cache: not one more call
    assert second["generated_at"] == first["generated_at"] and second["age_seconds"] >= first["age_seconds"] == 0


def test_the_timeline_counts_completions_and_failures_per_bucket(make_stack) -> None:
    stack, made = _mix(make_stack)
    timeline = stack.api_client.get("/stats/timeline?minutes=60&buckets=6").get_json()
    buckets = timeline["buckets"]
    assert len(buckets) == 6 and timeline["bucket_seconds"] == 600.0
    assert sum(b["completed"] for b in buckets) == 2 and sum(b["failed"] for b in buckets) == 1
    starts = [datetime.fromisoformat(b["start"]) for b in buckets]
    assert starts == sorted(starts) and all(b["end"] == n["start"] for b, n in zip(buckets, buckets[1:]))
    assert timeline["cost"]["firestore_queries"] == 12


@pytest.mark.parametrize("query, field", [("minutes=0", "minutes"), ("minutes=x", "minutes"),
                                          ("buckets=61", "buckets"), ("minutes=100000", "minutes")])
def test_the_timeline_refuses_bad_arguments_naming_them(stack: Stack, query: str, field: str) -> None:
    answer = stack.api_client.get(f"/stats/timeline?{query}")
    assert answer.status_code == 422 and answer.get_json()["error"]["field"] == field


def test_a_queue_that_cannot_be_read_is_reported_and_the_others_still_are(make_stack) -> None:
    stack = make_stack()
    stack.services.queue.client.delete_queue(name=stack.settings.callback_queue_path)  # gone (or never made)
    stats = stack.api_client.get("/stats").get_json()
    callbacks = next(q for q in stats["queues"] if q["purpose"] == "callbacks")
    assert callbacks["depth"] is None and "NotFound" in callbacks["error"]
    assert all(q["error"] is None for q in stats["queues"] if q["purpose"] == "jobs")


def test_stats_need_a_token_and_then_an_operator(make_stack, tasks_emulator, task_target) -> None:
    audience = "https://api.oncetask.test/"
    stack = make_stack(api_require_auth=True, api_audience=audience, operators=frozenset({"ops@example.com"}))
    for path in ("/jobs", "/stats", "/stats/timeline"):
        assert stack.api_client.get(path).status_code == 401
    alice = {"Authorization": mint_token(tasks_emulator, task_target, "alice@example.com", audience)}
    operator = {"Authorization": mint_token(tasks_emulator, task_target, "ops@example.com", audience)}
    assert stack.api_client.get("/jobs", headers=alice).status_code == 200
    for path in ("/stats", "/stats/timeline"):  # every owner's figures: not for alice
        assert stack.api_client.get(path, headers=alice).status_code == 403
        assert stack.api_client.get(path, headers=operator).status_code == 200


def test_stats_are_in_the_openapi_document(stack: Stack) -> None:
    document: dict[str, Any] = stack.api_client.get("/openapi.json").get_json()
    assert {"/stats", "/stats/timeline"} <= set(document["paths"])
    assert "Stats" in document["components"]["schemas"]


def test_durations_are_nearest_rank_percentiles_of_the_completed_jobs() -> None:
    from oncetask.stats import durations, percentile

    assert percentile([], 0.5) is None
    assert percentile([3.0, 1.0, 2.0], 0.5) == 2.0 and percentile(list(map(float, range(1, 101))), 0.95) == 95.0
    t0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
    sample = [{"job_type": "a", "state": "completed", "created_at": t0, "started_at": t0 + timedelta(seconds=1),
               "state_changed_at": t0 + timedelta(seconds=1 + n)} for n in (1, 2, 3, 4)]
    sample.append({"job_type": "a", "state": "failed", "created_at": t0, "state_changed_at": t0})
    figures = durations(sample)["a"]
    assert (figures["completed"], figures["failed"]) == (4, 1)
    assert (figures["run_p50_seconds"], figures["run_p95_seconds"]) == (2.0, 4.0)
    assert (figures["end_to_end_p50_seconds"], figures["end_to_end_p95_seconds"]) == (3.0, 5.0)


def test_a_stale_entry_is_computed_once_for_concurrent_callers() -> None:
    import threading

    from oncetask.stats import TtlCache

    now = [0.0]
    cache = TtlCache(5.0, clock=lambda: now[0])
    started, release = threading.Event(), threading.Event()

    def slow() -> int:
        started.set()
        release.wait(5)
        return 42

    results: list[Any] = []
    threads = [threading.Thread(target=lambda: results.append(cache.get("k", slow))) for _ in range(5)]
    for thread in threads:
        thread.start()
    started.wait(5)
    release.set()
    for thread in threads:
        thread.join(5)
    assert [value for value, _ in results] == [42] * 5 and cache.computations == 1
    now[0] = 6.0
    assert cache.get("k", lambda: 43) == (43, 0.0) and cache.computations == 2
