"""`oncetask bundle`: a project's app as a directory ready to be zipped as Cloud Run functions source.

    main.py            the three entry points (api, process_task, cleanup_stale_locks) of the app
    requirements.txt   oncetask's runtime dependencies and the project's (its pyproject.toml), without oncetask
    oncetask/          the oncetask runtime package, vendored as source (it is not on a package index yet)
    <packages>/        the project's packages: those its pyproject.toml declares, else the app module's own
    oncetask.json      app.manifest(): the queue and job types, which the Terraform module reads

The app is loaded (and its definitions checked) before anything is written, so a bundle that is written is one
whose main.py imports. The directory is built beside `out` and renamed into place: a failed bundle leaves the
previous one whole, and a package removed from the project does not linger in the next.
"""

from __future__ import annotations

import fnmatch
import importlib.metadata
import json
import shutil
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

import oncetask

from .appref import AppError, importable_from, load_checked, read_pyproject, resolve

MANIFEST = "oncetask.json"
# What never goes into a deployment: the development distribution and its packages.
DEVELOPMENT_DISTRIBUTIONS = frozenset({"oncetask-dev"})
DEVELOPMENT_PACKAGES = frozenset({"oncetask_dev", "oncetask_emulators"})
COPY_IGNORE = shutil.ignore_patterns("__pycache__", "*.py[co]", ".pytest_cache", "*.egg-info", ".mypy_cache")
# The runtime package as a wheel carries it: code and the status page, not the design notes.
RUNTIME_IGNORE = shutil.ignore_patterns("__pycache__", "*.py[co]", "*.md")
MAIN_TEMPLATE = '''"""The Cloud Run functions of {project}: the entry points of {app} (written by `oncetask bundle`).

- api:                 the public HTTP API (POST/GET /jobs, retry, cancel, healthz, openapi.json, the status page)
- process_task:        the Cloud Tasks target (one delivery of one job's task)
- cleanup_stale_locks: the Cloud Scheduler target
"""

{load}
api, process_task, cleanup_stale_locks = app.entry_points()
'''


class BundleError(AppError):
    """The project cannot be bundled as asked; the message says why (the CLI exits 2)."""


@dataclass(frozen=True)
class Bundle:
    out: Path
    app: str
    packages: tuple[str, ...]  # top-level packages and modules copied from the project
    requirements: tuple[str, ...]
    job_types: tuple[str, ...]


def write_bundle(project: Path, out: Path, app_reference: str | None = None) -> Bundle:
    """Bundle the project at `project` (its app: `app_reference`, else `[tool.oncetask] app`) into `out`."""
    project = project.resolve()
    out = out.resolve()
    pyproject = read_pyproject(project)
    if pyproject is None:
        raise BundleError(f"{project} has no pyproject.toml: the bundle takes the project's packages and runtime "
                          "dependencies from it ([project] dependencies, PEP 621)")
    table = pyproject.get("project")
    if not isinstance(table, dict):
        raise BundleError(f"{project / 'pyproject.toml'} has no [project] table (PEP 621): the bundle reads the "
                          "runtime dependencies from [project] dependencies")
    if "dependencies" in (table.get("dynamic") or ()):
        raise BundleError(f"{project / 'pyproject.toml'} declares its dependencies as dynamic: list them in "
                          "[project] dependencies, the bundle's requirements.txt is made from them")
    reference = resolve(app_reference, project, default=None)
    module_name = reference.partition(":")[0]
    top = module_name.split(".")[0]
    if top == "main":
        raise BundleError(f"--app {reference}: the bundle writes its own main.py; keep the app in a module of "
                          "another name (e.g. jobs.py or a package)")
    if top == "oncetask":
        raise BundleError(f"--app {reference}: the app must live in the project's code, not in oncetask")

    declared = declared_sources(project, pyproject)
    importable_from(*{source.parent for source in declared.values()}, project)
    app = load_checked(reference)
    test_only = development_job_types(app)
    if test_only:
        raise BundleError(f"--app {reference}: job types for tests and demos are never deployed, and this app "
                          f"includes {test_only} from the development tools (oncetask-dev): include only your "
                          "own job types in the app you deploy")
    sources = dict(declared)
    if top not in sources:
        sources[top] = _source_of(top, project)
    for name, source in sources.items():
        if out == source or source in out.parents:
            raise BundleError(f"--out {out} is inside the project's package {name} ({source}): choose a directory "
                              "outside it")
    requirements = merged_requirements(_runtime_requirements(), project_requirements(table))

    _check_out(out, project)
    building = out.with_name(f".{out.name}.building-{uuid.uuid4().hex[:8]}")
    building.mkdir(parents=True)
    try:
        shutil.copytree(Path(oncetask.__file__).parent, building / "oncetask", ignore=RUNTIME_IGNORE)
        for name, source in sorted(sources.items()):
            if source.is_dir():
                shutil.copytree(source, building / name, ignore=COPY_IGNORE)
            else:
                shutil.copy2(source, building / source.name)
        (building / "main.py").write_text(MAIN_TEMPLATE.format(
            project=table.get("name", project.name), app=reference, load=_load_line(reference)))
        header = (f"# Written by `oncetask bundle`: the runtime dependencies of oncetask {oncetask.__version__} "
                  f"(vendored in oncetask/)\n# and of {table.get('name', project.name)} (its pyproject.toml), "
                  "without oncetask itself.\n")
        (building / "requirements.txt").write_text(header + "".join(f"{line}\n" for line in requirements))
        (building / MANIFEST).write_text(json.dumps(app.manifest(), indent=2, sort_keys=True) + "\n")
        if out.exists():
            shutil.rmtree(out)  # an earlier bundle (checked above): replaced whole
        building.rename(out)
    finally:
        if building.exists():
            shutil.rmtree(building)
    return Bundle(out, reference, tuple(sorted(sources)), tuple(requirements), tuple(sorted(app.job_types())))


