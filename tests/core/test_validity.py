"""validity counting on hand-built parses; smoke tests on a tiny model; evaluate_run on a tiny run."""

from __future__ import annotations

import json

import pytest
import torch

from tests.core.helpers import tiny_model_config, tiny_train_config
from vae_core import synthetic
from vae_core.corpus import Corpus
from vae_core.evaluate import evaluate_run
from vae_core.runs import load_run
from vae_core.train import train
from vae_core.validity import (
    interpolation_validity,
    owned_factors,
    prior_sample_validity,
    summarise_traversals,
    traversal_factor_effects,
    wilson_interval,
)

BASE = synthetic.all_combinations()[0]


def _with(**changes) -> dict:
    return {**BASE, **changes}


def test_summarise_traversals_counts_changes_and_sole_changes():
    a = BASE
    b = _with(subject="teacher")
    c = _with(subject="teacher", tense="present", object="dog")
    rows = [
        [a, a, b, b],  # steps: none, subject alone, none
        [a, b, c, None],  # steps: subject alone, object + tense, to invalid
    ]
    s = summarise_traversals(rows)
    assert s["n_steps"] == 6
    assert s["change_rate"] == pytest.approx(4 / 6)
    assert s["invalid_step_rate"] == pytest.approx(1 / 6)
    assert s["factor_share"]["subject"] == pytest.approx(2 / 4)
    assert s["factor_share"]["object"] == pytest.approx(1 / 4)
    assert s["factor_share"]["tense"] == pytest.approx(1 / 4)
    assert s["factor_share"]["verb"] == 0
    assert s["sole_share"]["subject"] == pytest.approx(2 / 4)
    assert s["sole_share"]["object"] == 0 and s["sole_share"]["tense"] == 0
    assert s["top_factor"] == "subject"
    assert s["validity"] == pytest.approx(7 / 8)


def test_summarise_traversals_edge_cases():
    still = summarise_traversals([[BASE] * 5])
    assert still["change_rate"] == 0 and still["top_factor"] is None and still["validity"] == 1
    garbage = summarise_traversals([[None, None, None]])
    assert garbage["change_rate"] == 1 and garbage["invalid_step_rate"] == 1
    assert garbage["top_factor"] is None and garbage["validity"] == 0
    assert all(v == 0 for v in garbage["sole_share"].values())
    assert summarise_traversals([])["n_steps"] == 0


def test_wilson_interval():
    lo, hi = wilson_interval(44, 50)  # 88% of 50 paths
    assert (round(lo, 3), round(hi, 3)) == (0.762, 0.944)  # textbook Wilson score interval, z = 1.96
    lo5, hi5 = wilson_interval(440, 500)
    assert hi5 - lo5 < (hi - lo) / 2  # ten times the pairs, about a third of the width
    assert wilson_interval(0, 10)[0] == 0.0 and wilson_interval(10, 10)[1] == 1.0
    assert wilson_interval(0, 0) == (0.0, 1.0)


def test_owned_factors_applies_both_thresholds():
    mood = _with(mood="question")
    # dim 0: mood alone on every changing step, changes half the steps -> owns mood
    dim0 = summarise_traversals([[BASE, BASE, mood, mood, BASE]])
    # dim 1: mood alone but changes only 1 step in 8 -> too rarely to own it
    dim1 = summarise_traversals([[BASE] * 8 + [mood]])
    # dim 2: changes every step, but mood together with tense -> not alone
    both = _with(mood="question", tense="future")
    dim2 = summarise_traversals([[BASE, both, BASE, both]])
    per_dim = [{"dim": 0, **dim0}, {"dim": 1, **dim1}, {"dim": 2, **dim2}]
    assert dim0["change_rate"] == pytest.approx(0.5) and dim0["sole_share"]["mood"] == 1
    assert owned_factors(per_dim) == {"mood": [0]}
    assert owned_factors(per_dim, min_change_rate=0.1) == {"mood": [0, 1]}


