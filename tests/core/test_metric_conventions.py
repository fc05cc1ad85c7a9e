"""Each metric's estimator convention on codes whose answer is known, at factors of 2, 6 and 40 values.

"lab" (the default) must score a perfect code ≈ 1 and a random one ≈ 0 whatever the number of values;
"published" (disentanglement_lib's estimators) is checked where it is known to differ.
"""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from vae_core import disentanglement as dm
from vae_core.metric_conventions import CONVENTIONS, LAB, PUBLISHED, estimators

N = 1200
K = 3
FAST = replace(LAB, vote_train=3000, vote_eval=1500)  # the lab convention with fewer BetaVAE/FactorVAE points


def _factors(n_values: int) -> np.ndarray:
    return np.random.default_rng(n_values).integers(0, n_values, size=(N, K))  # (N, K)


def _codes(kind: str, factors: np.ndarray) -> np.ndarray:
    """perfect: one dim per factor (+ small noise); rotated: that code times a random rotation;
    padded: perfect plus 3 pure-noise dims; random: 6 noise dims."""
    rng = np.random.default_rng(7)
    perfect = factors + 0.05 * rng.normal(size=factors.shape)  # (N, K)
    if kind == "perfect":
        return perfect
    if kind == "rotated":
        q, _ = np.linalg.qr(np.random.default_rng(3).normal(size=(K, K)))
        return perfect @ q
    if kind == "padded":
        return np.concatenate([perfect, rng.normal(size=(N, 3))], axis=1)
    return rng.normal(size=(N, 6))


_CACHE: dict = {}


def _lab(kind: str, n_values: int) -> dict:
    """Every lab-convention figure of one code (cached: several tests read the same one)."""
    key = (kind, n_values)
    if key not in _CACHE:
        f = _factors(n_values)
        c = _codes(kind, f)
        dci = dm.dci(c, f, convention=FAST)
        _CACHE[key] = {
            "mig": dm.mig(c, f, n_bins=None, chance_removed=True)["mig"],
            "dci_d": dci["disentanglement"],
            "dci_c": dci["completeness"],
            "dci_i": dci["informativeness"],
            "sap": dm.sap(c, f, convention=FAST)["sap"],
            "modularity": dm.modularity(c, f, convention=FAST)["modularity"],
            "beta_vae": dm.beta_vae_score(c, f, convention=FAST)["score"],
            "factor_vae": dm.factor_vae_score(c, f, convention=FAST)["score"],
        }
    return _CACHE[key]


@pytest.mark.parametrize("n_values", [2, 6, 40])
@pytest.mark.parametrize("kind", ["perfect", "padded"])
def test_lab_scores_a_perfect_code_near_one(kind: str, n_values: int) -> None:
    r = _lab(kind, n_values)
    for metric in ("mig", "dci_d", "dci_c", "dci_i", "modularity", "beta_vae", "factor_vae"):
        assert r[metric] > 0.95, (metric, r[metric])
    # SAP's second-best dim is a noise dim's held-out accuracy above the majority share, rescaled: on 240
    # held-out rows of a 2-valued factor that is 0.1 now and then
    assert r["sap"] > 0.85, r["sap"]


@pytest.mark.parametrize("n_values", [2, 6, 40])
def test_lab_scores_a_random_code_near_zero(n_values: int) -> None:
    r = _lab("random", n_values)
    for metric in ("mig", "dci_d", "dci_c", "modularity"):
        assert r[metric] < 0.05, (metric, r[metric])
    assert r["sap"] < 0.1  # best minus second best of noise accuracies on 240 held-out rows
    majority = max(np.bincount(col).max() / N for col in _factors(n_values).T)
    assert r["dci_i"] < majority + 0.05  # no better than always answering the commonest value
    for metric in ("beta_vae", "factor_vae"):  # chance is 1 / K for the vote-based scores
        assert abs(r[metric] - 1 / K) < 0.08, (metric, r[metric])


@pytest.mark.parametrize("n_values", [2, 6, 40])
def test_lab_rotated_code_loses_disentanglement_not_information(n_values: int) -> None:
    perfect, rotated = _lab("perfect", n_values), _lab("rotated", n_values)
    for metric in ("mig", "dci_d", "dci_c", "sap"):
        assert rotated[metric] < perfect[metric] - 0.3, (metric, rotated[metric])
    if n_values <= 6:  # axis-aligned trees need many cuts for a rotated 40-valued factor
        assert rotated["dci_i"] > 0.9


