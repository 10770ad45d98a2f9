"""schemathesis against the API's own OpenAPI document: generated requests, valid and invalid, to every operation
of the real `api` entry point (functions-framework's Flask app, in process). Each answer must be a documented
status with the documented body and content type, never a 5xx.

The document is the one `/openapi.json` serves for the demo app (checked below). It is built with
`openapi_document()` rather than fetched at import, since fetching needs a running stack while tests are collected.
Bounded (25 derandomised examples per operation and mode) so the file runs in well under a minute.
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import positive_data_acceptance

from oncetask.openapi import openapi_document
from oncetask_dev.demoapp import app as demo

from .conftest import Stack

DOCUMENT = openapi_document(demo.job_types())
schema = schemathesis.openapi.from_dict(DOCUMENT)
schema.config.generation.update(modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE], deterministic=True,
                                max_examples=25)


@pytest.fixture
def paused(make_stack: Any) -> Stack:
    return make_stack(paused=True)


def test_the_tested_document_is_the_one_the_api_serves(paused: Stack) -> None:
    assert paused.api_client.get("/openapi.json").get_json() == DOCUMENT


@schema.parametrize()
@settings(max_examples=25, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.filter_too_much, HealthCheck.data_too_large])
def test_every_operation_answers_as_documented_and_never_5xx(case: Any, paused: Stack, api_app: Any) -> None:
    # positive_data_acceptance is left out: a gs:// source must also name a valid bucket and a short enough object,
    # rules richer than its JSON Schema, so a schema-valid string may rightly get a 422 (which names the field).
    case.call_and_validate(app=api_app, excluded_checks=[positive_data_acceptance])
