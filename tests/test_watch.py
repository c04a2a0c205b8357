"""netlens.watch: your own model in your own loop, judged like a simulated design."""
from __future__ import annotations

import json
import textwrap

import numpy as np
import pytest
import torch
from torch import nn

import netlens
from netlens import data as datasets
from netlens.diagnose import Result, diagnose
from netlens.errors import DesignError
from netlens.prescription import load_design

from conftest import DESIGNS


class Block(nn.Module):
    """A residual block with a custom forward: functional ops between the modules."""

    def __init__(self, w: int):
        super().__init__()
        self.fc1 = nn.Linear(w, w)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(w, w)

    def forward(self, x):
        return x + 0.5 * self.fc2(self.act(self.fc1(x)))


class UserNet(nn.Module):
    """Nested modules, a ModuleList, a tied weight, a reused activation, a custom forward."""

    def __init__(self, w: int = 32):
        super().__init__()
        self.encoder = nn.Sequential(nn.Flatten(), nn.Linear(64, w), nn.LayerNorm(w))
        self.blocks = nn.ModuleList([Block(w) for _ in range(2)])
        self.mix_a = nn.Linear(w, w, bias=False)
        self.mix_b = nn.Linear(w, w, bias=False)
        self.mix_b.weight = self.mix_a.weight           # tied
        self.relu = nn.ReLU()
        self.head = nn.Linear(w, 10)

    def forward(self, x):
        h = self.encoder(x)
        for b in self.blocks:
            h = b(h)
        h = self.relu(self.mix_a(h))
        h = self.relu(self.mix_b(h))                     # the same ReLU module, called twice
        return self.head(h)


def _digits(n: int | None = None):
    d = load_design(DESIGNS / "quickstart.yaml")
    ds = datasets.load(d.data, d.seed, d.base_dir)
    x, y = torch.as_tensor(ds.x_train), torch.as_tensor(ds.y_train)
    return (x, y) if n is None else (x[:n], y[:n])


def test_user_script_runs_under_watch_and_diagnose_judges_the_folder(tmp_path, cli):
    x, y = _digits(600)
    torch.manual_seed(0)
    model = UserNet()
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=24)
    loss_fn = nn.CrossEntropyLoss()
    run = tmp_path / "run"
    g = torch.Generator().manual_seed(1)
    with netlens.watch(model, opt, loss_fn, probe=(x[:128], y[:128]), every=8, out=run,
                       val=(x[500:], y[500:])) as lens:
        for _step in range(24):
            for _micro in range(2):                      # gradient accumulation
                idx = torch.randint(0, 500, (16,), generator=g)
                with torch.autocast("cpu", dtype=torch.bfloat16):
                    loss = loss_fn(model(x[idx]), y[idx]) / 2
                loss.backward()
            opt.step()
            sched.step()
            opt.zero_grad()
            lens.log(loss * 2)
    for f in ("records.json", "model.json", "summary.json", "loss.png", "gains.png"):
        assert (run / f).is_file(), f
    rec = json.loads((run / "records.json").read_text())
    assert [s["step"] for s in rec["snapshots"]] == [0, 8, 16, 24]
    assert rec["optimizer"] == "adamw" and rec["batch"] == 32 and rec["steps_done"] == 24
    lrs = [s["lr"] for s in rec["snapshots"]]
    assert lrs[0] == pytest.approx(2e-3) and lrs[1] < lrs[0] and lrs[2] < lrs[1]   # the scheduler's
    sources = [r["source"] for r in rec["rows"]]
    assert "module blocks.1.fc2" in sources and "module relu (call 2)" in sources
    assert sources[-1] == "module head"
    model_doc = json.loads((run / "model.json").read_text())
    assert sum(r["params"] for r in model_doc["calls"]) == sum(p.numel() for p in model.parameters())
    assert [r["params"] for r in model_doc["calls"] if r["path"] == "mix_b"] == [0]   # tied: once
    # every row measured at every probe, gradients included
    for s in rec["snapshots"]:
        assert all(np.isfinite(r["q"]) and r["p"] > 0 for r in s["rows"])
    assert rec["snapshots"][0]["val_loss"] is not None

    res = cli("diagnose", run, "--json", "--fail-on", "never")
    assert res.exit_code == 0, res.output
    doc = json.loads(res.output)
    assert [r["source"] for r in doc["rows"]] == sources
    judged = lens.diagnose(plot=False)
    assert isinstance(judged, Result) and not judged.simulated
    assert [f.code for f in judged.diagnosis.findings] == [f["code"] for f in doc["findings"]]
    for f in doc["findings"]:        # advice for the user's code, never a prescription patch
        assert all(c["patch"] is None and c["advice"] for c in f["corrections"])
    text = cli("diagnose", run)
    assert text.exit_code in (0, 1) and "aberrations per row" in text.output
    fix = cli("diagnose", run, "--fix")
    assert fix.exit_code == 2 and "advice" in fix.output


