"""Which loss a design trains with and how many outputs it needs (torch-free: paraxial uses it)."""
from __future__ import annotations

from netlens.data import DataInfo
from netlens.errors import DesignError
from netlens.prescription.sections import TrainSpec


def loss_name(train: TrainSpec, info: DataInfo) -> str:
    if train.loss is not None:
        return train.loss
    return "cross_entropy" if info.task == "classification" else "mse"


def loss_outputs(train: TrainSpec, info: DataInfo) -> int:
    """How many outputs the last row must give for this loss and task."""
    name = loss_name(train, info)
    if info.task == "regression":
        if name != "mse":
            raise DesignError(f"`{name}` needs classes but the data is a regression",
                              path="train.loss", expected="mse", found=name)
        return info.n_outputs
    if name == "bce" and info.n_classes == 2:
        return 1
    return info.n_classes
