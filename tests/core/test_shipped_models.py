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
