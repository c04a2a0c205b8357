"""Records: what a run measured, as plain data. The only thing diagnosis and reports read.

`RunRecords` is saved as `records.json` in the run folder and loaded back without torch.
Per-row measured gains telescope along each row's chain: row i's forward gain is q_i / q_prev(i)
and its backward gain p_prev(i) / p_i, where prev is the row before it in its chain (the network
input, index −1, for the first row; a residual branch's first row starts from the block input).
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

RECORDS_VERSION = 1

# Optimizers whose step is preconditioned (−η·P⁻¹·m): their sharpness is λ₁(P⁻¹H), measured by the
# Hessian tier (netlens/instruments/hessian.py) and judged by SHRP (netlens/aberrations/sharpness.py).
ADAPTIVE = ("adam", "adamw", "rmsprop")


@dataclass
class RowMeta:
    index: int
    label: str
    element: str
    kind: str
    source: str
    path: str
    name: str | None
    parent: int | None
    depth: int
    prev: int                 # the row whose output is this row's input (−1: network input)
    params: int
    out_shape: list[int]
    width: int                # features per sample of the output


@dataclass
class Snapshot:
    step: int
    rows: list[dict[str, Any]]         # per row: q, p, dead, sat, erank, mean_share, cond, w_norm, …
    input_q: float | None = math.nan
    input_p: float | None = math.nan
    train_loss: float | None = math.nan  # eval mode, over the training split (up to 4,096 samples)
    probe_loss: float | None = math.nan  # train mode, on the probe batch: where the Hessian is taken
    val_loss: float | None = None
    train_accuracy: float | None = None
    val_accuracy: float | None = None
    grad_norm: float | None = None
    hessian: float | None = None
    hessian_products: int = 0
    hessian_min: float | None = None   # most negative curvature's Ritz estimate (probe.hessian.bottom)
    preconditioned: float | None = None  # λ₁(P⁻¹H), Adam-family: P the optimizer's preconditioner
    preconditioned_products: int = 0
    noise_scale: float | None = None   # B_simple = tr Σ / |G|² (McCandlish et al. 2018)
    lr: float | None = None


@dataclass
class Divergence:
    step: int
    row: int | None        # first row with a non-finite output, None if only the loss
    quantity: str          # "output", "loss" or "gradient"


@dataclass
class RunRecords:
    design: str
    task: str
    n_classes: int
    loss: str
    optimizer: str
    lr: float
    momentum: float
    batch: int
    steps: int                       # steps planned
    steps_done: int
    probe_every: int
    device: str
    precision: str
    rows: list[RowMeta]
    input_erank: float = math.nan
    snapshots: list[Snapshot] = field(default_factory=list)
    loss_curve: list[float] = field(default_factory=list)
    divergence: Divergence | None = None
    interrupted: bool = False
    seconds: float = 0.0
    threads: int | None = None        # torch's CPU threads while training (netlens.train.threads)
    # What the data gave, so a run folder can be re-traced and judged without the data:
    data_info: dict[str, Any] | None = None      # netlens.data.DataInfo as a dict
    target_var: dict[str, float | None] = field(default_factory=dict)  # per split: variance of
    #   the loss's targets (one-hot for classes), the chance level of mse and the base of R²
    schedule: dict[str, list[int]] = field(default_factory=dict)   # tier → the steps it read at
    tiers: dict[str, list[str]] = field(default_factory=dict)      # tier → what it measures

    # -- reading ---------------------------------------------------------------------------
    def at(self, step: int | str) -> Snapshot:
        """The snapshot at `init`, `end`, or the last one at or before a step number."""
        if step == "init":
            return self.snapshots[0]
        if step == "end":
            return self.snapshots[-1]
        before = [s for s in self.snapshots if s.step <= int(step)]
        return before[-1] if before else self.snapshots[0]

    def gains(self, snap: Snapshot) -> list[tuple[float, float]]:
        """Per-row measured (forward, backward) power ratios at a snapshot."""
        out = []
        for meta, r in zip(self.rows, snap.rows):
            q_in = snap.input_q if meta.prev < 0 else snap.rows[meta.prev].get("q")
            p_in = snap.input_p if meta.prev < 0 else snap.rows[meta.prev].get("p")
            out.append((_ratio(r.get("q"), q_in), _ratio(p_in, r.get("p"))))
        return out

    # -- files -----------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {"netlens": RECORDS_VERSION, **asdict(self)}

    def save(self, path: Path) -> None:
        from netlens.report.files import write_json

        write_json(path, self.to_dict())

    @classmethod
    def load(cls, path: Path) -> "RunRecords":
        d = json.loads(Path(path).read_text())
        d.pop("netlens", None)
        for key in ("lr", "momentum"):       # JSON writes a non-finite number as null
            if key in d and d[key] is None:
                d[key] = math.nan
        d["rows"] = [RowMeta(**r) for r in d["rows"]]
        d["snapshots"] = [Snapshot(**s) for s in d["snapshots"]]
        if d.get("divergence"):
            d["divergence"] = Divergence(**d["divergence"])
        return cls(**d)


def _ratio(a: float | None, b: float | None) -> float:
    if a is None or b is None or not (math.isfinite(a) and math.isfinite(b)) or b <= 0:
        return math.nan
    return a / b
