"""Which app a command runs, and loading it so that a wrong one is said in one sentence, not a traceback.

The app is `--app module:attribute`, else the `[tool.oncetask] app` of the project's pyproject.toml, else the
command's default (the built-in examples, for `oncetask dev` and `oncetask demo`). It is imported as the
functions will import it: from the project's directory (on sys.path first, as `python -m` puts the current one).
"""

from __future__ import annotations

import sys
import tomllib
import traceback
from pathlib import Path
from typing import Any

from oncetask import App, DefinitionError, load_app


class AppError(Exception):
    """The app cannot be found, loaded or checked; the message says which and why (the CLI exits 2)."""


def read_pyproject(project: Path) -> dict[str, Any] | None:
    """The project's pyproject.toml as a dict; None if it has none; AppError if it is not valid TOML."""
    path = project / "pyproject.toml"
    if not path.is_file():
        return None
    try:
        return tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise AppError(f"{path} is not valid TOML: {exc}") from exc


def configured_app(pyproject: dict[str, Any] | None) -> str | None:
    """`[tool.oncetask] app = "module:attribute"`, if the project says which app it is."""
    app = ((pyproject or {}).get("tool") or {}).get("oncetask", {}).get("app")
    return app if isinstance(app, str) and app else None


def resolve(given: str | None, project: Path, default: str | None) -> str:
    """The app reference a command runs: given, else the project's configured one, else `default`."""
    reference = given or configured_app(read_pyproject(project)) or default
    if reference is None:
        raise AppError(f"which app? Pass --app module:attribute, or set [tool.oncetask] app = \"module:attribute\" "
                       f"in {project / 'pyproject.toml'}")
    return reference


def importable_from(*directories: Path) -> None:
    """Put the project's directories first on sys.path (as `python -m` puts the current one), once each."""
    for directory in reversed(directories):
        entry = str(directory.resolve())
        if entry in sys.path:
            sys.path.remove(entry)
        sys.path.insert(0, entry)


def load_checked(reference: str) -> App:
    """The App named by `reference`, with every definition checked; AppError naming what is wrong."""
    try:
        return load_app(reference).validate()
    except LookupError as exc:  # the module or attribute is not there, or is not an App
        raise AppError(f"--app {reference}: {exc}") from None
    except DefinitionError as exc:  # names the job type and the problem
        raise AppError(f"--app {reference}: {exc}") from None
    except ModuleNotFoundError as exc:  # the module is there, but something it imports is not installed
        hint = " (not installed in this environment)" if str(exc) == f"No module named {exc.name!r}" else ""
        raise AppError(f"--app {reference}: importing it failed: {exc}{hint}") from None
    except Exception as exc:  # noqa: BLE001 - the project's own code failed at import: show where, in its code
        raise AppError(f"--app {reference}: importing it raised {_in_project_code(exc)}") from None


def _in_project_code(exc: BaseException) -> str:
    """The exception with the frames of the importing project's code only (not the import machinery's)."""
    frames = traceback.extract_tb(exc.__traceback__)
    machinery = [i for i, frame in enumerate(frames) if frame.filename.startswith("<frozen importlib")]
    shown = traceback.StackSummary.from_list(frames[machinery[-1] + 1:] if machinery else frames)
    return "".join(traceback.format_exception_only(exc)).strip() + "\n" + "".join(shown.format()).rstrip()


__all__ = ["AppError", "configured_app", "importable_from", "load_checked", "read_pyproject", "resolve"]
