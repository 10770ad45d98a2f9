"""Check every argument and nested block the module and the roots set against the Google provider's own schema.

No provider binary can be downloaded here, so `terraform validate` cannot run. This reads the provider's Go
source instead (a git checkout of hashicorp/terraform-provider-google with its release tags), at each tag given:

    .venv/bin/python infra/tools/check_provider_arguments.py PROVIDER_CHECKOUT v5.40.0 v6.50.0

For each resource type used, it parses the `map[string]*schema.Schema{...}` literals of the resource's source
file (nested blocks through `Elem: &schema.Resource{Schema: ...}`), and reports any argument path the
configuration sets that the schema does not have, and any computed-only attribute it sets. It also checks that
the attributes read from other resources (service_config[0].uri, .member, .number...) exist. Exit status 1 on
any finding. What it cannot see (a schema built by a function call) it names as "not resolved", never as passed.
"""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from tests.infra.terraform import MODULE_DIR, ROOTS, load_module  # noqa: E402

# Resource type -> (source files holding its schema literals, in order: the first literal of the first file is the
# resource's own; IAM member resources add the generic member schema).
IAM_MEMBER = "google/tpgiamresource/resource_iam_member.go"
SOURCES: dict[str, list[str]] = {
    "google_cloudfunctions2_function": ["google/services/cloudfunctions2/resource_cloudfunctions2_function.go"],
    "google_cloud_tasks_queue": ["google/services/cloudtasks/resource_cloud_tasks_queue.go"],
    "google_cloud_scheduler_job": ["google/services/cloudscheduler/resource_cloud_scheduler_job.go"],
    "google_firestore_database": ["google/services/firestore/resource_firestore_database.go"],
    "google_firestore_index": ["google/services/firestore/resource_firestore_index.go"],
    "google_firestore_field": ["google/services/firestore/resource_firestore_field.go"],
    "google_firebaserules_ruleset": ["google/services/firebaserules/resource_firebaserules_ruleset.go"],
    "google_firebaserules_release": ["google/services/firebaserules/resource_firebaserules_release.go"],
    "google_storage_bucket": ["google/services/storage/resource_storage_bucket.go"],
    "google_storage_bucket_object": ["google/services/storage/resource_storage_bucket_object.go"],
    "google_artifact_registry_repository": [
        "google/services/artifactregistry/resource_artifact_registry_repository.go"],
    "google_service_account": ["google/services/resourcemanager/resource_google_service_account.go"],
    "google_project_service": ["google/services/resourcemanager/resource_google_project_service.go"],
    "google_project_iam_member": ["google/services/resourcemanager/iam_project.go", IAM_MEMBER],
    "google_service_account_iam_member": ["google/services/resourcemanager/iam_service_account.go", IAM_MEMBER],
    "google_storage_bucket_iam_member": ["google/services/storage/iam_storage_bucket.go", IAM_MEMBER],
    "google_cloud_tasks_queue_iam_member": ["google/services/cloudtasks/iam_cloud_tasks_queue.go", IAM_MEMBER],
    "google_cloud_run_service_iam_member": ["google/services/cloudrun/iam_cloud_run_service.go", IAM_MEMBER],
    "google_artifact_registry_repository_iam_member": [
        "google/services/artifactregistry/iam_artifact_registry_repository.go", IAM_MEMBER],
    "google_secret_manager_secret_iam_member": ["google/services/secretmanager/iam_secret_manager_secret.go",
                                                IAM_MEMBER],
    "google_logging_metric": ["google/services/logging/resource_logging_metric.go"],
    "google_monitoring_alert_policy": ["google/services/monitoring/resource_monitoring_alert_policy.go"],
    "google_monitoring_dashboard": ["google/services/monitoring/resource_monitoring_dashboard.go"],
    "google_monitoring_notification_channel": [
        "google/services/monitoring/resource_monitoring_notification_channel.go"],
    "data.google_project": ["google/services/resourcemanager/resource_google_project.go"],
}
META = {"count", "for_each", "depends_on", "lifecycle", "provider", "dynamic"}
# Attributes the configuration reads from other objects: (type, attribute path).
READS = [
    ("google_cloudfunctions2_function", ("service_config", "uri")),
    ("google_cloudfunctions2_function", ("location",)),
    ("google_cloudfunctions2_function", ("name",)),
    ("google_service_account", ("member",)),
    ("google_service_account", ("email",)),
    ("google_service_account", ("name",)),
    ("google_service_account", ("id",)),
    ("google_cloud_tasks_queue", ("location",)),
    ("google_cloud_tasks_queue", ("name",)),
    ("google_cloud_scheduler_job", ("name",)),
    ("google_artifact_registry_repository", ("location",)),
    ("google_artifact_registry_repository", ("name",)),
    ("data.google_project", ("number",)),
    ("google_firebaserules_ruleset", ("name",)),
]


@dataclass
class Node:
    computed_only: bool = False
    children: dict[str, Node] | None = None  # None: a plain attribute; {}: a block whose schema was not resolved
    unresolved: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


def _matching(text: str, start: int) -> int:
    """Index of the brace closing the one at `start` (Go source; strings and comments skipped)."""
    depth, i = 0, start
    while i < len(text):
        c = text[i]
        if c == '"':
            i += 1
            while text[i] != '"':
                i += 2 if text[i] == "\\" else 1
        elif c == "`":
            i = text.index("`", i + 1)
        elif text.startswith("//", i):
            i = text.index("\n", i)
        elif c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    raise ValueError("unbalanced braces")


