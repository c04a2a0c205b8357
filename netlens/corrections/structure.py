"""Corrections that change the stack: insert, wrap, swap, widen or remove rows.

A row inside a `repeat:` is one YAML row, so each of these edits a repeated block once and every
repetition follows. Inserted rows go right after the row they serve; the path moves recorded
by `Edit` keep every row reference valid (see `remap`).
"""
from __future__ import annotations

import math

from netlens.corrections import register
from netlens.corrections.base import (Case, Correction, NotApplicable, Site, after, editable, head,
                                      hidden_weights, repeats, sig, sites)
from netlens.corrections.edit import Edit, keys_of, make_row, row_element
from netlens.elements.activations import Activation
from netlens.prescription import Design

# Cumulative gain magnitude the paraxial model should stay within (docs/aberrations.md, GAIN/FLOW warn).
HEALTHY_DB = 20.0


class InsertNorm(Correction):
    """Insert a norm row right after each hidden weight row that feeds an activation directly."""

    element: str
    paraxial = True

    def plan(self, design: Design, case: Case) -> list[Site]:
        if self.element == "batchnorm" and design.data.batch != "full" and int(design.data.batch) < 2:
            raise NotApplicable("batchnorm needs batches of at least 2 samples")

        def bare(row) -> bool:
            nxt = after(design, row)
            return bool(nxt) and isinstance(nxt[0].element, Activation)

        todo = sites(hidden_weights(design, bare))
        if not todo:
            raise NotApplicable(f"no weight row feeds an activation without a norm between; "
                                f"nothing to put a {self.element} into")
        return todo

    def apply(self, edit: Edit, design: Design, case: Case) -> str:
        todo = self.plan(design, case)
        for site in todo:
            keys = edit.current(site.keys)
            edit.insert(keys[:-1], keys[-1] + 1, make_row(self.element))
        n = sum(len(s.rows) for s in todo)
        return f"{self.element} after {n} weight row{'s' * (n != 1)} ({len(todo)} in the YAML)"


@register
class InsertBatchnorm(InsertNorm):
    name = "insert_batchnorm"
    element = "batchnorm"
    summary = "a batchnorm between each hidden weight row and its activation: power 1 at every depth"
    citation = "Ioffe & Szegedy 2015, Batch normalization"


@register
class InsertLayernorm(InsertNorm):
    name = "insert_layernorm"
    element = "layernorm"
    summary = "a layernorm between each hidden weight row and its activation: per-sample power 1"
    citation = "Ba et al. 2016, Layer normalization"


def _scale(n: int, normalized: bool) -> float | None:
    """The branch multiplier α for L blocks. A branch without a norm gets α = 1/√L, so the
    stack's power grows to about e instead of 2^L; a branch that ends in a norm keeps α = 1,
    since the norm already holds the branch at power 1 (docs/theory.md §1; De & Smith 2020)."""
    return sig(1.0 / math.sqrt(n), 3) if n > 1 and not normalized else None


def _branch_end(body: list) -> int:
    """How many rows of a repeat body go into the branch.

    With a norm in the body, its trailing activations stay after the join, as in He et al.'s
    block relu(x + BN(W·x)): the branch then ends in a norm (zero mean, power 1), so relu means
    do not pile up along the identity path, and the relu after the join halves what the branch
    adds, which holds q at a fixed point. Without a norm the whole body is the branch."""
    from netlens.elements import ELEMENTS

    kinds = [ELEMENTS[row_element(item)[0]].kind if row_element(item)[0] in ELEMENTS else None
             for item in body]
    if "norm" not in kinds:
        return len(body)
    end = len(body)
    while end > 0 and kinds[end - 1] in ("activation", "regularizer"):
        end -= 1
    return end if end > 0 else len(body)


