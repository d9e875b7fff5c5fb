#!/usr/bin/env python3
"""Trials per minute of ``train.py sweep`` with 1 and with 2 workers on this machine.

Every trial trains the same fixed configuration (all nine parameters held by ``--space``), so the
two runs do the same work and differ only in the number of worker processes. Each run uses a
fresh study in a temporary folder. Reported per run: the wall time of the whole command, the
trials per minute from the first trial's start to the last trial's end (steady state: process
start, data loading and the report are outside it), the CPU time of the command and its workers,
and the load average before and after (other jobs on the machine distort the figures; compare the
CPU time).

    .venv/bin/python bench/sweep_throughput.py                 # 20 trials, 5,000 images, 1 epoch
    .venv/bin/python bench/sweep_throughput.py --trials 30 --subset 2000 --epochs 2 --repeats 3
"""
from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# train.py's defaults (the chapter's best configuration), epochs set by --epochs
FIXED = ["epochs=1", "num_layers=4", "hidden_size=128", "weight_decay=0", "learning_rate=0.001", "optimizer=nadam",
         "batch_size=16", "weight_init=xavier", "activation=relu"]
RATE = re.compile(r"since this command started: (\d+) trial\(s\) finished in the study in .* \(([\d.]+) trials/min\); "
                  r"first trial start to last trial end .* \(([\d.]+) trials/min\)")


def one_run(workers: int, args) -> dict:
    with tempfile.TemporaryDirectory(prefix="sweep-throughput-") as tmp:
        cmd = [sys.executable, str(ROOT / "train.py"), "sweep", "--run_dir", tmp, "--study", f"w{workers}",
               "--trials", str(args.trials), "--workers", str(workers), "--subset", str(args.subset), "--no_report",
               "--quiet", "--wandb", "off", "--pruner_startup", str(10 * args.trials)]
        for item in FIXED:
            cmd += ["--space", item if not item.startswith("epochs=") else f"epochs={args.epochs}"]
        load_before = os.getloadavg()[0]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
        wall = time.perf_counter() - t0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if proc.returncode != 0:
            raise SystemExit(f"sweep with {workers} worker(s) failed:\n{proc.stderr}")
        m = RATE.search(proc.stdout)
        if not m:
            raise SystemExit(f"no rate line in the output:\n{proc.stdout}")
        return {"workers": workers, "trials": int(m.group(1)), "wall_s": round(wall, 1),
                "trials_per_min_wall": float(m.group(2)), "trials_per_min_steady": float(m.group(3)),
                "cpu_s": round((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), 1),
                "load_before": round(load_before, 2), "load_after": round(os.getloadavg()[0], 2)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--trials", type=int, default=20)
    p.add_argument("--subset", type=int, default=5000)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--repeats", type=int, default=1, help="alternate 1 and 2 workers this many times")
    args = p.parse_args(argv)
    rows = []
    for _ in range(args.repeats):
        for workers in (1, 2):
            rows.append(one_run(workers, args))
            print(json.dumps(rows[-1]), flush=True)
    one = [r["trials_per_min_steady"] for r in rows if r["workers"] == 1]
    two = [r["trials_per_min_steady"] for r in rows if r["workers"] == 2]
    print(f"cores: {os.cpu_count()}; steady trials/min: 1 worker {sum(one) / len(one):.1f}, 2 workers "
          f"{sum(two) / len(two):.1f}, ratio {sum(two) / len(two) / (sum(one) / len(one)):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
