"""What the API shows of jobs for an operator's page: a job's runs (each stage's time, attempt and artifacts, the
worker, when it started), its children stage by stage, and listing filtered by job type."""

from __future__ import annotations

from fixtures.tasks import wait_until
from oncetask.children import child_ids
from oncetask.states import JobState

from .conftest import Stack


def test_a_jobs_view_shows_each_stage_run_its_start_and_no_worker_once_done(stack: Stack) -> None:
    job_id = stack.submit_ok("test.pipeline", {}, key="runs")
    stack.wait_state(job_id, JobState.COMPLETED)
    view = stack.api_client.get(f"/jobs/{job_id}").get_json()
    assert set(view["stage_runs"]) == {"prepare", "work", "finish"}
    work = view["stage_runs"]["work"]
    assert work["attempt"] == 1 and work["at"] and len(work["artifacts"]) == 1
    assert work["artifacts"][0].startswith(f"gs://{stack.settings.bucket}/jobs/{job_id}/work/")
    assert view["started_at"] and view["started_at"] <= view["completed_at"]
    assert view["worker"] is None and view["progress"] is None and view["callback"] is None


def test_a_running_jobs_view_names_its_worker(stack: Stack) -> None:
    job_id = stack.submit_ok("test.pipeline", {"sleep_ms": 5000}, key="worker")
    view = wait_until(lambda: (v := stack.api_client.get(f"/jobs/{job_id}").get_json())["state"] == "running" and v,
                      message="the job to run")
    assert view["worker"] == stack.job(job_id).lease_owner and view["worker"]
    assert stack.api_client.post(f"/jobs/{job_id}/cancel").status_code == 202
    stack.wait_state(job_id, JobState.CANCELLED)


def test_children_are_listed_stage_by_stage_with_how_the_ended_ones_ended(stack: Stack) -> None:
    parent = stack.submit_ok("test.fanout", {"parts": 3, "sleep_ms": 3000}, key="tree")
    stack.wait_state(parent, JobState.WAITING)
    early = stack.api_client.get(f"/jobs/{parent}/children").get_json()
    (split,) = early["stages"]
    assert (split["stage"], split["expected"], split["policy"]) == ("split", 3, "fail")
    assert [c["job_id"] for c in split["children"]] == child_ids(stack.job(parent))
    assert [c["index"] for c in split["children"]] == [0, 1, 2]
    assert split["ended"] < 3 and any(c["state"] is None for c in split["children"])  # 3 s each: not all ended
    stack.wait_state(parent, JobState.COMPLETED, timeout=30)
    (split,) = stack.api_client.get(f"/jobs/{parent}/children").get_json()["stages"]
    assert split["ended"] == 3 and {c["state"] for c in split["children"]} == {"completed"}
    assert {c["job_type"] for c in split["children"]} == {"test.fanout.part"}
    first = stack.api_client.get(f"/jobs/{parent}/children?limit=1").get_json()["stages"][0]
    assert (first["expected"], len(first["children"])) == (3, 1)
    assert stack.api_client.get(f"/jobs/{parent}/children?limit=0").status_code == 422
    assert stack.api_client.get(f"/jobs/{'0' * 32}/children").status_code == 404


def test_a_job_without_children_lists_no_stage(stack: Stack) -> None:
    job_id = stack.submit_ok("noop", {}, key="alone")
    assert stack.api_client.get(f"/jobs/{job_id}/children").get_json() == {"job_id": job_id, "stages": []}


def test_listing_filters_by_job_type_and_state(make_stack) -> None:
    stack = make_stack(paused=True)
    noops = [stack.submit_ok("noop", {}, key=f"n{n}") for n in range(2)]
    pipeline = stack.submit_ok("test.pipeline", {}, key="p")
    listed = stack.api_client.get("/jobs?job_type=noop").get_json()["jobs"]
    assert sorted(job["job_id"] for job in listed) == sorted(noops)
    both = stack.api_client.get("/jobs?job_type=test.pipeline&state=queued").get_json()["jobs"]
    assert [job["job_id"] for job in both] == [pipeline]
    assert stack.api_client.get("/jobs?job_type=test.pipeline&state=failed").get_json()["jobs"] == []
    refused = stack.api_client.get("/jobs?job_type=nope")
    assert refused.status_code == 422 and refused.get_json()["error"]["field"] == "job_type"