@register
class WrapResidual(Correction):
    name = "wrap_residual"
    summary = ("wrap each `repeat:` block's body as `residual:` — relu(x + BN(W·x)) when it has a "
               "norm, x + α·F(x) with α = 1/√blocks when not: an identity path through every block "
               "(attention rows outside a repeat: each as `residual: [attention]`)")
    citation = ("He et al. 2016, Deep residual learning; α = L^(−1/2): Hanin & Rolnick 2018; "
                "for attention: Dong, Cordonnier & Loukas 2021")
    paraxial = True

    def plan(self, design: Design, case: Case):
        todo = []
        for keys, count, rows in repeats(design):
            body = design.tree
            for k in keys:
                body = body[k]
            body = body["of"]
            already = any(isinstance(item, dict) and "residual" in item for item in body)
            if count > 1 and not already:
                end = _branch_end(body)
                normalized = end < len(body) or any(r.element.kind == "norm" for r in rows)
                todo.append((keys, count, end, _scale(count, normalized)))
        if not todo:
            from netlens.corrections.sequence import bare_attention

            if bare_attention(design):      # attention rows outside any repeat: wrap each
                return [("attention", 0, 0, None)]
            raise NotApplicable("no `repeat:` block to wrap (or each is already residual)")
        return todo

    def apply(self, edit: Edit, design: Design, case: Case) -> str:
        todo = self.plan(design, case)
        if todo[0][0] == "attention":
            from netlens.corrections.sequence import wrap_attention

            n = wrap_attention(edit, design)
            return f"residual around {n} attention row{'s' * (n != 1)}"
        for keys, count, end, scale in todo:
            of = edit.current(keys + ("of", 0))[:-1]
            edit.wrap(of, 0, end, scale)
        return "residual around each repeated block: " + ", ".join(
            f"{count} blocks" + (f" (scale {scale:g})" if scale else "") for _, count, _, scale in todo)


@register
class ZeroInitResidual(Correction):
    name = "zero_init_residual"
    summary = ("shrink each residual branch's `scale:` to 1/blocks (≤ 0.25): every block starts "
               "near the identity")
    citation = "Goyal et al. 2017 (zero-γ); Zhang et al. 2019 (Fixup)"
    paraxial = True

    def target(self, design: Design) -> float:
        blocks = sum(1 for r in design.rows if r.element is None)
        return sig(min(0.25, 1.0 / blocks), 2)

    def plan(self, design: Design, case: Case) -> list[Site]:
        blocks = [r for r in design.rows if r.element is None]
        if not blocks:
            raise NotApplicable("the design has no residual block (try wrap_residual)")
        todo = [s for s in sites(blocks) if s.rows[0].scale > self.target(design) * 1.001]
        if not todo:
            raise NotApplicable("every residual branch is already scaled down")
        return todo

    def apply(self, edit: Edit, design: Design, case: Case) -> str:
        todo, alpha = self.plan(design, case), self.target(design)
        for site in todo:
            edit.set(edit.node(edit.current(site.keys)), "scale", alpha)
        return f"residual scale {alpha:g} on {sum(len(s.rows) for s in todo)} blocks"


@register
class SwapActivation(Correction):
    name = "swap_activation"
    summary = ("relu → leaky_relu (slope 0.1) for dead units: a unit below zero still passes a "
               "tenth of its gradient; tanh/sigmoid → gelu for saturation: no flat upper tail")
    citation = ("Maas et al. 2013, Rectifier nonlinearities improve neural network acoustic models; "
                "Hendrycks & Gimpel 2016, Gaussian error linear units (GELUs)")
    SLOPE = 0.1     # Maas used 0.01; a dead unit recovers ten times faster at 0.1

    def _swap(self, case: Case) -> tuple[tuple[str, ...], str, float | None]:
        """(elements to replace, replacement, its value) for the aberration being treated."""
        if case.code == "SATR":
            return ("tanh", "sigmoid"), "gelu", None
        return ("relu",), "leaky_relu", self.SLOPE

    def plan(self, design: Design, case: Case) -> list[Site]:
        old, new, _ = self._swap(case)
        todo = sites([r for r in design.rows if r.element is not None and r.element.name in old
                      and editable(design, r)])
        if not todo:
            raise NotApplicable(f"no {' or '.join(old)} row to swap for {new}")
        return todo

    def apply(self, edit: Edit, design: Design, case: Case) -> str:
        todo = self.plan(design, case)
        old, new, value = self._swap(case)
        for site in todo:
            edit.rename(edit.current(site.keys), new, value)
        rows = sum(len(s.rows) for s in todo)
        return f"{' / '.join(old)} → {new}" + (f" {value:g}" if value is not None else "") + f" on {rows} rows"


