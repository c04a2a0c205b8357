"""The prescription's `data:` section (README, "Data").

Mistakes raise `DesignError` with `path` set to the field (`data.source`, `data.arms`)
so the prescription loader can add file and line. `DataSpec.parse` also turns
pydantic's own range/type errors into `DesignError`.
"""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from netlens.errors import DesignError

from .registry import COMMON_OPTIONS, FORMATS, SOURCE_OPTIONS, SOURCES, did_you_mean, lookup

TASKS = ("classification", "regression")


class DataSpec(BaseModel):
    """Where the data comes from and how it is split, corrupted and scaled."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False,
                              defer_build=True)   # schema built on first use

    source: str
    batch: int | Literal["full"] = 64
    val: float = Field(0.2, ge=0, lt=1)
    label_noise: float = Field(0.0, ge=0, le=1)
    n: int | None = Field(None, ge=1)
    standardize: bool = True
    # Regression targets to zero mean, unit variance (training-split statistics); None: on for
    # a regression. Losses are then in the standardized units; reports add the original ones.
    standardize_targets: bool | None = None
    # Source-specific options: None means "the source's default".
    noise: float | None = Field(None, ge=0)
    dims: int | None = Field(None, ge=1)
    classes: int | None = Field(None, ge=2)
    arms: int | None = Field(None, ge=2)
    width: int | None = Field(None, ge=1)
    depth: int | None = Field(None, ge=0)
    task: Literal["classification", "regression"] | None = None
    target: str | None = None
    # Token sequences (netlens.data.tokens).
    vocab: int | None = Field(None, ge=2)
    length: int | None = Field(None, ge=1)
    p: int | None = Field(None, ge=2)
    train_fraction: float | None = Field(None, gt=0, lt=1)
    entropy: float | None = Field(None, ge=0)
    context: int | None = Field(None, ge=1)

    @classmethod
    def parse(cls, raw: object) -> "DataSpec":
        """Validate a raw `data:` value; every failure is a `DesignError`."""
        try:
            return cls.model_validate(raw)
        except ValidationError as err:
            first = err.errors()[0]
            field = first["loc"][0] if first["loc"] else None
            raise DesignError(first["msg"], path=f"data.{field}" if field else "data",
                              found=first.get("input")) from None

    @model_validator(mode="before")
    @classmethod
    def _known_keys(cls, raw: object) -> object:
        # Checked here rather than by extra="forbid" so the message carries a suggestion.
        if isinstance(raw, str):  # `data: digits` is short for `data: {source: digits}`
            raw = {"source": raw}
        if not isinstance(raw, dict):
            raise DesignError("the data section must be a mapping", path="data",
                              expected="`source:` and options", found=type(raw).__name__)
        fields = COMMON_OPTIONS + SOURCE_OPTIONS
        for key in raw:
            if key not in fields:
                raise DesignError(f"unknown data option `{key}`", path=f"data.{key}",
                                  expected=f"one of {', '.join(fields)}",
                                  suggestion=did_you_mean(str(key), fields))
        if "source" not in raw:
            raise DesignError("missing `source`", path="data.source",
                              expected=f"one of {', '.join(SOURCES)}, or a path to a .csv or .npz file")
        return raw

    @field_validator("source", mode="before")
    @classmethod
    def _source_text(cls, value: object) -> object:
        return value.strip() if isinstance(value, str) else value

    @field_validator("batch", mode="before")
    @classmethod
    def _batch(cls, value: object) -> object:
        expected = "a positive integer or `full`"
        if isinstance(value, bool) or (isinstance(value, str) and value != "full"):
            raise DesignError("invalid batch size", path="data.batch", expected=expected,
                              found=value, suggestion=did_you_mean(str(value), ["full"]))
        if isinstance(value, (int, float)) and value <= 0:
            raise DesignError("invalid batch size", path="data.batch", expected=expected, found=value)
        return value

    @field_validator("task", mode="before")
    @classmethod
    def _task(cls, value: object) -> object:
        if value is not None and value not in TASKS:
            raise DesignError("unknown task", path="data.task", expected=" or ".join(TASKS),
                              found=value, suggestion=did_you_mean(str(value), TASKS))
        return value

    @model_validator(mode="after")
    def _options_apply(self) -> "DataSpec":
        src = lookup(self.source)
        for option in SOURCE_OPTIONS:
            if getattr(self, option) is not None and option not in src.options:
                users = [s.name for s in (*SOURCES.values(), *FORMATS.values()) if option in s.options]
                raise DesignError(
                    f"option `{option}` does not apply to source `{src.name}`",
                    path=f"data.{option}",
                    expected=f"the options of `{src.name}`: "
                             f"{', '.join(COMMON_OPTIONS[1:] + src.options)}",
                    suggestion=f"`{option}` is an option of {', '.join(users)}." if users else None)
        if src.check:
            src.check(self)
        return self
