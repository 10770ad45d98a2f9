"""Least privilege: every IAM grant of the module, grouped by member, is exactly the table below; nobody outside
IAM may invoke anything unless an explicitly named opt-in variable is set."""

from __future__ import annotations

import re

import pytest

from .terraform import Module, block, load_module, ref, squash, text

# The attribute naming the resource each kind of IAM member resource grants on.
TARGET_ATTRIBUTE = {
    "google_project_iam_member": None,  # the project (narrowed by a condition where one is set)
    "google_cloud_tasks_queue_iam_member": "name",
    "google_service_account_iam_member": "service_account_id",
    "google_storage_bucket_iam_member": "bucket",
    "google_cloud_run_service_iam_member": "service",
    "google_artifact_registry_repository_iam_member": "repository",
    "google_secret_manager_secret_iam_member": "secret_id",
}

JOB_QUEUES = "google_cloud_tasks_queue.jobs"  # one grant per job queue of the manifest
CALLBACKS = "google_cloud_tasks_queue.callbacks"
ALL_QUEUES = "local.all_queues"  # one grant per queue: the job queues and the callbacks queue
TASKS_SA = "google_service_account.tasks"
ARTIFACTS = "google_storage_bucket.artifacts"
GCF_SOURCES = "project, if gcf-v2-sources bucket"
CALLBACK_SECRET = "the callback secret, if one is named"

EXPECTED = {
    "api": {
        ("roles/datastore.user", "project"),
        ("roles/storage.objectUser", ARTIFACTS),
        # New jobs and retries (create), a cancelled scheduled job's task (delete: not in the enqueuer role).
        ("roles/cloudtasks.enqueuer", JOB_QUEUES),
        ("roles/cloudtasks.taskDeleter", JOB_QUEUES),
        # The callback of a job it cancels.
        ("roles/cloudtasks.enqueuer", CALLBACKS),
        # GET /stats: each queue's depth, oldest task and dispatch rate.
        ("roles/cloudtasks.viewer", ALL_QUEUES),
        ("roles/iam.serviceAccountUser", TASKS_SA),
        ("roles/secretmanager.secretAccessor", CALLBACK_SECRET),
    },
    "worker": {
        ("roles/datastore.user", "project"),
        ("roles/storage.objectAdmin", ARTIFACTS),
        # Children, next stages, sleeps, wake-ups, follow-up jobs; and the callbacks of the jobs it ends.
        ("roles/cloudtasks.enqueuer", JOB_QUEUES),
        ("roles/cloudtasks.enqueuer", CALLBACKS),
        ("roles/iam.serviceAccountUser", TASKS_SA),
        ("roles/secretmanager.secretAccessor", CALLBACK_SECRET),
    },
    "cleanup": {
        ("roles/datastore.user", "project"),
        ("roles/storage.objectAdmin", ARTIFACTS),
        # It re-enqueues lapsed jobs (create) after checking their task is gone (get), submits scheduled jobs,
        # sends the callbacks nobody sent, and logs every queue's figures for the oldest-task alert.
        ("roles/cloudtasks.enqueuer", JOB_QUEUES),
        ("roles/cloudtasks.viewer", ALL_QUEUES),
        ("roles/cloudtasks.enqueuer", CALLBACKS),
        ("roles/iam.serviceAccountUser", TASKS_SA),
        ("roles/secretmanager.secretAccessor", CALLBACK_SECRET),
    },
    "tasks": {("roles/run.invoker", "google_cloudfunctions2_function.process_task")},
    "scheduler": {("roles/run.invoker", "google_cloudfunctions2_function.cleanup")},
    "build": {
        ("roles/logging.logWriter", "project"),
        ("roles/storage.objectViewer", "google_storage_bucket.source"),
        # Cloud Functions copies the upload to gcf-v2-sources-<number>-<region>; the build reads it from there.
        ("roles/storage.objectViewer", GCF_SOURCES),
        ("roles/artifactregistry.writer", "google_artifact_registry_repository.functions"),
    },
    # Only behind an opt-in (count) or for the principals the deployer names (for_each): see the tests below.
    "allUsers": {("roles/run.invoker", "google_cloudfunctions2_function.api")},
    "each.value": {("roles/run.invoker", "google_cloudfunctions2_function.api")},
}


@pytest.fixture(scope="module")
def module() -> Module:
    return load_module()


def member_key(value: str) -> str:
    """`google_service_account.api.member` -> `api`; a literal principal (allUsers) as it is."""
    match = re.fullmatch(r"\$\{google_service_account\.(\w+)\.member\}", value)
    if match:
        return match.group(1)
    if value == "${each.value}":
        return "each.value"
    literal = text(value)
    assert not literal.startswith("serviceAccount:"), f"grant to a service account outside this stack: {literal}"
    return literal


def target(kind: str, body: dict) -> str:
    attribute = TARGET_ATTRIBUTE[kind]
    if attribute is None:
        if "condition" in body:
            expression = text(block(body, "condition")["expression"])
            assert "local.gcf_sources_bucket" in expression, f"an unexpected IAM condition: {expression}"
            return GCF_SOURCES
        return "project"
    expression = ref(body[attribute])
    if expression == "each.value.name" and ref(body["for_each"]) in (JOB_QUEUES, ALL_QUEUES):
        return ref(body["for_each"])  # one grant per job queue of the manifest, or per queue
    if expression == "var.callback_secret.secret_id":
        assert squash(ref(body["count"])) == "var.callback_secret!=null?1:0"
        return CALLBACK_SECRET
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


