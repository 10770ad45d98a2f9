"""Cold start of a deployed function: how long its code takes to load in a fresh interpreter, against a floor.

A function's cold start loads its entry module (`import main`, which builds the app and its three entry points) and,
at its first request, that function's own code: the API's (`oncetask.api`) or the task handler's
(`oncetask.taskhandler`, which also serves the cleanup). The floor is a main.py that only imports what any function
on this stack must: functions-framework and the three Google clients (Firestore, Cloud Tasks, Storage).

Each measurement is a new interpreter that times those imports with `time.perf_counter` (the interpreter's own
start is left out of both). Runs alternate between the targets and the floor, so that load on a shared machine hits
all alike; compare the ratios of the medians, not the absolute times.

    python bench/cold_start.py [--runs 9] [--source functions]     # target: each ratio <= 1.15
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from machine import describe

ROOT = Path(__file__).resolve().parents[1]
FLOOR = """import functions_framework
from google.cloud import firestore, storage, tasks_v2
"""
# The same with a pydantic payload model, which every app has whatever the framework (the first model class a
# process builds pays pydantic's one-time set-up, about 50 ms here), and pydantic-settings: what is left above
# this floor is oncetask's own code.
FLOOR_WITH_MODELS = FLOOR + """import pydantic, pydantic_settings


class Payload(pydantic.BaseModel):
    source: str
    widths: list[int] = [128]
"""


FUNCTIONS = {  # what each function imports by the end of its first request
    "api": "import main, oncetask.api",
    "process_task / cleanup_stale_locks": "import main, oncetask.taskhandler",
}


def load_seconds(directory: Path, statement: str = "import main") -> float:
    """Seconds `statement` takes in a fresh interpreter whose path starts at `directory`."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, (str(directory), os.environ.get("PYTHONPATH"))))}
    code = f"import time; t = time.perf_counter(); {statement}; print(time.perf_counter() - t)"
    done = subprocess.run([sys.executable, "-c", code], cwd=directory, env=env, capture_output=True, text=True,
                          check=True)
    return float(done.stdout.split()[-1])


def slowest_imports(directory: Path, statement: str) -> list[tuple[str, float]]:
    """The slowest top-level imports under `statement`, as `python -X importtime` reports them."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, (str(directory), os.environ.get("PYTHONPATH"))))}
    done = subprocess.run([sys.executable, "-X", "importtime", "-c", statement], cwd=directory, env=env,
                          capture_output=True, text=True, check=True)
    rows = []
    for line in done.stderr.splitlines():
        if line.startswith("import time:") and "|" in line and "cumulative" not in line:
            _, cumulative, raw = line.removeprefix("import time:").split("|")
            name = raw[1:]  # importtime indents a module two spaces per level below the one importing it
            if len(name) == len(name.lstrip()):
                rows.append((name.strip(), int(cumulative) / 1e6))
    return sorted(rows, key=lambda r: -r[1])[:8]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--source", type=Path, default=ROOT / "functions",
                        help="the directory holding the deployed main.py (a bundle, or functions/)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as floor_dir, tempfile.TemporaryDirectory() as models_dir:
        floor_path, models_path = Path(floor_dir), Path(models_dir)
        (floor_path / "main.py").write_text(FLOOR)
        (models_path / "main.py").write_text(FLOOR_WITH_MODELS)
        for statement in FUNCTIONS.values():  # warm the file cache for all, once
            load_seconds(args.source, statement)
        load_seconds(floor_path)
        load_seconds(models_path)
        times: dict[str, list[float]] = {name: [] for name in FUNCTIONS}
        floor: list[float] = []
        models: list[float] = []
        for _ in range(args.runs):
            for name, statement in FUNCTIONS.items():
                times[name].append(load_seconds(args.source, statement))
            floor.append(load_seconds(floor_path))
            models.append(load_seconds(models_path))
    f, m = statistics.median(floor), statistics.median(models)
    print(describe())
    print(f"floor (functions-framework + Firestore, Tasks, Storage clients): median {f * 1000:.0f} ms over "
          f"{args.runs} runs (min {min(floor) * 1000:.0f})")
    print(f"floor + pydantic, pydantic-settings and one payload model: median {m * 1000:.0f} ms (min {min(models) * 1000:.0f})")
    for name, statement in FUNCTIONS.items():
        p = statistics.median(times[name])
        print(f"{name} ({statement!r} in {args.source}): median {p * 1000:.0f} ms (min {min(times[name]) * 1000:.0f});"
              f" ratio {p / f:.2f} (target <= 1.15), {p / m:.2f} to the floor with a payload model")
        for module, seconds in slowest_imports(args.source, statement)[:5]:
            print(f"  {seconds * 1000:7.0f} ms  {module}")


if __name__ == "__main__":
    main()