@register
class InsertDropout(Correction):
    name = "insert_dropout"
    summary = "a dropout row (p = 0.2) before the head: the head cannot lean on a few features"
    citation = "Srivastava et al. 2014, Dropout"
    P = 0.2         # before the head only: deep stacks of dropout have no critical point (docs/theory.md §1)

    def plan(self, design: Design, case: Case):
        h = head(design)
        top = design.top_rows()
        if h is None or top.index(h) == 0:
            raise NotApplicable("no hidden layer before the head")
        before = top[top.index(h) - 1]
        if before.element is not None and before.element.name == "dropout":
            raise NotApplicable("there is already a dropout before the head")
        return h

    def apply(self, edit: Edit, design: Design, case: Case) -> str:
        h = self.plan(design, case)
        keys = edit.current(keys_of(h.path))
        edit.insert(keys[:-1], keys[-1], make_row("dropout", self.P))
        return f"dropout {self.P:g} before the head (#{h.index})"


@register
class Widen(Correction):
    name = "widen"
    summary = "double the width (channels) of every hidden weight row"
    citation = "Zagoruyko & Komodakis 2016 (wide residual networks); finite-width spread: Hanin & Rolnick 2018"
    FACTOR = 2

    def plan(self, design: Design, case: Case) -> list[Site]:
        todo = sites(hidden_weights(design))
        if not todo:
            raise NotApplicable("no hidden weight row to widen")
        return todo

    def apply(self, edit: Edit, design: Design, case: Case) -> str:
        todo = self.plan(design, case)
        for site in todo:
            el = site.rows[0].element
            option = "width" if el.name == "linear" else "channels"
            keys = edit.current(site.keys)
            new = getattr(el.opts, option) * self.FACTOR
            name, value = row_element(edit.node(keys))
            if isinstance(value, dict):
                edit.set(value, option, new)
            else:
                edit.set(edit.node(keys), name, new)     # keep the short form `linear: 128`
        return f"×{self.FACTOR} width on {sum(len(s.rows) for s in todo)} weight rows"


@register
class RemoveRows(Correction):
    name = "remove_rows"
    summary = ("remove the finding's row if it is a norm or dropout; else shorten the longest "
               "`repeat:` until the paraxial gains stay within ±20 dB")
    citation = "Schoenholz et al. 2017 (trainable depth ≈ 6ξ_c)"
    needs = "the finding's row"
    paraxial = True
    uses_case = True

    def plan(self, design: Design, case: Case):
        if case.row is not None and 0 <= case.row < len(design.rows):
            row = design.rows[case.row]
            if row.element is not None and row.element.kind in ("norm", "regularizer") \
                    and editable(design, row):
                return ("row", row)
        blocks = [(keys, n, rows) for keys, n, rows in repeats(design) if n > 1]
        if not blocks:
            raise NotApplicable("no norm/dropout row named by the finding and no `repeat:` to shorten")
        return ("repeat", max(blocks, key=lambda b: len(b[2])))

    def apply(self, edit: Edit, design: Design, case: Case) -> str:
        kind, what = self.plan(design, case)
        if kind == "row":
            keys = edit.current(keys_of(what.path))
            edit.remove(keys[:-1], keys[-1])
            return f"removed {what.label} (#{what.index}" + (" and its repetitions)" if "repeat" in what.source else ")")
        keys, count, _ = what
        new = _shortest_fit(design, keys, count)
        edit.set(edit.node(edit.current(keys)), "repeat", new)
        return f"repeat {count} → {new}"


def _shortest_fit(design: Design, keys: tuple, count: int) -> int:
    """The largest repeat count below `count` whose paraxial gains stay within ±HEALTHY_DB
    (deeper is more expressive), or half the count if none does."""
    from netlens.corrections.predict import paraxial
    from netlens.corrections.text import render
    from netlens.prescription import design_from_text

    def fits(n: int) -> bool:
        edit = Edit(design.tree)
        edit.set(edit.node(keys), "repeat", n)
        try:
            p = paraxial(design_from_text(render(edit.tree), design.file))
        except Exception:           # a count that breaks the shapes does not fit
            return False
        return abs(p.gain_worst) <= HEALTHY_DB and abs(p.flow_worst) <= HEALTHY_DB

    lo, hi = 0, count - 1           # invariant: fits(lo) or lo == 0; answer in [lo, hi]
    while lo < hi:                  # deeper stacks drift further, so fitting is monotone in n
        mid = (lo + hi + 1) // 2
        if fits(mid):
            lo = mid
        else:
            hi = mid - 1
    return lo if lo >= 1 else max(1, count // 2)
