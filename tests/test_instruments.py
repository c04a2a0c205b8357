"""Instruments observe only: the same seed gives bit-identical weights with and without them."""
from __future__ import annotations

import torch

from netlens.prescription import load_design
from netlens.simulate import simulate

# Dropout and batchnorm are where a careless probe would change training (random state, running
# statistics); both are in this design on purpose.
DESIGN = """
netlens: 1
seed: 3
data: {source: digits, n: 300, batch: 16}
layers:
  - conv2d: {channels: 4, kernel: 3, init: he}
  - batchnorm
  - relu
  - maxpool: 2
  - flatten
  - dropout: 0.3
  - residual:
      - linear: {width: 64, init: he}
      - tanh
  - linear: 10
train: {optimizer: adam, lr: 0.003, steps: 25, device: cpu}
probe: {every: 5, batch: 48, hessian: {every: 5, max_products: 5}}
"""


def test_instruments_do_not_change_training(write):
    design = load_design(write(DESIGN))
    with_probes = simulate(design, instruments=True)
    bare = simulate(design, instruments=False)
    assert len(with_probes.records.snapshots) == 6   # steps 0, 5, …, 25
    assert with_probes.records.snapshots[1].preconditioned is not None   # adam: λ₁(P⁻¹H)
    a, b = with_probes.net.state_dict(), bare.net.state_dict()
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert with_probes.records.loss_curve == bare.records.loss_curve


def test_records_cover_every_row(write):
    run = simulate(load_design(write(DESIGN)))
    snap = run.records.at("init")
    assert len(snap.rows) == len(run.design.rows)
    for meta, row in zip(run.records.rows, snap.rows):
        assert row["q"] > 0, meta
        if meta.kind == "layer":
            assert "s_max" in row and "w_norm" in row and "update_ratio" in row
        if meta.element == "relu":
            assert 0 <= row["dead"] <= 1
    assert snap.val_accuracy is not None and snap.grad_norm > 0


def test_each_tier_reads_on_its_own_schedule(write):
    """Log-spaced by default: the fixed tier at 0, 2·every, 8·every, … up to half the run and the
    end; the evaluation passes from 16·every; a tier's keys are absent where it did not read."""
    from netlens.instruments.schedule import Schedule

    design = load_design(write(DESIGN.replace("steps: 25", "steps: 100").replace(
        "probe: {every: 5, batch: 48, hessian: {every: 5, max_products: 5}}",
        "probe: {every: 5, batch: 48, hessian: false}")))
    plan = Schedule.of(design.probe, design.train.steps).to_dict()
    assert plan["fixed"] == [0, 10, 40, 100]         # 160 is past the end; 40 ≤ half of 100
    assert plan["eval"] == [0, 80, 100]
    assert plan["step"] == list(range(0, 101, 5))
    run = simulate(design)
    assert run.records.schedule == plan
    for snap in run.records.snapshots:
        conv = snap.rows[0]
        assert ("erank" in conv) == (snap.step in plan["fixed"]), snap.step
        assert (snap.val_loss is not None) == (snap.step in plan["eval"]), snap.step
        assert conv["q"] > 0                          # the step tier reads at every probe


def test_effective_ranks_read_at_once_match_one_at_a_time():
    from netlens.instruments import stats

    gen = torch.Generator().manual_seed(0)
    mats = [torch.randn(256, 64, generator=gen), torch.randn(40, 128, generator=gen).double(),
            torch.randn(256, 3, generator=gen) @ torch.randn(3, 50, generator=gen),   # rank 3
            torch.zeros(8, 4)]
    together = stats.effective_ranks(mats)
    for m, e in zip(mats, together):
        assert e == stats.effective_rank(m)
    assert 2.0 < together[2] < 3.1 and together[3] == 0.0     # float32 Gram: ~1e-3 noise floor


def test_rounded_share_on_a_sample_of_a_large_row_tracks_the_exact_count():
    from netlens.instruments import precision

    gen = torch.Generator().manual_seed(1)
    before = torch.randn(512, 512, generator=gen)
    grad = torch.randn(512, 512, generator=gen)
    grad[:, :128] = 0                                    # a quarter not meant to move
    after = before - 1e-9 * grad                         # below half an ulp for most weights ...
    after[:64] = before[:64] - 1e-2 * grad[:64]          # ... except these rows
    moved = after - before
    exact = ((moved == 0) & (grad != 0)).sum().item() / (grad != 0).sum().item()
    at = precision.sample_indices({0: before, 1: before[:8, :8]}, seed=5)
    assert at[0].numel() == precision.SAMPLE and at[1] is None
    meant, went = (float(c) for c in precision.counts([moved], [grad], [at[0]]))
    assert abs(precision.share(meant, went) - exact) < 0.03    # 4,096 draws: s.e. < 0.8%
    meant, went = (float(c) for c in precision.counts([moved], [grad], [None]))
    assert precision.share(meant, went) == exact
