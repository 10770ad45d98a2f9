"""`image.gallery`: many images -> one `image.thumbnails` child job per image -> `stitch`: one contact sheet.

The orchestrator the design notes describe (split the work into segments, process them in parallel, stitch once
every segment is done), written with oncetask's public API: `split` starts the children (a rerun of it after a
crash starts no second copy), the job then waits without holding a worker, and `stitch` runs once every child has
ended, with their outputs. An image that could not be thumbnailed leaves an empty tile and is listed, rather than
failing the whole gallery (`on_failure="collect"`).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

import oncetask
from oncetask import Context

from .sources import GsUri
from .thumbnails import ThumbnailsPayload, thumbnails

MAX_IMAGES = 500
MAX_TILE_BYTES = 2 * 1024 * 1024  # a thumbnail of at most 512 px is far smaller; more means it is not ours


class GalleryPayload(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sources: list[GsUri] = Field(min_length=1, max_length=MAX_IMAGES,
                                 description=f"The images, gs://bucket/object each, 1..{MAX_IMAGES}; tiles in order.")
    tile: int = Field(128, ge=16, le=512, description="Width and height of each tile, in pixels.")
    columns: int = Field(8, ge=1, le=32, description="Tiles per row.")
    quality: int = Field(80, ge=1, le=100, description="WebP quality of the thumbnails and of the sheet.")


app = oncetask.App("catalog.gallery")
gallery = app.job("image.gallery", payload=GalleryPayload, stage_timeout=300,
                  description="Images in Cloud Storage -> a thumbnail job for each -> one WebP contact sheet.")


@gallery.stage
def split(ctx: Context[GalleryPayload]) -> dict:
    payload = ctx.payload
    started = ctx.start_children(thumbnails, [
        ThumbnailsPayload(source=source, widths=[payload.tile], quality=payload.quality)
        for source in payload.sources], on_failure="collect")
    return {"children": len(started)}


@gallery.stage
def stitch(ctx: Context[GalleryPayload]) -> dict:
    payload = ctx.payload
    tiles: list[bytes | None] = []
    missing = []
    for child in ctx.children():  # by index: the order of `sources`
        ctx.check()
        if child.state == "completed":
            thumb = child.outputs["resize"]["thumbnails"][0]
            tiles.append(ctx.artifacts.read(thumb["uri"], max_bytes=MAX_TILE_BYTES))
        else:
            tiles.append(None)
            missing.append({"index": child.index, "source": payload.sources[child.index], "state": child.state,
                            "error": (child.error or {}).get("code")})
    from . import images  # noqa: PLC0415 - Pillow only where a stage needs it (see thumbnails.py)

    sheet = images.contact_sheet(tiles, tile=payload.tile, columns=payload.columns, quality=payload.quality)
    return {"gallery": ctx.artifacts.write("gallery.webp", sheet, "image/webp"),
            "images": len(tiles) - len(missing), "missing": missing}