def public_grants(module: Module) -> dict[str, dict]:
    return {name: body for (kind, name), body in module.resources.items()
            if kind.endswith("_iam_member") and text(body["member"]) in {"allUsers", "allAuthenticatedUsers"}}


def test_no_authoritative_iam_resources(module: Module) -> None:
    # *_iam_binding / *_iam_policy replace every other grant of the role or resource: not ours to do.
    authoritative = [f"{k}.{n}" for k, n in module.resources if k.endswith(("_iam_binding", "_iam_policy"))]
    assert authoritative == []


def test_every_service_account_of_the_stack_is_accounted_for(module: Module) -> None:
    accounts = set(module.of_type("google_service_account"))
    assert accounts == set(EXPECTED) - {"allUsers", "each.value"}


@pytest.mark.parametrize("member", sorted(EXPECTED))
def test_member_has_exactly_its_roles(module: Module, member: str) -> None:
    assert grants_by_member(module).get(member, set()) == EXPECTED[member]


def test_no_grant_to_anyone_else(module: Module) -> None:
    assert set(grants_by_member(module)) == set(EXPECTED)


def test_the_only_public_grant_is_the_apis_invoker_and_it_exists_only_by_opt_in(module: Module) -> None:
    public = public_grants(module)
    assert set(public) == {"api_public"}
    grant = public["api_public"]
    assert target("google_cloud_run_service_iam_member", grant) == "google_cloudfunctions2_function.api"
    # count = 0 unless an opt-in needs it (its truth table: test_access.py); every opt-in is off by default.
    assert squash(ref(grant["count"])) == "local.api_public_invoker?1:0"
    assert squash(ref(load_module().locals["api_public_invoker"])) == \
        "var.allow_public_api_invoker||var.allow_anonymous_submissions||var.firebase_auth!=null"
    assert module.default("allow_public_api_invoker") is False
    assert module.default("allow_anonymous_submissions") is False
    assert module.variables["firebase_auth"]["default"] is None


def test_api_invokers_are_the_named_principals_and_cannot_be_public(module: Module) -> None:
    invokers = module.resource("google_cloud_run_service_iam_member", "api_invokers")
    assert ref(invokers["for_each"]) == "toset(var.api_invoker_members)"
    assert module.default("api_invoker_members") == []
    validation = block(module.variables["api_invoker_members"], "validation")
    assert '"allUsers"' in validation["condition"] and '"allAuthenticatedUsers"' in validation["condition"]


def test_the_build_reads_only_the_cloud_functions_source_bucket_of_its_region(module: Module) -> None:
    grant = module.resource("google_project_iam_member", "build_reads_gcf_sources")
    expression = text(block(grant, "condition")["expression"])
    assert expression == ('resource.name == "projects/_/buckets/${local.gcf_sources_bucket}" || '
                          'resource.name.startsWith("projects/_/buckets/${local.gcf_sources_bucket}/objects/")')
    assert text(module.locals["gcf_sources_bucket"]) == \
        "gcf-v2-sources-${data.google_project.this.number}-${var.region}"


def test_functions_are_deployed_only_after_every_grant_they_need_had_time_to_propagate(module: Module) -> None:
    """Cloud Build reads the source with its grants, Cloud Run checks a revision's access to its secrets when it
    deploys it, and a function must not serve before its queue and Firestore grants work: every grant but the
    invokers' (which are on the functions) comes before the wait, and every function after it."""
    wait = module.resource("time_sleep", "grants_propagate")
    assert text(wait["create_duration"]) == "${var.iam_propagation_seconds}s"
    assert module.default("iam_propagation_seconds") >= 60
    needed = {f"${{{kind}.{name}}}" for (kind, name), body in module.resources.items()
              if kind.endswith("_iam_member") and kind != "google_cloud_run_service_iam_member"}
    assert set(wait["depends_on"]) == needed
    for name, function in module.of_type("google_cloudfunctions2_function").items():
        assert function["depends_on"] == ["${time_sleep.grants_propagate}"], name


def test_the_handler_the_api_and_the_cleanup_put_the_tasks_identity_on_tasks_and_nobody_else(module: Module) -> None:
    acting = {member for member, grants in grants_by_member(module).items()
              if ("roles/iam.serviceAccountUser", TASKS_SA) in grants}
    assert acting == {"api", "worker", "cleanup"}
    # Nobody may act as any other identity of the stack (the scheduler's token is minted by Cloud Scheduler).
    targets = {target(kind, body) for (kind, _), body in module.resources.items()
               if kind == "google_service_account_iam_member"}
    assert targets == {TASKS_SA}


def test_every_function_that_sends_callbacks_may_read_the_secret_and_enqueue_on_the_callbacks_queue(
        module: Module) -> None:
    grants = grants_by_member(module)
    for member in ("api", "worker", "cleanup"):
        assert ("roles/cloudtasks.enqueuer", CALLBACKS) in grants[member], member
        assert ("roles/secretmanager.secretAccessor", CALLBACK_SECRET) in grants[member], member
    secret_grants = module.of_type("google_secret_manager_secret_iam_member")
    assert all(ref(body["project"]) == "var.project_id" for body in secret_grants.values())