def test_published_sap_and_mig_fall_short_on_a_perfect_code() -> None:
    """The reason for the lab convention: with a LinearSVC, the second-best dim still scores chance, and 20
    bins cap a 40-valued factor's MI at log 20 / log 40 of its entropy."""
    f6 = _factors(6)
    perfect6 = _codes("perfect", f6)
    published = dm.sap(perfect6, f6, convention="published")["sap"]
    assert published < 0.6 < dm.sap(perfect6, f6, convention="lab")["sap"]
    f40 = _factors(40)
    perfect40 = _codes("perfect", f40)
    assert dm.mig(perfect40, f40, n_bins=PUBLISHED.mig_bins)["mig"] < 0.85
    assert dm.mig(perfect40, f40, n_bins=None, chance_removed=True)["mig"] > 0.95


def test_published_dci_is_gradient_boosting_and_scores_a_perfect_code() -> None:
    f = _factors(6)[:400]
    result = dm.dci(_codes("perfect", _factors(6))[:400], f, convention="published")
    assert result["model"] == "gbt" and result["n_train"] + result["n_test"] == 400
    assert result["disentanglement"] > 0.9 and result["informativeness"] > 0.95


def test_published_modularity_counts_noise_dims_lab_does_not() -> None:
    f = _factors(6)
    padded = _codes("padded", f)
    assert dm.modularity(padded, f, convention="published")["modularity"] < 0.85
    assert dm.modularity(padded, f, convention="lab")["modularity"] > 0.95
    assert dm.modularity(padded, f)["modularity"] == dm.modularity(padded, f, convention="published")["modularity"]


def test_explicitness_perfect_and_random() -> None:
    f = _factors(6)
    assert dm.explicitness(_codes("perfect", f), f)["explicitness"] > 0.97
    assert abs(dm.explicitness(_codes("random", f), f)["explicitness"] - 0.5) < 0.05


def test_conventions_are_named_and_json() -> None:
    assert CONVENTIONS == ("lab", "published")
    assert estimators("lab") is LAB and estimators(PUBLISHED) is PUBLISHED
    with pytest.raises(ValueError, match="unknown metric convention 'paper'"):
        estimators("paper")
    doc = json.loads(json.dumps(PUBLISHED.as_json()))
    assert doc["dci_model"] == "gbt" and doc["dci_trees"] == 100 and doc["num_train"] == 10000
    assert set(doc["describe"]) >= {"MIG", "DCI", "SAP", "modularity", "BetaVAE", "FactorVAE", "explicitness"}


def test_report_records_its_convention_and_single_factor_caveats() -> None:
    f = _factors(6)[:300]
    c = _codes("perfect", _factors(6))[:300]
    report = dm.disentanglement_report(c, f, ["a", "b", "c"])
    assert report["convention"]["name"] == "lab" and report["caveats"] == {}
    assert report["mig_bins"] == 20
    one = dm.disentanglement_report(c, f[:, :1], ["a"], convention="published")
    assert one["convention"]["name"] == "published"
    assert one["dci"]["disentanglement"] is None and one["modularity"] is None  # not a trivial 1.000
    assert one["beta_vae"]["score"] is None and one["factor_vae"]["score"] is None
    assert set(one["caveats"]) == {"DCI disentanglement", "modularity", "BetaVAE", "FactorVAE"}
    assert "at least 2 factors" in one["caveats"]["modularity"]
    assert one["dci"]["completeness"] > 0.9 and one["mig"] > 0.9  # still meaningful with one factor
    json.dumps(one, allow_nan=False)


def test_vote_scores_use_factor_conditional_batches() -> None:
    """A dim that holds factor 0 only, and a copy of factor 1 in two dims: FactorVAE's vote for factor 1 is
    split between the copies, yet each dim's majority still names the right factor."""
    f = _factors(6)
    rng = np.random.default_rng(0)
    codes = np.stack([f[:, 0], f[:, 1], f[:, 1], f[:, 2]], axis=1) + 0.05 * rng.normal(size=(N, 4))
    result = dm.factor_vae_score(codes, f, seed=1)
    assert result["score"] > 0.95 and result["active_dims"] == 4
    assert result["n_train"] == 10000 and result["batch"] == 64
    constant = np.zeros((N, 3))
    assert dm.factor_vae_score(constant, f)["score"] == 0.0  # every dim pruned, as disentanglement_lib
