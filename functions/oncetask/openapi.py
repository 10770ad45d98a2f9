"""The OpenAPI 3 document of the public API, generated from the pydantic models and the app's job types.

POST /jobs is described as one schema per job type (its name as a constant, its payload model), so generated
requests can be valid, and every 4xx the handlers can answer is listed with the error body.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ValidationError

from .models import (ActionResponse, ChildrenView, CreateJobResponse, ErrorResponse, Health, JobList, JobView, Me,
                     Stats, Timeline)
from .stages import JobType
from .states import JobState

REF = "#/components/schemas/{model}"


def _schema(model: type[BaseModel], schemas: dict[str, Any], name: str | None = None) -> dict[str, Any]:
    """Add `model` (and its nested models) to `schemas`; return a $ref to it."""
    schema = model.model_json_schema(ref_template=REF, mode="serialization")
    for def_name, definition in schema.pop("$defs", {}).items():
        schemas[def_name] = definition
    name = name or model.__name__
    schemas[name] = schema
    return {"$ref": REF.format(model=name)}


def _create_request(schemas: dict[str, Any], job_types: Mapping[str, JobType]) -> dict[str, Any]:
    variants = []
    for job_type in job_types.values():
        payload_ref = _schema(job_type.payload_model, schemas, f"Payload_{job_type.name.replace('.', '_')}")
        variants.append({
            "type": "object",
            "additionalProperties": False,
            # The payload defaults to {}: it may be left out only when the job type's model accepts {}.
            "required": ["job_type"] if _accepts_empty(job_type.payload_model) else ["job_type", "payload"],
            "properties": {
                "job_type": {"type": "string", "enum": [job_type.name]},
                "payload": payload_ref,
                "idempotency_key": {"anyOf": [{"type": "string", "minLength": 1, "maxLength": 256},
                                              {"type": "null"}]},
            },
        })
    schemas["CreateJobRequest"] = {"oneOf": variants}
    return {"$ref": REF.format(model="CreateJobRequest")}


def _accepts_empty(model: type[BaseModel]) -> bool:
    try:
        model.model_validate({})
    except ValidationError:
        return False
    return True


def _json(ref: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": ref}}}


def openapi_document(job_types: Mapping[str, JobType]) -> dict[str, Any]:
    schemas: dict[str, Any] = {}
    error = _schema(ErrorResponse, schemas)
    errors = {
        "400": _json(error, "The body is not valid JSON."),
        "401": _json(error, "No accepted identity: a Google or Firebase ID token (or, for an anonymous submission's "
                            "job, its capability) is missing or invalid."),
        "403": _json(error, "The token is valid but its identity may not call this."),
        "404": _json(error, "No such job (or not yours)."),
        "405": _json(error, "Method not allowed."),
        "409": _json(error, "Conflicts with the job's state or an earlier request with the same key."),
        "413": _json(error, "The body is larger than allowed."),
        "422": _json(error, "A field is invalid; `error.field` names it."),
        "503": _json(error, "A backend is temporarily unavailable; retry."),
    }

    def pick(*codes: str) -> dict[str, Any]:
        return {code: errors[code] for code in codes}

    job_id = {"name": "job_id", "in": "path", "required": True,
              "schema": {"type": "string", "pattern": "^[a-f0-9]{32}$"}}
    job_view = _schema(JobView, schemas)
    action = _schema(ActionResponse, schemas)
    return {
        "openapi": "3.1.0",
        "info": {"title": "oncetask", "version": "1.0.0",
                 "description": "Background jobs on Cloud Tasks and Firestore: enqueued once, run once.\n\n"
                                "Send `Authorization: Bearer <ID token>`: a Google ID token for the API's audience "
                                "(services) or a Firebase Authentication ID token (people). The token's `sub` owns "
                                "the jobs it submits; callers see and act on their own jobs only (another's is a "
                                "404), operators on all. Where anonymous submissions are allowed, a submission "
                                "without a token answers a `capability`; `Authorization: Capability <it>` opens "
                                "that job."},
        "security": [{"bearer": []}, {"capability": []}],
        "paths": {
            "/jobs": {
                "post": {
                    "operationId": "createJob",
                    "summary": "Submit a job (idempotent with an idempotency_key).",
                    "requestBody": {"required": True, "content": {"application/json": {
                        "schema": _create_request(schemas, job_types)}}},
                    "responses": {"202": _json(_schema(CreateJobResponse, schemas), "Accepted."),
                                  **pick("400", "401", "403", "405", "409", "413", "422", "503")},
                },
                "get": {
                    "operationId": "listJobs",
                    "summary": "The caller's jobs, newest first.",
                    "parameters": [
                        {"name": "state", "in": "query", "required": False,
                         "schema": {"type": "string", "enum": [s.value for s in JobState]}},
                        {"name": "limit", "in": "query", "required": False,
                         "schema": {"type": "integer", "minimum": 1, "maximum": 100, "default": 20}},
                        {"name": "cursor", "in": "query", "required": False,
                         "schema": {"type": "string", "pattern": "^[a-f0-9]{32}$"}},
                        {"name": "job_type", "in": "query", "required": False,
                         "schema": {"type": "string", **({"enum": sorted(job_types)} if job_types else {})}},
                    ],
                    "responses": {"200": _json(_schema(JobList, schemas), "A page of jobs."),
                                  **pick("401", "403", "422", "503")},
                },
            },
            "/jobs/{job_id}": {"get": {
                "operationId": "getJob", "parameters": [job_id],
                "responses": {"200": _json(job_view, "The job."), **pick("401", "403", "404", "503")},
            }},
            "/jobs/{job_id}/children": {"get": {
                "operationId": "getJobChildren",
                "summary": "The child jobs each stage started, in order, with how the ended ones ended.",
                "parameters": [job_id, {"name": "limit", "in": "query", "required": False,
                                        "schema": {"type": "integer", "minimum": 1, "maximum": 1000,
                                                   "default": 100}}],
                "responses": {"200": _json(_schema(ChildrenView, schemas), "Each stage's children."),
                              **pick("401", "403", "404", "422", "503")},
            }},
            "/jobs/{job_id}/retry": {"post": {
                "operationId": "retryJob", "summary": "Re-run a failed job from its failed stage.",
                "parameters": [job_id],
                "responses": {"202": _json(action, "Re-queued."), **pick("401", "403", "404", "409", "503")},
            }},
            "/jobs/{job_id}/cancel": {"post": {
                "operationId": "cancelJob", "summary": "Cancel a waiting job, or ask a running one to stop.",
                "parameters": [job_id],
                "responses": {"202": _json(action, "Cancelled or cancel requested."),
                              **pick("401", "403", "404", "409", "503")},
            }},
            "/me": {"get": {
                "operationId": "whoAmI", "summary": "Who the API takes the caller for.",
                "responses": {"200": _json(_schema(Me, schemas), "The caller."), **pick("401", "503")},
            }},
            "/stats": {"get": {
                "operationId": "getStats",
                "summary": "Jobs per state and job type, stuck leases, dead letters, each queue's depth, oldest task "
                           "age and dispatch rate, recent durations; cached a few seconds, with what it cost.",
                "responses": {"200": _json(_schema(Stats, schemas), "The figures."),
                              **pick("401", "403", "503")},
            }},
            "/stats/timeline": {"get": {
                "operationId": "getTimeline",
                "summary": "Jobs completed and failed per time bucket over the last minutes.",
                "parameters": [
                    {"name": "minutes", "in": "query", "required": False,
                     "schema": {"type": "integer", "minimum": 1, "maximum": 10080, "default": 60}},
                    {"name": "buckets", "in": "query", "required": False,
                     "schema": {"type": "integer", "minimum": 1, "maximum": 60, "default": 12}},
                ],
                "responses": {"200": _json(_schema(Timeline, schemas), "The buckets, oldest first."),
                              **pick("401", "403", "422", "503")},
            }},
            "/healthz": {"get": {"operationId": "health", "security": [],
                                 "responses": {"200": _json(_schema(Health, schemas), "Alive.")}}},
            "/openapi.json": {"get": {"operationId": "openapi", "security": [],
                                      "responses": {"200": {"description": "This document.",
                                                            "content": {"application/json": {
                                                                "schema": {"type": "object"}}}}}}},
        },
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                           "description": "A Google ID token (audience: the API) or a Firebase ID token."},
                "capability": {"type": "apiKey", "in": "header", "name": "Authorization",
                               "description": "`Capability <secret>`: an anonymous submission's capability."},
            },
        },
    }
