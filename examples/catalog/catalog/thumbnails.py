"""`image.thumbnails`: an image in Cloud Storage -> `probe` -> `resize` (WebP per width) -> `manifest` (JSON).

Artifacts are named by the requested width (`w128.webp`, `manifest.json`, under the stage's run prefix). The source
is read again by `resize`; if it changed since `probe` the job fails rather than producing thumbnails of a file the
probe never saw. Written with oncetask's public API only.
"""

from __future__ import annotations

import hashlib
import json

from pydantic import BaseModel, ConfigDict, Field, field_validator

import oncetask
from oncetask import Context, PermanentError

from .sources import GsUri, read_source

# `images` (Pillow) is imported by the stages that use it: the API and cleanup functions, which load this module
# for the payload model, never import Pillow, and start faster for it.

MAX_SOURCE_BYTES = 25 * 1024 * 1024
MAX_WIDTH = 4096
MAX_WIDTHS = 8


class ThumbnailsPayload(BaseModel):
    model_config = ConfigDict(extra="forbid")

    source: GsUri = Field(description="The image: gs://bucket/object (PNG, JPEG, GIF, WebP or BMP).")
    widths: list[int] = Field(
        default=[64, 128, 256], min_length=1, max_length=64,
        description=f"Thumbnail widths in pixels, 1..{MAX_WIDTH}; duplicates are dropped, at most {MAX_WIDTHS} remain.")
    quality: int = Field(80, ge=1, le=100, description="WebP quality.")

    @field_validator("widths")
    @classmethod
    def _bounded_unique_widths(cls, widths: list[int]) -> list[int]:
        bad = [w for w in widths if not 1 <= w <= MAX_WIDTH]
        if bad:
            raise ValueError(f"widths must be between 1 and {MAX_WIDTH}; got {bad}")
        unique = sorted(set(widths))
        if len(unique) > MAX_WIDTHS:
            raise ValueError(f"at most {MAX_WIDTHS} distinct widths; got {len(unique)}")
        return unique


app = oncetask.App("catalog.thumbnails")
thumbnails = app.job("image.thumbnails", payload=ThumbnailsPayload, stage_timeout=300,
                     description="An image in Cloud Storage -> WebP thumbnails per width and a JSON manifest.")


@thumbnails.stage
def probe(ctx: Context[ThumbnailsPayload]) -> dict:
    payload = ctx.payload
    data = read_source(ctx, payload.source, MAX_SOURCE_BYTES)
    from . import images  # noqa: PLC0415 - see the module's imports

    info = images.probe(data)
    return {"source": payload.source, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest(),
            **info.to_dict()}


@thumbnails.stage
def resize(ctx: Context[ThumbnailsPayload]) -> dict:
    payload = ctx.payload
    data = read_source(ctx, payload.source, MAX_SOURCE_BYTES)
    probed = ctx.outputs["probe"]
    if hashlib.sha256(data).hexdigest() != probed["sha256"]:
        raise PermanentError("SOURCE_CHANGED", f"{payload.source} changed after it was probed; submit a new job")
    ctx.check()
    from . import images  # noqa: PLC0415 - see the module's imports

    thumbs = images.thumbnails(data, payload.widths, quality=payload.quality)
    written = []
    for thumb in thumbs:
        uri = ctx.artifacts.write(f"w{thumb.requested_width}.webp", thumb.data, "image/webp")  # checks the lease
        written.append({"requested_width": thumb.requested_width, "width": thumb.width, "height": thumb.height,
                        "bytes": len(thumb.data), "uri": uri})
    return {"thumbnails": written}


@thumbnails.stage
def manifest(ctx: Context[ThumbnailsPayload]) -> dict:
    payload = ctx.payload
    probed = ctx.outputs["probe"]
    thumbs = ctx.outputs["resize"]["thumbnails"]
    document = {
        "job_id": ctx.job_id,
        "source": {key: probed[key] for key in ("source", "bytes", "sha256", "format", "width", "height")},
        "thumbnails": [{**thumb, "content_type": "image/webp"} for thumb in thumbs],
        "quality": payload.quality,
    }
    body = json.dumps(document, indent=2, sort_keys=True).encode()
    return {"manifest": ctx.artifacts.write("manifest.json", body, "application/json"), "count": len(thumbs)}
