"""The manifest submodule (infra/modules/oncetask/manifest) evaluated by Terraform itself: it has no provider and no
resource, so `terraform apply` of a root that calls it needs no credentials and no download, and reports either
the module's outputs or the plan's errors (its preconditions' messages). Only where a terraform binary is on PATH:
it is on no package registry this project installs from."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from .terraform import MODULE_DIR

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


class PlanFailed(AssertionError):
    """Terraform refused the manifest; the message is what it printed."""


@dataclass
class ManifestModule:
    """A root calling the manifest submodule, initialised once in `directory`."""

    directory: Path
    terraform: str

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        # An empty CLI configuration (no ~/.terraformrc needed), no update check, no colours in messages.
        env = {**os.environ, "TF_CLI_CONFIG_FILE": os.devnull, "CHECKPOINT_DISABLE": "1", "TF_IN_AUTOMATION": "1"}
        return subprocess.run([self.terraform, *args, "-no-color"], cwd=self.directory, capture_output=True,
                              text=True, env=env, timeout=120)

    def evaluate(self, manifest: Path | dict[str, Any], dispatch_deadline_seconds: float = 600) -> dict[str, Any]:
        """The submodule's outputs for this manifest (a file, or a dict written to one); PlanFailed with
        Terraform's messages if it refuses it."""
        if isinstance(manifest, dict):
            path = self.directory / "manifest.json"
            path.write_text(json.dumps(manifest))
        else:
            path = manifest
        variables = ["-var", f"path={path}", "-var", f"dispatch_deadline_seconds={dispatch_deadline_seconds:g}"]
        applied = self._run("apply", "-auto-approve", "-input=false", "-lock=false", *variables)
        if applied.returncode != 0:
            raise PlanFailed(" ".join((applied.stderr + applied.stdout).split()))
        shown = self._run("output", "-json", "manifest")
        assert shown.returncode == 0, shown.stderr
        return json.loads(shown.stdout)


@pytest.fixture(scope="session")
def manifest_module(tmp_path_factory: pytest.TempPathFactory) -> ManifestModule:
    terraform = shutil.which("terraform")
    if terraform is None:
        pytest.skip("no terraform binary on PATH (it is on no registry this project installs from): the manifest "
                    "module's logic is only checked statically")
    directory = tmp_path_factory.mktemp("manifest-module")
    (directory / "main.tf").write_text(ROOT % MANIFEST_MODULE.as_posix())
    module = ManifestModule(directory, terraform)
    initialised = module._run("init", "-input=false", "-backend=false")
    assert initialised.returncode == 0, initialised.stderr + initialised.stdout
    return module
