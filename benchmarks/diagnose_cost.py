"""The cost of `diagnose` beyond the simulation it needs.

`netlens diagnose DESIGN` = simulate (+ the run folder `simulate` writes anyway) + the judgement.
This measures the judgement, piece by piece, against the simulation, in one run:

  simulate      the instrumented training run (once)
  judge         every aberration of the catalog over the records (netlens.aberrations.judge)
  document      the --json document (diagnose_doc)
  json          writing diagnosis.json
  diagram       drawing aberrations.png
  run folder    `diagnose RUN_DIR` in-process: read records + design, re-trace, judge, write
                both files — what diagnosing an existing run costs (no training, no torch)

Each piece is the median of --repeats runs; the last column is the judgement's share of the
simulation (judge + document + json + diagram over simulate).

    python benchmarks/diagnose_cost.py designs/quickstart.yaml designs/deep-tanh.yaml --repeats 5
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path


def _median(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def measure(path: str, repeats: int) -> dict[str, float]:
    from netlens.aberrations import judge
    from netlens.diagnose import diagnose, write_diagnosis
    from netlens.prescription import load_design
    from netlens.report.diagnosis import diagnose_doc
    from netlens.report.diagnosis_plot import aberration_diagram
    from netlens.report.files import write_json
    from netlens.runs import simulate_document, write_run
    from netlens.simulate import simulate

    design = load_design(path)
    t0 = time.perf_counter()
    run = simulate(design)
    sim = time.perf_counter() - t0
    folder = Path(tempfile.mkdtemp(prefix="netlens-bench-")) / design.name
    write_run(run, simulate_document(run, folder), folder)
    dx = judge(run.records, run.trace)
    doc = diagnose_doc(design, run.trace, run.records, str(folder), dx)
    write_diagnosis(design, run.trace, run.records, folder, dx)      # warm matplotlib once
    return {
        "rows": len(design.rows),
        "probes": len(run.records.snapshots),
        "simulate": sim,
        "judge": _median(lambda: judge(run.records, run.trace), repeats),
        "document": _median(lambda: diagnose_doc(design, run.trace, run.records, str(folder), dx), repeats),
        "json": _median(lambda: write_json(folder / "diagnosis.json", doc), repeats),
        "diagram": _median(lambda: aberration_diagram(doc, folder / "aberrations.png"), repeats),
        "run folder": _median(lambda: diagnose(folder), repeats),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("designs", nargs="+")
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    cols = ["rows", "probes", "simulate", "judge", "document", "json", "diagram", "run folder"]
    print(f"{'design':22}" + "".join(f"{c:>12}" for c in cols) + f"{'extra/sim':>11}")
    for path in args.designs:
        m = measure(path, args.repeats)
        extra = m["judge"] + m["document"] + m["json"] + m["diagram"]
        cells = [f"{m['rows']:>12d}", f"{m['probes']:>12d}", f"{m['simulate']:>11.2f}s"]
        cells += [f"{m[c] * 1000:>10.1f}ms" for c in cols[3:]]
        print(f"{Path(path).stem:22}" + "".join(cells) + f"{extra / m['simulate']:>10.1%}")


if __name__ == "__main__":
    main()
