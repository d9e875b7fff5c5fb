#!/usr/bin/env python3
"""The distributed sweep against PostgreSQL, end to end, in one command.

Starts a throw-away PostgreSQL server (the binaries of Debian's ``postgresql`` package, ``initdb``
and ``pg_ctl``) in a temporary folder, listening only on a Unix socket in that folder (no TCP
port, no network); runs two ``train.py sweep`` commands as separate processes, as two machines
would, against one study in it; reads the trials back with optuna and checks them (unique trial
numbers, none left running, exactly ``--trials``); writes the report with ``train.py
sweep-report``; then stops the server and deletes its folder, whatever happened.

    .venv/bin/python examples/postgres_sweep.py                 # 2 workers, 12 trials, 2,000 images, 2 epochs
    .venv/bin/python examples/postgres_sweep.py --trials 4 --subset 300 --space epochs=1   # a quick check

Needs: ``apt-get install postgresql`` (server binaries), ``pip install psycopg2-binary`` (the
driver optuna uses), and the Fashion-MNIST files (``COURSE_DATA`` or the user cache). Run as root,
it runs the server as the ``postgres`` user (PostgreSQL refuses to run as root). Exit status: 0
the sweep ran and read back correctly; 1 it did not (the reason is printed); 2 bad arguments.
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
TRIAL_LINE = re.compile(r"^trial \d+ (complete|pruned|failed)\b")
PORT = 5432  # only names the socket file (.s.PGSQL.5432) in our own folder: no TCP port is opened


def find_bin_dir() -> Path | None:
    """The folder holding initdb and pg_ctl: PATH first, then /usr/lib/postgresql/<newest>/bin."""
    for name in ("pg_ctl",):
        found = shutil.which(name)
        if found and shutil.which("initdb"):
            return Path(os.path.realpath(found)).parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name)
                        if Path(p).parent.name.isdigit() else 0)
    for folder in reversed(candidates):
        if (Path(folder) / "initdb").is_file() and (Path(folder) / "pg_ctl").is_file():
            return Path(folder)
    return None


def missing_requirements() -> str | None:
    """Why the demo cannot run here (None when it can)."""
    if find_bin_dir() is None:
        return "the PostgreSQL server binaries (initdb, pg_ctl) are not installed: apt-get install postgresql"
    try:
        import psycopg2  # noqa: F401
    except ImportError:
        return "the PostgreSQL driver is not installed: pip install psycopg2-binary"
    if os.geteuid() == 0:
        import pwd

        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root, but there is no 'postgres' user to run the server as (apt-get install postgresql)"
        if shutil.which("runuser") is None:
            return "running as root, but runuser (util-linux) is missing"
    return None


class Server:
    """A temporary PostgreSQL cluster on a Unix socket; a context manager that always cleans up."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.bin = find_bin_dir()
        self.data = folder / "data"
        self.socket = folder / "socket"
        self.log = folder / "server.log"

    def _run(self, *args: str) -> subprocess.CompletedProcess:
        cmd = [str(self.bin / args[0]), *args[1:]]
        if os.geteuid() == 0:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=120)

    def __enter__(self) -> "Server":
        self.socket.mkdir()
        os.chmod(self.folder, 0o755)
        if os.geteuid() == 0:
            import pwd

            pw = pwd.getpwnam("postgres")
            for path in (self.folder, self.socket):
                os.chown(path, pw.pw_uid, pw.pw_gid)
        proc = self._run("initdb", "-D", str(self.data), "-U", "sweep", "-A", "trust", "-E", "UTF8", "--locale=C",
                         "--no-sync")
        if proc.returncode != 0:
            raise RuntimeError(f"initdb failed: {proc.stderr.strip() or proc.stdout.strip()}")
        options = f"-k {self.socket} -c listen_addresses='' -p {PORT} -c fsync=off"
        proc = self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.log), "-w", "-t", "60", "start")
        if proc.returncode != 0:
            log = self.log.read_text() if self.log.exists() else ""
            raise RuntimeError(f"pg_ctl start failed: {proc.stderr.strip()} {log.strip()[-500:]}")
        return self

    @property
    def url(self) -> str:
        return f"postgresql://sweep@/postgres?host={self.socket}&port={PORT}"  # the URL a reader types

    def __exit__(self, *exc) -> None:
        if (self.data / "postmaster.pid").exists():
            self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")


def _forward(stream, label: str, sink: list) -> None:
    for line in stream:
        sink.append(line)
        print(f"[{label}] {line}", end="", flush=True)


