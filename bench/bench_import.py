"""Benchmark: record-level import (read_extract) against a bare pandas read + weekly groupby of the same file."""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

SPELLINGS = [
    "A",
    "a",
    "White British",
    "White - British",
    "White: English, Welsh, Scottish, Northern Irish or British",
    "N",
    "Black African",
    "african",
    "Black or Black British - African",
    "Black, Black British, Black Welsh, Caribbean or African: African",
    "M",
    "Black Caribbean",
    "H",
    "Indian",
    "Pakistani",
    "C",
    "Any other White background",
    "T",
    "Z",
    "Not stated",
    "",
    "99",
    "not known",
    "NULL",
]
JUNK = ["BAME", "??", "BME", "Other"]
REPEATS = 3  # timings per child process; the best is kept
ROUNDS = 2  # child processes per contender


def generate(path: Path, rows: int, seed: int = 20250301) -> None:
    rng = np.random.default_rng(seed)
    start = np.datetime64("2022-04-01")
    days = rng.integers(0, 3 * 365, size=rows)
    dates = (start + days.astype("timedelta64[D]")).astype(str)
    junk = rng.random(rows) < 0.02
    ethnicity = np.where(
        junk,
        np.array(JUNK, dtype=object)[rng.integers(0, len(JUNK), size=rows)],
        np.array(SPELLINGS, dtype=object)[rng.integers(0, len(SPELLINGS), size=rows)],
    )
    outcome = (rng.random(rows) < 0.07).astype(np.int8)
    pd.DataFrame({"date": dates, "ethnicity": ethnicity, "outcome": outcome}).to_csv(path, index=False)


def run_floor(path: Path) -> int:
    frame = pd.read_csv(path)
    when = pd.to_datetime(frame["date"])
    week = when - pd.to_timedelta(when.dt.dayofweek, unit="D")
    result = frame.groupby([week, frame["ethnicity"]], dropna=False)["outcome"].agg(["sum", "count"])
    return len(result)


def run_import(path: Path) -> int:
    from bot.core.extracts import read_extract

    parsed = read_extract(path, period="week", today=date(2025, 12, 31))
    return len(parsed.frame)


def child(kind: str, path: Path) -> None:
    work = run_floor if kind == "floor" else run_import
    best = float("inf")
    groups = 0
    for _ in range(REPEATS):
        began = time.perf_counter()
        groups = work(path)
        best = min(best, time.perf_counter() - began)
    print(json.dumps({"seconds": best, "peak_mb": peak_memory_mb(), "groups": groups}))


def peak_memory_mb() -> float:
    """Peak resident memory of this process.

    ru_maxrss survives exec on Linux, so a child would inherit the parent's high-water mark;
    VmHWM belongs to the new address space and starts afresh.
    """
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def measure(kind: str, path: Path) -> dict[str, float]:
    root = Path(__file__).resolve().parent.parent
    output = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--child", kind, "--path", str(path)],
        check=True,
        capture_output=True,
        text=True,
        cwd=root,
    ).stdout
    result: dict[str, float] = json.loads(output.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--child", choices=["floor", "import"])
    parser.add_argument("--path", type=Path)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.path)
        return
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "records.csv"
        began = time.perf_counter()
        generate(path, args.rows)
        print(
            f"Generated {args.rows:,} rows ({path.stat().st_size / 1e6:.1f} MB) in {time.perf_counter() - began:.1f} s"
        )
        # Alternate the two children so a burst of load on a shared machine hits both alike.
        runs: dict[str, list[dict[str, float]]] = {"floor": [], "import": []}
        for _ in range(ROUNDS):
            for kind in runs:
                runs[kind].append(measure(kind, path))
        floor = min(runs["floor"], key=lambda r: r["seconds"])
        ours = min(runs["import"], key=lambda r: r["seconds"])
    ratio = ours["seconds"] / floor["seconds"]
    print(f"{f'run (best of {REPEATS} x {ROUNDS})':<38}{'seconds':>9}{'peak MB':>10}{'groups':>8}")
    print(
        f"{'pandas floor: read_csv + week groupby':<38}{floor['seconds']:>9.3f}{floor['peak_mb']:>10.0f}"
        f"{floor['groups']:>8.0f}"
    )
    print(
        f"{'read_extract(period=week)':<38}{ours['seconds']:>9.3f}{ours['peak_mb']:>10.0f}{ours['groups']:>8.0f}"
    )
    print(
        f"ratio import/floor: {ratio:.2f} (goal <= 1.5); import peak memory {ours['peak_mb']:.0f} MB (goal < 1024)"
    )


if __name__ == "__main__":
    main()
