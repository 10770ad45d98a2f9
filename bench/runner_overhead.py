"""What the pytest plugin's in-process runner costs a test suite: starting the emulators (once per session),
a fresh runner (once per test: a Firestore project, a paused queue, a bucket), and one job through the real
processor against the same stages run by hand (`Runner.stages`, no lease, no checkpoints).

    .venv/bin/python bench/runner_overhead.py [--jobs 40] [--json figures.json]

Medians of `--jobs` jobs per row. The emulators and this process share the machine, so the figures move with its
load (printed first); compare rows of one run.
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import time
from collections.abc import Callable

from PIL import Image

import machine  # bench/machine.py, beside this script
import oncetask
from oncetask_dev import testjobs
from oncetask_dev.testing import Emulators, Runner


def ms(samples: list[float]) -> float:
    return round(statistics.median(samples) * 1000, 1)


def timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def png(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), "teal").save(out, format="PNG")
    return out.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=40)
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()
    print(f"runner overhead, {machine.summary()}")
    figures: dict[str, float] = {}

    started = time.perf_counter()
    emulators = Emulators.start()
    figures["emulators start (s)"] = round(time.perf_counter() - started, 2)
    try:
        import catalog  # noqa: PLC0415 - the example project, installed beside oncetask by scripts/setup

        app = oncetask.App("bench").include(testjobs.app, catalog.app)
        setups = []
        for _ in range(max(5, args.jobs // 4)):
            begun = time.perf_counter()
            Runner(app, emulators).close()
            setups.append(time.perf_counter() - begun)
        figures["fresh runner per test (ms)"] = ms(setups)

        runner = Runner(app, emulators)
        source = runner.upload("bench/in.png", png(320, 240))
        image = {"source": source, "widths": [64]}
        for name, job_type, payload in (("noop (1 stage)", "noop", {}),
                                        ("test.pipeline (3 stages)", "test.pipeline", {}),
                                        ("image.thumbnails (3 stages, 320x240 PNG)", "image.thumbnails", image)):
            submits, runs, by_hand = [], [], []
            for _ in range(args.jobs):
                job = None

                def submit(job_type: str = job_type, payload: dict = payload) -> None:
                    nonlocal job
                    job = runner.submit(job_type, payload)

                submits.append(timed(submit))
                runs.append(timed(lambda: runner.run(job)))
                by_hand.append(timed(lambda jt=job_type, p=payload: runner.stages(jt, p).run_all()))
            figures[f"{name}: submit (ms)"] = ms(submits)
            figures[f"{name}: run (ms)"] = ms(runs)
            figures[f"{name}: stages by hand (ms)"] = ms(by_hand)
            figures[f"{name}: processor overhead per job (ms)"] = round(ms(submits) + ms(runs) - ms(by_hand), 1)
        runner.close()
    finally:
        emulators.stop()
    width = max(len(k) for k in figures)
    for key, value in figures.items():
        print(f"  {key:<{width}}  {value:>8}")
    print(f"  (load at the end: {machine.describe()['load']})")
    if args.json:
        with open(args.json, "w") as out:
            json.dump({"machine": machine.describe(), "figures": figures}, out, indent=2)


if __name__ == "__main__":
    main()
