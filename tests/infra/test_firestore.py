"""Firestore: every composite query shape has its index (and every index a query), TTL policies, the rules."""

from __future__ import annotations

import ast
import importlib
import json
import re
from pathlib import Path

import pytest

from .terraform import MODULE_DIR, REPO, Module, block, load_module, ref, squash, text

INDEXES = MODULE_DIR / "firestore.indexes.json"
RULES = REPO / "firestore.rules"
# The processor keeps every query in one module with a module-level QUERY_SHAPES tuple:
# (collection, ((field, "ASCENDING" | "DESCENDING"), ...)), equality fields first.
QUERY_MODULE = "oncetask.jobstore"
PACKAGE = REPO / "functions" / "oncetask"

Shape = tuple[str, tuple[tuple[str, str], ...]]


@pytest.fixture(scope="module")
def module() -> Module:
    return load_module()


def query_shapes() -> list[Shape]:
    shapes = importlib.import_module(QUERY_MODULE).QUERY_SHAPES
    return [(collection, tuple((f, d) for f, d in fields)) for collection, fields in shapes]


def composite_shapes() -> set[Shape]:
    """A query on one field is served by Firestore's automatic single-field index: only the others need one."""
    return {shape for shape in query_shapes() if len(shape[1]) > 1}


def declared_indexes() -> list[Shape]:
    document = json.loads(INDEXES.read_text())
    shapes = []
    for index in document["indexes"]:
        assert index["queryScope"] == "COLLECTION", f"unexpected scope in {index}"
        shapes.append((index["collectionGroup"], tuple((f["fieldPath"], f["order"]) for f in index["fields"])))
    return shapes


def test_query_shapes_are_well_formed() -> None:
    shapes = query_shapes()
    assert shapes, f"{QUERY_MODULE}.QUERY_SHAPES is empty"
    for collection, fields in shapes:
        assert collection and fields
        assert all(direction in {"ASCENDING", "DESCENDING"} for _, direction in fields), fields


def queried_fields(path: Path) -> set[str]:
    """Fields the module filters or orders on: FieldFilter("f", ...), where("f", ...), order_by("f", ...)."""
    fields = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if (isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str)):
            name = ast.unparse(node.func).rsplit(".", 1)[-1]
            if name in {"FieldFilter", "where", "order_by"}:
                fields.add(node.args[0].value)
    return fields


