"""Disentanglement metrics of a latent code against known discrete factors or labels.

Inputs throughout: `codes` (N, D) float, usually posterior means; `factors` (N, K) int, one column per
discrete factor with values 0..n_k-1 (`encode_labels` turns string label columns into this). Each metric's
estimator (bins, classifier and its settings, sample sizes) comes from a named convention
(`vae_core.metric_conventions`): "lab" (default; a perfect code scores ≈ 1 and a random one ≈ 0 at any number
of factor values) or "published" (disentanglement_lib, Locatello et al. 2019). Anything random (splits,
subsamples, models, factor-conditional batches) is fixed by `seed`; splits are a `np.random.default_rng(seed)`
permutation. numpy + scikit-learn only.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC
from sklearn.tree import DecisionTreeClassifier

from vae_core.metric_conventions import DEFAULT_CONVENTION, Estimators, estimators

DCIModel = Literal["forest", "gbt", "logistic"]
DCI_MODELS = ("forest", "gbt", "logistic")

N_BINS = 20  # disentanglement_lib's histogram bins for MIG and modularity
MI_SIGNIFICANCE_SD = 3.0  # lab modularity: MI below its bias + 3 s.d. under independence counts as 0
FEW_FACTORS = (
    "needs at least 2 factors: with one, every dimension can only be about that factor, so the score "
    "would be 1 whatever the code"
)


# ----------------------------------------------------------------------------- input handling


def _as_codes(codes: Any) -> np.ndarray:
    arr = np.asarray(codes, dtype=np.float64)
    if arr.ndim != 2:
        raise ValueError(f"codes must be a 2-D array (N, D), got shape {arr.shape}")
    if arr.shape[0] < 2 or arr.shape[1] < 1:
        raise ValueError(f"codes need at least 2 rows and 1 column, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError("codes contain NaN or infinite values")
    return arr


def _as_factors(factors: Any, n: int) -> np.ndarray:
    arr = np.asarray(factors)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise ValueError(f"factors must be a 2-D array (N, K), got shape {arr.shape}")
    if arr.shape[0] != n:
        raise ValueError(f"factors have {arr.shape[0]} rows but codes have {n}")
    if arr.shape[1] < 1:
        raise ValueError("factors need at least one column")
    if not np.issubdtype(arr.dtype, np.integer):
        if np.issubdtype(arr.dtype, np.floating) and np.all(arr == np.round(arr)):
            arr = arr.astype(np.int64)
        else:
            raise ValueError(
                f"factors must hold integer codes (dtype {arr.dtype}); use encode_labels for strings"
            )
    if arr.min() < 0:
        raise ValueError("factors must be non-negative integer codes 0..n_k-1")
    return arr.astype(np.int64, copy=False)


def _check_names(names: Sequence[str], k: int) -> list[str]:
    names = [str(n) for n in names]
    if len(names) != k:
        raise ValueError(f"got {len(names)} names for {k} factor columns: {', '.join(names)}")
    return names


def _split(
    n: int, seed: int, train_fraction: float, max_samples: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Train and test row indices from one default_rng(seed) permutation, first subsampled."""
    if not 0.0 < train_fraction < 1.0:
        raise ValueError(f"train_fraction must be strictly between 0 and 1, got {train_fraction}")
    perm = np.random.default_rng(seed).permutation(n)
    if max_samples is not None:
        if max_samples < 2:
            raise ValueError(f"max_samples must be at least 2, got {max_samples}")
        perm = perm[:max_samples]
    n_train = min(max(int(round(train_fraction * len(perm))), 1), len(perm) - 1)
    return perm[:n_train], perm[n_train:]


def _split_sizes(n: int, seed: int, num_train: int, num_test: int) -> tuple[np.ndarray, np.ndarray]:
    """Train and test row indices, at most num_train + num_test of them (fewer rows: the same proportions),
    from one default_rng(seed) permutation."""
    if num_train < 1 or num_test < 1:
        raise ValueError(f"num_train and num_test must be >= 1, got {num_train}, {num_test}")
    return _split(n, seed, num_train / (num_train + num_test), num_train + num_test)


def auto_bins(factors: np.ndarray) -> int:
    """The lab convention's histogram bins: max(20, 2 × the most values any factor has), so a dim that holds a
    40-valued factor exactly is not squeezed into 20 bins (which caps its MI at log 20 < log 40)."""
    arr = np.asarray(factors)
    most = int(arr.max()) + 1 if arr.size else 1
    return max(N_BINS, 2 * most)


def _bins(convention: Estimators, factors: np.ndarray) -> int:
    return convention.mig_bins if convention.mig_bins is not None else auto_bins(factors)


def _entropy(p: np.ndarray) -> float:
    """Shannon entropy in nats of a probability vector (zeros ignored)."""
    p = p[p > 0]
    return float(-(p * np.log(p)).sum())


# ----------------------------------------------------------------------------- labels


