"""The manifests the Terraform tests read: the reference app's (what `oncetask bundle --app catalog:app` writes into
the bundle the reference deployment applies) and the fixture bundle's (its shop app's), both through JSON as the
bundle stores them. `python -m tests.infra.manifests` writes the fixture's oncetask.json again after a change
of App.manifest() or of the shop app."""

from __future__ import annotations

import importlib.util
import json
import sys
from typing import Any

import oncetask
from oncetask.settings import Settings

from .terraform import FIXTURE_BUNDLE

FIXTURE_MANIFEST = FIXTURE_BUNDLE / "oncetask.json"
# What the fixture's app was bundled with: a stack prefix of its own, and its callbacks queue under it.
FIXTURE_SETTINGS = {"queue_prefix": "shop", "callback_queue": "shop-callbacks"}


def as_bundled(app: oncetask.App, **settings: Any) -> dict[str, Any]:
    """The manifest of `app` under a deployment's settings (defaults, or these), without reconfiguring the app."""
    fresh = oncetask.App(app.name, settings=Settings(**settings), lanes=tuple(app.lanes.values()),
                         default_lane=app.default_lane).include(app)
    return json.loads(json.dumps(fresh.manifest()))


def reference_manifest() -> dict[str, Any]:
    from catalog import app  # noqa: PLC0415 - the example project, installed by scripts/setup

    return as_bundled(app)


def shop_app() -> oncetask.App:
    """The fixture bundle's app, loaded from its file (the fixture directory is not put on sys.path: its
    oncetask/ is a stand-in that must not shadow the real package)."""
    spec = importlib.util.spec_from_file_location("fixture_shop", FIXTURE_BUNDLE / "shop" / "__init__.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.app


def fixture_manifest_expected() -> dict[str, Any]:
    return as_bundled(shop_app(), **FIXTURE_SETTINGS)


def write_fixture_manifest() -> None:
    FIXTURE_MANIFEST.write_text(json.dumps(fixture_manifest_expected(), indent=2, sort_keys=True) + "\n")


if __name__ == "__main__":
    write_fixture_manifest()
    sys.stdout.write(f"wrote {FIXTURE_MANIFEST}\n")