def test_queries_live_in_the_query_module_only() -> None:
    """QUERY_SHAPES can only be complete if no other module of the package runs a query of its own."""
    query_file = PACKAGE / (QUERY_MODULE.split(".")[-1] + ".py")
    others = {str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py") if p != query_file and queried_fields(p)}
    assert not others, f"queries outside {QUERY_MODULE}: {sorted(others)}"


def test_every_queried_field_is_in_a_declared_query_shape() -> None:
    query_file = PACKAGE / (QUERY_MODULE.split(".")[-1] + ".py")
    declared = {name for _, fields in query_shapes() for name, _ in fields}
    undeclared = queried_fields(query_file) - declared
    assert not undeclared, f"{QUERY_MODULE} queries fields no QUERY_SHAPES entry declares: {sorted(undeclared)}"


def test_every_composite_query_shape_has_its_index() -> None:
    missing = composite_shapes() - set(declared_indexes())
    assert not missing, f"queries without a composite index in firestore.indexes.json: {sorted(missing)}"


def test_every_index_serves_a_query() -> None:
    unused = set(declared_indexes()) - composite_shapes()
    assert not unused, f"indexes no query needs (they cost writes): {sorted(unused)}"


def test_no_index_is_declared_twice() -> None:
    indexes = declared_indexes()
    assert len(indexes) == len(set(indexes))


def test_terraform_reads_the_indexes_from_the_json_file(module: Module) -> None:
    index = module.resource("google_firestore_index", "composite")
    assert ref(index["for_each"]) == "local.composite_indexes"
    source = ref(module.locals["composite_indexes"])
    assert 'jsondecode(file("${path.module}/firestore.indexes.json")).indexes' in source
    content = block(block(index, "dynamic")["fields"], "content")
    assert ref(content["field_path"]) == "fields.value.fieldPath"
    assert ref(content["order"]) == "fields.value.order"


def test_everything_goes_into_the_database_the_functions_are_told(module: Module) -> None:
    assert ref(module.locals["module_env"]["ONCETASK_DATABASE"]) == "local.database"
    for kind in ("google_firestore_index", "google_firestore_field"):
        for name, body in module.of_type(kind).items():
            assert ref(body["database"]) == "local.database", f"{kind}.{name}"
    database = module.resource("google_firestore_database", "main")
    assert ref(database["name"]) == "var.firestore_database"
    assert text(database["delete_protection_state"]) == "DELETE_PROTECTION_ENABLED"
    assert text(database["deletion_policy"]) == "ABANDON"


@pytest.mark.parametrize("collection", ["jobs", "results", "failed_tasks"])
def test_expire_at_has_a_ttl_policy(module: Module, collection: str) -> None:
    fields = [b for b in module.of_type("google_firestore_field").values()
              if text(b["collection"]) == collection and text(b["field"]) == "expire_at"]
    assert len(fields) == 1, f"no single google_firestore_field for {collection}.expire_at"
    assert fields[0].get("ttl_config") == [{}]


def test_single_field_queries_keep_their_index(module: Module) -> None:
    """A field override (e.g. the TTL field's index_config) must not switch off an index a query relies on."""
    for body in module.of_type("google_firestore_field").values():
        configs = body.get("index_config")
        if configs is None:
            continue  # inherits the automatic indexes
        kept = {text(i["order"]) for i in configs[0].get("indexes", []) if "order" in i}
        for collection, fields in query_shapes():
            if len(fields) == 1 and collection == text(body["collection"]) and fields[0][0] == text(body["field"]):
                assert fields[0][1] in kept, f"{collection}.{fields[0][0]} is queried but its index is off"


def test_rules_deny_by_default_and_allow_no_client_writes() -> None:
    rules = re.sub(r"//[^\n]*", "", RULES.read_text())  # comments explain; only the rules count
    assert "rules_version = '2'" in rules
    assert re.search(r"match /\{document=\*\*\}\s*\{\s*allow read, write: if false;\s*\}", rules)
    allows = re.findall(r"allow ([\w, ]+):\s*if ([^;]+);", rules)
    for operations, condition in allows:
        if condition.strip() != "false":
            assert set(o.strip() for o in operations.split(",")) <= {"get", "list", "read"}, operations
            assert "resource.data.owner == request.auth.uid" in condition
            assert "request.auth != null" in condition
    assert any(c.strip() != "false" for _, c in allows), "the owner-read rule is missing"


def test_the_rules_are_released_from_the_rules_file_unless_released_elsewhere(module: Module) -> None:
    ruleset = module.resource("google_firebaserules_ruleset", "firestore")
    release = module.resource("google_firebaserules_release", "firestore")
    for body in (ruleset, release):
        assert squash(ref(body["count"])) == "var.deploy_firestore_rules?1:0"
        assert ref(body["project"]) == "var.project_id"
    assert module.default("deploy_firestore_rules") is True
    files = block(block(ruleset, "source"), "files")
    assert ref(files["content"]) == "file(local.firestore_rules_file)"
    assert ref(files["name"]) == "basename(local.firestore_rules_file)"
    # The release names the database the functions use (its name: tests/infra/test_access.py) and the ruleset.
    assert ref(release["name"]) == "local.firestore_rules_release"
    assert text(release["ruleset_name"]) == \
        "projects/${var.project_id}/rulesets/${google_firebaserules_ruleset.firestore[0].name}"
    assert "${google_firestore_database.main}" in release["depends_on"]
    # A new ruleset is created before the old one goes, and a missing file stops the plan with a clear message.
    lifecycle = block(ruleset, "lifecycle")
    assert lifecycle["create_before_destroy"] is True
    assert ref(block(lifecycle, "precondition")["condition"]) == "fileexists(local.firestore_rules_file)"


def test_the_rules_api_is_enabled_when_the_rules_are_released(module: Module) -> None:
    services = squash(ref(module.resource("google_project_service", "apis")["for_each"]))
    assert 'var.deploy_firestore_rules?["firebaserules.googleapis.com"]:[]' in services
    ruleset = module.resource("google_firebaserules_ruleset", "firestore")
    assert "${google_project_service.apis}" in ruleset["depends_on"]


def test_the_released_rules_honour_the_operator_claim_the_api_honours() -> None:
    """A Firebase user with the claim is an operator of the API and of the rules alike (callers.OPERATOR_CLAIM)."""
    from oncetask import callers  # noqa: PLC0415

    assert callers.OPERATOR_CLAIM == "oncetask_operator"
    assert f"request.auth.token.get('{callers.OPERATOR_CLAIM}', false) == true" in RULES.read_text()
