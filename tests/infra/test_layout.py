"""The module reads like Google's terraform-google-modules (every input and output described and typed, and
documented in its README; no provider or backend of its own); its provider constraints are the ones the code was
checked against; both roots deploy it with a bundle; everything is `terraform fmt` clean."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from .terraform import (EXAMPLE_ROOT, MODULE_DIR, REFERENCE_ROOT, REPO, ROOTS, Module, block, load_module, ref,
                        squash, text)

README = MODULE_DIR / "README.md"
BUNDLE_COMMAND = "oncetask bundle --app catalog:app"


@pytest.fixture(scope="module")
def module() -> Module:
    return load_module()


def required_providers(directory: Path) -> dict[str, dict[str, str]]:
    [settings] = [t for t in load_module(directory).terraform if "required_providers" in t]
    return {name: {k: text(v) for k, v in spec.items()}
            for name, spec in block(settings, "required_providers").items()}


def test_every_input_has_a_description_and_a_type(module: Module) -> None:
    for name, variable in module.variables.items():
        assert text(variable.get("description", '""')).strip(), f"variable {name} has no description"
        assert "type" in variable, f"variable {name} has no type"


def test_every_output_has_a_description(module: Module) -> None:
    assert module.outputs
    for name, output in module.outputs.items():
        assert text(output.get("description", '""')).strip(), f"output {name} has no description"


def test_the_readme_documents_every_input_and_output_and_an_example(module: Module) -> None:
    readme = README.read_text()
    for name in [*module.variables, *module.outputs]:
        assert re.search(rf"^\| `{name}` \|", readme, flags=re.M), f"README.md does not document {name}"
    assert re.search(r'^  source\s+= "git::', readme, flags=re.M), "README.md has no example of the module's use"
    assert BUNDLE_COMMAND.split(" --app")[0] in readme


def test_the_module_configures_no_provider_and_no_backend(module: Module) -> None:
    for path in MODULE_DIR.glob("*.tf"):
        content = path.read_text()
        assert not re.search(r'^provider\s+"', content, flags=re.M), f"{path.name} configures a provider"
    assert "backend" not in "".join(str(t) for t in module.terraform), "the module declares a backend"


@pytest.mark.parametrize("directory", [MODULE_DIR, *ROOTS], ids=lambda p: str(p.relative_to(REPO)))
def test_provider_constraints_are_the_versions_the_code_was_checked_against(directory: Path) -> None:
    providers = required_providers(directory)
    assert providers["google"] == {"source": "hashicorp/google", "version": ">= 5.40, < 7.0"}
    # Glob patterns in archive_file's excludes arrived in 2.5.0: before, "**/__pycache__" matched nothing.
    assert providers["archive"] == {"source": "hashicorp/archive", "version": ">= 2.5"}
    assert providers["time"]["source"] == "hashicorp/time"


@pytest.mark.parametrize("root", ROOTS, ids=lambda p: str(p.relative_to(REPO)))
def test_each_root_deploys_the_module_with_a_bundle(root: Path) -> None:
    deployment = load_module(root)
    assert set(deployment.modules) == {"oncetask"}
    call = deployment.modules["oncetask"]
    assert (root / text(call["source"])).resolve() == MODULE_DIR
    assert "/build/bundle" in text(call["source_dir"])
    # The root holds no queue settings and no resources: the bundle and the module decide them.
    assert not deployment.resources
    assert not {"max_attempts", "queue_name", "min_backoff_seconds"} & set(call)
    # Its comment says how the bundle is built.
    assert BUNDLE_COMMAND in (root / "main.tf").read_text()
    [settings] = [t for t in deployment.terraform if "backend" in t]
    assert list(block(settings, "backend")) == ["gcs"]


def test_the_reference_root_reads_the_bundle_cloud_build_writes() -> None:
    call = load_module(REFERENCE_ROOT).modules["oncetask"]
    assert squash(ref(call["source_dir"])) == squash(
        'var.bundle_dir != "" ? var.bundle_dir : "${path.root}/../../build/bundle"')
    assert "--project examples/catalog --out build/bundle" in (REFERENCE_ROOT / "main.tf").read_text()


def test_the_example_root_reads_its_projects_bundle() -> None:
    call = load_module(EXAMPLE_ROOT).modules["oncetask"]
    assert text(call["source_dir"]) == "${path.root}/../build/bundle"
    assert text(call["name_prefix"]) == "catalog"


@pytest.mark.parametrize("root", ROOTS, ids=lambda p: str(p.relative_to(REPO)))
def test_no_root_opens_the_api_to_everyone(root: Path) -> None:
    """A public API is a reviewed change of a root, never a variable's value: the roots pass no public opt-in, and
    Firebase sign-in (which opens the invoker) only from a root variable that is off by default."""
    deployment = load_module(root)
    call = deployment.modules["oncetask"]
    public = {"allow_unauthenticated_api_calls", "allow_public_api_invoker", "allow_anonymous_submissions"}
    assert not public & set(call)
    assert ref(call["firebase_auth"]) == "var.firebase_auth"
    assert deployment.variables["firebase_auth"]["default"] is None
    assert ref(call["operators"]) == "var.operators"
    assert deployment.variables["operators"]["default"] == []


@pytest.mark.parametrize("root", ROOTS, ids=lambda p: str(p.relative_to(REPO)))
def test_each_root_releases_the_repositorys_firestore_rules(root: Path) -> None:
    rules = text(load_module(root).modules["oncetask"]["firestore_rules_file"])
    assert rules.startswith("${path.root}/")
    assert (root / rules.removeprefix("${path.root}/")).resolve() == REPO / "firestore.rules"


def test_everything_is_terraform_fmt_clean() -> None:
    terraform = shutil.which("terraform")
    if terraform is None:
        pytest.skip("no terraform binary on PATH (it is not on PyPI, npm or Debian): only the parse is checked")
    directories = [str(p.relative_to(REPO)) for p in (MODULE_DIR, *ROOTS)]
    # An empty CLI configuration: fmt needs no providers, and a missing ~/.terraformrc only adds warnings.
    env = {**os.environ, "TF_CLI_CONFIG_FILE": os.devnull, "CHECKPOINT_DISABLE": "1"}
    result = subprocess.run([terraform, "fmt", "-check", "-diff", "-recursive", *directories], cwd=REPO,
                            capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_moved_block_of_the_reference_root_lands_on_a_resource_of_the_module(module: Module) -> None:
    """A stack applied before the module existed keeps its resources: each old address moves to one that exists."""
    import hcl2  # noqa: PLC0415

    moves = hcl2.load((REFERENCE_ROOT / "moved.tf").open())["moved"]
    assert moves
    for move in moves:
        target = ref(move["to"])
        match = re.fullmatch(r'module\.oncetask\.(\w+)\.(\w+)(\[0\]|\["[^"]+"\])?', target)
        assert match, target
        kind, name, index = match.groups()
        body = module.resource(kind, name)
        assert ref(move["from"]) == f"{kind}.{name}", f"{move['from']} moves to a resource of another name"
        if "count" in body:
            assert index == "[0]", target
        elif "for_each" in body and ref(body["for_each"]) in {"module.manifest.job_queues",
                                                                 "google_cloud_tasks_queue.jobs", "local.all_queues"}:
            assert index == '["oncetask-jobs"]', target  # the one queue of those stacks (manifest version 1)
        else:
            assert index is None, target  # a plain resource, or a for_each moved whole (same keys)


@pytest.mark.parametrize("directory", [MODULE_DIR, MODULE_DIR / "manifest", *ROOTS], ids=lambda d: d.name)
def test_every_local_and_variable_a_configuration_reads_is_defined_in_it(directory: Path) -> None:
    """What `terraform validate` would catch first (and cannot run here without providers): a reference to a local
    or a variable that no file of the directory defines, e.g. after a rename in one file only."""
    config = load_module(directory)
    text = "\n".join(path.read_text() for path in sorted(directory.glob("*.tf")))
    text = re.sub(r"#[^\n]*", "", text)  # comments may name things that do not exist
    assert sorted(set(re.findall(r"\blocal\.(\w+)", text)) - set(config.locals)) == []
    assert sorted(set(re.findall(r"\bvar\.(\w+)", text)) - set(config.variables)) == []
