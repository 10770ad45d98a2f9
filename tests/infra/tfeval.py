"""The module's provider-free parts evaluated by Terraform itself, so `terraform apply` of a root holding them needs
no credentials and no download, and reports either the outputs or the plan's errors (validation and precondition
messages). Only where a terraform binary is on PATH: it is on no package registry this project installs from.

- the manifest submodule (infra/modules/oncetask/manifest): no provider, no resource; a root calls it;
- the access decisions (infra/modules/oncetask/access.tf) with the module's variables.tf: a root made of copies of
  those two files, which must then reference nothing else of the module (no resource, no data source), plus an
  output of the locals the module's resources read.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from .terraform import FIXTURE_BUNDLE, MODULE_DIR

MANIFEST_MODULE = MODULE_DIR / "manifest"
ROOT = """\
variable "path" {
  type = string
}

variable "dispatch_deadline_seconds" {
  type = number
}

module "manifest" {
  source                    = "%s"
  path                      = var.path
  dispatch_deadline_seconds = var.dispatch_deadline_seconds
}

output "manifest" {
  value = module.manifest
}
"""
ACCESS_FILES = ("variables.tf", "access.tf")
ACCESS_OUTPUT = """\
output "access" {
  value = {
    env                     = local.api_access_env
    api_public_invoker      = local.api_public_invoker
    firestore_rules_file    = local.firestore_rules_file
    firestore_rules_release = local.firestore_rules_release
  }
}
"""
# The module's variables without a default.
REQUIRED = {"project_id": "shop-prod", "source_dir": str(FIXTURE_BUNDLE)}


class PlanFailed(AssertionError):
    """Terraform refused the input; the message is what it printed."""


@dataclass
class TerraformRoot:
    """A root module in `directory`, initialised once (it needs no provider)."""

    directory: Path
    terraform: str

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        # An empty CLI configuration (no ~/.terraformrc needed), no update check, no colours in messages.
        env = {**os.environ, "TF_CLI_CONFIG_FILE": os.devnull, "CHECKPOINT_DISABLE": "1", "TF_IN_AUTOMATION": "1"}
        return subprocess.run([self.terraform, *args, "-no-color"], cwd=self.directory, capture_output=True,
                              text=True, env=env, timeout=120)

    def apply(self, variables: dict[str, Any], output: str) -> Any:
        """The value of `output` after an apply with these variables (JSON-encoded, so objects and lists pass as
        they are); PlanFailed with Terraform's messages, whitespace collapsed, if it refuses them."""
        var_file = self.directory / "inputs.tfvars.json"
        var_file.write_text(json.dumps(variables))
        applied = self.run("apply", "-auto-approve", "-input=false", "-lock=false", f"-var-file={var_file.name}")
        if applied.returncode != 0:
            raise PlanFailed(" ".join((applied.stderr + applied.stdout).split()))
        shown = self.run("output", "-json", output)
        assert shown.returncode == 0, shown.stderr
        return json.loads(shown.stdout)


@dataclass
class ManifestModule(TerraformRoot):
    """A root calling the manifest submodule."""

    def evaluate(self, manifest: Path | dict[str, Any], dispatch_deadline_seconds: float = 600) -> dict[str, Any]:
        """The submodule's outputs for this manifest (a file, or a dict written to one); PlanFailed with
        Terraform's messages if it refuses it."""
        if isinstance(manifest, dict):
            path = self.directory / "manifest.json"
            path.write_text(json.dumps(manifest))
        else:
            path = manifest
        return self.apply({"path": str(path), "dispatch_deadline_seconds": dispatch_deadline_seconds}, "manifest")


@dataclass
class AccessDecisions(TerraformRoot):
    """A root of the module's variables.tf and access.tf: its variables' validations and the access locals."""

    def evaluate(self, **variables: Any) -> dict[str, Any]:
        """The access locals for these module variables (the required ones filled in); PlanFailed with the
        validation's message if a variable is refused."""
        return self.apply({**REQUIRED, **variables}, "access")


def _terraform() -> str:
    terraform = shutil.which("terraform")
    if terraform is None:
        pytest.skip("no terraform binary on PATH (it is on no registry this project installs from): the module's "
                    "logic is only checked statically")
    return terraform


def _initialised(root: TerraformRoot) -> None:
    initialised = root.run("init", "-input=false", "-backend=false")
    assert initialised.returncode == 0, initialised.stderr + initialised.stdout


@pytest.fixture(scope="session")
def manifest_module(tmp_path_factory: pytest.TempPathFactory) -> ManifestModule:
    terraform = _terraform()
    directory = tmp_path_factory.mktemp("manifest-module")
    (directory / "main.tf").write_text(ROOT % MANIFEST_MODULE.as_posix())
    module = ManifestModule(directory, terraform)
    _initialised(module)
    return module


@pytest.fixture(scope="session")
def access_decisions(tmp_path_factory: pytest.TempPathFactory) -> AccessDecisions:
    terraform = _terraform()
    directory = tmp_path_factory.mktemp("access-decisions")
    for name in ACCESS_FILES:
        shutil.copyfile(MODULE_DIR / name, directory / name)
    (directory / "outputs.tf").write_text(ACCESS_OUTPUT)
    root = AccessDecisions(directory, terraform)
    _initialised(root)
    return root
