"""The apps the benchmarks serve (as `bench.apps:NAME` from the repository root): the test job types, with lanes
and job types shaped for what each benchmark measures."""

from __future__ import annotations

import oncetask
from oncetask import Lane
from oncetask_dev import testjobs
from oncetask_dev.testjobs import NoopPayload

# end_to_end.py: the handlers are measured, not a queue's cap, so the default lane's cap is lifted.
lifted = oncetask.App("bench-lifted", lanes=(Lane("interactive", rate=500, concurrency=100),)).include(testjobs.app)

# scheduling.py, lane isolation: production's two default lanes (interactive 50/s, batch 10/s).
lanes = oncetask.App("bench-lanes").include(testjobs.app)

# scheduling.py, shard scaling: one lane of one queue beside the same lane spread over four, each queue at 5/s
# (well under what this machine's handlers complete, so the queues are measured).
shards = oncetask.App("bench-shards", lanes=(Lane("one", rate=5, concurrency=100),
                                             Lane("four", rate=5, concurrency=100, shards=4))).include(testjobs.app)

# composition.py: the same three no-op stages in one delivery, and in one delivery each.
composition = oncetask.App("bench-composition").include(testjobs.app)
for _delivery in ("single", "per_stage"):
    _definition = composition.job(f"bench.three.{_delivery}", payload=NoopPayload, delivery=_delivery)
    for _name in ("first", "second", "third"):
        _definition.stage(lambda ctx: {"note": ctx.payload.note}, name=_name)
