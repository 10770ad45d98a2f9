"""The app `oncetask demo` and `oncetask dev` run when given none: the catalog example's job types
(examples/catalog: `image.thumbnails`, `sheet.import`) and the test job types (`noop`, `test.pipeline`)."""

from __future__ import annotations

import oncetask

from . import testjobs

try:
    import catalog
except ModuleNotFoundError as exc:  # pragma: no cover - depends on what is installed
    if exc.name != "catalog":
        raise
    raise ModuleNotFoundError(
        "the demo runs the catalog example's job types: install it with `pip install ./examples/catalog` "
        "(from the oncetask repository), or run your own app with `oncetask dev --app module:attr`",
        name="catalog") from None

app = oncetask.App("demo").include(catalog.app, testjobs.app)
