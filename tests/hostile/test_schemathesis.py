"""schemathesis against the API's own OpenAPI document: generated requests, valid and invalid, to every operation
of the real `api` entry point (functions-framework's Flask app, in process). Each answer must be a documented
status with the documented body and content type, never a 5xx.

The document is the one `/openapi.json` serves for the demo app (checked below). It is built with
`openapi_document()` rather than fetched at import, since fetching needs a running stack while tests are collected.
Bounded (25 derandomised examples per operation and mode) so the file runs in well under a minute.

The API is configured as deployed: it requires an ID token (a signed-in Firebase user's, from the local issuer), so
schemathesis also checks that each operation refuses the same request without it.
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

from client.conftest import api_server  # noqa: F401 - the fixture
from fixtures.issuer import TokenIssuer

from .conftest import Stack

PROJECT = "demo-oncetask"

DOCUMENT = openapi_document(demo.job_types())
schema = schemathesis.openapi.from_dict(DOCUMENT)
schema.config.generation.update(modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE], deterministic=True,
                                max_examples=25)


@pytest.fixture
def paused(make_stack: Any, token_issuer: TokenIssuer) -> Stack:
    return make_stack(paused=True, api_require_auth=True, firebase_project_id=PROJECT,
                      firebase_certs_url=token_issuer.certs_url)


def test_the_tested_document_is_the_one_the_api_serves(paused: Stack) -> None:
    assert paused.api_client.get("/openapi.json").get_json() == DOCUMENT


@schema.parametrize()
@settings(max_examples=25, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.filter_too_much, HealthCheck.data_too_large])
def test_every_operation_answers_as_documented_and_never_5xx(case: Any, paused: Stack, api_server: str,
                                                             token_issuer: TokenIssuer) -> None:
    # positive_data_acceptance is left out: a gs:// source must also name a valid bucket and a short enough object,
    # rules richer than its JSON Schema, so a schema-valid string may rightly get a 422 (which names the field).
    token = token_issuer.firebase_token("schemathesis", PROJECT)
    # Over HTTP (the entry point served by functions-framework's app): the auth check's probes, the same request
    # without the token or with a made-up one, go there too.
    case.call_and_validate(base_url=api_server, headers={"Authorization": f"Bearer {token}"},
                           excluded_checks=[positive_data_acceptance])
