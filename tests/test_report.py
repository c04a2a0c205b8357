"""`netlens report`: one self-contained HTML page for a run, a study and a tolerance result,
checked as text and in a real headless browser (Chromium from Debian's packages).

The browser test installs Chromium with apt-get when it is missing (bounded in time; set
NETLENS_NO_BROWSER_INSTALL=1 to forbid it) and is skipped, with the reason, where it cannot be.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import textwrap
from pathlib import Path

import pytest

from conftest import DESIGNS

INSTALL_TIMEOUT = 240          # seconds for apt-get update + install together

STUDY = """
netlens: 1
name: tiny-study
seed: 0
data: {source: digits, n: 300, batch: 32}
layers:
  - flatten
  - linear: {width: 16, init: he}
  - relu
  - linear: 10
train:
  optimizer: adam
  lr: {vary: [1.0e-3, 1.0e-2], log: true, start: 3.0e-3}
  steps: 20
probe: {every: 10, batch: 64, hessian: false}
"""

# A tolerance document as `netlens tolerance --json` writes it (the JSON contract of its issue:
# design, noise, resolution, sensitivity[], instability, yield), for the renderer.
TOLERANCE = {
    "netlens": 1, "design": "quickstart",
    "noise": {"val_loss": {"mean": 0.0861, "sd": 0.0042, "n": 5},
              "val_error": {"mean": 0.031, "sd": 0.0045, "n": 5}},
    "resolution": {"val_loss": 0.0053, "val_error": 0.0057},
    "sensitivity": [
        {"operand": "train.lr", "perturbation": "×2", "delta": {"val_loss": 0.031}, "sigmas": 7.4,
         "verdict": "sensitive"},
        {"operand": "train.lr", "perturbation": "×0.5", "delta": {"val_loss": 0.002}, "sigmas": 0.5,
         "verdict": "within_noise"},
        {"operand": "precision", "perturbation": "bfloat16", "delta": {"val_loss": 2.2}, "sigmas": 520.0,
         "verdict": "breaks"},
    ],
    "instability": {"relative_distance": 2.1e-4, "doubling_steps": 61.0, "disagreement": 0.004,
                    "seed_disagreement": 0.03, "unstable": False},
    "yield": {"spec": "val_accuracy >= 0.95", "fraction": 0.9, "low": 0.74, "high": 0.97, "n": 20},
}


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    from typer.testing import CliRunner

    from netlens.cli import app

    base = tmp_path_factory.mktemp("report")
    runner = CliRunner()
    run = base / "run"
    r = runner.invoke(app, ["diagnose", str(DESIGNS / "default-init-relu.yaml"), "--steps", "20",
                            "--out", str(run), "--quiet"])
    assert r.exit_code in (0, 1), r.output
    design = base / "tiny-study.yaml"
    design.write_text(textwrap.dedent(STUDY).lstrip())
    study = base / "study"
    r = runner.invoke(app, ["optimize", str(design), "--trials", "3", "--out", str(study), "--quiet",
                            "--no-aberration-pruning"])
    assert r.exit_code == 0, r.output
    tol = base / "tolerance"
    tol.mkdir()
    (tol / "tolerance.json").write_text(json.dumps(TOLERANCE))
    measured = base / "tolerance-measured"          # a real, small tolerance run
    r = runner.invoke(app, ["tolerance", str(design), "--seeds", "2", "--only", "noise,instability",
                            "--out", str(measured), "--quiet"])
    assert r.exit_code == 0, r.output
    pages = {}
    for key, folder in (("run", run), ("study", study), ("tolerance", tol), ("tolerance-measured", measured)):
        out = base / f"{key}.html"
        r = runner.invoke(app, ["report", str(folder), "--html", str(out), "--json"])
        assert r.exit_code == 0, r.output
        doc = json.loads(r.stdout)
        assert doc["kind"] == key.split("-")[0] and Path(doc["html"]) == out
        pages[key] = (out, doc)
    return pages


def _self_contained(html: str) -> None:
    assert "<script" not in html.lower()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//|file:)""", html, re.I)
    assert "<link" not in html.lower()
    for src in re.findall(r'<img[^>]*src="([^"]+)"', html):
        assert src.startswith("data:image/png;base64,")


def test_run_page_has_tables_findings_and_plots(folders):
    path, doc = folders["run"]
    html = path.read_text()
    _self_contained(html)
    assert doc["findings"] > 0 and doc["images"] >= 3
    for anchor in ("prescription", "aberrations", "findings", "plots"):
        assert f'id="{anchor}"' in html
    assert "gain paraxial" in html and "flow step 0" in html          # paraxial beside measured
    assert 'class="sev-error"' in html                               # cells coloured by severity
    assert 'data-code="FLOW"' in html and "vanishing gradient" in html
    assert '<pre class="diff">' in html and "init: he" in html          # the correction as a diff
    diagnosis = json.loads((path.parent / "run" / "diagnosis.json").read_text())
    from html import escape

    for f in diagnosis["findings"]:
        assert escape(f["message"]) in html


def test_study_and_tolerance_pages(folders):
    path, doc = folders["study"]
    html = path.read_text()
    _self_contained(html)
    assert doc["trials"] == 3 and doc["images"] >= 2
    assert 'id="best"' in html and "train.lr" in html and "as written" in html
    path, doc = folders["tolerance"]
    html = path.read_text()
    _self_contained(html)
    for anchor in ("noise", "sensitivity", "instability", "yield"):
        assert f'id="{anchor}"' in html
    assert doc["verdicts"] == {"within_noise": 1, "sensitive": 1, "breaks": 1}
    assert 'class="sev-error">breaks' in html and doc["images"] == 1     # the tornado
    path, doc = folders["tolerance-measured"]
    html = path.read_text()
    _self_contained(html)
    assert 'id="noise"' in html and 'id="instability"' in html and "resolution" in html
    assert doc["images"] >= 1                                       # the twin's distance curve