def encode_labels(
    columns: Mapping[str, Sequence[str]],
) -> tuple[np.ndarray, list[str], list[list[str]]]:
    """String label columns -> (factors (N, K) int, names [K], value names [K][n_k]).

    Values are numbered in sorted order, so `values[k][factors[i, k]] == columns[names[k]][i]`.
    """
    if not columns:
        raise ValueError("no label columns given")
    names = [str(c) for c in columns]
    lengths = {c: len(v) for c, v in columns.items()}
    if len(set(lengths.values())) != 1:
        raise ValueError(
            "label columns differ in length: " + ", ".join(f"{c}={n}" for c, n in lengths.items())
        )
    n = next(iter(lengths.values()))
    factors = np.zeros((n, len(names)), dtype=np.int64)  # (N, K)
    values: list[list[str]] = []
    for k, col in enumerate(columns.values()):
        uniq, inverse = np.unique(np.asarray([str(v) for v in col], dtype=object), return_inverse=True)
        factors[:, k] = inverse.reshape(-1)
        values.append([str(u) for u in uniq])
    return factors, names, values


# ----------------------------------------------------------------------------- information


def discretize(codes: np.ndarray, n_bins: int = N_BINS) -> np.ndarray:
    """(N, D) float -> (N, D) int in 0..n_bins-1: equal-width histogram bins per dimension.

    As disentanglement_lib's `_histogram_discretize` (which numbers bins 1..n_bins).
    """
    codes = _as_codes(codes)
    if n_bins < 2:
        raise ValueError(f"n_bins must be at least 2, got {n_bins}")
    binned = np.empty(codes.shape, dtype=np.int64)  # (N, D)
    for d in range(codes.shape[1]):
        edges = np.histogram(codes[:, d], bins=n_bins)[1]  # (n_bins + 1,)
        binned[:, d] = np.digitize(codes[:, d], edges[:-1]) - 1
    return binned


def factor_entropies(factors: np.ndarray) -> np.ndarray:
    """(N, K) int -> (K,) entropy in nats of each factor's empirical distribution."""
    arr = np.asarray(factors)
    factors = _as_factors(arr, arr.shape[0] if arr.ndim else 0)
    return np.array([_entropy(np.bincount(f) / len(f)) for f in factors.T])


def _mi_binned(binned: np.ndarray, factors: np.ndarray, n_bins: int) -> np.ndarray:
    """(N, D) bins and (N, K) factors -> (D, K) MI in nats, from contingency tables."""
    n, d_dim = binned.shape
    mi = np.zeros((d_dim, factors.shape[1]))  # (D, K)
    for k, f in enumerate(factors.T):
        n_f = int(f.max()) + 1
        p_f = np.bincount(f, minlength=n_f) / n  # (n_f,)
        cell = np.arange(d_dim)[None, :] * (n_bins * n_f) + binned * n_f + f[:, None]  # (N, D)
        joint = np.bincount(cell.ravel(), minlength=d_dim * n_bins * n_f) / n
        joint = joint.reshape(d_dim, n_bins, n_f)  # (D, n_bins, n_f)
        p_x = joint.sum(axis=2, keepdims=True)  # (D, n_bins, 1)
        with np.errstate(divide="ignore", invalid="ignore"):
            terms = joint * np.log(joint / (p_x * p_f[None, None, :]))
        mi[:, k] = np.nansum(np.where(joint > 0, terms, 0.0), axis=(1, 2))
        # Rounding can leave MI a hair outside [0, H(f)]; the true value is inside.
        mi[:, k] = np.clip(mi[:, k], 0.0, _entropy(p_f))
    return mi


def mutual_info_matrix(codes: np.ndarray, factors: np.ndarray, n_bins: int = N_BINS) -> np.ndarray:
    """(N, D) codes, (N, K) factors -> (D, K) MI in nats between each discretized dim and factor.

    Equals sklearn.metrics.mutual_info_score on `discretize(codes, n_bins)` (disentanglement_lib).
    """
    codes = _as_codes(codes)
    factors = _as_factors(factors, codes.shape[0])
    return _mi_binned(discretize(codes, n_bins), factors, n_bins)


# ----------------------------------------------------------------------------- MIG


