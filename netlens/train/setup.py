"""What `train:` asks for, as torch objects: device, dtype, loss, accuracy, optimizer, schedule."""
from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F

from netlens.data import DataInfo
from netlens.errors import DesignError
from netlens.train.outputs import loss_name, loss_outputs
from netlens.prescription.sections import TrainSpec

DTYPES = {"float32": torch.float32, "float64": torch.float64, "bfloat16": torch.bfloat16}


def pick_device(name: str) -> torch.device:
    if name == "cuda" and not torch.cuda.is_available():
        raise DesignError("`train.device: cuda` but no CUDA device is available",
                          path="train.device", expected="auto or cpu", found="cuda",
                          suggestion="Use `device: auto` to take a GPU when there is one.")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def make_loss(train: TrainSpec, info: DataInfo) -> Callable:
    """loss(out, y) with mean reduction; mse uses one-hot targets for classes. With a label per
    position (token data) every position of every sequence is one sample: the loss per token."""
    base = _loss(train, info)
    if not getattr(info, "per_token", False):
        return base
    return lambda out, y: base(out.reshape(-1, out.shape[-1]), y.reshape(-1))


def _loss(train: TrainSpec, info: DataInfo) -> Callable:
    name = loss_name(train, info)
    outputs = loss_outputs(train, info)
    if name == "cross_entropy":
        return lambda out, y: F.cross_entropy(out.float(), y)
    if name == "mse":
        if info.task == "regression":
            return lambda out, y: F.mse_loss(out.float(), y.float())
        return lambda out, y: F.mse_loss(out.float(), F.one_hot(y, outputs).float())
    if outputs == 1:
        return lambda out, y: F.binary_cross_entropy_with_logits(out.float().squeeze(1), y.float())
    return lambda out, y: F.binary_cross_entropy_with_logits(out.float(), F.one_hot(y, outputs).float())


def make_accuracy(info: DataInfo) -> Callable:
    if info.task != "classification":
        return lambda out, y: None

    def accuracy(out: torch.Tensor, y: torch.Tensor) -> float:
        if out.dim() == 3:           # a label per position: accuracy per token
            out, y = out.reshape(-1, out.shape[-1]), y.reshape(-1)
        pred = (out.squeeze(1) > 0).long() if out.shape[1] == 1 else out.argmax(1)
        return float((pred == y).float().mean())

    return accuracy


def make_optimizer(train: TrainSpec, params) -> torch.optim.Optimizer:
    kw = {"lr": train.lr, "weight_decay": train.weight_decay}
    if train.optimizer == "sgd":
        return torch.optim.SGD(params, momentum=train.momentum, **kw)
    if train.optimizer == "rmsprop":
        return torch.optim.RMSprop(params, momentum=train.momentum, **kw)
    cls = torch.optim.Adam if train.optimizer == "adam" else torch.optim.AdamW
    return cls(params, betas=(train.momentum, train.beta2), **kw)


def lr_factor(train: TrainSpec) -> Callable[[int], float]:
    """Multiplier of the base lr at a step: linear warm-up, then constant, cosine or linear decay."""
    def factor(step: int) -> float:
        if step < train.warmup:
            return (step + 1) / train.warmup
        span = max(1, train.steps - train.warmup)
        t = min(1.0, (step - train.warmup) / span)
        if train.schedule == "cosine":
            return 0.5 * (1 + math.cos(math.pi * t))
        if train.schedule == "linear":
            return 1.0 - t
        return 1.0

    return factor
