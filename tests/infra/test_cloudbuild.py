"""cloudbuild.yaml: runs the README's test command, packages functions/, applies Terraform with substitutions."""

from __future__ import annotations

import re
import shlex

import pytest
import yaml

from .terraform import REPO

BUILD = REPO / "cloudbuild.yaml"


def readme_test_command() -> str:
    """The test command of the README's shell code block (so the build and the README cannot drift)."""
    readme = (REPO / "README.md").read_text()
    commands = []
    for code in re.findall(r"```(?:bash|sh|shell)\n(.*?)```", readme, flags=re.S):
        for line in code.splitlines():
            line = line.split(" #")[0].strip()  # a trailing comment explains the command; it is not part of it
            if line and not line.startswith("#") and re.search(r"\btest\b", line):
                commands.append(line)
    assert len(commands) == 1, f"expected one test command in README.md's code blocks, found {commands}"
    return commands[0]


@pytest.fixture(scope="module")
def build() -> dict:
    return yaml.safe_load(BUILD.read_text())


def step(build: dict, step_id: str) -> dict:
    steps = [s for s in build["steps"] if s.get("id") == step_id]
    assert len(steps) == 1, f"no single step {step_id!r} in cloudbuild.yaml"
    return steps[0]


def command_of(step: dict) -> str:
    return shlex.join([step.get("entrypoint", ""), *step.get("args", [])]).strip()


def test_test_step_is_the_readme_test_command(build: dict) -> None:
    assert command_of(step(build, "test")) == readme_test_command()


def test_steps_run_in_order_test_package_plan_apply(build: dict) -> None:
    assert [s["id"] for s in build["steps"]] == ["test", "package", "terraform-plan", "terraform-apply"]
    assert not any("waitFor" in s for s in build["steps"])  # sequential: nothing deploys before the tests pass


def test_package_step_imports_functions_with_runtime_requirements_only(build: dict) -> None:
    script = "\n".join(step(build, "package")["args"])
    assert "pip install --quiet -r functions/requirements.txt" in script
    assert "import main" in script


def test_terraform_takes_project_region_and_state_bucket_from_substitutions(build: dict) -> None:
    plan = "\n".join(step(build, "terraform-plan")["args"])
    assert '-var="project_id=${PROJECT_ID}"' in plan
    assert '-var="region=${_REGION}"' in plan
    assert '-backend-config="bucket=${_TF_STATE_BUCKET}"' in plan
    assert step(build, "terraform-plan")["dir"] == "infra/terraform"
    # The apply applies exactly the plan the build just made.
    assert "terraform apply -input=false tfplan" in " ".join(step(build, "terraform-apply")["args"])
    assert build["substitutions"]["_TF_STATE_BUCKET"] == ""  # no bucket name committed


def test_no_secret_in_the_build() -> None:
    content = BUILD.read_text()
    assert "PRIVATE KEY" not in content
    assert not re.search(r"(?i)(password|secret|token|api[_-]?key)\s*[:=]", content)
