"""catalog: an example project built on oncetask's public API.

Two job types, each in its own module: `image.thumbnails` (an image in Cloud Storage -> WebP thumbnails and a
manifest) and `sheet.import` (a product CSV/XLSX -> validated rows upserted into Firestore, bad rows reported).
`app` holds both; `main.py` serves it.
"""

import oncetask

from . import products, thumbnails

app = oncetask.App("catalog").include(thumbnails.app, products.app)

__all__ = ["app"]