def _top_two_gap(scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(D, K) scores -> (K,) best minus second best over dims (second is 0 when D < 2), (K,) argmax."""
    if scores.shape[0] == 0:
        return np.zeros(scores.shape[1]), np.full(scores.shape[1], -1, dtype=np.int64)
    ordered = -np.sort(-scores, axis=0)  # (D, K), descending
    second = ordered[1] if scores.shape[0] > 1 else np.zeros(scores.shape[1])
    return ordered[0] - second, np.argmax(scores, axis=0)


def mig(
    codes: np.ndarray,
    factors: np.ndarray,
    n_bins: int | None = N_BINS,
    active: np.ndarray | None = None,
    chance_removed: bool = False,
) -> dict[str, Any]:
    """Mutual Information Gap (Chen et al. 2018), disentanglement_lib's discretized estimator.

    codes (N, D), factors (N, K), active optional bool (D,) keeping only those dims; n_bins None: `auto_bins`
    (the lab convention; 20 is the published one); chance_removed: MI that chance explains counts as 0
    (`significant_mi`, the lab convention). Returns
    'mig' (mean over factors of (top1 - top2 MI) / H(factor)), 'per_factor' (K,), 'top_dim' (K,)
    (index into the full D; -1 with no active dim). With fewer than 2 dims the second MI is 0.
    A constant factor (H = 0) has per_factor NaN and is left out of the mean (NaN if all are).
    """
    codes = _as_codes(codes)
    factors = _as_factors(factors, codes.shape[0])
    n_bins = auto_bins(factors) if n_bins is None else n_bins
    dims = np.arange(codes.shape[1])
    if active is not None:
        active = np.asarray(active, dtype=bool)
        if active.shape != (codes.shape[1],):
            raise ValueError(f"active mask has shape {active.shape}, codes have {codes.shape[1]} dims")
        dims = dims[active]
    if len(dims):
        binned = discretize(codes[:, dims], n_bins)
        mi = _mi_binned(binned, factors, n_bins)  # (D_active, K)
        if chance_removed:
            mi = significant_mi(mi, binned, factors)
    else:
        mi = np.zeros((0, factors.shape[1]))
    gap, top = _top_two_gap(mi)
    top_dim = dims[top] if len(dims) else top  # back to indices into the full D
    entropy = factor_entropies(factors)  # (K,)
    with np.errstate(divide="ignore", invalid="ignore"):
        per_factor = np.where(entropy > 0, gap / entropy, np.nan)
    valid = per_factor[np.isfinite(per_factor)]
    return {
        "mig": float(valid.mean()) if len(valid) else math.nan,
        "per_factor": per_factor,
        "top_dim": top_dim.astype(np.int64),
    }


# ----------------------------------------------------------------------------- DCI


def _dci_classifier(model: DCIModel, est: Estimators, seed: int) -> Any:
    if model == "forest":
        return RandomForestClassifier(
            n_estimators=est.dci_trees,
            min_samples_leaf=est.dci_min_leaf,
            max_features=None if est.dci_max_features == "all" else "sqrt",
            random_state=seed,
            n_jobs=1,
        )
    return GradientBoostingClassifier(n_estimators=est.dci_trees, random_state=seed)


def _fit_importance(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
    model: DCIModel,
    seed: int,
    est: Estimators,
) -> tuple[np.ndarray, float, float]:
    """One factor: (D,) importance, train accuracy, test accuracy."""
    classes = np.unique(y_train)
    if len(classes) < 2:  # nothing to learn: the code cannot matter
        only = classes[0]
        return np.zeros(x_train.shape[1]), float(np.mean(y_train == only)), float(np.mean(y_test == only))
    if model in ("forest", "gbt"):
        clf = _dci_classifier(model, est, seed)
        clf.fit(x_train, y_train)
        importance = np.abs(clf.feature_importances_)
        train_acc = clf.score(x_train, y_train)
        test_acc = clf.score(x_test, y_test)
    elif model == "logistic":
        scaler = StandardScaler().fit(x_train)
        clf = LogisticRegression(max_iter=1000)
        clf.fit(scaler.transform(x_train), y_train)
        importance = np.abs(clf.coef_).sum(axis=0)  # (D,) summed over classes
        train_acc = clf.score(scaler.transform(x_train), y_train)
        test_acc = clf.score(scaler.transform(x_test), y_test)
    else:
        raise ValueError(f"unknown DCI model {model!r} (choose from {', '.join(DCI_MODELS)})")
    return importance, float(train_acc), float(test_acc)


def _one_minus_norm_entropy(weights: np.ndarray) -> np.ndarray:
    """(R, C) non-negative -> (R,) 1 - H(row / row sum) / log C; rows summing to 0 give 0."""
    n_cols = weights.shape[1]
    totals = weights.sum(axis=1)
    out = np.zeros(weights.shape[0])
    for r in np.flatnonzero(totals > 0):
        out[r] = 1.0 if n_cols == 1 else 1.0 - _entropy(weights[r] / totals[r]) / math.log(n_cols)
    return out


def dci(
    codes: np.ndarray,
    factors: np.ndarray,
    seed: int = 0,
    convention: str | Estimators = DEFAULT_CONVENTION,
    model: DCIModel | None = None,
) -> dict[str, Any]:
    """DCI disentanglement, completeness, informativeness (Eastwood & Williams 2018).

    codes (N, D), factors (N, K). One classifier per factor, fit on at most `num_train` rows and scored on at
    most `num_test` others of the convention: "lab" — a random forest of 20 fully grown trees whose every split
    sees every dim (a noise dim is never the only choice, and no leaf-size floor underfits factors with
    20–40 values); "published" — disentanglement_lib's GradientBoostingClassifier() (100 stages, depth 3) on
    10,000 / 5,000 rows. `model` overrides the convention's ("forest", "gbt", or "logistic": standardised
    inputs, importance = sum over classes of |coef|). Returns 'disentanglement' (1 - normalised entropy of
    each dim's importance over factors, weighted by the dim's share of total importance; NaN with fewer than
    2 factors), 'completeness' (the same per factor over dims), 'informativeness' (mean held-out accuracy),
    'informativeness_train', 'informativeness_baseline' (mean held-out majority share), 'importance' (D, K),
    'model', 'n_train', 'n_test'. All-zero importance gives 0 for D and C.
    """
    codes = _as_codes(codes)
    factors = _as_factors(factors, codes.shape[0])
    est = estimators(convention)
    model = est.dci_model if model is None else model
    if model not in DCI_MODELS:
        raise ValueError(f"unknown DCI model {model!r} (choose from {', '.join(DCI_MODELS)})")
    train, test = _split_sizes(codes.shape[0], seed, est.num_train, est.num_test)
    d_dim, k_dim = codes.shape[1], factors.shape[1]
    importance = np.zeros((d_dim, k_dim))  # (D, K)
    train_acc, test_acc, baseline = np.zeros(k_dim), np.zeros(k_dim), np.zeros(k_dim)
    for k in range(k_dim):
        importance[:, k], train_acc[k], test_acc[k] = _fit_importance(
            codes[train], factors[train, k], codes[test], factors[test, k], model, seed, est
        )
        baseline[k] = np.mean(factors[test, k] == np.argmax(np.bincount(factors[train, k])))
    total = importance.sum()
    if total > 0:
        disentanglement = float(_one_minus_norm_entropy(importance) @ (importance.sum(axis=1) / total))
        completeness = float(_one_minus_norm_entropy(importance.T) @ (importance.sum(axis=0) / total))
    else:
        disentanglement = completeness = 0.0
    if k_dim < 2:
        disentanglement = math.nan  # one factor: every dim trivially predicts only it
    return {
        "disentanglement": disentanglement,
        "completeness": completeness,
        "informativeness": float(test_acc.mean()),
        "informativeness_train": float(train_acc.mean()),
        "informativeness_baseline": float(baseline.mean()),
        "importance": importance,
        "model": model,
        "n_train": int(len(train)),
        "n_test": int(len(test)),
    }


# ----------------------------------------------------------------------------- SAP


def _one_dim_accuracy(
    x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, y_test: np.ndarray, est: Estimators, seed: int
) -> float:
    """Held-out accuracy of the convention's classifier on one dim: x (n, 1)."""
    if len(np.unique(y_train)) < 2:
        return float(np.mean(y_test == y_train[0]))
    if est.sap_classifier == "tree":
        clf: Any = DecisionTreeClassifier(random_state=seed)
    else:
        clf = LinearSVC(C=0.01, class_weight="balanced")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(x_train, y_train)
    return float(np.mean(clf.predict(x_test) == y_test))


