"""The catalog's tests use oncetask's pytest plugin (fixtures `oncetask_runner`, `oncetask_stack`, ...); the app
they run is named in pyproject.toml (`oncetask_app = "catalog:app"`)."""

# Until the plugin is registered as a pytest entry point by the oncetask-dev distribution, load it here.
pytest_plugins = ["oncetask_dev.pytest_plugin"]
