"""vae_core.summary: summary.json read into typed fields; ill-typed or non-finite values become None, never raise."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from vae_core.runs import read_summary, write_json
from vae_core.summary import Evaluation, PriorValidity, Summary, finite_number, finite_vector, whole_number

REPO = Path(__file__).resolve().parents[2]


def test_finite_number_and_whole_number():
    assert finite_number(1) == 1.0 and isinstance(finite_number(1), float)
    assert finite_number(2.5) == 2.5
    for bad in (None, True, False, "1.0", float("nan"), float("inf"), -math.inf, [1.0], {"a": 1}):
        assert finite_number(bad) is None, bad
    assert whole_number(3) == 3
    for bad in (None, True, 3.0, "3", [3]):
        assert whole_number(bad) is None, bad
    assert finite_vector([1, 2.5]) == (1.0, 2.5)
    assert finite_vector([1, None]) is None and finite_vector([1, float("nan")]) is None
    assert finite_vector("12") is None and finite_vector(None) is None


def test_a_full_summary_is_typed():
    raw = {
        "training": {"state": "finished", "step": 20, "valid": {"recon": 1.5, "kl": 2, "elbo": -3.5,
                                                                  "nll_bound": 3.5, "active_units": 2,
                                                                  "kl_per_dim": [1.0, 1.0, 0.0, 0.0]}},
        "eval": {
            "split": "test", "n_sentences": 10, "mi": 1.25, "mi_n": 10, "active_units": 2, "kl": 3.5,
            "nll": 9.0, "nll_bound": 10.0, "ppl": 2.0, "exact_match": 0.5, "kl_per_dim": [1, 2],
            "au_variances": [0.5, 0.001],
            "disentanglement": {"mig": 0.3, "sap": 0.05, "modularity": 0.9,
                                "dci": {"disentanglement": 0.4, "completeness": 0.6, "informativeness": 0.7}},
            "prior_samples": {"n": 100, "validity": 0.9, "distinct": 0.5, "distinct_valid": 0.4, "coverage": 0.01},
        },
        "sweep": {"study": "s", "trial": 3, "mig": 0.2, "nll": 11.0},
    }
    s = Summary.from_json(raw)
    assert s.training.state == "finished" and s.training.step == 20
    assert s.valid.kl == 2.0 and s.valid.active_units == 2 and s.valid.kl_per_dim == (1.0, 1.0, 0.0, 0.0)
    ev = s.evaluation
    assert (ev.split, ev.n_sentences, ev.mi, ev.mi_n, ev.active_units) == ("test", 10, 1.25, 10, 2)
    assert ev.kl_per_dim == (1.0, 2.0) and ev.au_variances == (0.5, 0.001)
    assert ev.disentanglement.mig == 0.3 and ev.disentanglement.dci_disentanglement == 0.4
    assert ev.disentanglement.dci_informativeness == 0.7 and ev.disentanglement.modularity == 0.9
    assert ev.prior_samples == PriorValidity(100, 0.9, 0.5, 0.4, 0.01)
    assert s.sweep.study == "s" and s.sweep.trial == 3 and s.sweep.mig == 0.2


@pytest.mark.parametrize(
    "raw",
    [None, [], "x", 3, {"eval": "x", "training": [1], "sweep": 2}, {"eval": {"mi": "high", "active_units": "2",
     "kl_per_dim": "abc", "split": 7, "disentanglement": [], "prior_samples": {"validity": None}}},
     {"training": {"valid": {"kl": float("nan"), "active_units": True}}}],
)
def test_ill_typed_values_become_none(raw):
    s = Summary.from_json(raw)  # never raises
    ev = s.evaluation
    if ev is not None:
        assert ev.mi is None and ev.active_units is None and ev.kl_per_dim is None and ev.split is None
        assert ev.disentanglement is None
        assert ev.prior_samples is None or ev.prior_samples.validity is None
    if s.valid is not None:
        assert s.valid.kl is None and s.valid.active_units is None


def test_read_summary_of_missing_broken_and_real_files(tmp_path):
    assert read_summary(tmp_path) == Summary()
    (tmp_path / "summary.json").write_text("{not json", encoding="utf-8")
    assert read_summary(tmp_path) == Summary()
    (tmp_path / "summary.json").write_text("[" * 100_000, encoding="utf-8")  # nested too deeply
    assert read_summary(tmp_path) == Summary()
    write_json(tmp_path / "summary.json", {"eval": {"kl": 1.0, "active_units": 1}})
    assert read_summary(tmp_path).evaluation == Evaluation(kl=1.0, active_units=1)


def _shipped() -> list[Path]:
    models = REPO / "models"
    return sorted(p for p in models.iterdir() if (p / "summary.json").is_file()) if models.is_dir() else []


@pytest.mark.parametrize("run_dir", _shipped() or [None], ids=lambda p: p.name if p else "none")
def test_shipped_summaries_read_the_same_figures_as_the_json(run_dir):
    if run_dir is None:
        pytest.skip("no shipped run")
    raw = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
    s = read_summary(run_dir)
    ev = raw.get("eval")
    if ev:
        assert s.evaluation.active_units == ev["active_units"]
        assert s.evaluation.kl == pytest.approx(ev["kl"]) and s.evaluation.mi == pytest.approx(ev["mi"])
        assert s.evaluation.kl_per_dim == pytest.approx(ev["kl_per_dim"])
        if "disentanglement" in ev:
            assert s.evaluation.disentanglement.mig == pytest.approx(ev["disentanglement"]["mig"])
    if raw.get("training", {}).get("valid"):
        assert s.valid.kl == pytest.approx(raw["training"]["valid"]["kl"])