def sap(
    codes: np.ndarray,
    factors: np.ndarray,
    seed: int = 0,
    convention: str | Estimators = DEFAULT_CONVENTION,
) -> dict[str, Any]:
    """Separated Attribute Predictability, discrete version (Kumar et al. 2018).

    codes (N, D), factors (N, K). scores (D, K): how well that one dim predicts the factor on held-out rows.
    "published": disentanglement_lib's LinearSVC(C=0.01, class_weight='balanced') accuracy (it cannot carve a
    middle value out of one feature, and the second-best dim still scores the chance level, so a perfect code
    stays well below 1 once a factor has more than 2 values). "lab": a fully grown decision tree (any number of
    intervals), accuracy rescaled so the majority share scores 0 and perfect scores 1 (floored at 0): a
    perfect code ≈ 1, a random one ≈ 0. 'sap' = mean over factors of best minus second best (second is 0
    with one dim).
    """
    codes = _as_codes(codes)
    factors = _as_factors(factors, codes.shape[0])
    est = estimators(convention)
    train, test = _split_sizes(codes.shape[0], seed, est.num_train, est.num_test)
    scores = np.zeros((codes.shape[1], factors.shape[1]))  # (D, K)
    for k in range(factors.shape[1]):
        y_train, y_test = factors[train, k], factors[test, k]
        majority = float(np.mean(y_test == np.argmax(np.bincount(y_train))))
        for d in range(codes.shape[1]):
            acc = _one_dim_accuracy(codes[train][:, [d]], y_train, codes[test][:, [d]], y_test, est, seed)
            if est.sap_chance_corrected:
                acc = max(0.0, (acc - majority) / (1.0 - majority)) if majority < 1.0 else 0.0
            scores[d, k] = acc
    gap, _ = _top_two_gap(scores)
    return {"sap": float(gap.mean()), "scores": scores, "n_train": int(len(train)), "n_test": int(len(test))}


