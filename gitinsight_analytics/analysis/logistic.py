"""A small L2-regularised logistic regression (Newton/IRLS) and Platt calibration, in numpy.

Why not scikit-learn: a dozen features and ~10^5 rows need nothing more, and the package stays light.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["LogisticModel", "fit_logistic", "fit_platt", "sigmoid", "logit"]

_EPS = 1e-6


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(z, -35.0, 35.0)))


def logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, _EPS, 1 - _EPS)
    return np.log(p / (1 - p))


def _irls(X: np.ndarray, y: np.ndarray, l2: float, iterations: int = 30) -> np.ndarray:
    """Coefficients (intercept first, not penalised) maximising the penalised log-likelihood."""
    n, k = X.shape
    A = np.column_stack([np.ones(n), X])
    beta = np.zeros(k + 1)
    penalty = np.full(k + 1, l2)
    penalty[0] = 0.0
    for _ in range(iterations):
        p = sigmoid(A @ beta)
        w = np.maximum(p * (1 - p), 1e-9)
        gradient = A.T @ (y - p) - penalty * beta
        hessian = (A * w[:, None]).T @ A + np.diag(penalty) + 1e-9 * np.eye(k + 1)
        step = np.linalg.solve(hessian, gradient)
        beta += step
        if np.max(np.abs(step)) < 1e-7:
            break
    return beta


def fit_platt(scores: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Platt scaling: ``p = sigmoid(a * score + b)`` fitted by maximum likelihood (scores are logits)."""
    beta = _irls(scores.reshape(-1, 1), y.astype(float), l2=0.0)
    return float(beta[1]), float(beta[0])


@dataclass(frozen=True)
class LogisticModel:
    """Standardised features -> logistic regression -> Platt scaling."""

    features: tuple[str, ...]
    mean: np.ndarray
    scale: np.ndarray
    beta: np.ndarray
    platt_a: float = 1.0
    platt_b: float = 0.0

    def raw_logit(self, X: np.ndarray) -> np.ndarray:
        Z = (X - self.mean) / self.scale
        return self.beta[0] + Z @ self.beta[1:]

    def predict(self, X: np.ndarray) -> np.ndarray:
        return sigmoid(self.platt_a * self.raw_logit(X) + self.platt_b)

    def calibrated(self, a: float, b: float) -> LogisticModel:
        return LogisticModel(self.features, self.mean, self.scale, self.beta, a, b)

    def describe(self) -> dict[str, float]:
        """Coefficients per standardised feature (for the docs and the insight's data)."""
        return {"intercept": float(self.beta[0]), **{f: float(c) for f, c in zip(self.features, self.beta[1:],
                                                                                    strict=True)},
                "platt_a": self.platt_a, "platt_b": self.platt_b}


def fit_logistic(X: np.ndarray, y: np.ndarray, features: tuple[str, ...], *, l2: float = 1.0) -> LogisticModel:
    """Fit on standardised columns (constant columns are left at scale 1)."""
    mean = X.mean(axis=0)
    scale = X.std(axis=0)
    scale[scale < 1e-9] = 1.0
    beta = _irls((X - mean) / scale, y.astype(float), l2=l2)
    return LogisticModel(features, mean, scale, beta)