def run_demo(args) -> dict:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    with tempfile.TemporaryDirectory(prefix="pg-sweep-") as tmp, Server(Path(tmp)) as server:
        print(f"PostgreSQL server running in {tmp} (Unix socket only): {server.url}", flush=True)
        run_dir = Path(tmp) / "runs"
        sweep = [sys.executable, str(ROOT / "train.py"), "sweep", "--storage", server.url, "--study", args.study,
                 "--trials", str(args.trials), "--run_dir", str(run_dir), "--no_report", "--workers", "1",
                 "--heartbeat", str(args.heartbeat), "--seed", str(args.seed), "--wandb", "off"]
        if args.subset:
            sweep += ["--subset", str(args.subset)]
        for item in args.space:
            sweep += ["--space", item]
        env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
        t0 = time.time()
        procs, outputs, threads = [], [], []
        try:
            for label in ("machine A", "machine B"):  # two separate commands, as on two machines
                proc = subprocess.Popen(sweep, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                        env=env, cwd=ROOT)
                sink: list[str] = []
                thread = threading.Thread(target=_forward, args=(proc.stdout, label, sink), daemon=True)
                thread.start()
                procs.append(proc)
                outputs.append(sink)
                threads.append(thread)
            codes = [proc.wait(timeout=args.max_seconds) for proc in procs]
        finally:  # stopped early (SIGTERM, the time limit): the workers stop before the server does
            for proc in procs:
                if proc.poll() is None:
                    proc.terminate()
                    try:
                        proc.wait(timeout=30)
                    except subprocess.TimeoutExpired:
                        proc.kill()
        for thread in threads:
            thread.join(timeout=10)
        wall = time.time() - t0

        from course_utils import sweep_storage

        study = optuna.load_study(study_name=args.study, storage=sweep_storage.open_storage(server.url, heartbeat_interval=None))
        trials = study.get_trials(deepcopy=False)
        states = {s: sum(t.state.name.lower() == s for t in trials) for s in ("complete", "pruned", "fail", "running")}
        workers = sorted({t.user_attrs.get("worker", "?") for t in trials})
        finished = [t for t in trials if t.datetime_complete is not None]
        span = ((max(t.datetime_complete for t in finished) - min(t.datetime_start for t in finished)).total_seconds()
                if finished else 0.0)
        report_dir = Path(args.report_dir) if args.report_dir else run_dir / args.study / "report"
        rep = subprocess.run([sys.executable, str(ROOT / "train.py"), "sweep-report", "--storage", server.url, "--study",
                              args.study, "--out", str(report_dir)], capture_output=True, text=True, env=env, cwd=ROOT)
        print(rep.stdout, end="")
        if rep.returncode != 0:
            print(rep.stderr, end="", file=sys.stderr)
        best = json.loads((report_dir / "best.json").read_text()) if (report_dir / "best.json").is_file() else None
        summary = {
            "postgresql": server.bin.parent.name, "exit_codes": codes, "report_exit_code": rep.returncode,
            "trials": len(trials), "requested": args.trials, "states": states,
            "numbers_unique": len({t.number for t in trials}) == len(trials),
            "numbers": sorted(t.number for t in trials), "workers": workers,
            "connected": [any("trial(s) so far" in line for line in out) for out in outputs],
            "trials_by_machine": [sum(bool(TRIAL_LINE.match(line)) for line in out) for out in outputs],
            "wall_seconds": round(wall, 1), "trial_span_seconds": round(span, 1),
            "trials_per_minute": round(60 * len(finished) / span, 1) if span > 0 else None,
            "best_trial": study.best_trial.number if states["complete"] else None,
            "best_value": study.best_value if states["complete"] else None,
            "best_params": study.best_params if states["complete"] else None,
            "report_best": best, "report_dir": str(report_dir) if args.report_dir else None,
        }
    return summary


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--trials", type=int, default=12, help="trials in the study (default: %(default)s)")
    p.add_argument("--subset", type=int, default=2000, help="training images per trial (default: %(default)s)")
    p.add_argument("--space", action="append", default=None,
                   help="train.py sweep --space overrides (default: epochs=2)")
    p.add_argument("--study", default="postgres-demo", help="study name (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--heartbeat", type=int, default=2, help="heartbeat interval in seconds (default: %(default)s)")
    p.add_argument("--report_dir", default=str(ROOT / "runs" / "postgres-demo-report"),
                   help="where the report is kept after the server is deleted (default: runs/postgres-demo-report)")
    p.add_argument("--summary", default=None, help="also write the figures as JSON to this file")
    p.add_argument("--max_seconds", type=int, default=1800, help="give up on the workers after this (default: %(default)s)")
    args = p.parse_args(argv)
    if args.trials < 2:
        p.error("--trials must be at least 2 (two workers)")
    args.space = args.space if args.space is not None else ["epochs=2"]
    why = missing_requirements()
    if why:
        print(f"postgres_sweep: cannot run: {why}", file=sys.stderr)
        return 1

    def stop(signum, frame):  # unwind: the workers and the server are stopped, the folder deleted
        raise SystemExit(f"postgres_sweep: stopped by signal {signal.Signals(signum).name}; the server is stopped "
                         "and its folder deleted")

    signal.signal(signal.SIGTERM, stop)
    try:
        summary = run_demo(args)
    except Exception as exc:  # noqa: BLE001 - one line, never a traceback
        if os.environ.get("COURSE_DEBUG"):
            raise
        print(f"postgres_sweep: error: {type(exc).__name__}: {' '.join(str(exc).split())}", file=sys.stderr)
        return 1
    print(json.dumps(summary, indent=2))
    if args.summary:
        Path(args.summary).write_text(json.dumps(summary, indent=2) + "\n")
    ok = (summary["exit_codes"] == [0, 0] and summary["report_exit_code"] == 0 and summary["numbers_unique"]
          and summary["trials"] == args.trials and summary["states"]["running"] == 0 and all(summary["connected"]))
    if not ok:
        print("postgres_sweep: error: the distributed sweep did not read back as expected (see the summary above)",
              file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
