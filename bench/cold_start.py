"""Cold start of a deployed entry module: how long `import main` takes in a fresh interpreter, against a floor.

The floor is a main.py that only imports what any function on this stack must: functions-framework and the three
Google clients (Firestore, Cloud Tasks, Storage). Each measurement is a new `python -X importtime -c "import main"`
process; the figure is the cumulative import time of `main` that importtime reports (the interpreter's own start
is left out of both). Runs alternate between the two modules so that load on a shared machine hits both alike;
compare the ratio of the medians, not the absolute times.

    python bench/cold_start.py [--runs 9] [--source functions]     # target: ratio <= 1.15
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


def import_seconds(directory: Path) -> tuple[float, list[tuple[str, float]]]:
    """Cumulative import time of `main` in `directory`, and the slowest top-level imports under it."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, (str(directory), os.environ.get("PYTHONPATH"))))}
    done = subprocess.run([sys.executable, "-X", "importtime", "-c", "import main"], cwd=directory, env=env,
                          capture_output=True, text=True, check=True)
    rows = []  # (depth below main, module, cumulative seconds)
    for line in done.stderr.splitlines():
        if line.startswith("import time:") and "|" in line and "cumulative" not in line:
            _, cumulative, raw = line.removeprefix("import time:").split("|")
            name = raw[1:]  # importtime indents a module two spaces per level below the one importing it
            rows.append(((len(name) - len(name.lstrip())) // 2, name.strip(), int(cumulative) / 1e6))
    total = next(seconds for depth, name, seconds in reversed(rows) if depth == 0 and name == "main")
    top = [(name, seconds) for depth, name, seconds in rows if depth == 1]
    return total, sorted(top, key=lambda r: -r[1])[:8]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--source", type=Path, default=ROOT / "functions",
                        help="the directory holding the deployed main.py (a bundle, or functions/)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as floor_dir:
        Path(floor_dir, "main.py").write_text(FLOOR)
        import_seconds(args.source)  # warm the file cache for both, once
        import_seconds(Path(floor_dir))
        product, floor = [], []
        for _ in range(args.runs):
            product.append(import_seconds(args.source)[0])
            floor.append(import_seconds(Path(floor_dir))[0])
        _, slowest = import_seconds(args.source)
    p, f = statistics.median(product), statistics.median(floor)
    print(describe())
    print(f"entry module {args.source / 'main.py'}: median {p * 1000:.0f} ms over {args.runs} runs "
          f"(min {min(product) * 1000:.0f})")
    print(f"floor (functions-framework + Firestore, Tasks, Storage clients): median {f * 1000:.0f} ms "
          f"(min {min(floor) * 1000:.0f})")
    print(f"ratio of medians: {p / f:.2f} (target <= 1.15)")
    print("slowest top-level imports of the entry module:")
    for name, seconds in slowest:
        print(f"  {seconds * 1000:7.0f} ms  {name}")


if __name__ == "__main__":
    main()