def _load_line(reference: str) -> str:
    """`from pkg.mod import app` when the attribute is a plain name (the two lines a project's main.py has)."""
    module, _, attribute = reference.partition(":")
    attribute = attribute or "app"
    if attribute.isidentifier():
        return f"from {module} import {attribute} as app\n" if attribute != "app" else f"from {module} import app\n"
    return f"from oncetask import load_app\n\napp = load_app({reference!r})\n"


def _check_out(out: Path, project: Path) -> None:
    """`out` may be new, empty, or an earlier bundle (replaced whole); never anything else, and never a
    directory that holds the project."""
    if out == project or out in project.parents:
        raise BundleError(f"--out {out} holds the project itself: choose a directory of its own (e.g. build/bundle)")
    if not out.exists():
        return
    if not out.is_dir():
        raise BundleError(f"--out {out} is a file: choose a directory")
    if any(out.iterdir()) and not ((out / MANIFEST).is_file() and (out / "main.py").is_file()):
        raise BundleError(f"--out {out} is not empty and is not an earlier bundle (no {MANIFEST}): choose a new or "
                          "empty directory")


# The project's packages ------------------------------------------------------------------------------------------

def declared_sources(project: Path, pyproject: dict[str, Any]) -> dict[str, Path]:
    """The top-level packages and modules the project's build configuration declares, with their source paths
    (setuptools `packages`, `py-modules`, `packages.find` and `package-dir`; hatch's wheel `packages`; poetry's
    `packages`). Empty when it declares none (the app module's top-level package is used)."""
    tool = pyproject.get("tool") or {}
    found: dict[str, Path] = {}

    setuptools = tool.get("setuptools") or {}
    package_dir = setuptools.get("package-dir") or {}
    root = project / package_dir.get("", ".")

    def setuptools_source(name: str) -> Path:
        top = name.split(".")[0]
        return project / package_dir[top] if top in package_dir else root / top

    packages = setuptools.get("packages")
    if isinstance(packages, list):
        for name in packages:
            found.setdefault(name.split(".")[0], setuptools_source(name))
    elif isinstance(packages, dict) and "find" in packages:
        find = packages["find"] or {}
        include = find.get("include") or ["*"]
        exclude = find.get("exclude") or []
        for where in find.get("where") or ["."]:
            base = project / where
            for candidate in sorted(base.iterdir()) if base.is_dir() else ():
                name = candidate.name
                if (candidate / "__init__.py").is_file() and any(fnmatch.fnmatch(name, p) for p in include) \
                        and not any(fnmatch.fnmatch(name, p) for p in exclude):
                    found.setdefault(name, candidate)
    for module in setuptools.get("py-modules") or ():
        found.setdefault(module, root / f"{module}.py")

    for path in (((tool.get("hatch") or {}).get("build") or {}).get("targets", {}).get("wheel", {})
                 .get("packages") or ()):
        found.setdefault(Path(path).name, project / path)

    for entry in (tool.get("poetry") or {}).get("packages") or ():
        if isinstance(entry, dict) and "include" in entry:
            source = project / entry.get("from", ".") / entry["include"]
            found.setdefault(source.stem if source.suffix == ".py" else source.name, source)

    for name, source in found.items():
        if not (source.is_dir() or source.is_file()):
            raise BundleError(f"{project / 'pyproject.toml'} declares {name!r}, but {source} does not exist")
    return found


