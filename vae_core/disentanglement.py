"""Disentanglement metrics of a latent code against known discrete factors or labels.

Inputs throughout: `codes` (N, D) float, usually posterior means; `factors` (N, K) int, one column per
discrete factor with values 0..n_k-1 (`encode_labels` turns string label columns into this). All
metrics follow disentanglement_lib (Locatello et al. 2019) unless a docstring says otherwise. Anything
random (splits, subsamples, models) is fixed by `seed`; splits are a `np.random.default_rng(seed)`
permutation. numpy + scikit-learn only.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeClassifier

DCIModel = Literal["forest", "gbt", "logistic"]
DCI_MODELS = ("forest", "gbt", "logistic")

N_BINS = 20  # disentanglement_lib's histogram bins for MIG and modularity
MAX_SAMPLES = 5000  # DCI/SAP subsample: keeps the tree fits to seconds on 2 cores
FOREST_TREES = 30  # enough to average out bootstrap noise; time grows linearly with it
FOREST_LEAF = 0.02  # min leaf share: <= 50 leaves; smaller leaves split on noise, leaking importance
GBT_ESTIMATORS = 30  # disentanglement_lib uses sklearn's 100; 30 ranks dims alike, still slow


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
    n_bins: int = N_BINS,
    active: np.ndarray | None = None,
) -> dict[str, Any]:
    """Mutual Information Gap (Chen et al. 2018), disentanglement_lib's discretized estimator.

    codes (N, D), factors (N, K), active optional bool (D,) keeping only those dims. Returns
    'mig' (mean over factors of (top1 - top2 MI) / H(factor)), 'per_factor' (K,), 'top_dim' (K,)
    (index into the full D; -1 with no active dim). With fewer than 2 dims the second MI is 0.
    A constant factor (H = 0) has per_factor NaN and is left out of the mean (NaN if all are).
    """
    codes = _as_codes(codes)
    factors = _as_factors(factors, codes.shape[0])
    dims = np.arange(codes.shape[1])
    if active is not None:
        active = np.asarray(active, dtype=bool)
        if active.shape != (codes.shape[1],):
            raise ValueError(f"active mask has shape {active.shape}, codes have {codes.shape[1]} dims")
        dims = dims[active]
    if len(dims):
        mi = mutual_info_matrix(codes[:, dims], factors, n_bins)  # (D_active, K)
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


def _fit_importance(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
    model: DCIModel,
    seed: int,
) -> tuple[np.ndarray, float, float]:
    """One factor: (D,) importance, train accuracy, test accuracy."""
    classes = np.unique(y_train)
    if len(classes) < 2:  # nothing to learn: the code cannot matter
        only = classes[0]
        return np.zeros(x_train.shape[1]), float(np.mean(y_train == only)), float(np.mean(y_test == only))
    if model in ("forest", "gbt"):
        if model == "forest":
            clf = RandomForestClassifier(  # max_features=None: a split never has to use noise
                n_estimators=FOREST_TREES,
                min_samples_leaf=FOREST_LEAF,
                max_features=None,
                random_state=seed,
                n_jobs=1,
            )
        else:
            clf = GradientBoostingClassifier(n_estimators=GBT_ESTIMATORS, random_state=seed)
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
    train_fraction: float = 0.8,
    model: DCIModel = "forest",
    max_samples: int | None = MAX_SAMPLES,
) -> dict[str, Any]:
    """DCI disentanglement, completeness, informativeness (Eastwood & Williams 2018).

    codes (N, D), factors (N, K). One classifier per factor on at most `max_samples` rows (times for
    5000x16 with 8 factors, one idle core): "forest" (default; the paper's random forest: 30 trees,
    leaves of >= 2% of the rows, every split choosing among all dims, impurity importances, ~5 s),
    "gbt" (disentanglement_lib's GradientBoostingClassifier, 30 stages instead of 100, ~20 s), or
    "logistic" (linear, standardised inputs, importance = sum over classes of |coef|, ~0.2 s).
    Returns 'disentanglement' (1 - normalised entropy of each dim's importance over factors, weighted
    by the dim's share of total importance; dims with zero importance weigh 0), 'completeness' (the
    same per factor over dims), 'informativeness' (mean test accuracy over factors),
    'informativeness_train', 'importance' (D, K). All-zero importance gives 0 for D and C.
    """
    codes = _as_codes(codes)
    factors = _as_factors(factors, codes.shape[0])
    if model not in DCI_MODELS:
        raise ValueError(f"unknown DCI model {model!r} (choose from {', '.join(DCI_MODELS)})")
    train, test = _split(codes.shape[0], seed, train_fraction, max_samples)
    d_dim, k_dim = codes.shape[1], factors.shape[1]
    importance = np.zeros((d_dim, k_dim))  # (D, K)
    train_acc, test_acc = np.zeros(k_dim), np.zeros(k_dim)
    for k in range(k_dim):
        importance[:, k], train_acc[k], test_acc[k] = _fit_importance(
            codes[train], factors[train, k], codes[test], factors[test, k], model, seed
        )
    total = importance.sum()
    if total > 0:
        disentanglement = float(_one_minus_norm_entropy(importance) @ (importance.sum(axis=1) / total))
        completeness = float(_one_minus_norm_entropy(importance.T) @ (importance.sum(axis=0) / total))
    else:
        disentanglement = completeness = 0.0
    return {
        "disentanglement": disentanglement,
        "completeness": completeness,
        "informativeness": float(test_acc.mean()),
        "informativeness_train": float(train_acc.mean()),
        "importance": importance,
        "model": model,
    }


# ----------------------------------------------------------------------------- SAP


def sap(
    codes: np.ndarray,
    factors: np.ndarray,
    seed: int = 0,
    train_fraction: float = 0.8,
    max_depth: int = 4,
    max_samples: int | None = MAX_SAMPLES,
) -> dict[str, Any]:
    """Separated Attribute Predictability, discrete version (Kumar et al. 2018).

    codes (N, D), factors (N, K). scores (D, K): held-out accuracy of a depth-`max_depth` decision
    tree on that one dim (disentanglement_lib uses a LinearSVC, which cannot carve a middle class out
    of one feature; a tree of depth 4 can separate up to 16 values). 'sap' = mean over factors of
    best minus second best score (second is 0 with one dim).
    """
    codes = _as_codes(codes)
    factors = _as_factors(factors, codes.shape[0])
    train, test = _split(codes.shape[0], seed, train_fraction, max_samples)
    scores = np.zeros((codes.shape[1], factors.shape[1]))  # (D, K)
    for k in range(factors.shape[1]):
        y_train, y_test = factors[train, k], factors[test, k]
        for d in range(codes.shape[1]):
            tree = DecisionTreeClassifier(max_depth=max_depth, random_state=seed)
            tree.fit(codes[train][:, [d]], y_train)
            scores[d, k] = tree.score(codes[test][:, [d]], y_test)
    gap, _ = _top_two_gap(scores)
    return {"sap": float(gap.mean()), "scores": scores}


# ----------------------------------------------------------------------------- modularity


def modularity_from_mi(mi: np.ndarray) -> dict[str, Any]:
    """(D, K) MI matrix -> modularity (Ridgeway & Zemel 2018) as in disentanglement_lib.

    Per dim: 1 - sum over non-top factors of MI^2 / (top MI^2 * (K - 1)); 1 with K = 1. Dims with
    zero MI to every factor score 0 and stay in the mean (disentanglement_lib's choice).
    """
    mi = np.asarray(mi, dtype=np.float64)
    squared = mi**2  # (D, K)
    top = squared.max(axis=1)  # (D,)
    per_dim = np.zeros(mi.shape[0])
    has_info = top > 0
    if mi.shape[1] == 1:
        per_dim[has_info] = 1.0
    else:
        delta = (squared[has_info].sum(axis=1) - top[has_info]) / (top[has_info] * (mi.shape[1] - 1))
        per_dim[has_info] = 1.0 - delta
    return {"modularity": float(per_dim.mean()), "per_dim": per_dim}


def modularity(codes: np.ndarray, factors: np.ndarray, n_bins: int = N_BINS) -> dict[str, Any]:
    """codes (N, D), factors (N, K) -> 'modularity' and 'per_dim' (D,) from the discretized MI matrix.

    See `modularity_from_mi` for the formula and the zero-MI convention.
    """
    return modularity_from_mi(mutual_info_matrix(codes, factors, n_bins))


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
    dci_model: DCIModel = "forest",
) -> dict[str, Any]:
    """All metrics for summary.json, as plain python (floats, ints, lists; NaN becomes None).

    codes (N, D), factors (N, K), names [K], active optional bool (D,) used by MIG only (the other
    metrics weigh dims themselves). Keys: 'mig', 'mig_per_factor' {name: v}, 'mig_top_dim'
    {name: dim}, 'dci' {disentanglement, completeness, informativeness, informativeness_train,
    importance (D x K), model}, 'sap', 'sap_scores' (D x K), 'modularity', 'modularity_per_dim' (D),
    'probe' [per factor], 'mi_matrix' (D x K, all dims), 'factor_entropies' (K), 'factor_names',
    'active_dims', 'n_samples', 'seed'.
    """
    codes = _as_codes(codes)
    factors = _as_factors(factors, codes.shape[0])
    names = _check_names(names, factors.shape[1])
    mi = mutual_info_matrix(codes, factors)
    mig_result = mig(codes, factors, active=active)
    dci_result = dci(codes, factors, seed=seed, model=dci_model)
    sap_result = sap(codes, factors, seed=seed)
    modularity_result = modularity_from_mi(mi)
    active_dims = (
        list(range(codes.shape[1])) if active is None else np.flatnonzero(np.asarray(active, bool)).tolist()
    )
    return _plain(
        {
            "mig": mig_result["mig"],
            "mig_per_factor": dict(zip(names, mig_result["per_factor"], strict=True)),
            "mig_top_dim": dict(zip(names, mig_result["top_dim"], strict=True)),
            "dci": dci_result,
            "sap": sap_result["sap"],
            "sap_scores": sap_result["scores"],
            "modularity": modularity_result["modularity"],
            "modularity_per_dim": modularity_result["per_dim"],
            "probe": linear_probe(codes, factors, names, seed=seed),
            "mi_matrix": mi,
            "factor_entropies": factor_entropies(factors),
            "factor_names": names,
            "active_dims": active_dims,
            "n_samples": codes.shape[0],
            "seed": seed,
        }
    )
