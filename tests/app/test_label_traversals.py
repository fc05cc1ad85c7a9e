"""Traversals and Disentanglement pages on a run trained on a labelled CSV without a grammar (issue 17, item 2):
the decodes are labelled by classifiers trained on the corpus, each classifier's held-out accuracy and baseline
are shown beside the ownership table, and a label no classifier can predict is said so (its name escaped)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.app.conftest import assert_no_exception, markdown_bodies, open_page
from tests.core.test_label_classifiers import write_sentiment_csv
from vae_core.config import ModelConfig, TrainConfig
from vae_core.corpus import load_corpus
from vae_core.label_classifiers import corpus_labeller
from vae_core.train import train

RUN = "tiny-reviews"
NOISE = "coin <b>flip</b>"  # a label column no classifier can predict, with markup in its name


@pytest.fixture(scope="module")
def _reviews_root(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(models dir with a tiny run on a labelled CSV as its DEFAULT, the data folder holding the CSV)."""
    data = tmp_path_factory.mktemp("data")
    path = write_sentiment_csv(data / "reviews.csv", noise_name=NOISE)
    models = tmp_path_factory.mktemp("models")
    torch.manual_seed(0)
    train(models / RUN, load_corpus(str(path)), ModelConfig(embed_dim=16, hidden_dim=32, latent_dim=4),
          TrainConfig(max_steps=60, batch_size=32, log_every=20))
    (models / "DEFAULT").write_text(RUN + "\n", encoding="utf-8")
    return models, data


@pytest.fixture
def reviews_app(_reviews_root, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    models, data = _reviews_root
    monkeypatch.setenv("VAE_MODELS_DIR", str(models))
    monkeypatch.setenv("VAE_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("VAE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("VAE_DATA_DIRS", str(data))
    (tmp_path / "runs").mkdir()
    return data / "reviews.csv"


def _table(at, columns: set[str]):
    for df in at.dataframe:
        if columns <= set(df.value.columns):
            return df.value
    raise AssertionError(f"no table with columns {sorted(columns)}: {[list(d.value.columns) for d in at.dataframe]}")


def _expected(csv_path: Path) -> dict[str, dict]:
    labeller = corpus_labeller(str(csv_path))  # what the run's page trains: same corpus, seed, tokenisation
    return {c["factor"]: c for c in labeller.describe()["classifiers"]}


def test_traversals_page_shows_label_ownership_with_accuracies(reviews_app):
    at = open_page("app_pages/traversals.py")
    assert_no_exception(at)
    assert any("Which label does each dimension change" in h.value for h in at.subheader)
    at.button(key="w_trav_labels").click().run()
    assert_no_exception(at)
    expected = _expected(reviews_app)
    accuracy = _table(at, {"factor", "held-out accuracy", "majority baseline", "used"})
    shown = {r["factor"]: r for r in accuracy.to_dict("records")}
    assert set(shown) == {"sentiment", "topic", NOISE}
    for f, c in expected.items():
        assert shown[f]["held-out accuracy"] == pytest.approx(c["accuracy"])
        assert shown[f]["majority baseline"] == pytest.approx(c["baseline"])
        assert bool(shown[f]["used"]) == c["usable"]
    assert shown["sentiment"]["held-out accuracy"] >= 0.9 and not shown[NOISE]["used"]
    ownership = _table(at, {"dim", "top label", "change rate", "sentiment", "topic"})
    assert len(ownership) == 4 and NOISE not in ownership.columns  # a classifier that fails is not measured
    texts = markdown_bodies(at)
    assert any("labels** have a dimension of their own" in t for t in texts)
    warning = next(w.value for w in at.warning if "is not analysed" in w.value)
    assert "<b>" not in warning and "&lt;b&gt;" in warning and "baseline" in warning


def test_disentanglement_page_shows_label_ownership_with_accuracies(reviews_app):
    at = open_page("app_pages/disentanglement.py")
    assert_no_exception(at)
    expected = _expected(reviews_app)
    accuracy = _table(at, {"factor", "held-out accuracy", "majority baseline", "held-out sentences"})
    shown = {r["factor"]: r for r in accuracy.to_dict("records")}
    for f, c in expected.items():
        assert shown[f]["held-out accuracy"] == pytest.approx(c["accuracy"])
        assert shown[f]["held-out sentences"] == c["n_heldout"]
    owned = next(m for m in at.metric if m.label == "Labels owned by one dimension")
    assert owned.value.endswith("of 2")
    _table(at, {"dim", "top label", "sentiment", "topic"})
    assert any(t.startswith("Classifier accuracy on the valid + test splits") for t in markdown_bodies(at))
    assert any("&lt;b&gt;" in w.value for w in at.warning)
