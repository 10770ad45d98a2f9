"""The three Cloud Functions entry points. Thin: each hands the Flask request to the core and returns its answer.

- api:                 the public HTTP API (POST/GET /jobs, retry, cancel, healthz, openapi.json)
- process_task:        the Cloud Tasks target (one delivery of one job's task)
- cleanup_stale_locks: the Cloud Scheduler target (every 15 minutes)
"""

from __future__ import annotations

import flask
import functions_framework

from oncetask import api as public_api
from oncetask import logs, taskhandler
from oncetask.services import get_services

logs.configure()


@functions_framework.http
def api(request: flask.Request) -> flask.Response:
    return public_api.handle(get_services(), request)


@functions_framework.http
def process_task(request: flask.Request) -> flask.Response:
    return taskhandler.process_task(get_services(), request)


@functions_framework.http
def cleanup_stale_locks(request: flask.Request) -> flask.Response:
    return taskhandler.cleanup_stale_locks(get_services(), request)
