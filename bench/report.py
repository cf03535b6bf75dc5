"""What every benchmark does with its figures: a JSON file that says where they were measured (the
machine, the commit), and a chart drawn with matplotlib without a display; and the state it starts
from: an empty data directory of its own (the bundled models still read from the usual one).

A benchmark that starts ``voxbus``'s system on the user's data directory inherits its NATS store:
a call left there by an interrupted run was resumed as the clinic benchmark's system started, and
its first call waited 7-9 s for an answer while the LLM served the stale one.
"""

from __future__ import annotations

import atexit
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def fresh_data_dir() -> None:
    """Run on an empty, temporary ``data_dir`` unless one is chosen (``VOXBUS_DATA_DIR``): no call
    state, events or credentials from earlier runs; models from the usual place."""
    if "VOXBUS_DATA_DIR" in os.environ:
        return
    usual = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share") / "voxbus"
    os.environ.setdefault("VOXBUS_MODEL_DIR", str(usual / "models"))
    fresh = tempfile.mkdtemp(prefix="voxbus-bench-")
    os.environ["VOXBUS_DATA_DIR"] = fresh
    atexit.register(shutil.rmtree, fresh, ignore_errors=True)


fresh_data_dir()


def cpu_model() -> str:
    """The CPU's marketing name ("Intel(R) Xeon(R) ..."), or the architecture where /proc says none."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def commit() -> str:
    """The commit the benchmark ran on ("-dirty" if the working tree differs); "" outside git."""
    try:
        head = subprocess.run(
            ["git", "-C", str(ROOT), "describe", "--always", "--dirty"],
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return head.stdout.strip() if head.returncode == 0 else ""


def machine() -> dict[str, object]:
    """Where a benchmark's figures come from: the CPU, its cores, Python, the platform, the commit
    and the time. Timings on shared machines move by 2x from day to day: compare within a run."""
    return {
        "cpu": cpu_model(),
        "cpus": os.cpu_count(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "commit": commit(),
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def write_json(path: Path, figures: dict[str, Any]) -> Path:
    """Write a benchmark's figures, stamped with :func:`machine` unless they carry their own."""
    path.parent.mkdir(parents=True, exist_ok=True)
    stamped = figures if "machine" in figures else {**figures, "machine": machine()}
    path.write_text(json.dumps(stamped, indent=1, ensure_ascii=False) + "\n")
    return path


def write_figures(out: Path, name: str, figures: dict[str, Any], plot: Any) -> None:
    """``<name>.json`` (:func:`write_json`) and ``<name>.png`` (``plot(figures, path)``) in ``out``."""
    write_json(out / f"{name}.json", figures)
    plot(figures, out / f"{name}.png")


def event_lines(events: list[Any], t0: float) -> list[str]:
    """A call's events as JSON lines, each with its time in seconds after ``t0`` (the caller's
    first frame), for a closer look at any call of a benchmark."""
    return [
        json.dumps({"caller_s": round(event.ts - t0, 3), **event.model_dump()}) + "\n" for event in events
    ]


def pyplot() -> Any:
    """matplotlib's pyplot on the Agg backend: charts are files, and benchmarks run without a display."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt
