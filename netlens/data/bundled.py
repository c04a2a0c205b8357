"""Real data sets shipped inside scikit-learn (no download).

Shapes are declared here so `describe()` never imports scikit-learn; it is imported
only when a set is actually read. `raw_power` is the mean square of the raw features
over the whole set (for `standardize: false` in `describe()`).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .registry import CLASSIFICATION, REGRESSION, Header, source


@source("digits", header=Header((1, 8, 8), CLASSIFICATION, 10, 1797, raw_power=60.0568))
def digits(spec, rng: np.random.Generator, base_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    """Handwritten digits, 8×8 images in 17 grey levels (Alpaydin & Kaynak 1998, UCI
    "Optical Recognition of Handwritten Digits"; sklearn.datasets.load_digits)."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return bunch.images.reshape(-1, 1, 8, 8), bunch.target


@source("iris", header=Header((4,), CLASSIFICATION, 3, 150, raw_power=15.8988))
def iris(spec, rng: np.random.Generator, base_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    """Iris flowers, 4 measurements, 3 species (Fisher 1936; sklearn.datasets.load_iris)."""
    from sklearn.datasets import load_iris

    bunch = load_iris()
    return bunch.data, bunch.target


@source("wine", header=Header((13,), CLASSIFICATION, 3, 178, raw_power=51325.9))
def wine(spec, rng: np.random.Generator, base_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    """Wine chemistry, 13 constituents, 3 cultivars (Forina et al., PARVUS 1988; UCI;
    sklearn.datasets.load_wine)."""
    from sklearn.datasets import load_wine

    bunch = load_wine()
    return bunch.data, bunch.target


@source("breast_cancer", header=Header((30,), CLASSIFICATION, 2, 569, raw_power=55950.2))
def breast_cancer(spec, rng: np.random.Generator, base_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    """Breast-cancer diagnosis, 30 cell-nucleus features, benign/malignant (Street,
    Wolberg & Mangasarian 1993, UCI WDBC; sklearn.datasets.load_breast_cancer)."""
    from sklearn.datasets import load_breast_cancer

    bunch = load_breast_cancer()
    return bunch.data, bunch.target


@source("diabetes", header=Header((10,), REGRESSION, 1, 442, raw_power=7475.62))
def diabetes(spec, rng: np.random.Generator, base_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    """Diabetes progression after one year from 10 baseline variables, a regression
    (Efron, Hastie, Johnstone & Tibshirani 2004; sklearn.datasets.load_diabetes)."""
    from sklearn.datasets import load_diabetes

    # The original measurements: scaling them is `standardize`'s job, not the loader's.
    bunch = load_diabetes(scaled=False)
    return bunch.data, bunch.target
