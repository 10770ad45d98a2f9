"""The lazily cleaned heap behind Queue.stats' oldest_estimated_arrival_time, against a plain minimum (no server)."""

from __future__ import annotations

from google.cloud.tasks_v2.types import task as task_types
from hypothesis import given
from hypothesis import strategies as st

from oncetask_emulators.tasks.store import QueueRecord, TaskRecord

Task = task_types.Task.pb()

operations = st.lists(st.tuples(st.sampled_from(["add", "remove", "reschedule", "dispatch", "answer"]),
                                st.integers(0, 99), st.integers(0, 50)), max_size=400)


def record(index: int, when: int) -> TaskRecord:
    task = Task(name=f"projects/p/locations/l/queues/q/tasks/t{index}")
    task.schedule_time.FromNanoseconds(when)
    return TaskRecord(task, "projects/p/locations/l/queues/q", 0.0, True, index)


@given(operations)
def test_oldest_arrival_is_the_earliest_schedule_among_tasks_not_in_flight(ops):
    queue = QueueRecord(pb=None)
    for op, index, when in ops:
        current = queue.tasks.get(f"projects/p/locations/l/queues/q/tasks/t{index}")
        if op == "add" and current is None:
            queue.add(record(index, when))
        elif op == "remove" and current is not None and not current.in_flight:
            del queue.tasks[current.name]
        elif op == "reschedule" and current is not None and current.in_flight:  # failed: back in line, later
            current.in_flight = False
            current.schedule_ns = when
            queue.add(current)
            assert len(queue.arrivals) <= 2 * len(queue.tasks) + 65  # rebuilt before stale entries pile up
        elif op == "dispatch" and current is not None:
            current.in_flight = True
        elif op == "answer" and current is not None and current.in_flight:
            del queue.tasks[current.name]  # succeeded
        waiting = [r.schedule_ns for r in queue.tasks.values() if not r.in_flight]
        assert queue.oldest_arrival() == (min(waiting) if waiting else None)
