"""What a tolerance run is asked to do: the prescription's `tolerance:` section, overridden by
flags, as plain data (`to_json`) so worker processes rebuild the same plan."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

PARTS = ("noise", "sensitivity", "instability", "yield")
DEFAULT_PARTS = ("noise", "sensitivity", "instability")


@dataclass
class Settings:
    seeds: int = 5
    only: list[str] | None = None       # parts; None: noise, sensitivity, instability (+ yield)
    spec: str | None = None
    monte_carlo: int = 0                # Monte Carlo samples for the yield (0: no yield)
    inverse: list[str] | None = None    # operands to bisect against the spec (default train.lr)
    merit: Any = None                   # None: the design's optimize merit, else val_loss
    workers: int = 1
    storage: str | None = None          # an Optuna storage URL; None: SQLite beside the design
    study: str | None = None            # None: NAME-tolerance-HASH
    steps: int | None = None            # override train.steps in every run
    flagged: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict) -> "Settings":
        return cls(**d)

    def overrides(self) -> dict[str, Any]:
        return {"train.steps": self.steps} if self.steps is not None else {}

    def parts(self) -> list[str]:
        if self.only:
            return list(self.only)
        return list(DEFAULT_PARTS) + (["yield"] if self.monte_carlo else [])
