"""Monitoring as code (monitoring.tf), read statically: the alerts the operations brief asks for exist and notify the
channels given; every metric counts an event the code really logs, with the fields it extracts; every alert and
dashboard tile reads a metric that exists; the dashboard's template renders to a valid layout."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import hcl2
import pytest

from oncetask.logs import Event

from .terraform import MODULE_DIR, REPO, Module, block, load_module, ref, squash, text

MONITORING = MODULE_DIR / "monitoring.tf"
VARIABLES = MODULE_DIR / "monitoring_variables.tf"
DASHBOARD = MODULE_DIR / "monitoring_dashboard.json.tftpl"
PACKAGE = REPO / "functions" / "oncetask"
ALERTS = {"queue_depth", "oldest_task_age", "dead_letters", "stuck_jobs", "bugs", "function_5xx"}
BUILT_IN = ("cloudtasks.googleapis.com/", "run.googleapis.com/")


@pytest.fixture(scope="module")
def module() -> Module:
    return load_module()


def own_resources(module: Module) -> dict[tuple[str, str], dict[str, Any]]:
    """The resources monitoring.tf declares (the module merges every file)."""
    with MONITORING.open() as handle:
        parsed = load_module.__globals__["_labelled"](hcl2.load(handle).get("resource", []), 2)
    return {key: module.resources[key] for key in parsed}


def log_metric_names(module: Module) -> set[str]:
    """The names (after the stack's prefix) of every log-based metric the module defines."""
    names = set(module.locals["event_metrics"])
    for name, body in module.of_type("google_logging_metric").items():
        if name != "events":
            names.add(text(body["name"]).rsplit("/", 1)[1])
    return names


def counted_events(module: Module) -> set[str]:
    events = {text(event) for spec in module.locals["event_metrics"].values() for event in spec["events"]}
    # Filters that name an event themselves (the distribution metrics'), as written in the file.
    return events | set(re.findall(r'jsonPayload\.event=\\"([a-z_.]+)\\"', MONITORING.read_text()))


def package_source() -> str:
    return "\n".join(path.read_text() for path in PACKAGE.rglob("*.py"))


def test_every_resource_of_monitoring_tf_is_switched_by_monitoring_enabled(module: Module) -> None:
    resources = own_resources(module)
    assert {name for kind, name in resources if kind == "google_monitoring_alert_policy"} == ALERTS
    assert ref(module.locals["monitoring"]) == "var.monitoring_enabled"
    for (kind, name), body in resources.items():
        switch = body.get("count", body.get("for_each"))
        assert switch is not None and "local.monitoring" in ref(switch), f"{kind}.{name} ignores monitoring_enabled"


def test_monitoring_variables_are_described_typed_and_validated() -> None:
    with VARIABLES.open() as handle:
        variables = load_module.__globals__["_labelled"](hcl2.load(handle).get("variable", []), 1)
    assert {"alert_notification_channels", "alert_emails", "alert_queue_depth", "alert_oldest_task_age_seconds",
            "alert_dead_letters", "alert_stuck_jobs", "alert_5xx_ratio"} <= {name for (name,) in variables}
    for (name,), body in variables.items():
        assert text(body["description"]) and "type" in body, name
        if name.startswith("alert_"):
            assert body.get("validation"), f"variable {name} has no validation"


def test_every_alert_notifies_the_given_channels_and_the_created_email_ones(module: Module) -> None:
    channels = squash(ref(module.locals["alert_channels"]))
    assert "var.alert_notification_channels" in channels
    assert "google_monitoring_notification_channel.email" in channels
    email = module.resource("google_monitoring_notification_channel", "email")
    assert "var.alert_emails" in ref(email["for_each"]) and text(email["type"]) == "email"
    for name in ALERTS:
        policy = module.resource("google_monitoring_alert_policy", name)
        assert ref(policy["notification_channels"]) == "local.alert_channels", name
        assert text(block(policy, "documentation")["content"]), f"alert {name} says nothing about what to do"


@pytest.mark.parametrize("alert, variable", [
    ("queue_depth", "var.alert_queue_depth"), ("oldest_task_age", "var.alert_oldest_task_age_seconds"),
    ("dead_letters", "var.alert_dead_letters"), ("stuck_jobs", "var.alert_stuck_jobs"),
    ("function_5xx", "var.alert_5xx_ratio"),
])
def test_thresholds_are_the_variables(module: Module, alert: str, variable: str) -> None:
    condition = block(block(module.resource("google_monitoring_alert_policy", alert), "conditions"),
                      "condition_threshold")
    assert ref(condition["threshold_value"]) == variable
    assert text(condition["comparison"]) == "COMPARISON_GT"


def test_queue_depth_reads_cloud_tasks_own_metric_for_the_stacks_queues(module: Module) -> None:
    condition = block(block(module.resource("google_monitoring_alert_policy", "queue_depth"), "conditions"),
                      "condition_threshold")
    assert 'metric.type="cloudtasks.googleapis.com/queue/depth"' in text(condition["filter"])
    assert "${local.job_queue_ids}" in text(condition["filter"])
    assert "keys(module.manifest.job_queues)" in ref(module.locals["job_queue_ids"])


def test_the_5xx_alert_is_a_ratio_for_each_function(module: Module) -> None:
    policy = module.resource("google_monitoring_alert_policy", "function_5xx")
    assert ref(policy["for_each"]) == "local.monitoring ? local.function_names : {}"
    condition = block(block(policy, "conditions"), "condition_threshold")
    numerator, denominator = text(condition["filter"]), text(condition["denominator_filter"])
    assert 'response_code_class="5xx"' in numerator and "response_code_class" not in denominator
    for filter_ in (numerator, denominator):
        assert 'service_name="${each.value}"' in filter_
        assert 'metric.type="run.googleapis.com/request_count"' in filter_
    assert block(condition, "denominator_aggregations")


def test_every_counted_event_is_one_the_code_logs(module: Module) -> None:
    known = {event.value for event in Event}
    counted = counted_events(module)
    assert counted - known == set(), f"monitoring.tf counts events the code never names: {counted - known}"
    source = package_source()
    for event in Event:
        if event.value in counted:
            assert f"Event.{event.name}" in source, \
                f"{event.value} is counted but no module logs Event.{event.name}"
    assert {"job.failed", "lease.lapsed", "task.lost", "stage.timed_out", "stage.failed", "job.completed",
            "queue.stats"} <= counted


def test_extracted_fields_are_the_ones_the_code_logs(module: Module) -> None:
    fields = set()
    for body in module.of_type("google_logging_metric").values():
        for value in [body.get("value_extractor"), *(body.get("label_extractors") or {}).values()]:
            if value is not None:
                fields |= set(re.findall(r"EXTRACT\(jsonPayload\.([a-z_]+)\)", text(value)))
    source = package_source()
    for field in fields:
        assert re.search(rf"\b{field}=", source) or f'"{field}"' in source, f"no module logs {field!r}"
    assert {"duration_seconds", "oldest_task_age_seconds", "job_type", "code", "event", "queue"} <= fields


def test_alerts_read_metrics_that_exist(module: Module) -> None:
    names = log_metric_names(module)
    assert text(module.locals["metric_prefix"]) == "logging.googleapis.com/user/${var.name_prefix}"
    for name in ALERTS:
        condition = block(block(module.resource("google_monitoring_alert_policy", name), "conditions"),
                          "condition_threshold")
        for used in re.findall(r"\$\{local\.metric_prefix\}/([a-z_]+)", text(condition["filter"])):
            assert used in names, f"alert {name} reads {used}, which no log metric defines"


def test_the_bug_alert_fires_on_code_bug(module: Module) -> None:
    condition = block(block(module.resource("google_monitoring_alert_policy", "bugs"), "conditions"),
                      "condition_threshold")
    assert 'metric.labels.code="BUG"' in text(condition["filter"])
    assert "/stage_failures" in text(condition["filter"])


def render_dashboard() -> dict[str, Any]:
    """The template as Terraform renders it, with values escaped as monitoring.tf escapes them."""
    values = {"title": "oncetask: test", "metric_prefix": "logging.googleapis.com/user/test",
              "queue_filter": 'resource.labels.queue_id=one_of(\\"q\\")',
              "service_filter": 'resource.labels.service_name=one_of(\\"a\\", \\"b\\")'}
    template = DASHBOARD.read_text()
    unknown = set(re.findall(r"(?<!\$)\$\{([^}]*)\}", template)) - set(values)
    assert not unknown, f"template variables monitoring.tf does not give: {unknown}"
    rendered = re.sub(r"(?<!\$)\$\{([a-z_]+)\}", lambda m: values[m.group(1)], template).replace("$${", "${")
    return json.loads(rendered)


def test_the_dashboard_renders_to_a_grid_of_tiles_reading_existing_metrics(module: Module) -> None:
    dashboard = render_dashboard()
    tiles = dashboard["mosaicLayout"]["tiles"]
    occupied: set[tuple[int, int]] = set()
    for tile in tiles:
        cells = {(x, y) for x in range(tile["xPos"], tile["xPos"] + tile["width"])
                 for y in range(tile["yPos"], tile["yPos"] + tile["height"])}
        assert all(x < dashboard["mosaicLayout"]["columns"] for x, _ in cells)
        assert not cells & occupied, f"tile {tile['widget']['title']!r} overlaps another"
        occupied |= cells
    metrics = {m for tile in tiles for data in tile["widget"]["xyChart"]["dataSets"]
               for m in re.findall(r'metric\.type="([^"]+)"', data["timeSeriesQuery"]["timeSeriesFilter"]["filter"])}
    own = {m.rsplit("/", 1)[1] for m in metrics if m.startswith("logging.googleapis.com/user/test/")}
    assert all(m.startswith(BUILT_IN) or m.startswith("logging.googleapis.com/user/test/") for m in metrics), metrics
    assert own == log_metric_names(module), "every log metric has a tile, and every tile's metric exists"
    assert {"cloudtasks.googleapis.com/queue/depth", "run.googleapis.com/request_count"} <= metrics


def test_terraform_gives_the_dashboard_its_template_values(module: Module) -> None:
    dashboard = module.resource("google_monitoring_dashboard", "oncetask")
    source = squash(ref(dashboard["dashboard_json"]))
    assert 'templatefile("${path.module}/monitoring_dashboard.json.tftpl"' in source
    for name in ("title", "metric_prefix", "queue_filter", "service_filter"):
        assert f"{name}=" in source
    assert "jsonencode(value)" in source  # each value escaped for a JSON string


def test_the_monitoring_files_have_no_tabs_or_trailing_spaces() -> None:
    for path in (MONITORING, VARIABLES, DASHBOARD):
        lines = Path(path).read_text().splitlines()
        assert not any("\t" in line for line in lines), f"{path.name} has tabs"
        assert not any(line != line.rstrip() for line in lines), f"{path.name} has trailing spaces"
