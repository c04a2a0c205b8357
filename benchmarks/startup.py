"""Start-up cost of the commands that should feel instant: CPU time (user + system) of each, as a
fresh process, median over repeats. Targets: `netlens --help` < 0.25 s, `netlens paraxial
designs/deep-tanh.yaml` < 0.4 s; the bare interpreter is shown as the floor, and so is importing the
libraries `paraxial` needs (NumPy, pydantic, typer, rich, ruamel.yaml) and nothing of netlens.

    python benchmarks/startup.py --repeats 7
    python benchmarks/startup.py --json

The `netlens` console script is used when it is on PATH (and imports this tree: run with
PYTHONPATH set to the checkout), else `python -m netlens`. `diagnose RUN_DIR` needs a run folder:
one is simulated first (that part imports torch and is not timed).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SMALL = """
netlens: 1
name: startup-bench
data: {source: digits, n: 200, batch: 32}
layers: [flatten, {linear: 32}, relu, {linear: 10}]
train: {optimizer: sgd, lr: 0.05, steps: 20}
probe: {every: 10, batch: 64}
"""


DEPS = ("import numpy, typer, rich.console, rich.table, ruamel.yaml; "
        "from pydantic import BaseModel, Field")


def cpu_seconds(cmd: list[str], env: dict) -> float:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--json", action="store_true", help="print {command: CPU seconds} only")
    args = ap.parse_args()
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    script = shutil.which("netlens")
    netlens = [script] if script else [sys.executable, "-m", "netlens"]
    tmp = Path(tempfile.mkdtemp(prefix="netlens-startup-"))
    design, run = tmp / "small.yaml", tmp / "run"
    design.write_text(SMALL)
    subprocess.run(netlens + ["simulate", str(design), "--quiet", "--out", str(run)], cwd=ROOT, env=env,
                   check=True, stdout=subprocess.DEVNULL)
    commands = {
        "python -c pass (floor)": [sys.executable, "-c", "pass"],
        # what paraxial cannot start without: NumPy (the Gaussian moments), pydantic (the
        # prescription's schema), typer (the command line), rich and ruamel.yaml
        "imports of paraxial's libraries (floor)": [sys.executable, "-c", DEPS],
        "netlens --help": netlens + ["--help"],
        "netlens paraxial designs/deep-tanh.yaml": netlens + ["paraxial", "designs/deep-tanh.yaml"],
        "netlens paraxial designs/quickstart.yaml --json": netlens + ["paraxial", "designs/quickstart.yaml", "--json"],
        "netlens catalog": netlens + ["catalog"],
        "netlens catalog tanh": netlens + ["catalog", "tanh"],
        "netlens diagnose RUN_DIR": netlens + ["diagnose", str(run), "--fail-on", "never"],
    }
    for cmd in commands.values():          # warm the file cache and byte-code
        cpu_seconds(cmd, env)
    times: dict[str, list[float]] = {k: [] for k in commands}
    for _ in range(args.repeats):          # interleaved
        for k, cmd in commands.items():
            times[k].append(cpu_seconds(cmd, env))
    med = {k: round(statistics.median(v), 3) for k, v in times.items()}
    shutil.rmtree(tmp, ignore_errors=True)
    if args.json:
        print(json.dumps(med))
        return
    print(f"CPU time (user + system), median of {args.repeats}, "
          f"{'console script ' + script if script else sys.executable + ' -m netlens'}")
    for k, v in med.items():
        print(f"  {k:<48} {v:.3f} s")


if __name__ == "__main__":
    main()
