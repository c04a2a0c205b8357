"""What a study is asked to do: the prescription's `optimize:` section, overridden by flags.

    optimize:
      trials: 40                     # finished trials the study should hold (resumes count)
      merit: val_error + 1e-5*params # default: val_loss
      constraints: [params <= 50000]
      objectives: [val_loss, params] # instead of merit: a Pareto front
      pruner: median                 # median | hyperband | none
      prune_aberrations: true        # stop trials that diverge or show error-level FLOW early
      sampler: tpe                   # tpe | random
      timeout: 600                   # seconds after which no new trial starts

Everything here is plain data (`to_json`) so worker processes rebuild the same settings.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from netlens.errors import DesignError, suggest
from netlens.optimize.merit import Constraint, Merit, parse_constraint, parse_merit


class OptimizeSection(BaseModel):
    model_config = ConfigDict(extra="forbid")

    trials: int = Field(20, gt=0)
    merit: str | dict[str, Any] | None = None
    objectives: list[str | dict[str, Any]] | None = None
    constraints: list[str] = Field(default_factory=list)
    pruner: Literal["median", "hyperband", "none"] = "median"
    prune_aberrations: bool = True
    sampler: Literal["tpe", "random"] = "tpe"
    timeout: float | None = Field(None, gt=0)


@dataclass
class Settings:
    """One study's settings. `merit` is the source text/mapping of the merit, `objectives` the
    list of them for a Pareto study (None: single objective)."""

    trials: int = 20
    merit: Any = "val_loss"
    objectives: list[Any] | None = None
    constraints: list[str] = field(default_factory=list)
    pruner: str = "median"
    prune_aberrations: bool = True
    sampler: str = "tpe"
    timeout: float | None = None
    workers: int = 1
    storage: str | None = None        # an Optuna storage URL; None: SQLite beside the design
    study: str | None = None          # None: the design's name
    steps: int | None = None          # override train.steps in every trial
    seed: int | None = None           # override the design's seed
    device: str | None = None         # override train.device in every trial
    flagged: list[str] = field(default_factory=list)   # fields set by flags (for error paths)

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict) -> "Settings":
        return cls(**d)

    def overrides(self) -> dict[str, Any]:
        return {k: v for k, v in (("train.steps", self.steps), ("seed", self.seed),
                                  ("train.device", self.device)) if v is not None}

    # -- parsed forms -------------------------------------------------------------------------
    def merits(self, task: str | None = None) -> list[Merit]:
        """One merit per objective."""
        if self.objectives:
            where = "--objective" if "objectives" in self.flagged else "optimize.objectives"
            return [parse_merit(o, task, f"{where}[{i}]") for i, o in enumerate(self.objectives)]
        return [parse_merit(self.merit, task, "--merit" if "merit" in self.flagged else "optimize.merit")]

    def parsed_constraints(self, task: str | None = None) -> list[Constraint]:
        where = "--constraint" if "constraints" in self.flagged else "optimize.constraints"
        return [parse_constraint(c, task, f"{where}[{i}]") for i, c in enumerate(self.constraints)]

    @property
    def multi(self) -> bool:
        return bool(self.objectives) and len(self.objectives) > 1


def settings_for(design, **flags: Any) -> Settings:
    """The design's `optimize:` section with flags (those not None) on top, validated."""
    raw = dict(design.optimize.model_extra or {})
    try:
        section = OptimizeSection(**raw)
    except ValidationError as e:
        err = e.errors()[0]
        name = str(err["loc"][0]) if err["loc"] else "optimize"
        if err["type"] == "extra_forbidden":
            hint = suggest(name, list(OptimizeSection.model_fields))
            raise design.locate(DesignError(
                f"unknown field `{name}` in `optimize`", path=f"optimize.{name}",
                expected="one of " + ", ".join(OptimizeSection.model_fields),
                suggestion=f"Did you mean `{hint}`?" if hint else None)) from None
        raise design.locate(DesignError(f"invalid `{name}`: {err['msg']}", path=f"optimize.{name}",
                                        found=err.get("input"))) from None
    s = Settings(**{k: v for k, v in section.model_dump().items() if k in Settings.__dataclass_fields__})
    if s.merit is None:
        s.merit = "val_loss"
    if section.merit is not None and section.objectives:
        raise design.locate(DesignError("give either `merit` or `objectives`, not both",
                                        path="optimize.objectives"))
    for k, v in flags.items():
        if v is None or (isinstance(v, (list, tuple)) and not v):
            continue
        setattr(s, k, list(v) if isinstance(v, (tuple, list)) else v)
        s.flagged.append(k)
    if flags.get("merit") is not None:
        s.objectives = None
    if s.objectives is not None and len(s.objectives) == 1:
        s.merit, s.objectives = s.objectives[0], None
    if s.workers < 1 or s.trials < 1:
        raise DesignError("--workers and --trials are at least 1",
                          found=f"workers {s.workers}, trials {s.trials}")
    if s.study is not None:
        from netlens.prescription.design import check_name, slug

        why = check_name(s.study, "a study name")
        if why is not None:
            raise design.locate(DesignError(
                why, path="--study" if "study" in s.flagged else "optimize.study", found=s.study,
                suggestion=f"Try `--study {slug(s.study)}`." if str(s.study).strip()
                else "Omit --study to use the design's name."))
    if s.pruner not in ("median", "hyperband", "none"):
        raise DesignError("unknown pruner", path="optimize.pruner", expected="median, hyperband or none",
                          found=s.pruner)
    if s.sampler not in ("tpe", "random"):
        raise DesignError("unknown sampler", path="optimize.sampler", expected="tpe or random",
                          found=s.sampler)
    return s