def test_default_place_and_bad_input(cli, tmp_path, folders):
    run = folders["run"][0].parent / "run"
    r = cli("report", run)
    assert r.exit_code == 0, r.output
    assert (run / "report.html").is_file()
    r = cli("report", tmp_path)
    assert r.exit_code == 2 and "holds no netlens results" in r.output and "Traceback" not in r.output
    r = cli("report", tmp_path / "missing")
    assert r.exit_code == 2 and "does not exist" in r.output
    (tmp_path / "tolerance.json").write_text("{not json")
    r = cli("report", tmp_path)
    assert r.exit_code == 3 and "cannot read" in r.output


# -- the browser ------------------------------------------------------------------------------
def _find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


def _install_chromium() -> str:
    """Debian's chromium via apt-get, bounded in time; '' when installed, else the reason."""
    if os.environ.get("NETLENS_NO_BROWSER_INSTALL"):
        return "NETLENS_NO_BROWSER_INSTALL is set"
    if shutil.which("apt-get") is None:
        return "no apt-get on this machine"
    if hasattr(os, "geteuid") and os.geteuid() != 0:
        return "not root, so apt-get cannot install chromium"
    import time

    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    deadline = time.monotonic() + INSTALL_TIMEOUT
    try:
        for cmd in (["apt-get", "update"],
                    ["apt-get", "install", "-y", "--no-install-recommends", "chromium"]):
            left = deadline - time.monotonic()
            if left <= 0:
                raise subprocess.TimeoutExpired(cmd, INSTALL_TIMEOUT)
            r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=left)
            if r.returncode != 0:
                return f"`{' '.join(cmd)}` failed: {(r.stderr or r.stdout).strip().splitlines()[-1:]}"
    except subprocess.TimeoutExpired:
        return f"apt-get did not finish within {INSTALL_TIMEOUT} s"
    return ""


@pytest.fixture(scope="session")
def chromium():
    found = _find_chromium()
    if found is None:
        why = _install_chromium()
        found = _find_chromium()
        if found is None:
            print(f"browser test skipped: Chromium is not installed and could not be ({why})")
            pytest.skip(f"Chromium is not installed and could not be ({why})")
    return found


CHECK = """<script>
window.__errors = [];
window.addEventListener('error', e => window.__errors.push(
  e.message || ('failed to load ' + (e.target && (e.target.alt || e.target.tagName)))), true);
window.addEventListener('load', () => {
  const imgs = Array.from(document.images);
  const bad = imgs.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.alt);
  const out = document.createElement('pre');
  out.id = 'netlens-check';
  out.textContent = JSON.stringify({images: imgs.length, bad: bad, errors: window.__errors,
    findings: document.querySelectorAll('.finding').length,
    sizes: imgs.map(i => [i.naturalWidth, i.naturalHeight])});
  document.body.appendChild(out);
});
</script>"""


def _load(chromium: str, page: Path, tmp: Path) -> tuple[dict, str]:
    """The page's own check (written into the DOM after load) and Chromium's stderr log."""
    probe = tmp / f"checked-{page.name}"
    probe.write_text(page.read_text().replace("<head>", "<head>" + CHECK, 1))
    r = subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
         "--no-first-run", "--enable-logging=stderr", "--v=0", f"--user-data-dir={tmp / 'profile'}",
         "--host-resolver-rules=MAP * ~NOTFOUND",            # any network fetch would fail
         "--virtual-time-budget=10000", "--dump-dom", probe.as_uri()],
        capture_output=True, text=True, timeout=120)
    m = re.search(r'<pre id="netlens-check">(.*?)</pre>', r.stdout, re.S)
    assert m, f"the page's check did not run (exit {r.returncode}): {r.stderr[-2000:]}"
    import html as h

    return json.loads(h.unescape(m.group(1))), r.stderr


def test_pages_in_a_headless_browser(chromium, folders, tmp_path):
    for kind, (page, doc) in folders.items():
        check, log = _load(chromium, page, tmp_path)
        assert check["errors"] == [], (kind, check["errors"])
        assert check["images"] == doc["images"] and check["bad"] == [], (kind, check)
        assert all(w > 100 and h > 100 for w, h in check["sizes"]), (kind, check["sizes"])
        console = [line for line in log.splitlines() if "CONSOLE" in line or "Uncaught" in line]
        assert console == [], (kind, console)
        if kind == "run":
            assert check["findings"] == doc["findings"] > 0


def test_plots_label_deep_stacks_and_chance():
    from types import SimpleNamespace

    from netlens.report.plots import _chance, row_ticks

    xs = list(range(62))
    rows = [SimpleNamespace(source=f"d.yaml:4 repeat {i // 2 + 1}/31") for i in xs]
    ticks, names = row_ticks(xs, [f"#{i}" for i in xs], rows)
    assert len(ticks) <= 32 and ticks[0] == 0 and ticks[-1] == 61 and 60 not in ticks
    assert names[1] == "#2 (2/31)"
    assert row_ticks(xs[:10], [str(i) for i in xs[:10]]) == (xs[:10], [str(i) for i in xs[:10]])
    rec = SimpleNamespace(loss="cross_entropy", n_classes=10, target_var={}, task="classification")
    assert abs(_chance(rec) - 2.302585) < 1e-5
