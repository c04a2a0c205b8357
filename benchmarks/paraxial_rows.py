"""Paraxial cost against the number of rows: load + trace + document, no printing.

    python benchmarks/paraxial_rows.py --rows 1000 2000 4000 8000 --repeats 5

Prints the median seconds per size (sizes interleaved in every repeat) and the seconds per
thousand rows, which stays flat when the cost is linear in the rows.
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

DESIGN = """\
netlens: 1
name: rows
data: {{source: digits}}
layers:
  - flatten
  - linear: 16
  - repeat: {n}
    of: [{{linear: 16}}, tanh]
  - linear: 10
"""


def once(path: Path) -> float:
    from netlens.data import describe
    from netlens.paraxial.trace import trace
    from netlens.prescription import load_design
    from netlens.report.documents import paraxial_doc
    from netlens.train.outputs import loss_outputs

    t0 = time.perf_counter()
    d = load_design(path)
    info = describe(d.data, d.base_dir)
    paraxial_doc(d, trace(d, info, loss_outputs(d.train, info)))
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, nargs="+", default=[1000, 2000, 4000, 8000])
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    folder = Path(tempfile.mkdtemp())
    paths = {}
    for rows in args.rows:
        paths[rows] = folder / f"rows{rows}.yaml"
        paths[rows].write_text(DESIGN.format(n=max(1, (rows - 3) // 2)))
    once(paths[args.rows[0]])                     # imports and caches outside the timing
    times: dict[int, list[float]] = {r: [] for r in args.rows}
    for _ in range(args.repeats):
        for rows in args.rows:
            times[rows].append(once(paths[rows]))
    print("rows    median s   s per 1000 rows")
    for rows in args.rows:
        med = statistics.median(times[rows])
        print(f"{rows:>6}  {med:9.3f}  {1000 * med / rows:9.3f}")


if __name__ == "__main__":
    main()
