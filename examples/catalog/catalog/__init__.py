"""catalog: an example project built on oncetask's public API.

Three job types, each in its own module: `image.thumbnails` (an image in Cloud Storage -> WebP thumbnails and a
manifest), `image.gallery` (many images -> an `image.thumbnails` child job each -> one contact sheet) and
`sheet.import` (a product CSV/XLSX -> validated rows upserted into Firestore, bad rows reported). `app` holds them;
`main.py` serves it.
"""

import oncetask

from . import gallery, products, thumbnails

app = oncetask.App("catalog").include(thumbnails.app, gallery.app, products.app)

__all__ = ["app"]
