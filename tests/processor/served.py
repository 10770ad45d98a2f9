"""The entry points the processor tests serve (with functions-framework, as production does): those of whichever
app the running test installed with `use(app)`; by default the demo app (catalog + test job types), configured from
the environment, as a deployment's main.py would be."""

from __future__ import annotations

from collections.abc import Callable

import flask

import oncetask
from oncetask_dev.demoapp import app as demo

_current: oncetask.App = oncetask.App("tests").include(demo)
_points: dict[int, oncetask.EntryPoints] = {}


def use(app: oncetask.App) -> None:
    global _current
    _current = app


def _served(name: str) -> Callable[[flask.Request], flask.Response]:
    def serve(request: flask.Request) -> flask.Response:
        app = _current
        if id(app) not in _points:
            _points[id(app)] = app.entry_points()
        return getattr(_points[id(app)], name)(request)

    serve.__name__ = name
    return serve


api, process_task, cleanup_stale_locks = (_served(n) for n in ("api", "process_task", "cleanup_stale_locks"))
