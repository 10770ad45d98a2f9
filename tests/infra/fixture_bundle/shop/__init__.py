"""Stands for the user's package of a real bundle: an app with more than the defaults, so the Terraform tests see
every kind of queue (a sharded lane, a job type's own queues in every lane, the callbacks queue) and a schedule.
Its oncetask.json is this app's manifest, bundled with ONCETASK_QUEUE_PREFIX=shop and
ONCETASK_CALLBACK_QUEUE=shop-callbacks (tests/infra/manifests.py writes it again; a test checks it is current)."""

from pydantic import BaseModel

import oncetask
from oncetask import Context

app = oncetask.App("shop", lanes=(
    oncetask.Lane("interactive", rate=20.0, concurrency=10, shards=2,
                  retry=oncetask.Retry(max_attempts=5, min_backoff=10.0, max_backoff=300.0, max_doublings=4,
                                       max_retry_duration=7200.0)),
    oncetask.Lane("bulk", rate=5.0, concurrency=4),
))


class Invoice(BaseModel):
    order_id: str


class Export(BaseModel):
    day: str = ""


invoice = app.job("invoice.render", payload=Invoice, stage_timeout=120,
                  description="An order -> a PDF invoice in Cloud Storage.")


@invoice.stage
def load(ctx: Context[Invoice]) -> dict:
    return {"order_id": ctx.payload.order_id}


@invoice.stage
def render(ctx: Context[Invoice]) -> dict:
    return {}


# A rate of its own: queues of its own in every lane (Cloud Tasks sets rates per queue).
export = app.job("report.export", payload=Export, lane="bulk", rate=1.0, concurrency=2,
                 description="Yesterday's orders -> a CSV export.")


@export.stage
def write(ctx: Context[Export]) -> dict:
    return {}


app.schedule("nightly-export", cron="0 3 * * *", job_type=export, time_zone="Europe/Berlin")