def _relu_stack(init_he: bool) -> nn.Module:
    torch.manual_seed(0)        # the prescription's seed: nn.Linear draws the same weights
    layers: list[nn.Module] = [nn.Flatten()]
    for _ in range(7):
        layers += [nn.Linear(64, 64), nn.ReLU()]
    layers.append(nn.Linear(64, 10))
    model = nn.Sequential(*layers)
    if init_he:
        for m in list(model)[1:-1]:
            if isinstance(m, nn.Linear):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                nn.init.zeros_(m.bias)
    return model


def _flow(result: Result) -> dict[int, str]:
    return {i: s["FLOW"] for i, s in result.diagnosis.severity.items() if "FLOW" in s}


@pytest.mark.parametrize("he", [False, True], ids=["default-init", "he-init"])
def test_same_network_as_prescription_and_as_module_flags_the_same_rows(tmp_path, he):
    text = (DESIGNS / "default-init-relu.yaml").read_text()
    if he:
        text = text.replace("init: default", "init: {name: he, sigma_b2: 0}")
    path = tmp_path / "stack.yaml"
    path.write_text(text)
    steps = 20
    simulated = diagnose(path, overrides={"train.steps": steps}, out=tmp_path / "sim")
    design = simulated.design

    # the same data, probe batch and batch order as simulate, in a plain loop
    ds = datasets.load(design.data, design.seed, design.base_dir)
    x, y = torch.as_tensor(ds.x_train), torch.as_tensor(ds.y_train)
    pick = np.random.default_rng([design.seed, 1]).permutation(len(x))[:design.probe.batch]
    model = _relu_stack(he)
    if not he:
        assert all(torch.equal(a, b) for a, b in zip(model.parameters(), _built(design).parameters()))
    opt = torch.optim.SGD(model.parameters(), lr=design.train.lr)
    batches = datasets.batches(len(x), design.data.batch, design.seed)
    torch.manual_seed(design.seed)
    with netlens.watch(model, opt, nn.functional.cross_entropy, probe=(x[pick], y[pick]),
                       every=design.probe.every, out=tmp_path / "watched"):
        for _ in range(steps):
            idx = torch.as_tensor(next(batches))
            opt.zero_grad(set_to_none=True)
            nn.functional.cross_entropy(model(x[idx]), y[idx]).backward()
            opt.step()
    watched = diagnose(tmp_path / "watched")
    assert [r.element for r in watched.records.rows] == [r.element for r in simulated.records.rows]
    assert _flow(watched) == _flow(simulated)
    errors = {i for i, s in _flow(watched).items() if s == "error"}
    flagged = {f.code for f in watched.diagnosis.findings if f.severity in ("warn", "error")}
    if he:
        assert "FLOW" not in flagged and "FLOW" not in {
            f.code for f in simulated.diagnosis.findings if f.severity in ("warn", "error")}
    else:
        assert errors and errors == {i for i, s in _flow(simulated).items() if s == "error"}
        # the paraxial columns agree too: σ_w² read from the weights against the prescription's
        par_w = watched.doc["rows"]
        par_s = simulated.doc["rows"]
        for a, b in zip(par_w, par_s):
            assert a["paraxial"]["flow_db"] == pytest.approx(b["paraxial"]["flow_db"], abs=0.3)
        # the correction: a patch for the prescription, advice for the module, the same prediction
        fw = next(f for f in watched.doc["findings"] if f["code"] == "FLOW")
        fs = next(f for f in simulated.doc["findings"] if f["code"] == "FLOW")
        assert fw["corrections"][0]["name"] == fs["corrections"][0]["name"] == "he_init"
        assert fs["corrections"][0]["patch"] and fw["corrections"][0]["patch"] is None
        assert "kaiming_normal_" in fw["corrections"][0]["advice"]
        after_w = fw["correction_info"]["he_init"]["predicted"]["FLOW"]["after"]
        after_s = fs["correction_info"]["he_init"]["predicted"]["FLOW"]["after"]
        assert after_w == pytest.approx(after_s, abs=0.5)