# ----------------------------------------------------------------------------- modularity


def significant_mi(mi: np.ndarray, binned: np.ndarray, factors: np.ndarray) -> np.ndarray:
    """(D, K) MI with the entries chance explains set to 0: under independence 2N·MI ~ χ² with
    (B_d − 1)(n_k − 1) degrees of freedom (B_d the dim's occupied bins, n_k the factor's values), so an
    entry within MI_SIGNIFICANCE_SD standard deviations above that mean ((B_d − 1)(n_k − 1) / 2N nats) counts
    as 0. With 80 bins, 40 values and 2,000 rows the mean is 0.77 nats: unchecked, a dim that knows nothing
    of a factor would take 21% of its entropy."""
    n = binned.shape[0]
    occupied = np.array([len(np.unique(b)) for b in binned.T])  # (D,)
    values = np.array([len(np.unique(f)) for f in factors.T])  # (K,)
    dof = np.outer(occupied - 1, values - 1).astype(np.float64)  # (D, K)
    mean, sd = dof / (2 * n), np.sqrt(2 * dof) / (2 * n)
    return np.where(mi > mean + MI_SIGNIFICANCE_SD * sd, mi, 0.0)


def modularity_from_mi(mi: np.ndarray, weighting: Literal["mean", "information"] = "mean") -> dict[str, Any]:
    """(D, K) MI matrix -> modularity (Ridgeway & Zemel 2018) as in disentanglement_lib.

    Per dim: 1 - sum over non-top factors of MI^2 / (top MI^2 * (K - 1)). Dims with zero MI to every factor
    score 0. weighting "mean": the plain mean over dims (disentanglement_lib's); "information": each dim
    weighted by its top MI, so dims that carry nothing do not count (0 when no dim carries anything). With
    fewer than 2 factors the score is NaN (every dim would trivially be modular).
    """
    mi = np.asarray(mi, dtype=np.float64)
    squared = mi**2  # (D, K)
    top = squared.max(axis=1) if mi.shape[1] else np.zeros(mi.shape[0])  # (D,)
    per_dim = np.zeros(mi.shape[0])
    has_info = top > 0
    if mi.shape[1] < 2:
        return {"modularity": math.nan, "per_dim": np.full(mi.shape[0], math.nan)}
    delta = (squared[has_info].sum(axis=1) - top[has_info]) / (top[has_info] * (mi.shape[1] - 1))
    per_dim[has_info] = 1.0 - delta
    if weighting == "mean":
        value = float(per_dim.mean())
    else:
        weights = np.sqrt(top)
        value = float(per_dim @ weights / weights.sum()) if weights.sum() > 0 else 0.0
    return {"modularity": value, "per_dim": per_dim}


def modularity(
    codes: np.ndarray, factors: np.ndarray, n_bins: int | None = N_BINS, convention: str | Estimators | None = None
) -> dict[str, Any]:
    """codes (N, D), factors (N, K) -> 'modularity' and 'per_dim' (D,) from the discretized MI matrix.

    Without a convention: disentanglement_lib's (20 bins, plain MI, plain mean). "lab": `auto_bins`, MI from
    `significant_mi`, information weighting (a random code ≈ 0, noise dims left out). See `modularity_from_mi`.
    """
    codes = _as_codes(codes)
    factors = _as_factors(factors, codes.shape[0])
    if convention is None:
        return modularity_from_mi(mutual_info_matrix(codes, factors, n_bins))
    est = estimators(convention)
    bins = _bins(est, factors)
    binned = discretize(codes, bins)
    mi = _mi_binned(binned, factors, bins)
    if est.mi_chance_removed:
        mi = significant_mi(mi, binned, factors)
    return modularity_from_mi(mi, est.modularity_weighting)


# ----------------------------------------------------------------------------- explicitness


def explicitness(
    codes: np.ndarray, factors: np.ndarray, seed: int = 0, convention: str | Estimators = DEFAULT_CONVENTION
) -> dict[str, Any]:
    """Explicitness (Ridgeway & Zemel 2018) as in disentanglement_lib: per factor, a logistic regression from
    all dims (standardised on the train rows) and its one-vs-rest ROC-AUC on held-out rows, averaged over the
    values present in both splits; 'explicitness' is the mean over factors (0.5 = chance, 1 = every value
    separable), with 'per_factor' (K,) and 'explicitness_train'. codes (N, D), factors (N, K)."""
    codes = _as_codes(codes)
    factors = _as_factors(factors, codes.shape[0])
    est = estimators(convention)
    train, test = _split_sizes(codes.shape[0], seed, est.num_train, est.num_test)
    scaler = StandardScaler().fit(codes[train])
    x_train, x_test = scaler.transform(codes[train]), scaler.transform(codes[test])
    per_factor, per_factor_train = np.full(factors.shape[1], math.nan), np.full(factors.shape[1], math.nan)
    for k in range(factors.shape[1]):
        y_train, y_test = factors[train, k], factors[test, k]
        if len(np.unique(y_train)) < 2:
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            clf = LogisticRegression(max_iter=1000).fit(x_train, y_train)
        per_factor[k] = _mean_auc(clf, x_test, y_test)
        per_factor_train[k] = _mean_auc(clf, x_train, y_train)
    valid = per_factor[np.isfinite(per_factor)]
    valid_train = per_factor_train[np.isfinite(per_factor_train)]
    return {
        "explicitness": float(valid.mean()) if len(valid) else math.nan,
        "explicitness_train": float(valid_train.mean()) if len(valid_train) else math.nan,
        "per_factor": per_factor,
    }


