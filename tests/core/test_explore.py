"""The numpy API the pages call (vae_core.explore), the one "sentences → means → reconstructions → exact match"
(vae_core.subset_encodings), the one label rule (vae_core.subsets), per-dimension statistics and the comparison rows."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.core.helpers import TOY, tiny_model_config, tiny_train_config, toy_corpus
from vae_core import comparison, explore, map_cache, subset_encodings, subsets
from vae_core.config import DecodeConfig
from vae_core.corpus import Corpus, TextSet
from vae_core.decode import decode
from vae_core.encoding import posterior_means
from vae_core.evaluate import _label_factors
from vae_core.metrics import evaluate_model
from vae_core.runs import load_run
from vae_core.summary import Summary
from vae_core.synthetic import FACTORS
from vae_core.train import train


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("runs") / "toy"
    torch.manual_seed(0)
    train(run_dir, toy_corpus(4), tiny_model_config(), tiny_train_config(epochs=1, max_steps=8))
    return load_run(run_dir)


SENTENCES = [*TOY, "the unknownword sat .", ""]


def test_encode_is_posterior_means_as_float32_arrays(run):
    mu, logvar, oov = explore.encode(run, SENTENCES)
    ref_mu, ref_lv, ref_oov = posterior_means(run.model, run.vocab, SENTENCES, max_len=run.train_config.max_len)
    assert mu.dtype == np.float32 and mu.shape == (len(SENTENCES), 4)
    assert np.array_equal(mu, ref_mu.numpy()) and np.array_equal(logvar, ref_lv.numpy())
    assert oov == ref_oov and oov[-2] == ["unknownword"]


def test_decode_of_arrays_equals_decode_of_tensors(run):
    z = explore.prior_codes(5, 4, seed=3)  # (5, D)
    assert np.array_equal(z, torch.randn(5, 4, generator=torch.Generator().manual_seed(3)).numpy())
    z.flags.writeable = False  # cached arrays are read-only: no copy warning, no error
    assert explore.decode(run, z) == decode(run.model, torch.from_numpy(z.copy()), run.vocab, DecodeConfig()).texts
    assert explore.decode(run, z[0]) == explore.decode(run, z[:1])  # (D,) is one code
    assert explore.decode(run, np.zeros((0, 4), np.float32)) == []


def test_reconstructions_agree_with_the_evaluation(run):
    enc = subset_encodings.encode_and_reconstruct(run, list(TOY))
    ev = evaluate_model(run.model, run.vocab, list(TOY), max_len=run.train_config.max_len)
    assert enc.exact_match == pytest.approx(ev["exact_match"])
    assert enc.mu.shape == (len(TOY), 4) and not enc.mu.flags.writeable
    cfg = DecodeConfig(strategy="greedy", max_len=max(len(s.split()) for s in TOY) + 2)  # longest input + 2
    greedy = decode(run.model, torch.from_numpy(enc.mu.copy()), run.vocab, cfg).texts
    assert list(enc.reconstructions) == greedy
    assert enc.correct.tolist() == [r.split() == s.split() for r, s in zip(greedy, TOY, strict=True)]
    assert enc.lengths.tolist() == [len(s.split()) for s in TOY]  # words the model reads


def test_latent_wrappers_keep_their_properties():
    a, b = np.array([1.0, 0.0], np.float32), np.array([0.0, 2.0], np.float32)
    for method in ("lerp", "slerp"):
        path = explore.interpolate(a, b, 5, method)
        assert path.shape == (5, 2) and np.allclose(path[0], a) and np.allclose(path[-1], b)
    grid = explore.traversal_grid(a, [1], explore.traversal_values(3, 2.0))  # (1, 3, 2)
    assert grid.shape == (1, 3, 2) and grid[0, :, 1].tolist() == [-2.0, 0.0, 2.0] and (grid[0, :, 0] == 1).all()
    codes = np.array([[0, 0], [2, 0], [0, 4], [2, 4]], np.float32)
    direction = explore.attribute_vector(codes, [False, False, True, True])
    assert direction.tolist() == [0.0, 4.0]
    assert explore.move_along(a, direction, [0.0, 1.0]).tolist() == [[1.0, 0.0], [1.0, 4.0]]
    assert explore.arithmetic(a, b, a).tolist() == [2.0, -2.0]
    idx, dist = explore.nearest(codes, codes[3], k=2)
    assert idx.tolist() == [[3, 2]] and dist[0].tolist() == [0.0, 2.0]


def test_dim_stats_sources_in_order():
    ev = {"kl_per_dim": [0.5, 2.0, 0.0], "au_variances": [0.5, 0.3, 0.001]}
    stats = explore.dim_stats(Summary.from_json({"eval": ev}), 3, lambda: pytest.fail("must not measure"))
    assert stats.source == "evaluation" and stats.active == (True, True, False) and stats.order == [1, 0, 2]
    assert stats.active_dims == [1, 0] and stats.inactive_dims == [2] and stats.n_active == 2
    rng = np.random.default_rng(0)
    mu = np.stack([rng.normal(size=50), np.zeros(50)], 1).astype(np.float32)
    wrong_size = Summary.from_json({"eval": {"kl_per_dim": [1.0], "au_variances": [1.0]}})
    measured = explore.dim_stats(wrong_size, 2, lambda: (mu, np.zeros_like(mu)))
    assert measured.source == "corpus sample" and measured.active == (True, False) and measured.variances[1] == 0
    training = Summary.from_json({"training": {"valid": {"kl_per_dim": [0.0, 1.0]}}})
    assert explore.dim_stats(training, 2, lambda: None).source == "training"
    none = explore.dim_stats(Summary(), 2, lambda: None)
    assert none.source == "none" and none.kl == (0.0, 0.0) and none.active == (True, True)


def test_latent_stats_measure_kl_au_and_mi():
    rng = np.random.default_rng(0)
    mu = np.stack([rng.normal(size=200), np.zeros(200)], 1).astype(np.float32)
    stats = explore.latent_stats_of(mu, np.zeros_like(mu))
    assert stats.active == (True, False) and stats.n == 200 and stats.source == "measured"
    assert stats.kl[0] == pytest.approx(float(np.mean(mu[:, 0] ** 2) / 2), rel=1e-4) and stats.kl[1] == 0.0
    assert 0 < stats.mi <= np.log(200) + 1e-6
    assert stats == explore.latent_stats_of(mu, np.zeros_like(mu)), "seeded"


def test_one_label_rule_for_the_evaluation_and_the_app():
    n = 202
    labels = {
        "hundred": tuple(str(i % 100) for i in range(n)),  # 100 values: a factor
        "ids": tuple(str(i % 101) for i in range(n)),  # 101 values: skipped
        "constant": ("x",) * n,
    }
    factors, names, values, skipped = subsets.label_factors(labels)
    assert names == ["hundred"] and skipped == ["ids", "constant"] and len(values[0]) == subsets.MAX_LABEL_VALUES
    corpus = Corpus("c", TextSet(("s",) * n, labels), TextSet(("s",) * n, labels), TextSet(("s",) * n, labels))
    got = _label_factors(corpus, corpus.test)
    assert got[1:] == (names, values, skipped) and np.array_equal(got[0], factors)
    assert subsets.label_values(labels) == {"hundred": sorted(set(labels["hundred"]))}
    assert subsets.label_factors({}) is None


def test_known_factors_keep_their_order_and_bad_values_fall_back_to_labels():
    rows = {f: (vals[0], vals[1]) for f, vals in FACTORS.items()}
    factors, names, _, _ = subsets.label_factors(rows, tuple(FACTORS))
    assert names == list(FACTORS) and factors.tolist() == [[0] * len(FACTORS), [1] * len(FACTORS)]
    broken = dict(rows, tense=("yesterday", "tomorrow"))
    assert subsets.label_factors(broken, tuple(FACTORS))[1] == sorted(FACTORS, key=list(broken).index)


def test_comparison_rows(run):
    subset = subsets.Subset(tuple(TOY), {}, ("test",) * len(TOY), "toy", subsets.content_id(TOY))
    enc = subset_encodings.encode_and_reconstruct(run, TOY)
    row = comparison.measure_comparison("toy", {"train": {"beta": 2, "schedule": "linear"}}, subset, enc)
    assert list(row) == list(comparison.COMPARE_COLUMNS)
    assert row["β"] == 2.0 and row["exact match"] == enc.exact_match and row["MIG"] is None
    assert row["source"] == f"measured on {len(TOY)} test sentences"
    figures = comparison.final_figures(Summary.from_json({"eval": {"nll_bound": 4.0}, "sweep": {"mig": 0.5}}))
    assert figures["eval NLL"] == 4.0 and figures["MIG"] == 0.5 and figures["valid KL"] is None
    point = comparison.rd_point("r", {"train": {"beta": 4}}, Summary.from_json({"training": {"valid": {"kl": 1}}}))
    assert point == {"name": "r", "kl": 1.0, "recon": None, "beta": 4.0, "schedule": None, "source": "run"}
    diff = comparison.config_diff({"a": {"train": {"beta": 1, "seed": 0}}, "b": {"train": {"beta": 2, "seed": 0}}})
    assert diff == {"train.beta": [1, 2]}


def test_projection_store_is_an_lru():
    store = map_cache.ProjectionStore(2)
    store.put("a", "A")
    store.put("b", "B")
    assert store.get("a") == "A"  # a is now the most recent
    store.put("c", "C")
    assert store.get("b") is None and store.get("a") == "A" and store.get("c") == "C"
    assert store.key_lock("k") is store.key_lock("k")


def test_split_sample_is_seeded_and_in_order():
    data = TextSet(tuple(f"s{i}" for i in range(50)), {"y": tuple(str(i % 2) for i in range(50))})
    assert subsets.split_sample(data, 100) is data
    picked = subsets.split_sample(data, 10)
    assert len(picked) == 10 and picked.sentences == subsets.split_sample(data, 10).sentences
    rows = [int(s[1:]) for s in picked.sentences]
    assert rows == sorted(rows) and list(picked.labels["y"]) == [str(r % 2) for r in rows]


def test_run_folders_list_shipped_runs_first_and_honour_default(tmp_path, monkeypatch):
    from vae_core import run_folders

    models, runs = tmp_path / "models", tmp_path / "runs"
    for root, name in ((models, "b-shipped"), (models, "a-shipped"), (runs, "mine"), (runs, "no-weights")):
        (root / name).mkdir(parents=True)
        (root / name / "config.json").write_text("{}", encoding="utf-8")
        if name != "no-weights":
            (root / name / "model.safetensors").write_bytes(b"")
    monkeypatch.setenv("VAE_MODELS_DIR", str(models))
    monkeypatch.setenv("VAE_RUNS_DIR", str(runs))
    assert [p.name for p in run_folders.available_runs()] == ["a-shipped", "b-shipped", "mine"]
    assert run_folders.default_run_path().name == "a-shipped"
    (models / "DEFAULT").write_text("b-shipped\n", encoding="utf-8")
    assert run_folders.default_run_path().name == "b-shipped"
    assert run_folders.is_shipped(models / "b-shipped") and not run_folders.is_shipped(runs / "mine")
    assert run_folders.run_label(models / "a-shipped") == "a-shipped · shipped"
