"""The catalog served as it is deployed, on a local stack (`oncetask_stack`): jobs submitted over HTTP, dispatched
by the Cloud Tasks emulator with OIDC tokens to the task handler under gunicorn. Slower than `oncetask_runner`
(the stack takes a few seconds to start, once per session), so only the path a client takes is tested here."""

from __future__ import annotations

import io

from PIL import Image

from oncetask_dev.testing import StackHandle

from builders import GOOD_ROWS, HEADER, csv_bytes, image_bytes


def test_jobs_submitted_over_http_complete_once_whatever_the_duplicates(oncetask_stack: StackHandle) -> None:
    image = oncetask_stack.upload("e2e/cat.png", image_bytes(200, 100))
    sheet = oncetask_stack.upload("e2e/stock.csv", csv_bytes([HEADER, *GOOD_ROWS]))
    thumbs = oncetask_stack.submit("image.thumbnails", {"source": image, "widths": [50]}, key="e2e-cat")
    again = oncetask_stack.submit("image.thumbnails", {"source": image, "widths": [50]}, key="e2e-cat")
    imported = oncetask_stack.submit("sheet.import", {"source": sheet, "collection": "e2e_products"}, key="e2e")
    assert again == thumbs

    done = oncetask_stack.wait(thumbs)
    assert (done["state"], done["attempts"], done["completed_stages"]) == (
        "completed", 1, ["manifest", "probe", "resize"])
    (thumb,) = done["stage_outputs"]["resize"]["thumbnails"]
    with Image.open(io.BytesIO(oncetask_stack.read(thumb["uri"]))) as decoded:
        assert (decoded.format, decoded.size) == ("WEBP", (50, 25))
    report = oncetask_stack.wait(imported)["stage_outputs"]["report"]
    assert (report["imported"], report["invalid_rows"]) == (3, 0)
