"""Every shipped model loads from its directory alone and reproduces its recorded reconstruction figure."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from vae_core.config import DecodeConfig
from vae_core.corpus import load_corpus
from vae_core.decode import decode
from vae_core.encoding import posterior_means
from vae_core.runs import load_run
from vae_core.text import detokenize, tokenize

MODELS = Path(__file__).resolve().parents[2] / "models"
SHIPPED = sorted(p for p in MODELS.iterdir() if (p / "config.json").is_file()) if MODELS.is_dir() else []
SAMPLE = 300  # fixed sample of the test split (its first 300 sentences)


def test_models_are_shipped_with_a_default_and_cards():
    assert len(SHIPPED) >= 3
    default = (MODELS / "DEFAULT").read_text().strip()
    assert default in {p.name for p in SHIPPED}
    card = (MODELS / "README.md").read_text()
    for p in SHIPPED:
        assert f"`{p.name}`" in card
        assert sum(f.stat().st_size for f in p.iterdir() if f.is_file()) < 10_000_000


@pytest.mark.slow
@pytest.mark.parametrize("run_dir", SHIPPED, ids=[p.name for p in SHIPPED])
def test_shipped_model_reproduces_its_reconstruction_figure(run_dir):
    run = load_run(run_dir)
    summary = json.loads((run_dir / "summary.json").read_text())
    recorded = summary["eval"]["exact_match"]  # measured on the whole test split by `vae_core eval`
    corpus = load_corpus(run.corpus_spec)
    sentences = list(corpus.test.sentences[:SAMPLE])
    mu, _, _ = posterior_means(run.model, run.vocab, sentences)
    texts = decode(run.model, mu, run.vocab, DecodeConfig()).texts
    refs = [detokenize(tokenize(s)) for s in sentences]
    exact = float(np.mean([t == r for t, r in zip(texts, refs, strict=True)]))
    # a 300-sentence sample of a 1,037-sentence split: allow a few standard errors
    tolerance = 3 * np.sqrt(max(recorded * (1 - recorded), 0.01) / SAMPLE) + 0.01
    assert abs(exact - recorded) <= tolerance, (run_dir.name, exact, recorded)


@pytest.mark.slow
@pytest.mark.parametrize("run_dir", SHIPPED, ids=[p.name for p in SHIPPED])
def test_shipped_model_reproduces_its_owned_factors(run_dir):
    """The card's 'factors owned by one dimension' (and each dimension's figures) come back from the
    weights: the same traversal test as `vae_core eval`, from the same 100 test sentences."""
    from vae_core.evaluate import N_TRAVERSAL_BASES, _sample
    from vae_core.validity import traversal_factor_effects

    summary = json.loads((run_dir / "summary.json").read_text())["eval"]
    recorded = summary["traversals"]
    run = load_run(run_dir)
    data = load_corpus(run.corpus_spec, seed=run.train_config.seed).split(summary["split"])
    base = [data.sentences[i] for i in _sample(len(data), N_TRAVERSAL_BASES, summary["seed"] + 1)]
    base_z, _, _ = posterior_means(run.model, run.vocab, base, lowercase=run.train_config.lowercase,
                                   max_len=run.train_config.max_len)
    dims = [int(v["dim"]) for v in recorded["per_dim"]]
    got = traversal_factor_effects(run.model, run.vocab, base_z, dims=dims)
    assert got["owners"] == recorded["owners"], (run_dir.name, got["owners"], recorded["owners"])
    for g, r in zip(got["per_dim"], recorded["per_dim"], strict=True):
        assert g["change_rate"] == pytest.approx(r["change_rate"], abs=0.02)
