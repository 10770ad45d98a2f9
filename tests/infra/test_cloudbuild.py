"""cloudbuild.yaml: runs the README's test command, builds the bundle, checks it imports, then plans and applies the
reference root, with pinned images and substitutions only where Cloud Build documents them (steps)."""

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


def test_steps_run_in_order_test_bundle_package_plan_apply(build: dict) -> None:
    assert [s["id"] for s in build["steps"]] == ["test", "bundle", "package", "terraform-plan", "terraform-apply"]
    assert not any("waitFor" in s for s in build["steps"])  # sequential: nothing deploys before the tests pass


def test_bundle_step_bundles_the_reference_app_where_the_root_reads_it(build: dict) -> None:
    script = "\n".join(step(build, "bundle")["args"])
    assert "oncetask bundle --app catalog:app --project examples/catalog --out build/bundle" in script
    plan = "\n".join(step(build, "terraform-plan")["args"])
    assert '-var="bundle_dir=../../build/bundle"' in plan
    assert step(build, "terraform-plan")["dir"] == "infra/terraform"


def test_package_step_imports_the_bundle_with_its_own_requirements_only(build: dict) -> None:
    script = "\n".join(step(build, "package")["args"])
    assert "pip install --quiet -r build/bundle/requirements.txt" in script
    assert "cd build/bundle && /tmp/runtime/bin/python -c \"import main" in script


def test_every_image_is_pinned_to_a_full_version(build: dict) -> None:
    for s in build["steps"]:
        match = re.fullmatch(r"(?P<image>[\w./-]+):(?P<tag>[\w.-]+)", s["name"])
        assert match, f"step {s['id']}: image {s['name']!r} has no tag"
        assert re.match(r"\d+\.\d+\.\d+(-|$)", match["tag"]), f"step {s['id']}: {s['name']} is not a full version"
    assert "how to bump" in BUILD.read_text().lower() or "to bump one" in BUILD.read_text().lower()


def test_terraform_image_satisfies_the_roots_required_version(build: dict) -> None:
    from .terraform import REFERENCE_ROOT, load_module, text  # noqa: PLC0415

    tag = step(build, "terraform-plan")["name"].split(":")[1]
    assert step(build, "terraform-apply")["name"] == step(build, "terraform-plan")["name"]
    required = text(load_module(REFERENCE_ROOT).terraform[0]["required_version"])
    assert required == ">= 1.5" and tuple(map(int, tag.split("."))) >= (1, 5, 0)


def test_substitutions_appear_only_in_steps(build: dict) -> None:
    """Cloud Build documents substitutions in a build's steps and images; elsewhere they are not expanded."""
    outside = {key: value for key, value in build.items() if key not in {"steps", "substitutions", "images"}}
    assert not re.search(r"\$\{?[A-Z_]+\}?", yaml.safe_dump(outside)), outside
    assert "dynamic_substitutions" not in build.get("options", {})


def test_terraform_takes_project_region_and_state_bucket_from_substitutions(build: dict) -> None:
    plan = step(build, "terraform-plan")
    assert "TF_VAR_project_id=${PROJECT_ID}" in plan["env"]
    assert "TF_VAR_region=${_REGION}" in plan["env"]
    assert "TF_STATE_BUCKET=${_TF_STATE_BUCKET}" in plan["env"]
    script = "\n".join(plan["args"])
    # $$ is a literal $ for the shell: Cloud Build leaves it alone.
    assert '-backend-config="bucket=$$TF_STATE_BUCKET"' in script
    # The apply applies exactly the plan the build just made.
    assert "terraform apply -input=false tfplan" in " ".join(step(build, "terraform-apply")["args"])
    assert build["substitutions"]["_TF_STATE_BUCKET"] == ""  # no bucket name committed


def test_no_secret_in_the_build() -> None:
    content = BUILD.read_text()
    assert "PRIVATE KEY" not in content
    assert not re.search(r"(?i)(password|secret|token|api[_-]?key)\s*[:=]", content)