def _mean_auc(clf: LogisticRegression, x: np.ndarray, y: np.ndarray) -> float:
    """Mean one-vs-rest ROC-AUC of clf's probabilities over the classes with positives and negatives in y."""
    proba = clf.predict_proba(x)  # (n, C)
    aucs = []
    for c_idx, c in enumerate(clf.classes_):
        positive = y == c
        if positive.any() and not positive.all():
            aucs.append(roc_auc_score(positive, proba[:, c_idx]))
    return float(np.mean(aucs)) if aucs else math.nan


# ----------------------------------------------------------------------------- BetaVAE and FactorVAE scores


def _value_groups(f: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One factor column (N,) -> (rows sorted by value, start of each value's rows, count of each value)."""
    order = np.argsort(f, kind="stable")
    counts = np.bincount(f)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    return order, starts, counts


def _usable_factors(factors: np.ndarray) -> list[int]:
    """Factors with at least 2 values that a batch can be drawn for (a value with at least 2 rows)."""
    return [k for k, f in enumerate(factors.T) if len(np.unique(f)) >= 2 and np.bincount(f).max() >= 2]


def _beta_vae_points(
    codes: np.ndarray, factors: np.ndarray, usable: list[int], n_points: int, batch: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """n_points BetaVAE training points: (features (n, D) = mean |z_i − z_j| over `batch` pairs that share the
    value of a uniformly drawn factor, labels (n,) = that factor). i is any row whose value has ≥ 2 rows, j
    another row with the same value (the dataset stands in for disentanglement_lib's sampler: on a full
    factorial grid this is its distribution)."""
    labels = rng.choice(np.asarray(usable), size=n_points)  # (n,)
    features = np.zeros((n_points, codes.shape[1]))
    for k in usable:
        where = np.flatnonzero(labels == k)
        if not len(where):
            continue
        order, starts, counts = _value_groups(factors[:, k])
        eligible = np.flatnonzero(counts[factors[:, k]] >= 2)  # rows with a partner
        i = rng.choice(eligible, size=(len(where), batch))  # (m, B)
        v = factors[i, k]
        # position of i inside its value's rows, then a partner at a random other position
        rank = np.empty(len(order), dtype=np.int64)
        rank[order] = np.arange(len(order)) - np.repeat(starts, counts)
        offset = 1 + (rng.random(i.shape) * (counts[v] - 1)).astype(np.int64)  # 1..count-1
        j = order[starts[v] + (rank[i] + offset) % counts[v]]
        features[where] = np.abs(codes[i] - codes[j]).mean(axis=1)
    return features, labels


def beta_vae_score(
    codes: np.ndarray, factors: np.ndarray, seed: int = 0, convention: str | Estimators = DEFAULT_CONVENTION
) -> dict[str, Any]:
    """The BetaVAE (z-diff) score (Higgins et al. 2017) as in disentanglement_lib: the accuracy of a logistic
    regression that tells, from mean |z1 − z2| over a batch of pairs sharing one factor's value, which factor
    was shared. codes (N, D), factors (N, K); pairs are drawn from these rows. Returns 'score' (evaluation
    accuracy), 'train', 'chance' (1 / factors), 'n_train', 'n_eval', 'batch'. NaN with fewer than 2 usable
    factors (with one there is nothing to tell apart)."""
    codes = _as_codes(codes)
    factors = _as_factors(factors, codes.shape[0])
    est = estimators(convention)
    usable = _usable_factors(factors)
    out: dict[str, Any] = {"n_train": est.vote_train, "n_eval": est.vote_eval, "batch": est.vote_batch,
                           "chance": 1.0 / len(usable) if usable else math.nan}
    if len(usable) < 2:
        return {**out, "score": math.nan, "train": math.nan}
    rng = np.random.default_rng(seed)
    x_train, y_train = _beta_vae_points(codes, factors, usable, est.vote_train, est.vote_batch, rng)
    x_eval, y_eval = _beta_vae_points(codes, factors, usable, est.vote_eval, est.vote_batch, rng)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf = LogisticRegression(max_iter=1000, random_state=seed).fit(x_train, y_train)
    return {**out, "score": float(clf.score(x_eval, y_eval)), "train": float(clf.score(x_train, y_train))}


def _factor_vae_votes(
    codes: np.ndarray, factors: np.ndarray, usable: list[int], n_points: int, batch: int, scale: np.ndarray,
    active: np.ndarray, rng: np.random.Generator,
) -> np.ndarray:
    """(K, D) votes: per point a uniformly drawn factor is fixed to the value of a random row, `batch` rows with
    that value are drawn (with replacement), and the active dim whose variance over them, divided by its
    global variance, is smallest gets the vote."""
    votes = np.zeros((factors.shape[1], codes.shape[1]), dtype=np.int64)
    labels = rng.choice(np.asarray(usable), size=n_points)
    dims = np.flatnonzero(active)
    for k in usable:
        m = int(np.sum(labels == k))
        if not m:
            continue
        order, starts, counts = _value_groups(factors[:, k])
        eligible = np.flatnonzero(counts[factors[:, k]] >= 2)
        v = factors[rng.choice(eligible, size=m), k]  # (m,)
        pos = (rng.random((m, batch)) * counts[v][:, None]).astype(np.int64)
        rows = order[starts[v][:, None] + pos]  # (m, B)
        local = codes[rows][:, :, dims].var(axis=1, ddof=1)  # (m, D_active)
        argmin = dims[np.argmin(local / scale[dims], axis=1)]
        np.add.at(votes, (k, argmin), 1)
    return votes


def factor_vae_score(
    codes: np.ndarray, factors: np.ndarray, seed: int = 0, convention: str | Estimators = DEFAULT_CONVENTION
) -> dict[str, Any]:
    """The FactorVAE (z-min-var) score (Kim & Mnih 2018) as in disentanglement_lib: a majority-vote classifier
    from "the dim of least normalised variance in a batch sharing one factor's value" to that factor. Global
    variances from `variance_estimate` rows drawn with replacement; dims with s.d. below `prune_std` take no
    vote. The vote goes to the dim's index in the full code (disentanglement_lib records the index among the
    active dims, the same thing when none is pruned). Returns 'score' (evaluation accuracy), 'train', 'chance'
    (1 / factors), 'active_dims', 'n_train', 'n_eval', 'batch'; NaN with fewer than 2 usable factors, 0 when
    every dim is pruned (as disentanglement_lib)."""
    codes = _as_codes(codes)
    factors = _as_factors(factors, codes.shape[0])
    est = estimators(convention)
    usable = _usable_factors(factors)
    rng = np.random.default_rng(seed)
    sample = rng.integers(0, codes.shape[0], size=est.variance_estimate)
    variance = codes[sample].var(axis=0, ddof=1)  # (D,)
    active = np.sqrt(variance) >= est.prune_std
    out: dict[str, Any] = {"n_train": est.vote_train, "n_eval": est.vote_eval, "batch": est.vote_batch,
                           "active_dims": int(active.sum()), "chance": 1.0 / len(usable) if usable else math.nan}
    if len(usable) < 2:
        return {**out, "score": math.nan, "train": math.nan}
    if not active.any():
        return {**out, "score": 0.0, "train": 0.0}
    train_votes = _factor_vae_votes(codes, factors, usable, est.vote_train, est.vote_batch, variance, active, rng)
    classifier = np.argmax(train_votes, axis=0)  # (D,) the factor each dim's votes point to
    eval_votes = _factor_vae_votes(codes, factors, usable, est.vote_eval, est.vote_batch, variance, active, rng)
    cols = np.arange(codes.shape[1])
    return {
        **out,
        "score": float(eval_votes[classifier, cols].sum() / eval_votes.sum()),
        "train": float(train_votes[classifier, cols].sum() / train_votes.sum()),
    }

# ----------------------------------------------------------------------------- probes


def linear_probe(
    codes: np.ndarray,
    factors_or_labels: np.ndarray,
    names: Sequence[str],
    seed: int = 0,
    train_fraction: float = 0.8,
) -> list[dict[str, Any]]:
    """Latents as features for classification: one logistic regression per label column.

    codes (N, D); factors_or_labels (N, K) of ints or strings (any hashable values), names [K].
    Inputs are standardised on the train split. Per column: 'name', 'accuracy' (held-out),
    'baseline' (held-out accuracy of always predicting the train split's most common value),
    'n_classes' (distinct values in the whole column), 'n_train', 'n_test'.
    """
    codes = _as_codes(codes)
    labels = np.asarray(factors_or_labels)
    if labels.ndim == 1:
        labels = labels[:, None]
    if labels.ndim != 2 or labels.shape[0] != codes.shape[0]:
        raise ValueError(f"labels have shape {labels.shape}, expected ({codes.shape[0]}, K)")
    names = _check_names(names, labels.shape[1])
    train, test = _split(codes.shape[0], seed, train_fraction)
    scaler = StandardScaler().fit(codes[train])
    x_train, x_test = scaler.transform(codes[train]), scaler.transform(codes[test])
    results = []
    for k, name in enumerate(names):
        _, y = np.unique(labels[:, k], return_inverse=True)
        y = y.reshape(-1)
        y_train, y_test = y[train], y[test]
        counts = np.bincount(y_train)
        majority = int(np.argmax(counts))
        baseline = float(np.mean(y_test == majority))
        if np.count_nonzero(counts) < 2:
            accuracy = baseline  # one class in train: the probe can only predict it
        else:
            clf = LogisticRegression(max_iter=1000).fit(x_train, y_train)
            accuracy = float(clf.score(x_test, y_test))
        results.append(
            {
                "name": name,
                "accuracy": accuracy,
                "baseline": baseline,
                "n_classes": int(len(np.unique(y))),
                "n_train": int(len(train)),
                "n_test": int(len(test)),
            }
        )
    return results


# ----------------------------------------------------------------------------- report


def _plain(value: Any) -> Any:
    """numpy scalars/arrays -> python floats/ints/lists; NaN and inf -> None (strict JSON)."""
    if isinstance(value, np.ndarray):
        return [_plain(v) for v in value.tolist()]
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    return value


def disentanglement_report(
    codes: np.ndarray,
    factors: np.ndarray,
    names: Sequence[str],
    active: np.ndarray | None = None,
    seed: int = 0,
    convention: str | Estimators = DEFAULT_CONVENTION,
    dci_model: DCIModel | None = None,
) -> dict[str, Any]:
    """All metrics for summary.json under one convention, as plain python (floats, ints, lists; NaN → None).

    codes (N, D), factors (N, K), names [K], active optional bool (D,) used by MIG only (the other
    metrics weigh dims themselves). Keys: 'mig', 'mig_per_factor' {name: v}, 'mig_top_dim'
    {name: dim}, 'mig_bins', 'dci' {disentanglement, completeness, informativeness, informativeness_train,
    informativeness_baseline, importance (D x K), model, n_train, n_test}, 'sap', 'sap_scores' (D x K),
    'modularity', 'modularity_per_dim' (D), 'explicitness', 'explicitness_per_factor' {name: v}, 'beta_vae'
    {score, train, chance, n_train, n_eval, batch}, 'factor_vae' {the same, active_dims}, 'probe' [per
    factor], 'mi_matrix' (D x K, all dims, MIG's bins), 'factor_entropies' (K), 'factor_names',
    'active_dims', 'n_samples', 'seed', 'convention' (the estimators, `Estimators.as_json`) and 'caveats'
    ({metric: why it is None}: DCI disentanglement, modularity, BetaVAE and FactorVAE need 2 factors).
    """
    codes = _as_codes(codes)
    factors = _as_factors(factors, codes.shape[0])
    names = _check_names(names, factors.shape[1])
    est = estimators(convention)
    bins = _bins(est, factors)
    mi = mutual_info_matrix(codes, factors, bins)
    mig_result = mig(codes, factors, n_bins=bins, active=active, chance_removed=est.mi_chance_removed)
    dci_result = dci(codes, factors, seed=seed, convention=est, model=dci_model)
    sap_result = sap(codes, factors, seed=seed, convention=est)
    modularity_result = modularity(codes, factors, convention=est)
    explicit = explicitness(codes, factors, seed=seed, convention=est)
    active_dims = (
        list(range(codes.shape[1])) if active is None else np.flatnonzero(np.asarray(active, bool)).tolist()
    )
    caveats = {}
    if factors.shape[1] < 2:
        for metric in ("DCI disentanglement", "modularity", "BetaVAE", "FactorVAE"):
            caveats[metric] = f"{metric} {FEW_FACTORS}"
    return _plain(
        {
            "mig": mig_result["mig"],
            "mig_per_factor": dict(zip(names, mig_result["per_factor"], strict=True)),
            "mig_top_dim": dict(zip(names, mig_result["top_dim"], strict=True)),
            "mig_bins": bins,
            "dci": dci_result,
            "sap": sap_result["sap"],
            "sap_scores": sap_result["scores"],
            "modularity": modularity_result["modularity"],
            "modularity_per_dim": modularity_result["per_dim"],
            "explicitness": explicit["explicitness"],
            "explicitness_per_factor": dict(zip(names, explicit["per_factor"], strict=True)),
            "beta_vae": beta_vae_score(codes, factors, seed=seed, convention=est),
            "factor_vae": factor_vae_score(codes, factors, seed=seed, convention=est),
            "probe": linear_probe(codes, factors, names, seed=seed),
            "mi_matrix": mi,
            "factor_entropies": factor_entropies(factors),
            "factor_names": names,
            "active_dims": active_dims,
            "n_samples": codes.shape[0],
            "seed": seed,
            "convention": est.as_json(),
            "caveats": caveats,
        }
    )
