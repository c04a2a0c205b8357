"""A PyTorch Lightning callback that watches the LightningModule being fit (`pip install
netlens[lightning]`).

    from netlens.integrations.lightning import NetlensCallback
    cb = NetlensCallback(probe=(x_probe, y_probe), loss_fn=F.cross_entropy, every=20, out="runs/mine")
    trainer = pl.Trainer(max_steps=300, callbacks=[cb])
    trainer.fit(model, loader)
    cb.lens.diagnose()                  # or: netlens diagnose runs/mine

It is `netlens.watch` around `fit`: rows are the module's leaf modules (or `rows=[…]`), probes
every `every` optimizer steps, the run folder written when fitting ends. Lightning computes the
gradient inside `optimizer.step` (a closure), so the callback reads it in
`on_before_optimizer_step` instead of the optimizer's pre-step hook.
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

try:
    import lightning.pytorch as pl
except ImportError:            # the standalone package
    try:
        import pytorch_lightning as pl
    except ImportError as e:   # pragma: no cover - the extra is not installed
        from netlens.errors import DesignError

        raise DesignError("the Lightning callback needs PyTorch Lightning",
                          suggestion="pip install 'netlens[lightning]'") from e

from netlens.watch.lens import Lens


class NetlensCallback(pl.Callback):
    def __init__(self, probe: tuple[Any, Any], loss_fn: Callable, every: int = 20,
                 out: str | Path | None = None, rows: list[str] | None = None,
                 val: tuple[Any, Any] | None = None, name: str | None = None, force: bool = False,
                 **kw: Any):
        super().__init__()
        self.settings = dict(probe=probe, every=every, out=out, rows=rows, val=val, name=name,
                             force=force, **kw)
        self.loss_fn = loss_fn
        self.lens: Lens | None = None
        self._batch: int | None = None

    def on_fit_start(self, trainer, pl_module) -> None:
        if not trainer.optimizers:
            return
        x, y = self.settings["probe"]
        dev = pl_module.device
        probe = (x.to(dev), y.to(dev))
        val = self.settings["val"]
        if val is not None:
            val = (val[0].to(dev), val[1].to(dev))
        settings = {**self.settings, "probe": probe, "val": val,
                    "steps": trainer.max_steps if trainer.max_steps and trainer.max_steps > 0 else None}
        self.lens = Lens(pl_module, trainer.optimizers[0], self.loss_fn, step_pre_hook=False,
                         **settings)
        self.lens.__enter__()

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        t = batch[0] if isinstance(batch, (tuple, list)) else batch
        self._batch = len(t) if hasattr(t, "__len__") else None

    def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:
        if self.lens is not None:
            self.lens.before_step(self._batch)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if self.lens is None:
            return
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        if loss is not None:
            self.lens.log(loss)

    def on_fit_end(self, trainer, pl_module) -> None:
        self._close()

    def on_exception(self, trainer, pl_module, exception: BaseException) -> None:
        self._close(type(exception), exception)

    def _close(self, exc_type=None, exc=None) -> None:
        if self.lens is not None and self.lens.run is None:
            self.lens.__exit__(exc_type, exc, None)