def _built(design):
    from netlens.model import build_network
    from netlens.simulate import prepare

    _data, tr = prepare(design)
    return build_network(design, tr)


class Noisy(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(64, 48), nn.BatchNorm1d(48),
                                 nn.ReLU(inplace=True), nn.Dropout(0.3), nn.Linear(48, 10))

    def forward(self, x):
        return self.net(x)


def _train(watched: bool, tmp_path) -> dict[str, torch.Tensor]:
    x, y = _digits(300)
    torch.manual_seed(3)
    model = Noisy()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    sched = torch.optim.lr_scheduler.StepLR(opt, 5, 0.5)

    def loop():
        for step in range(12):
            idx = torch.arange(step * 20, step * 20 + 32) % 300
            opt.zero_grad()
            nn.functional.cross_entropy(model(x[idx]), y[idx]).backward()
            opt.step()
            sched.step()

    if watched:
        with netlens.watch(model, opt, nn.functional.cross_entropy, probe=(x[:64], y[:64]),
                           every=1, out=tmp_path / "bits"):
            loop()
    else:
        loop()
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_weights_are_bit_identical_with_and_without_watch(tmp_path):
    bare, watched = _train(False, tmp_path), _train(True, tmp_path)
    assert bare.keys() == watched.keys()
    for k in bare:
        assert torch.equal(bare[k], watched[k]), k


def test_rows_chosen_by_glob_and_paraxial_of_the_module_tree(tmp_path):
    x, y = _digits(128)
    torch.manual_seed(0)
    model = UserNet()
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    with netlens.watch(model, opt, nn.functional.cross_entropy, probe=(x, y), every=2,
                       rows=["blocks.*", "head"], out=tmp_path / "glob") as lens:
        for _ in range(2):
            opt.zero_grad()
            nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
    assert [r.source for r in lens.run.records.rows] == ["module blocks.0", "module blocks.1", "module head"]
    # a chosen Block is measured; its leaves all have rules, so the trace composes them
    assert lens.run.records.rows[0].label == "Block"
    with pytest.raises(DesignError, match="matches no module"):
        netlens.watch(model, opt, nn.functional.cross_entropy, probe=(x, y),
                      rows=["nothing.*"], out=tmp_path / "none").__enter__()

    from netlens.watch import paraxial_model

    p = paraxial_model(_relu_stack(False), (1, 8, 8))
    assert [r["element"] for r in p.doc["rows"]][:3] == ["flatten", "linear", "relu"]
    assert p.doc["sum"]["flow_db"] == pytest.approx(-67.3, abs=1.0)   # the prescription's −67.3 dB
    odd = paraxial_model(nn.Sequential(nn.Conv2d(1, 4, 3, groups=1, dilation=2), nn.Flatten(),
                                       nn.Linear(64, 10)), (1, 8, 8))
    assert "no paraxial rule" in odd.doc["rows"][0]["label"]
    assert odd.doc["rows"][2]["flow_db"] is not None


