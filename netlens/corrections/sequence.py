"""Corrections for transformers: qk-norm, pre-norm, residuals around attention rows, AdamW.

`warmup` and `set_lr` (netlens.corrections.training) serve transformers as they are; the ones
here change what only sequence designs have. Each is a prescription patch like every other
correction; `wrap_residual` (around attention rows) is re-traced by the paraxial model, whose
TRNK prediction it restores; `pre_norm` is verified by training (see its note); `insert_qk_norm`
predicts its LOGT bound (|q·k|/√d_h ≤ √d_h at init once q and k are layer-normalized).
"""
from __future__ import annotations

import math

from netlens.corrections import register
from netlens.corrections.base import Case, Correction, NotApplicable, editable, sites, train_section
from netlens.corrections.edit import Edit, keys_of, make_row, row_element
from netlens.prescription import Design


def _attention_rows(design: Design):
    return [r for r in design.rows if r.element is not None and r.element.name == "attention"]


@register
class InsertQkNorm(Correction):
    name = "insert_qk_norm"
    summary = ("`qk_norm: true` on every attention row: q and k are layer-normalized per head "
               "before their product, which caps the attention logits")
    citation = ("Dehghani et al. 2023, Scaling vision transformers to 22 billion parameters; "
                "Henry et al. 2020, Query-key normalization for transformers")
    addresses = ("LOGT", "ENTR", "DIVG")

    def plan(self, design: Design, case: Case):
        todo = sites([r for r in _attention_rows(design)
                      if not r.element.opts.qk_norm and editable(design, r)])
        if not todo:
            raise NotApplicable("no attention row without qk_norm")
        return todo

    def apply(self, edit: Edit, design: Design, case: Case) -> str:
        todo = self.plan(design, case)
        for site in todo:
            edit.set_option(edit.current(site.keys), "qk_norm", True)
        n = sum(len(s.rows) for s in todo)
        return f"qk_norm on {n} attention row{'s' * (n != 1)}"

    def predict(self, design: Design, case: Case) -> dict[str, tuple[float, float]]:
        if case.code != "LOGT" or case.value is None:
            return {}
        from netlens.data import describe
        from netlens.paraxial.trace import trace

        with design.blame():
            tr = trace(design, describe(design.data, design.base_dir))
        dh = min(int(tr.rows[r.index].in_shape[-1]) // r.element.opts.heads
                 for r in _attention_rows(design))
        return {"LOGT": (case.value, math.sqrt(dh))}


def _post_norm_pairs(items, keys: tuple) -> list[tuple[tuple, int]]:
    """(list keys, index) of each `residual:` row directly followed by a `layernorm` row."""
    out = []
    if not isinstance(items, list):
        return out
    for i, item in enumerate(items):
        k = keys + (i,)
        if isinstance(item, dict) and "repeat" in item and isinstance(item.get("of"), list):
            out += _post_norm_pairs(item["of"], k + ("of",))
        elif isinstance(item, dict) and isinstance(item.get("residual"), list):
            nxt = items[i + 1] if i + 1 < len(items) else None
            if row_element(nxt)[0] in ("layernorm", "rmsnorm"):
                out.append((keys, i))
            out += _post_norm_pairs(item["residual"], k + ("residual",))
    return out


@register
class PreNorm(Correction):
    name = "pre_norm"
    summary = ("move each post-norm layernorm (after a residual join) to the start of its branch, "
               "and end the stack with one layernorm: the identity path carries the gradient "
               "unscaled through every block")
    citation = ("Xiong et al. 2020, On layer normalization in the transformer architecture; "
                "Liu et al. 2020, Understanding the difficulty of training transformers")
    addresses = ("FLOW", "DIVG", "ENTR", "LOGT", "STAL")
    # No paraxial prediction: at init a post-norm stack traces near 0 dB per block (the join
    # doubles the power, the norm halves it), and the per-unit gradient of a pre-norm stream
    # falls as 1/(its growing power) while its relative change does not. What pre-norm cures is
    # the training dynamics — updates to the top blocks of a post-norm stack that do not shrink
    # with depth (Xiong et al. 2020; Liu et al. 2020) — which `--verify` measures.
    paraxial = False

    def plan(self, design: Design, case: Case):
        pairs = _post_norm_pairs(design.tree.get("layers"), ("layers",))
        if not pairs:
            raise NotApplicable("no residual block followed by a layernorm (the design is not post-norm)")
        return pairs

    def apply(self, edit: Edit, design: Design, case: Case) -> str:
        pairs = self.plan(design, case)
        for keys, i in sorted(pairs, key=lambda p: (len(p[0]), p[1]), reverse=True):
            seq = edit.current(keys + (i + 1,))[:-1]
            pos = edit.current(keys + (i + 1,))[-1]
            norm = row_element(edit.node(seq + (pos,)))[0]
            edit.remove(seq, pos)
            branch = edit.current(keys + (i,)) + ("residual",)
            edit.insert(branch, 0, make_row(norm))
        # A pre-norm stack ends with a norm before the head (the stream's power grows with depth).
        layers = edit.node(("layers",))
        head = len(layers) - 1
        before = row_element(layers[head - 1])[0] if head > 0 else None
        if before not in ("layernorm", "rmsnorm"):
            edit.insert(("layers",), head, make_row("layernorm"))
        n = len(pairs)
        return f"layernorm moved into {n} residual branch{'es' * (n != 1)} (pre-norm), one before the head"


@register
class SwitchToAdamw(Correction):
    name = "switch_to_adamw"
    summary = ("optimizer: adamw (weight decay 0.01, decoupled from the gradient; lr 1e-3 when "
               "coming from sgd): the transformer default")
    citation = "Loshchilov & Hutter 2019, Decoupled weight decay regularization"
    addresses = ("LOGT", "STAL", "STEP")      # GAP's decay: `weight_decay` (adam → adamw too)

    def plan(self, design: Design, case: Case) -> str:
        if design.train.optimizer == "adamw":
            raise NotApplicable("the optimizer is already adamw")
        return "adamw"

    def apply(self, edit: Edit, design: Design, case: Case) -> str:
        from netlens.corrections.training import ADAM_LR

        self.plan(design, case)
        train = train_section(edit)
        edit.set(train, "optimizer", "adamw", after=("loss",))
        was = design.train.optimizer
        if was == "sgd":
            edit.set(train, "lr", ADAM_LR, after=("optimizer",))
            if "momentum" in train:
                del train["momentum"]
        if design.train.weight_decay < 0.01:
            edit.set(train, "weight_decay", 0.01, after=("lr",))
        return f"{was} → adamw" + (f" (lr {ADAM_LR:g})" if was == "sgd" else "") + ", weight decay 0.01"


def bare_attention(design: Design):
    """Attention rows outside any residual branch and outside `repeat:` bodies."""
    return [r for r in _attention_rows(design) if r.parent is None and "repeat" not in r.source
            and editable(design, r)]


def wrap_attention(edit: Edit, design: Design) -> int:
    """Wrap each bare attention row as `residual: [attention]` (the `wrap_residual` case for
    attention rows that no `repeat:` holds)."""
    rows = bare_attention(design)
    for row in reversed(rows):
        keys = edit.current(keys_of(row.path))
        edit.wrap(keys[:-1], keys[-1], keys[-1] + 1)
    return len(rows)
