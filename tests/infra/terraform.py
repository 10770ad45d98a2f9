"""A static reading of Terraform directories (python-hcl2), with the value quirks of python-hcl2 v7/v8 undone.

MODULE_DIR is the reusable oncetask module; ROOTS are the directories that deploy it (the reference deployment
and the example project's root). FIXTURE_BUNDLE is a hand-made bundle, laid out as `oncetask bundle` writes one.

python-hcl2 v8 keeps a string literal's quotes (`'"us-central1"'`), writes an expression as `'${var.region}'`,
quotes block labels (`'"jobs"'`) and adds `__is_block__`/`__comments__` keys. `Module` strips the metadata
and unquotes labels; `text()` and `ref()` read one value either as a literal or as a bare expression.
"""

from __future__ import annotations

import copy
import functools
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hcl2

REPO = Path(__file__).resolve().parents[2]
MODULE_DIR = REPO / "infra" / "modules" / "oncetask"
REFERENCE_ROOT = REPO / "infra" / "terraform"
EXAMPLE_ROOT = REPO / "examples" / "catalog" / "infra"
ROOTS = (REFERENCE_ROOT, EXAMPLE_ROOT)
FIXTURE_BUNDLE = Path(__file__).resolve().parent / "fixture_bundle"
_META_KEYS = frozenset({"__is_block__", "__comments__", "__inline_comments__"})


def unquote(label: str) -> str:
    """A block label or a string literal without its quotes (and JSON escapes undone)."""
    if len(label) >= 2 and label[0] == label[-1] == '"':
        return json.loads(label)
    return label


def clean(value: Any) -> Any:
    """The parsed value without python-hcl2's metadata keys, with dict keys unquoted."""
    if isinstance(value, dict):
        return {unquote(k): clean(v) for k, v in value.items() if k not in _META_KEYS}
    if isinstance(value, list):
        return [clean(v) for v in value]
    return value


def text(value: Any) -> str:
    """A string attribute as Terraform sees it: a literal unquoted, an interpolation as `${...}` text."""
    if not isinstance(value, str):
        raise AssertionError(f"expected a string, got {value!r}")
    return unquote(value)


def ref(value: Any) -> str:
    """A bare expression's text (`${var.region}` -> `var.region`); AssertionError for anything else."""
    if isinstance(value, str):
        match = re.fullmatch(r"\$\{(.*)\}", value, flags=re.S)
        if match:
            return match.group(1).strip()
    raise AssertionError(f"expected a bare expression like ${{var.x}}, got {value!r}")


def block(body: dict[str, Any], name: str) -> dict[str, Any]:
    """The one nested block `name` of a resource body (python-hcl2 gives blocks as one-element lists)."""
    blocks = body.get(name)
    assert isinstance(blocks, list) and len(blocks) == 1, f"expected exactly one {name!r} block, got {blocks!r}"
    return blocks[0]


@dataclass
class Module:
    directory: Path = MODULE_DIR
    variables: dict[str, dict[str, Any]] = field(default_factory=dict)
    resources: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    data: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    locals: dict[str, Any] = field(default_factory=dict)
    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    modules: dict[str, dict[str, Any]] = field(default_factory=dict)
    terraform: list[dict[str, Any]] = field(default_factory=list)

    def resource(self, kind: str, name: str) -> dict[str, Any]:
        assert (kind, name) in self.resources, f"no resource {kind}.{name} in {self.directory}"
        return self.resources[(kind, name)]

    def of_type(self, kind: str) -> dict[str, dict[str, Any]]:
        return {name: body for (k, name), body in self.resources.items() if k == kind}

    def default(self, variable: str) -> Any:
        assert variable in self.variables, f"no variable {variable!r} in variables.tf"
        assert "default" in self.variables[variable], f"variable {variable!r} has no default"
        value = self.variables[variable]["default"]
        return text(value) if isinstance(value, str) else value


def _labelled(entries: list[dict[str, Any]], depth: int) -> dict[tuple[str, ...], dict[str, Any]]:
    found: dict[tuple[str, ...], dict[str, Any]] = {}
    for entry in entries:
        stack: list[tuple[tuple[str, ...], Any]] = [((), clean(entry))]
        while stack:
            labels, value = stack.pop()
            if len(labels) == depth:
                assert labels not in found, f"{'.'.join(labels)} is defined twice"
                found[labels] = value
                continue
            for key, inner in value.items():
                stack.append(((*labels, key), inner))
    return found


@functools.lru_cache(maxsize=None)
def _parsed(path: Path, mtime_ns: int) -> dict[str, Any]:
    """One .tf file parsed, once per version of it: python-hcl2 takes about a second for the module's files, and
    twenty tests read them."""
    with path.open() as handle:
        return hcl2.load(handle)


def load_module(directory: Path = MODULE_DIR) -> Module:
    """Every .tf file of one directory (a module or a root), merged."""
    module = Module(directory=directory)
    files = sorted(directory.glob("*.tf"))
    assert files, f"no .tf files in {directory}"
    for path in files:
        parsed = copy.deepcopy(_parsed(path, path.stat().st_mtime_ns))  # callers may change what they get
        for (name,), body in _labelled(parsed.get("variable", []), 1).items():
            module.variables[name] = body
        for (kind, name), body in _labelled(parsed.get("resource", []), 2).items():
            assert (kind, name) not in module.resources, f"{kind}.{name} is defined twice"
            module.resources[(kind, name)] = body
        for (kind, name), body in _labelled(parsed.get("data", []), 2).items():
            module.data[(kind, name)] = body
        for entry in parsed.get("locals", []):
            for name, value in clean(entry).items():
                assert name not in module.locals, f"local.{name} is defined twice"
                module.locals[name] = value
        for (name,), body in _labelled(parsed.get("output", []), 1).items():
            module.outputs[name] = body
        for (name,), body in _labelled(parsed.get("module", []), 1).items():
            module.modules[name] = body
        module.terraform += [clean(entry) for entry in parsed.get("terraform", [])]
    return module


def squash(expression: str) -> str:
    """An expression's text without whitespace, to compare expressions however they are wrapped."""
    return re.sub(r"\s+", "", expression)
