"""Least privilege: every IAM grant of the stack, grouped by member, is exactly the table below."""

from __future__ import annotations

import re

import pytest

from .terraform import Module, load_module, ref, text

# The attribute naming the resource each kind of IAM member resource grants on.
TARGET_ATTRIBUTE = {
    "google_project_iam_member": None,  # the project
    "google_cloud_tasks_queue_iam_member": "name",
    "google_service_account_iam_member": "service_account_id",
    "google_storage_bucket_iam_member": "bucket",
    "google_cloud_run_service_iam_member": "service",
    "google_artifact_registry_repository_iam_member": "repository",
}

QUEUE = "google_cloud_tasks_queue.jobs"
TASKS_SA = "google_service_account.tasks"
ARTIFACTS = "google_storage_bucket.artifacts"

EXPECTED = {
    "api": {
        ("roles/datastore.user", "project"),
        ("roles/storage.objectUser", ARTIFACTS),
        ("roles/cloudtasks.enqueuer", QUEUE),
        ("roles/iam.serviceAccountUser", TASKS_SA),
    },
    "worker": {
        ("roles/datastore.user", "project"),
        ("roles/storage.objectAdmin", ARTIFACTS),
    },
    "cleanup": {
        ("roles/datastore.user", "project"),
        ("roles/storage.objectAdmin", ARTIFACTS),
        # It re-enqueues lapsed jobs (create) after checking their task is gone (get).
        ("roles/cloudtasks.enqueuer", QUEUE),
        ("roles/cloudtasks.viewer", QUEUE),
        ("roles/iam.serviceAccountUser", TASKS_SA),
    },
    "tasks": {("roles/run.invoker", "google_cloudfunctions2_function.process_task")},
    "scheduler": {("roles/run.invoker", "google_cloudfunctions2_function.cleanup")},
    "build": {
        ("roles/logging.logWriter", "project"),
        ("roles/storage.objectViewer", "google_storage_bucket.source"),
        ("roles/artifactregistry.writer", "google_artifact_registry_repository.functions"),
    },
    "allUsers": {("roles/run.invoker", "google_cloudfunctions2_function.api")},
}


@pytest.fixture(scope="module")
def module() -> Module:
    return load_module()


def member_key(value: str) -> str:
    """`google_service_account.api.member` -> `api`; a literal principal (allUsers) as it is."""
    match = re.fullmatch(r"\$\{google_service_account\.(\w+)\.member\}", value)
    if match:
        return match.group(1)
    literal = text(value)
    assert not literal.startswith("serviceAccount:"), f"grant to a service account outside this stack: {literal}"
    return literal


def target(kind: str, body: dict) -> str:
    attribute = TARGET_ATTRIBUTE[kind]
    if attribute is None:
        return "project"
    expression = ref(body[attribute])
    assert expression.endswith((".name", ".id")), f"{kind} grants on {expression}, not on a resource of this stack"
    return expression.rsplit(".", 1)[0]


def grants_by_member(module: Module) -> dict[str, set[tuple[str, str]]]:
    grants: dict[str, set[tuple[str, str]]] = {}
    for (kind, name), body in module.resources.items():
        if not kind.endswith("_iam_member"):
            continue
        assert kind in TARGET_ATTRIBUTE, f"{kind}.{name}: an IAM resource kind this test does not know"
        grant = (text(body["role"]), target(kind, body))
        member = member_key(body["member"])
        assert grant not in grants.get(member, set()), f"{kind}.{name} repeats a grant of {member}"
        grants.setdefault(member, set()).add(grant)
    return grants


def test_no_authoritative_iam_resources(module: Module) -> None:
    # *_iam_binding / *_iam_policy replace every other grant of the role or resource: not ours to do.
    authoritative = [f"{k}.{n}" for k, n in module.resources if k.endswith(("_iam_binding", "_iam_policy"))]
    assert authoritative == []


def test_every_service_account_of_the_stack_is_accounted_for(module: Module) -> None:
    accounts = set(module.of_type("google_service_account"))
    assert accounts == set(EXPECTED) - {"allUsers"}


@pytest.mark.parametrize("member", sorted(EXPECTED))
def test_member_has_exactly_its_roles(module: Module, member: str) -> None:
    assert grants_by_member(module).get(member, set()) == EXPECTED[member]


def test_no_grant_to_anyone_else(module: Module) -> None:
    assert set(grants_by_member(module)) == set(EXPECTED)


def test_only_the_public_api_is_invocable_by_all_users(module: Module) -> None:
    public = {target(k, b) for (k, _), b in module.resources.items()
              if k.endswith("_iam_member") and text(b["member"]) in {"allUsers", "allAuthenticatedUsers"}}
    assert public == {"google_cloudfunctions2_function.api"}