def _source_of(top: str, project: Path) -> Path:
    """Where the app module's top-level package (or module) is: in the project if it is there, else where it was
    imported from."""
    for base in (project, project / "src"):
        if (base / top / "__init__.py").is_file():
            return base / top
        if (base / f"{top}.py").is_file():
            return base / f"{top}.py"
    module = sys.modules.get(top)
    paths = list(getattr(module, "__path__", ()) or ())
    if paths:
        return Path(paths[0])
    if module is not None and getattr(module, "__file__", None):
        return Path(module.__file__)  # type: ignore[arg-type]
    raise BundleError(f"cannot find the source of {top!r} to copy into the bundle")


# Requirements ----------------------------------------------------------------------------------------------------

def _runtime_requirements() -> list[str]:
    """oncetask's own dependencies, as installed (its metadata), without its extras: the vendored copy needs them."""
    lines = []
    for line in importlib.metadata.requires("oncetask") or ():
        marker = Requirement(line).marker
        if marker is None or "extra" not in str(marker):
            lines.append(line)
    return lines


def project_requirements(table: dict[str, Any]) -> list[str]:
    """The project's runtime dependencies, without oncetask itself (it is vendored)."""
    lines = []
    for line in table.get("dependencies") or ():
        try:
            requirement = Requirement(line)
        except InvalidRequirement as exc:
            raise BundleError(f"[project] dependencies: {line!r} is not a valid requirement: {exc}") from exc
        name = canonicalize_name(requirement.name)
        if name in DEVELOPMENT_DISTRIBUTIONS or (name == "oncetask" and "dev" in requirement.extras):
            raise BundleError(f"[project] dependencies: {line!r} is development tooling (emulators, test job types), "
                              "never deployed: list it in an optional dependency (e.g. [project.optional-"
                              "dependencies] test)")
        if name != "oncetask":
            lines.append(line)
    return lines


def development_job_types(app: oncetask.App) -> list[str]:
    """The app's job types defined by the development tools (oncetask-dev's test job types: `noop`,
    `test.pipeline`): their payload model or a stage lives in a development package."""
    found = []
    for name, job_type in sorted(app.job_types().items()):
        modules = {job_type.payload_model.__module__,
                   *(getattr(stage.run, "__module__", None) or "" for stage in job_type.stages)}
        if any(module.split(".")[0] in DEVELOPMENT_PACKAGES for module in modules):
            found.append(name)
    return found


def merged_requirements(*groups: list[str]) -> list[str]:
    """The requirements of every group, in order, with one line per package (and marker): the specifiers of a
    package named twice are intersected and its extras joined, so pip sees one consistent requirement."""
    merged: dict[tuple[str, str], Requirement] = {}
    for group in groups:
        for line in group:
            requirement = Requirement(line)
            key = (canonicalize_name(requirement.name), str(requirement.marker or ""))
            if key in merged:
                kept = merged[key]
                kept.specifier &= requirement.specifier
                kept.extras |= requirement.extras
                kept.url = kept.url or requirement.url
            else:
                merged[key] = requirement
    return [str(requirement) for requirement in merged.values()]


__all__ = ["Bundle", "BundleError", "declared_sources", "development_job_types", "merged_requirements",
           "project_requirements", "write_bundle"]
