"""pytest fixtures for testing your oncetask app against the faithful local emulators.

Name your app once, in pyproject.toml (or override the `oncetask_app` fixture):

    [tool.pytest.ini_options]
    oncetask_app = "catalog:app"

then test a job through the real processor in a few lines:

    def test_thumbnails(oncetask_runner):
        source = oncetask_runner.upload("in/cat.png", png_bytes)
        job = oncetask_runner.submit("image.thumbnails", {"source": source, "widths": [64]}, key="cat")
        done = oncetask_runner.run(job)
        assert done.state is oncetask.JobState.COMPLETED and done.outputs["manifest"]["count"] == 1

Fixtures (all prefixed `oncetask_`, so they never shadow yours; their types, for hints, are in
`oncetask_dev.testing`):

| fixture | scope | gives |
|---|---|---|
| `oncetask_app` | session | your `oncetask.App`, from the `oncetask_app` ini option or `--oncetask-app module:attr` |
| `oncetask_emulators` | session | Firestore, Cloud Tasks and Storage emulators (`testing.Emulators`), started once, in memory |
| `oncetask_runner` | test | `testing.Runner`: your app in this process on a fresh project, queue and bucket: `submit()`, `run()` (the real processor, synchronously), `job()`, `result()`, `dead_letter()`, `upload()`, `read()`, `stages()` |
| `oncetask_stack` | session | `testing.StackHandle`: a whole local stack serving your app over HTTP (`api_url`, `submit()`, `wait()`, `upload()`); slower (a few seconds to start) |
| `oncetask_settings` | test | `oncetask.Settings` fields for the runner, from `@pytest.mark.oncetask_settings(...)`; override it in a conftest for a directory |
| `oncetask_stack_options` | session | keyword arguments of `oncetask_dev.stack.StackOptions` for `oncetask_stack`; override to change them |

`@pytest.mark.oncetask_settings(max_attempts=2, lease_ttl_seconds=5)` gives one test's runner other settings
(`oncetask.Settings` field names). `oncetask_runner.stages(job_type, payload)` runs one job's stages by hand, one
at a time, to unit-test a stage (a rerun, a `check` that raises `oncetask.LeaseLost`).

Loading this plugin costs nothing: it imports no Google library, and starts nothing until a test asks for one of
its fixtures.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    import oncetask

    from .testing import Emulators, Runner, StackHandle

INI_APP = "oncetask_app"
SETTINGS_MARK = "oncetask_settings"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini(INI_APP, "the oncetask App your tests run, as module:attribute (e.g. catalog:app)", default="")
    parser.addoption("--oncetask-app", dest="oncetask_app", default=None, metavar="MODULE:ATTR",
                     help="the oncetask App your tests run (overrides the oncetask_app ini option)")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", f"{SETTINGS_MARK}(**settings): oncetask.Settings fields for this test's "
                                       "oncetask_runner (e.g. max_attempts=2)")


# The app ------------------------------------------------------------------------------------------------------

def app_reference(config: pytest.Config) -> str:
    """`--oncetask-app`, else the `oncetask_app` ini option; empty if neither is set."""
    return (config.getoption("oncetask_app") or config.getini(INI_APP) or "").strip()


@pytest.fixture(scope="session")
def oncetask_app(pytestconfig: pytest.Config) -> oncetask.App:
    """Your app, named by `--oncetask-app` or the `oncetask_app` ini option, checked (every job type complete).
    Override this fixture (scope="session") to build one in code instead."""
    from oncetask import App, DefinitionError, load_app  # noqa: PLC0415 - nothing heavy before a test asks

    reference = app_reference(pytestconfig)
    if not reference:
        pytest.fail("the oncetask fixtures need your app: set `oncetask_app = \"module:attr\"` under "
                    "[tool.pytest.ini_options] in pyproject.toml, pass --oncetask-app module:attr, or override "
                    "the `oncetask_app` fixture", pytrace=False)
    try:
        app = load_app(reference)
        App(app.name).include(app).validate()  # checked on a copy: your app keeps the settings it had (none)
        return app
    except (LookupError, DefinitionError) as exc:
        pytest.fail(f"oncetask_app = {reference!r}: {exc}", pytrace=False)


# The emulators ----------------------------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def oncetask_emulators() -> Iterator[Emulators]:
    """The project's Firestore, Cloud Tasks and Storage emulators, started once per session (in memory, free
    ports) and stopped at its end. Nothing is set in the environment: runners are pointed at them by settings
    (`oncetask_emulators.env` has the standard variables, for code of yours that builds its own clients)."""
    from .testing import Emulators  # noqa: PLC0415

    emulators = Emulators.start()
    try:
        yield emulators
    finally:
        emulators.stop()


# The runner ----------------------------------------------------------------------------------------------------

@pytest.fixture
def oncetask_settings(request: pytest.FixtureRequest) -> dict[str, Any]:
    """`oncetask.Settings` fields (by name) for this test's runner: those of `@pytest.mark.oncetask_settings(...)`
    marks, the closest mark winning. Override it in a conftest to set them for a whole directory."""
    settings: dict[str, Any] = {}
    for mark in reversed(list(request.node.iter_markers(SETTINGS_MARK))):
        if mark.args:
            pytest.fail(f"@pytest.mark.{SETTINGS_MARK} takes settings by name, e.g. max_attempts=2", pytrace=False)
        settings.update(mark.kwargs)
    if settings:
        from oncetask import Settings  # noqa: PLC0415

        unknown = sorted(set(settings) - set(Settings.model_fields))
        if unknown:  # said before the emulators start
            pytest.fail(f"oncetask_settings: unknown settings {unknown}; see oncetask.Settings for their names",
                        pytrace=False)
    return settings


@pytest.fixture
def oncetask_runner(oncetask_settings: dict[str, Any], oncetask_app: oncetask.App,
                    oncetask_emulators: Emulators) -> Iterator[Runner]:
    """Your app in this process for one test: a fresh Firestore project, a paused queue and a fresh bucket on the
    session's emulators. `submit()` as the API, `run()` through the real processor, then look at the job, its
    result, its dead letter and its artifacts. Settings from `oncetask_settings`."""
    from .testing import Runner  # noqa: PLC0415

    try:
        runner = Runner(oncetask_app, oncetask_emulators, **oncetask_settings)
    except (TypeError, ValueError) as exc:  # an unknown setting, or a value the settings refuse
        pytest.fail(f"oncetask_settings {oncetask_settings}: {exc}", pytrace=False)
    try:
        yield runner
    finally:
        runner.close()


# The local stack ------------------------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def oncetask_stack_options() -> dict[str, Any]:
    """`StackOptions` for `oncetask_stack`: backoffs 100 times faster, no cleanup unless a test triggers it.
    Override (scope="session") to change them, e.g. `{"env": {"ONCETASK_LEASE_TTL_SECONDS": "5"}}`."""
    return {"time_scale": 0.01, "cleanup_interval": 3600.0}


@pytest.fixture(scope="session")
def oncetask_stack(oncetask_app: oncetask.App, oncetask_stack_options: dict[str, Any],
                   pytestconfig: pytest.Config) -> Iterator[StackHandle]:
    """A whole local stack serving your app (the three emulators, the API, the task handler under gunicorn, the
    cleanup), as `oncetask dev --app` runs it, for tests through the HTTP API. Started once per session."""
    from .stack import LocalStack, StackOptions  # noqa: PLC0415
    from .testing import StackHandle  # noqa: PLC0415

    options = StackOptions(app=_served_reference(oncetask_app, app_reference(pytestconfig)),
                           **oncetask_stack_options)
    stack = LocalStack(options)
    stack.start()
    try:
        yield StackHandle(stack)
    finally:
        stack.stop()
    if stack.deaths:
        pytest.fail(f"a part of the oncetask stack died during the session: {stack.deaths}", pytrace=False)


def _served_reference(app: oncetask.App, configured: str) -> str:
    """The module:attribute the stack's processes import to serve `app`: the configured one if it names this very
    app, else the module-level name it is found under."""
    import sys  # noqa: PLC0415

    from oncetask import load_app  # noqa: PLC0415

    if configured:
        try:
            if load_app(configured) is app:
                return configured
        except LookupError:
            pass
    for module_name, module in list(sys.modules.items()):
        leaf = module_name.rpartition(".")[2]
        if module_name == "__main__" or leaf == "conftest" or leaf.startswith("test_"):
            continue  # not importable by another process as it is here
        for attribute, value in list(getattr(module, "__dict__", {}).items()):
            if value is app:
                return f"{module_name}:{attribute}"
    pytest.fail("oncetask_stack serves your app in other processes, which import it by module:attribute; this "
                "app is not a module-level name: set the oncetask_app ini option or define it at module level",
                pytrace=False)
