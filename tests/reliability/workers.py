"""Finding the task handler's gunicorn worker that holds a job's lease, to crash or freeze exactly that one."""

from __future__ import annotations

import os
import signal
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from oncetask_dev.stack import LocalStack

from .invariants import wait_for


def children_of(pid: int) -> set[int]:
    """The live child processes of `pid` (gunicorn's workers when `pid` is its master), read from /proc."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # exited while we looked
        if int(fields[1]) == pid and fields[0] != "Z":
            found.add(int(stat.parent.name))
    return found


def owner_pid(lease_owner: str) -> int:
    """The pid inside a lease owner's id (`host-pid-random`, see `processor.worker_id`)."""
    return int(lease_owner.rsplit("-", 2)[1])


@dataclass(frozen=True)
class Holder:
    """A worker caught holding a job's lease in the middle of a stage."""

    job_id: str
    pid: int
    stage: str
    fencing: int


def find_holder(stack: LocalStack, jobs: dict[str, dict[str, Any]], exclude: Iterable[str] = ()) -> Holder | None:
    """A running job (not in `exclude`) whose lease is held by one of the task handler's workers, mid-stage."""
    workers = children_of(stack.pids()["task_handler"])
    for job_id, job in sorted(jobs.items()):
        owner = job.get("lease_owner")
        if (job_id in set(exclude) or job.get("state") != "running" or not owner or not job.get("current_stage")):
            continue
        pid = owner_pid(owner)
        if pid in workers:
            return Holder(job_id, pid, job["current_stage"], int(job["fencing"]))
    return None


def signal_worker(stack: LocalStack, pid: int, signum: int) -> None:
    """Signal one handler worker; refuse any pid that is not one (never hit a process we did not start)."""
    if pid not in children_of(stack.pids()["task_handler"]):
        raise AssertionError(f"pid {pid} is not a worker of the task handler")
    os.kill(pid, signum)


def wait_for_holder(stack: LocalStack, read_jobs: Callable[[], dict[str, dict[str, Any]]],
                    timeout: float = 20) -> Holder:
    """Poll until one of the jobs `read_jobs()` returns is mid-stage under a handler worker's lease."""
    found: list[Holder] = []

    def held() -> bool:
        holder = find_holder(stack, read_jobs())
        found[:] = [holder] if holder else []
        return bool(found)

    wait_for(held, timeout, "a worker to be mid-stage on one of the jobs")
    return found[0]


def kill_holders(stack: LocalStack, read_jobs: Callable[[], dict[str, dict[str, Any]]],
                 read_job: Callable[[str], dict[str, Any]], kills: int, per_job: int, timeout: float = 45,
                 after_kill: Callable[[Holder], None] = lambda holder: None) -> list[Holder]:
    """SIGKILL handler workers caught mid-stage on the jobs `read_jobs()` returns, up to `kills` of them and at most
    `per_job` per job, within `timeout` seconds. A kill counts only if the worker died holding the job's lease
    mid-stage (the job did not finish meanwhile); `after_kill` runs after each signal."""
    done: list[Holder] = []
    deadline = time.monotonic() + timeout
    while len(done) < kills and time.monotonic() < deadline:
        spent = [job_id for job_id, n in Counter(k.job_id for k in done).items() if n >= per_job]
        holder = find_holder(stack, read_jobs(), exclude=spent)
        if holder is None:
            time.sleep(0.02)
            continue
        signal_worker(stack, holder.pid, signal.SIGKILL)
        after = read_job(holder.job_id)
        if after.get("state") == "running" and owner_pid(after.get("lease_owner") or "x-0-x") == holder.pid:
            done.append(holder)
        after_kill(holder)
    return done
