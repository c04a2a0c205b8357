"""Bring your own model: a plain PyTorch loop under `netlens.watch` (README, "Bring your own model")."""
import torch
from sklearn.datasets import load_digits
from torch import nn

import netlens.watch


def make_model() -> nn.Module:          # PyTorch's default init on a deep relu stack
    torch.manual_seed(0)
    hidden = [m for _ in range(7) for m in (nn.Linear(64, 64), nn.ReLU())]
    return nn.Sequential(nn.Flatten(), *hidden, nn.Linear(64, 10))


if __name__ == "__main__":
    digits = load_digits()
    x = torch.tensor(digits.data, dtype=torch.float32)
    x, y = (x - x.mean(0)) / (x.std(0) + 1e-6), torch.tensor(digits.target)
    model, loss_fn = make_model(), nn.CrossEntropyLoss()
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    with netlens.watch(model, opt, loss_fn, probe=(x[:256], y[:256]), out="runs/byo", force=True) as lens:
        for step in range(200):                       # your loop, unchanged
            idx = torch.randint(0, len(x), (64,))
            opt.zero_grad()
            loss_fn(model(x[idx]), y[idx]).backward()
            opt.step()
    for f in lens.diagnose().diagnosis.findings[:4]:
        print(f.severity.upper(), f.code, f.message)