def test_paraxial_cli_takes_a_model_factory(tmp_path, cli, monkeypatch):
    (tmp_path / "user_models.py").write_text(textwrap.dedent("""
        from torch import nn
        def stack():
            return nn.Sequential(nn.Flatten(), nn.Linear(64, 64), nn.Tanh(), nn.Linear(64, 10))
        """))
    monkeypatch.chdir(tmp_path)
    res = cli("paraxial", "--model", "user_models:stack", "--input-shape", "1,8,8", "--json")
    assert res.exit_code == 0, res.output
    doc = json.loads(res.output)
    assert [r["element"] for r in doc["rows"]] == ["flatten", "linear", "tanh", "linear"]
    table = cli("paraxial", "--model", "user_models:stack", "--input-shape", "1,8,8")
    assert table.exit_code == 0 and "linear 64" in table.output
    for args in (("--model", "user_models:nope", "--input-shape", "1,8,8"),
                 ("--model", "no_such_module:x", "--input-shape", "1,8,8"),
                 ("--model", "user_models:stack", "--input-shape", "a,b"),
                 ("--model", "user_models:stack")):
        bad = cli("paraxial", *args)
        assert bad.exit_code == 2 and "Traceback" not in bad.output, bad.output


def test_watch_rejects_bad_arguments(tmp_path):
    model = nn.Linear(4, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    x, y = torch.randn(8, 4), torch.randint(0, 2, (8,))
    with pytest.raises(DesignError, match="optimizer"):
        netlens.watch(model, "sgd", nn.functional.cross_entropy, probe=(x, y))
    with pytest.raises(DesignError, match="probe"):
        netlens.watch(model, opt, nn.functional.cross_entropy, probe=x)
    with pytest.raises(DesignError, match="every"):
        netlens.watch(model, opt, nn.functional.cross_entropy, probe=(x, y), every=0)


def test_lightning_callback_writes_a_run_folder_diagnose_judges(tmp_path, cli):
    pl = pytest.importorskip("pytorch_lightning", reason="the `lightning` extra is not installed")
    from netlens.integrations.lightning import NetlensCallback

    x, y = _digits(256)

    class Lit(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))

        def forward(self, xb):
            return self.net(xb)

        def training_step(self, batch, _i):
            xb, yb = batch
            return nn.functional.cross_entropy(self(xb), yb)

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.05)

    torch.manual_seed(0)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=32)
    cb = NetlensCallback(probe=(x[:64], y[:64]), loss_fn=nn.functional.cross_entropy, every=4,
                         out=tmp_path / "lit")
    trainer = pl.Trainer(max_steps=8, callbacks=[cb], logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, accelerator="cpu")
    trainer.fit(Lit(), loader)
    rec = json.loads((tmp_path / "lit" / "records.json").read_text())
    assert [s["step"] for s in rec["snapshots"]] == [0, 4, 8]
    assert rec["batch"] == 32 and len(rec["loss_curve"]) == 8
    assert rec["snapshots"][0]["rows"][1].get("g_norm", 0) > 0      # read before the update
    res = cli("diagnose", tmp_path / "lit", "--json", "--fail-on", "never")
    assert res.exit_code == 0, res.output
    assert [r["source"] for r in json.loads(res.output)["rows"]][1] == "module net.1"


def test_diagnosing_a_watched_folder_imports_no_torch(tmp_path):
    import subprocess
    import sys

    from conftest import ROOT

    model = nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 3))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    x, y = torch.randn(64, 8), torch.randint(0, 3, (64,))
    with netlens.watch(model, opt, nn.functional.cross_entropy, probe=(x, y), every=2,
                       out=tmp_path / "tiny"):
        for _ in range(3):
            opt.zero_grad()
            nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
    code = ("import sys; from netlens.diagnose import diagnose; r = diagnose(sys.argv[1], plot=False); "
            "print(len(r.records.rows), 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "tiny")], capture_output=True,
                         text=True, env={**__import__("os").environ, "PYTHONPATH": str(ROOT)})
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["3", "False"]