def parse_schema_map(text: str, open_brace: int) -> dict[str, Node]:
    """The entries of one `map[string]*schema.Schema{...}` literal whose `{` is at open_brace."""
    end = _matching(text, open_brace)
    body_start, entries, i = open_brace + 1, {}, open_brace + 1
    pattern = re.compile(r'\s*"([a-z0-9_]+)"\s*:\s*\{')
    while i < end:
        match = pattern.match(text, i)
        if not match:
            nxt = text.find("\n", i)
            i = end if nxt == -1 or nxt > end else nxt + 1
            continue
        entry_open = match.end() - 1
        entry_close = _matching(text, entry_open)
        entry = text[entry_open:entry_close]
        node = Node()
        node.computed_only = bool(re.search(r"\bComputed:\s*true", entry)) and not re.search(
            r"\b(Optional|Required):\s*true", _own_fields(entry))
        nested = re.search(r"Elem:\s*&schema\.Resource\{\s*Schema:\s*map\[string\]\*schema\.Schema\{", entry)
        if nested:
            node.children = parse_schema_map(text, entry_open + nested.end() - 1)
        elif (call := re.search(r"Elem:\s*(\w+)\(\)", entry)) and (
                helper := re.search(rf"func {call.group(1)}\(\) \*schema\.Resource \{{\s*return &schema\.Resource\{{"
                                    r"\s*Schema:\s*map\[string\]\*schema\.Schema\{", text)):
            node.children = parse_schema_map(text, helper.end() - 1)  # a schema returned by a helper function
        elif re.search(r"Elem:\s*\w+\(\)", entry) or re.search(r"Elem:\s*&schema\.Resource\{\s*Schema:\s*\w", entry):
            node.children, node.unresolved = {}, True
        entries[match.group(1)] = node
        i = entry_close + 1
    del body_start
    return entries


def _own_fields(entry: str) -> str:
    """The entry's text without its nested Elem (so a child's Optional does not count as the parent's)."""
    cut = entry.find("Elem:")
    return entry if cut == -1 else entry[:cut]


def schema_of(checkout: Path, tag: str, kind: str) -> dict[str, Node] | None:
    merged: dict[str, Node] = {}
    for index, path in enumerate(SOURCES[kind]):
        try:
            text = subprocess.run(["git", "-C", str(checkout), "show", f"{tag}:{path}"], check=True,
                                  capture_output=True, text=True).stdout
        except subprocess.CalledProcessError:
            return None
        if index == 0 and not path.endswith(("iam_project.go",)) and "/iam_" not in path:
            found = re.search(r"\n\s*Schema:\s*map\[string\]\*schema\.Schema\{", text)
        else:
            found = re.search(r"var \w+Schema = map\[string\]\*schema\.Schema\{", text)
        if not found:
            return None
        merged.update(parse_schema_map(text, found.end() - 1))
    return merged


def used_paths(body: dict[str, Any], prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    paths = []
    for key, value in body.items():
        if key == "dynamic":  # a block written as `dynamic "name" { content { ... } }`, at any level
            for dynamic in value:
                for name, dyn in dynamic.items():
                    paths.append((*prefix, name))
                    paths += used_paths(dyn["content"][0], (*prefix, name))
            continue
        if not prefix and key in META:
            continue
        paths.append((*prefix, key))
        if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            for item in value:
                paths += used_paths(item, (*prefix, key))
    return paths


def lookup(schema: dict[str, Node], path: tuple[str, ...]) -> tuple[str, Node | None]:
    if path == ("id",):
        return "ok", Node(computed_only=True)  # every resource has an id
    level: dict[str, Node] | None = schema
    node = None
    for part in path:
        if level is None:
            return "not a block", None
        node = level.get(part)
        if node is None:
            return "missing", None
        if node.unresolved:
            return "not resolved", node
        level = node.children
    return "ok", node


def main(checkout: Path, tags: list[str]) -> int:
    configs = [load_module(MODULE_DIR), *(load_module(root) for root in ROOTS)]
    used: dict[str, set[tuple[str, ...]]] = {}
    for config in configs:
        for (kind, _), body in config.resources.items():
            used.setdefault(kind, set()).update(used_paths(body))
        for (kind, _), body in config.data.items():
            if kind.startswith("google_"):
                used.setdefault(f"data.{kind}", set()).update(used_paths(body))
    problems = 0
    for tag in tags:
        checked = 0
        for kind in sorted(used):
            if kind not in SOURCES:
                continue  # archive_file and time_sleep: other providers (see infra/README.md)
            schema = schema_of(checkout, tag, kind)
            if schema is None:
                print(f"{tag} {kind}: schema not found")
                problems += 1
                continue
            for path in sorted(used[kind]):
                status, node = lookup(schema, path)
                if status == "ok" and node is not None and node.computed_only and not kind.startswith("data."):
                    status = "computed only"
                if status != "ok":
                    print(f"{tag} {kind}: {'.'.join(path)}: {status}")
                    problems += status != "not resolved"
                checked += 1
            for read_kind, path in READS:
                if read_kind == kind and lookup(schema, path)[0] != "ok":
                    print(f"{tag} {kind}: attribute {'.'.join(path)} is not in the schema")
                    problems += 1
        print(f"{tag}: {checked} argument paths of {len([k for k in used if k in SOURCES])} resource types checked")
    return 1 if problems else 0


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    sys.exit(main(Path(sys.argv[1]), sys.argv[2:]))
