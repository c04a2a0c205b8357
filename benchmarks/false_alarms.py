"""False alarms of the judge on the calibration set: warn/error findings per healthy design.

Diagnoses every design in a folder (default `designs/healthy/`) with the current code and
prints, per design, the training outcome, its findings and the count of warn/error ones; the
last line is the total. Run it on another checkout (PYTHONPATH) to compare judges.

    OMP_NUM_THREADS=1 python benchmarks/false_alarms.py [designs/healthy]
"""
from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from netlens.diagnose import diagnose


def main() -> None:
    folder = Path(sys.argv[1] if len(sys.argv) > 1 else "designs/healthy")
    total = 0
    for path in sorted(folder.glob("*.yaml")):
        t0 = time.perf_counter()
        r = diagnose(path, out=Path(tempfile.mkdtemp()) / "run", plot=False)
        bad = [f for f in r.doc["findings"] if f["severity"] in ("warn", "error")]
        total += len(bad)
        m = r.doc["metrics"]
        acc = f", train acc {m['train_accuracy']:.3f}, val acc {m['val_accuracy']:.3f}" \
            if m.get("train_accuracy") is not None else ""
        print(f"{path.stem:24s} {time.perf_counter() - t0:5.1f}s  train loss {m['train_loss']:.4g}{acc}"
              f"  warn/error: {len(bad)}")
        for f in r.doc["findings"]:
            print(f"    {f['severity']:5s} {f['code']} {f.get('kind') or ''}: {f['message'][:160]}")
    print(f"TOTAL warn/error findings: {total}")


if __name__ == "__main__":
    main()
