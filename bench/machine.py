"""What every benchmark prints first: the machine and the moment, since every figure depends on both."""

from __future__ import annotations

import datetime
import os
import platform


def describe() -> dict[str, str]:
    """nproc, CPU model, Python version, UTC date and the 1-minute load average (other work moves every figure)."""
    model = "unknown"
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            model = next(line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    try:
        load = f"{os.getloadavg()[0]:.1f}"
    except OSError:
        load = "unknown"
    return {"nproc": str(os.cpu_count()), "cpu": model, "python": platform.python_version(),
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "load": load}


def summary() -> str:
    m = describe()
    return f"{m['date']}, {m['nproc']} cores, {m['cpu']}, Python {m['python']}, load {m['load']}"