# ----------------------------------------------------------------------------- tiny trained models


def _small_synthetic(n_train: int = 400) -> Corpus:
    full = synthetic.generate()
    return Corpus(
        "synthetic", full.train.select(range(n_train)), full.valid.select(range(40)), full.test.select(range(40)),
        factors=full.factors, spec="synthetic",
    )


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("runs") / "tiny"
    torch.manual_seed(0)
    train(run_dir, _small_synthetic(), tiny_model_config(), tiny_train_config(epochs=1, max_steps=20, batch_size=32))
    return run_dir


@pytest.mark.slow  # trains the tiny run (a few seconds on a busy machine)
def test_generation_analysis_smoke(tiny_run):
    run = load_run(tiny_run)
    model, vocab = run.model, run.vocab
    prior = prior_sample_validity(model, vocab, n=50, seed=3)
    assert prior == prior_sample_validity(model, vocab, n=50, seed=3)
    assert 0 <= prior["validity"] <= 1 and 0 < prior["distinct"] <= 1
    assert prior["distinct_valid"] <= min(prior["validity"], prior["distinct"])
    base = torch.randn(5, 4, generator=torch.Generator().manual_seed(0))
    trav = traversal_factor_effects(model, vocab, base, dims=[0, 2], values=torch.linspace(-2, 2, 5))
    assert [d["dim"] for d in trav["per_dim"]] == [0, 2]
    assert all(d["n_steps"] == 5 * 4 for d in trav["per_dim"])
    assert set(trav["per_dim"][0]["factor_share"]) == set(synthetic.FACTORS)
    assert trav["n_base"] == 5 and len(trav["values"]) == 5
    sents = list(_small_synthetic().test.sentences[:6])
    pairs = list(zip(sents[::2], sents[1::2], strict=True))
    interp = interpolation_validity(model, vocab, pairs, steps=5, method="slerp")
    assert interp["n_paths"] == 3 and 0 <= interp["path_validity"] <= interp["step_validity"] + 1e-12 <= 1 + 1e-12
    lo, hi = interp["path_validity_ci95"]
    assert lo <= interp["path_validity"] <= hi
    codes = torch.randn(2, 2, 4, generator=torch.Generator().manual_seed(1))
    assert interpolation_validity(model, vocab, codes, steps=4)["n_paths"] == 2


@pytest.mark.slow
def test_evaluate_run_writes_eval_and_keeps_training(tiny_run):
    before = json.loads((tiny_run / "summary.json").read_text())
    assert "training" in before
    state = torch.get_rng_state()
    calls = []
    result = evaluate_run(tiny_run, split="test", nll_samples=3, max_sentences=30, seed=0,
                          progress=lambda *args: calls.append(args))
    assert calls and calls[-1][0] == "nll" and calls[-1][1] == calls[-1][2]
    assert torch.equal(torch.get_rng_state(), state)
    json.dumps(result, allow_nan=False)  # strict JSON
    for key in ("recon", "kl", "elbo", "nll", "ppl", "mi", "active_units", "bleu", "exact_match", "split",
                "run", "nll_samples", "timing", "disentanglement", "prior_samples", "traversals", "interpolation"):
        assert key in result, key
    assert result["n_sentences"] == 30 and result["split"] == "test" and result["nll_samples"] == 3
    assert result["disentanglement"]["factor_names"] == list(synthetic.FACTORS)
    assert "mig" in result["disentanglement"]
    active = [d for d, v in enumerate(result["au_variances"]) if v > 0.01]
    assert [d["dim"] for d in result["traversals"]["per_dim"]] == active
    after = json.loads((tiny_run / "summary.json").read_text())
    assert after["training"] == before["training"]
    assert after["eval"] == result
    again = evaluate_run(tiny_run, nll_samples=3, max_sentences=30, seed=0, write_summary=False, disentanglement=False)
    assert "disentanglement" not in again
    assert again["nll"] == result["nll"] and again["recon"] == result["recon"]
