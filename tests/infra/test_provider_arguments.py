"""infra/tools/check_provider_arguments.py knows every Google resource type the module and the roots use, and, where
a checkout of hashicorp/terraform-provider-google is at hand, finds every argument path they set (the Firestore
rules' ruleset and release included) in the provider's schema at each release the constraints admit."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from .terraform import MODULE_DIR, REPO, ROOTS, load_module

CHECKER = REPO / "infra" / "tools" / "check_provider_arguments.py"
CHECKOUT_VARIABLE = "TERRAFORM_PROVIDER_GOOGLE_CHECKOUT"  # a git clone with its release tags
TAGS = ["v5.40.0", "v6.50.0"]  # the oldest release the constraint admits, and the newest checked


def checker() -> ModuleType:
    """The tool, loaded from its file (infra/tools is no package); registered first, as its dataclasses need."""
    if "check_provider_arguments" in sys.modules:
        return sys.modules["check_provider_arguments"]
    spec = importlib.util.spec_from_file_location("check_provider_arguments", CHECKER)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def google_types_used() -> set[str]:
    kinds = set()
    for config in [load_module(MODULE_DIR), *(load_module(root) for root in ROOTS)]:
        kinds |= {kind for kind, _ in config.resources if kind.startswith("google_")}
        kinds |= {f"data.{kind}" for kind, _ in config.data if kind.startswith("google_")}
    return kinds


def test_the_checker_knows_every_google_resource_type_used() -> None:
    unknown = google_types_used() - set(checker().SOURCES)
    assert not unknown, f"add their schema source files to SOURCES in {CHECKER.name}: {sorted(unknown)}"
    assert {"google_firebaserules_ruleset", "google_firebaserules_release"} <= google_types_used()


def test_every_argument_path_is_in_the_providers_schema(capsys: pytest.CaptureFixture[str]) -> None:
    checkout = os.environ.get(CHECKOUT_VARIABLE, "")
    if not checkout:
        pytest.skip(f"set {CHECKOUT_VARIABLE} to a clone of hashicorp/terraform-provider-google (with its tags) "
                    "to check the arguments against the provider's schema: no provider can be downloaded here")
    tags = subprocess.run(["git", "-C", checkout, "tag", "--list", *TAGS], capture_output=True, text=True,
                          check=True).stdout.split()
    assert sorted(tags) == sorted(TAGS), f"{checkout} lacks the tags {sorted(set(TAGS) - set(tags))}"
    status = checker().main(Path(checkout), TAGS)
    report = capsys.readouterr().out
    assert status == 0, report
    assert "not resolved" not in report, report
