"""`make bench`: every performance goal, each benchmark in its own interpreter, figures printed as tables."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

BENCHMARKS = [
    ("Slash-command acknowledgement latency (issues 2 and 7)", "bench.bench_ack"),
    ("Record-level import of 1,000,000 rows (issue 3)", "bench.bench_import"),
    ("Chart rendering against a bare matplotlib figure (issue 4)", "bench.bench_charts"),
    ("Analysis and chart from command to completed upload (issue 4)", "bench.bench_equity"),
    (
        "1,000 projects' prompts due in the same minute, 10% 429s, killed and restarted (issue 6)",
        "bench.bench_prompts",
    ),
    ("Board pack for the demo project: 3 measures, 3 years, to PDF (issue 15)", "bench.bench_pack"),
    (
        "Fan-out on PostgreSQL, two instances, 10% 429s, the leader SIGKILLed, the follower takes over (issue 17)",
        "bench.bench_fanout",
    ),
    ("20 people submitting forms to two instances during a fan-out (issue 17)", "bench.bench_modals"),
    (
        "Failover over 10 kills: the leader SIGKILLed after each 1/11 of a fan-out, a standby always ready (issue 17)",
        "bench.bench_failover",
    ),
]
# `python -m bench fanout --projects 1000` runs one benchmark with its own arguments.
BY_NAME = {module.rsplit(".", 1)[-1].removeprefix("bench_"): module for _, module in BENCHMARKS}


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] in BY_NAME:
        return subprocess.run(
            [sys.executable, "-m", BY_NAME[sys.argv[1]], *sys.argv[2:]], cwd=ROOT
        ).returncode
    failed = []
    for title, module in BENCHMARKS:
        if not (ROOT / (module.replace(".", "/") + ".py")).exists():
            continue
        print(f"\n{'=' * 100}\n{title}\n{'=' * 100}", flush=True)
        started = time.perf_counter()
        result = subprocess.run([sys.executable, "-m", module], cwd=ROOT, check=False)
        print(f"({module} took {time.perf_counter() - started:.0f} s)", flush=True)
        if result.returncode != 0:
            failed.append(module)
    if failed:
        print("\nBenchmarks that failed to run: " + ", ".join(failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
