"""Disentanglement metrics on codes whose answer is known."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.metrics import mutual_info_score

from vae_core import disentanglement as dm

N = 2000
N_VALUES = (3, 4, 5, 6)
NAMES = ["shape", "size", "colour", "place"]


@pytest.fixture(scope="module")
def factors() -> np.ndarray:
    rng = np.random.default_rng(0)
    return np.stack([rng.integers(0, n, N) for n in N_VALUES], axis=1)  # (N, K)


@pytest.fixture(scope="module")
def aligned(factors: np.ndarray) -> np.ndarray:
    """One dimension per factor, plus small noise: as disentangled as a code gets."""
    rng = np.random.default_rng(1)
    return factors + 0.05 * rng.normal(size=factors.shape)  # (N, 4)


@pytest.fixture(scope="module")
def random_code() -> np.ndarray:
    return np.random.default_rng(2).normal(size=(N, 6))  # (N, 6)


@pytest.fixture(scope="module")
def aligned_report(aligned: np.ndarray, factors: np.ndarray) -> dict:
    return dm.disentanglement_report(aligned, factors, NAMES, seed=0)


@pytest.fixture(scope="module")
def random_report(random_code: np.ndarray, factors: np.ndarray) -> dict:
    return dm.disentanglement_report(random_code, factors, NAMES, seed=0)


# ----------------------------------------------------------------------------- known answers


def test_aligned_code_scores_high(aligned_report: dict) -> None:
    r = aligned_report
    assert r["mig"] > 0.8
    assert r["dci"]["disentanglement"] > 0.8
    assert r["dci"]["completeness"] > 0.8
    assert r["dci"]["informativeness"] > 0.9
    assert r["sap"] > 0.5
    assert r["modularity"] > 0.9
    assert r["mig_top_dim"] == dict(zip(NAMES, range(4), strict=True))
    for probe in r["probe"]:
        assert probe["accuracy"] > 0.95 > probe["baseline"] + 0.3


def test_random_code_scores_low(random_report: dict) -> None:
    r = random_report
    assert r["mig"] < 0.1
    assert r["dci"]["disentanglement"] < 0.3
    assert r["sap"] < 0.1
    for probe in r["probe"]:
        assert abs(probe["accuracy"] - probe["baseline"]) < 0.08, probe


def test_rotated_pair_lowers_mig(aligned: np.ndarray, factors: np.ndarray) -> None:
    """Factors 0 and 1 each spread over two dims: MIG drops for those two, not the others."""
    rotated = aligned.copy()
    rotated[:, 0] = aligned[:, 0] + aligned[:, 1]
    rotated[:, 1] = aligned[:, 0] - aligned[:, 1]
    before = dm.mig(aligned, factors)["per_factor"]
    after = dm.mig(rotated, factors)["per_factor"]
    assert np.all(after[:2] < before[:2] - 0.3)
    np.testing.assert_allclose(after[2:], before[2:], atol=0.02)


def test_one_dim_for_two_factors_lowers_modularity_and_dci(
    aligned: np.ndarray, aligned_report: dict, factors: np.ndarray
) -> None:
    """dim0 = f0 * n1 + f1 holds two factors: modularity and DCI-D see it. MIG does not (its known
    blind spot): dim0 still holds all of f0 and of f1, and no other dim holds either."""
    rng = np.random.default_rng(3)
    entangled = np.stack(
        [factors[:, 0] * N_VALUES[1] + factors[:, 1], aligned[:, 2], aligned[:, 3], rng.normal(size=N)],
        axis=1,
    ) + 0.05 * rng.normal(size=(N, 4))  # (N, 4)
    assert dm.modularity(entangled, factors)["modularity"] < aligned_report["modularity"] - 0.1
    dci = dm.dci(entangled, factors)
    assert dci["disentanglement"] < aligned_report["dci"]["disentanglement"] - 0.1
    assert dci["informativeness"] > 0.9
    assert dm.mig(entangled, factors)["mig"] > 0.8


# ----------------------------------------------------------------------------- pieces


def test_discretize_bins_per_dimension() -> None:
    x = np.sort(np.random.default_rng(0).normal(size=101))
    codes = np.stack([x, np.full(101, 3.0), 1000.0 * x + 7.0], axis=1)
    binned = dm.discretize(codes, n_bins=10)
    assert binned.shape == (101, 3) and binned.dtype.kind == "i"
    assert binned.min() == 0 and binned.max() == 9
    assert np.all(np.diff(binned[:, 0]) >= 0)
    assert len(np.unique(binned[:, 1])) == 1  # a constant dim is one bin
    np.testing.assert_array_equal(binned[:, 0], binned[:, 2])  # equal-width: scale-free


def test_mi_matrix_bounds_and_sklearn(
    random_code: np.ndarray, aligned: np.ndarray, factors: np.ndarray
) -> None:
    entropy = dm.factor_entropies(factors)
    np.testing.assert_allclose(entropy[0], np.log(3), atol=0.01)
    for codes in (random_code, aligned):
        mi = dm.mutual_info_matrix(codes, factors)
        assert mi.shape == (codes.shape[1], 4)
        assert np.all(mi >= 0) and np.all(mi <= entropy[None, :] + 1e-12)
    binned = dm.discretize(aligned)
    mi = dm.mutual_info_matrix(aligned, factors)
    for d in range(4):
        for k in range(4):
            assert mi[d, k] == pytest.approx(mutual_info_score(factors[:, k], binned[:, d]), abs=1e-10)


def test_modularity_conventions() -> None:
    mi = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 0.0], [1.0, 1.0, 1.0]])
    result = dm.modularity_from_mi(mi)
    np.testing.assert_allclose(result["per_dim"], [1.0, 0.0, 0.0])  # zero-MI dim scores 0
    assert result["modularity"] == pytest.approx(1 / 3)
    weighted = dm.modularity_from_mi(mi, weighting="information")  # dim 1 carries nothing: weight 0
    assert weighted["modularity"] == pytest.approx(1 / 2)
    one_factor = dm.modularity_from_mi(np.array([[0.5], [0.0]]))  # one factor: trivially modular, so NaN
    assert np.isnan(one_factor["modularity"]) and np.all(np.isnan(one_factor["per_dim"]))


def test_dci_without_importance_is_not_nan(aligned: np.ndarray) -> None:
    constant = np.zeros((N, 2), dtype=int)  # nothing to predict: every importance is 0
    result = dm.dci(aligned, constant)
    assert result["disentanglement"] == 0.0 and result["completeness"] == 0.0
    assert np.isnan(dm.dci(aligned, constant[:, :1])["disentanglement"])  # one factor: no D to measure
    assert result["informativeness"] == 1.0
    assert not np.any(np.isnan(result["importance"]))


@pytest.mark.parametrize("model", ["logistic", "gbt"])
def test_dci_other_models(model: str, aligned: np.ndarray, factors: np.ndarray) -> None:
    result = dm.dci(aligned[:300], factors[:300], model=model)
    assert result["importance"].shape == (4, 4)
    assert result["disentanglement"] > 0.7 and result["informativeness"] > 0.9
    with pytest.raises(ValueError, match="unknown DCI model"):
        dm.dci(aligned, factors, model="lasso")  # type: ignore[arg-type]


def test_deterministic_under_seed(random_code: np.ndarray, factors: np.ndarray) -> None:
    codes, facts = random_code[:300], factors[:300]
    a = dm.disentanglement_report(codes, facts, NAMES, seed=5)
    assert a == dm.disentanglement_report(codes, facts, NAMES, seed=5)
    assert dm.sap(codes, facts, seed=6)["sap"] != a["sap"]  # the seed picks the split


def test_probe_baseline_is_majority_share_of_test_split(aligned: np.ndarray) -> None:
    rng = np.random.default_rng(4)
    labels = rng.choice(np.array(["pos", "neg", "neutral"]), size=N, p=[0.7, 0.2, 0.1])
    (probe,) = dm.linear_probe(aligned, labels[:, None], ["sentiment"], seed=3)
    _, test = dm._split(N, 3, 0.8)
    assert probe["baseline"] == pytest.approx(np.mean(labels[test] == "pos"))
    assert probe["n_classes"] == 3 and probe["n_test"] == len(test) == 400
    assert probe["n_train"] + probe["n_test"] == N


def test_active_mask_restricts_dims(aligned: np.ndarray, factors: np.ndarray) -> None:
    duplicated = np.concatenate([aligned, aligned[:, :1]], axis=1)  # dim 4 copies dim 0
    assert dm.mig(duplicated, factors)["per_factor"][0] < 0.05
    active = np.array([True, True, True, True, False])
    result = dm.mig(duplicated, factors, active=active)
    assert result["per_factor"][0] > 0.9
    np.testing.assert_allclose(result["per_factor"], dm.mig(aligned, factors)["per_factor"])
    only_dim2 = dm.mig(duplicated, factors, active=np.arange(5) == 2)
    assert only_dim2["top_dim"].tolist() == [2, 2, 2, 2]  # indices into the full code
    assert only_dim2["per_factor"][2] > 0.9  # second best is 0 with one dim
    none = dm.mig(duplicated, factors, active=np.zeros(5, dtype=bool))
    assert none["mig"] == 0.0 and none["top_dim"].tolist() == [-1] * 4
    with pytest.raises(ValueError, match="active mask"):
        dm.mig(duplicated, factors, active=active[:3])


def test_report_is_json(aligned_report: dict) -> None:
    text = json.dumps(aligned_report, allow_nan=False)
    loaded = json.loads(text)
    assert loaded["factor_names"] == NAMES
    assert set(loaded["mig_per_factor"]) == set(NAMES)
    assert np.array(loaded["mi_matrix"]).shape == (4, 4)
    assert np.array(loaded["dci"]["importance"]).shape == (4, 4)


def test_report_constant_factor_gives_null_not_nan(aligned: np.ndarray, factors: np.ndarray) -> None:
    with_constant = np.concatenate([factors[:300], np.zeros((300, 1), dtype=int)], axis=1)
    report = dm.disentanglement_report(aligned[:300], with_constant, [*NAMES, "constant"])
    assert report["mig_per_factor"]["constant"] is None
    json.dumps(report, allow_nan=False)


def test_encode_labels_round_trip() -> None:
    columns = {"sentiment": ["pos", "neg", "pos", "neutral"], "tense": ["past", "past", "future", "past"]}
    factors, names, values = dm.encode_labels(columns)
    assert factors.shape == (4, 2) and factors.dtype.kind == "i"
    assert names == ["sentiment", "tense"]
    assert values == [["neg", "neutral", "pos"], ["future", "past"]]
    for k, name in enumerate(names):
        assert [values[k][i] for i in factors[:, k]] == columns[name]
    with pytest.raises(ValueError, match="differ in length"):
        dm.encode_labels({"a": ["x"], "b": ["x", "y"]})


def test_input_errors_say_what_is_wrong(aligned: np.ndarray, factors: np.ndarray) -> None:
    with pytest.raises(ValueError, match="factors have 10 rows but codes have 2000"):
        dm.mig(aligned, factors[:10])
    with pytest.raises(ValueError, match="encode_labels"):
        dm.mig(aligned, np.full((N, 1), "x"))
    with pytest.raises(ValueError, match="NaN"):
        dm.mig(np.full((N, 2), np.nan), factors)
    with pytest.raises(ValueError, match="2 names for 4 factor columns"):
        dm.disentanglement_report(aligned, factors, ["a", "b"])
