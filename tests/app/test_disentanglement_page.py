"""Disentanglement page: renders, shows the same numbers as vae_core for the same inputs, uses the evaluation's
MI when there is one, the generation-side table on the built-in corpus, uploaded labels, runs side by side."""

from __future__ import annotations

import base64
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from streamlit.testing.v1 import AppTest

from vae_core import comparison, subset_encodings, subsets
from vae_core.corpus import load_corpus
from vae_core.disentanglement import disentanglement_report
from vae_core.encoding import posterior_means
from vae_core.metrics import AU_THRESHOLD, active_units, kl_per_dim
from vae_core.runs import load_run, read_json, write_json
from vae_core.summary import Evaluation
from vae_core.synthetic import FACTORS, factor_codes

PAGE = "app_pages/disentanglement.py"
REPO = Path(__file__).resolve().parents[2]


def _array(value) -> np.ndarray:
    """An array from a chart's JSON: nested lists, or plotly's typed-array encoding {dtype, bdata, shape}."""
    if isinstance(value, dict):
        flat = np.frombuffer(base64.b64decode(value["bdata"]), dtype=np.dtype(value["dtype"]))
        shape = value.get("shape")
        return flat.reshape([int(x) for x in str(shape).split(",")]) if shape else flat
    return np.asarray(value)


TABLES = {  # AppTest does not expose a dataframe's key: each table is found by its columns
    "metrics": {"metric", "value", "what it measures"},
    "factors": {"factor", "probe accuracy", "majority baseline"},
    "dims": {"KL (nats)", "Var(μ)", "active"},
    "traversals": {"change rate", "top factor"},
    "compare": {"run", "β", "schedule", "source"},
}


def find_table(at, name: str):
    """The first dataframe on the page with the columns of TABLES[name], or None."""
    return next((d.value for d in at.dataframe if TABLES[name] <= set(d.value.columns)), None)


def table(at, name: str):
    found = find_table(at, name)
    assert found is not None, f"no {name} table on the page"
    return found


def test_page_shows_the_same_numbers_as_vae_core(open_app, assert_page_ok, tiny_run_dir):
    at = open_app(PAGE)
    assert_page_ok(at)
    keys = {c.key for c in at.get("plotly_chart")}
    assert {"w_dis_kl_chart", "w_dis_var_chart", "w_dis_prior_chart", "w_dis_mi_chart", "w_dis_probe_chart"} <= keys

    # The same inputs, straight through vae_core: every test sentence (fewer than the default 2,000).
    run = load_run(tiny_run_dir)
    test = load_corpus("synthetic").test
    assert len(test) < 2000
    mu, logvar, _ = posterior_means(run.model, run.vocab, list(test.sentences))
    n_active, variances = active_units(mu)
    factors = factor_codes([{f: test.labels[f][i] for f in FACTORS} for i in range(len(test))])
    report = disentanglement_report(mu.numpy(), factors, list(FACTORS), active=(variances > AU_THRESHOLD).numpy())

    metrics = dict(zip(table(at, "metrics")["metric"], table(at, "metrics")["value"], strict=True))
    expected = {
        "MIG": report["mig"],
        "DCI disentanglement": report["dci"]["disentanglement"],
        "DCI completeness": report["dci"]["completeness"],
        "DCI informativeness": report["dci"]["informativeness"],
        "SAP": report["sap"],
        "Modularity": report["modularity"],
    }
    for name, value in expected.items():
        assert metrics[name] == pytest.approx(value, abs=1e-9), name
    per_factor = table(at, "factors")
    assert per_factor["factor"].tolist() == list(FACTORS)
    assert per_factor["probe accuracy"].tolist() == pytest.approx([p["accuracy"] for p in report["probe"]])
    assert per_factor["majority baseline"].tolist() == pytest.approx([p["baseline"] for p in report["probe"]])
    dims = table(at, "dims")
    assert dims["KL (nats)"].tolist() == pytest.approx(kl_per_dim(mu, logvar).tolist(), rel=1e-5)
    assert dims["Var(μ)"].tolist() == pytest.approx(variances.tolist(), rel=1e-5)
    assert int(dims["active"].sum()) == n_active
    assert any(f"{n_active} of 4" == m.value for m in at.metric)
    chart = json.loads(next(c for c in at.get("plotly_chart") if c.key == "w_dis_mi_chart").proto.spec)
    assert np.allclose(_array(chart["data"][0]["z"]), report["mi_matrix"])


def test_generation_side_table_on_the_built_in_corpus(open_app, assert_page_ok):
    at = open_app(PAGE)
    assert_page_ok(at)
    share = table(at, "traversals")
    assert {"dim", "change rate", "validity", "top factor", *FACTORS} <= set(share.columns)
    assert len(share) >= 1
    values = share[list(FACTORS)].to_numpy()
    assert ((values >= 0) & (values <= 1)).all()
    assert any(m.label == "Prior samples that are valid sentences" for m in at.metric)


def test_kl_order_and_histogram_switches(open_app, assert_page_ok):
    at = open_app(PAGE)
    at.radio(key="w_dis_kl_sort").set_value("largest KL first").run()
    assert_page_ok(at)
    bar = json.loads(next(c for c in at.get("plotly_chart") if c.key == "w_dis_kl_chart").proto.spec)["data"][0]
    kl = dict(zip(table(at, "dims")["dim"], table(at, "dims")["KL (nats)"], strict=True))
    assert bar["x"] == sorted(kl, key=lambda d: -kl[d])
    at.radio(key="w_dis_agg").set_value("samples z ~ q(z|x)").run()
    assert_page_ok(at)


def test_mi_comes_from_the_evaluation_when_present(tiny_run_dir, tiny_models_dir):
    runs = Path(os.environ["VAE_RUNS_DIR"])
    copy = runs / "evaluated"
    shutil.copytree(tiny_run_dir, copy, ignore=shutil.ignore_patterns("cache"))
    summary = read_json(copy / "summary.json") if (copy / "summary.json").is_file() else {}
    summary["eval"] = {
        "mi": 1.234,
        "mi_n": 999,
        "split": "test",
        "active_units": 3,
        "kl": 5.0,
        "exact_match": 0.5,
        "n_sentences": 999,
        "disentanglement": {"mig": 0.42, "sap": 0.1, "dci": {"disentanglement": 0.3}},
    }
    write_json(copy / "summary.json", summary)
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=60)
    at.query_params["run"] = "evaluated"
    at.run()
    at.switch_page(PAGE).run()
    assert not at.exception and not at.error
    assert any(m.label.startswith("I(x; z)") and m.value == "1.23" for m in at.metric)
    assert any("from the evaluation in summary.json" in c.value for c in at.caption)
    compare = table(at, "compare")
    row = compare.iloc[0]
    assert row["run"] == "evaluated" and row["MIG"] == pytest.approx(0.42) and row["active units"] == 3
    assert row["source"].startswith("evaluation")


def test_runs_side_by_side(open_app, assert_page_ok, tiny_run_dir):
    from vae_core.config import ModelConfig, TrainConfig
    from vae_core.train import train

    other = Path(os.environ["VAE_RUNS_DIR"]) / "beta4"
    torch.manual_seed(0)
    train(
        other,
        load_corpus("synthetic"),
        ModelConfig(embed_dim=8, hidden_dim=16, latent_dim=4),
        TrainConfig(beta=4.0, max_steps=20, batch_size=32, log_every=5),
    )
    at = open_app(PAGE)
    at.multiselect(key="w_dis_runs").set_value([str(tiny_run_dir), str(other)]).run()
    assert_page_ok(at)
    compare = table(at, "compare")
    assert compare["run"].tolist() == ["tiny-synthetic", "beta4"]
    assert compare["β"].tolist() == [1.0, 4.0]
    assert compare["source"].str.startswith("measured on").all()
    assert compare[["active units", "KL", "MI", "MIG", "DCI-D", "SAP", "exact match"]].notna().all().all()
    assert any(c.key == "w_dis_beta_chart" for c in at.get("plotly_chart"))


def test_uploaded_labels_get_the_same_analysis(open_app, assert_page_ok):
    at = open_app(PAGE)
    corpus = load_corpus("synthetic")
    lines = ["sentence,negated,when,id"]
    for i, s in enumerate(corpus.test.sentences[:300]):
        lines.append(f'"{s}",{corpus.test.labels["polarity"][i]},{corpus.test.labels["tense"][i]},{i}')
    at.file_uploader(key="w_dis_upload").set_value(("labels.csv", "\n".join(lines).encode(), "text/csv")).run()
    assert_page_ok(at)
    assert at.radio(key="w_dis_source").value == "upload"
    per_factor = table(at, "factors")
    assert per_factor["factor"].tolist() == ["negated", "when"]  # 'id' has 300 values: not a factor
    assert any("id" in c.value and "Not used" in c.value for c in at.caption)
    assert find_table(at, "traversals") is None, "no generation side for plain labels"


def _shipped_runs() -> list[Path]:
    models = REPO / "models"
    return sorted(p for p in models.iterdir() if (p / "model.safetensors").is_file()) if models.is_dir() else []


@pytest.mark.slow
@pytest.mark.parametrize("run_dir", _shipped_runs() or [None], ids=lambda p: p.name if p else "none")
def test_page_on_shipped_models(run_dir, tmp_path, monkeypatch):
    if run_dir is None:
        pytest.skip("no shipped run in models/")
    monkeypatch.setenv("VAE_MODELS_DIR", str(REPO / "models"))
    monkeypatch.setenv("VAE_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("VAE_CACHE_DIR", str(tmp_path / "cache"))
    real = subset_encodings.writable_dir  # keep the repository clean: caches go to the temporary user cache
    monkeypatch.setattr(subset_encodings, "writable_dir", lambda p: False if run_dir in p.parents else real(p))
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=120)
    at.query_params["run"] = run_dir.name
    at.run()
    at.switch_page(PAGE).run()
    assert not at.exception and not at.error
    if not at.get("plotly_chart"):
        pytest.skip(f"{run_dir.name}: its corpus is not available here")
    assert any(c.key == "w_dis_kl_chart" for c in at.get("plotly_chart"))


def test_label_factors_number_known_factors_like_the_evaluation():
    test = load_corpus("synthetic").test
    labels = {c: v[:50] for c, v in test.labels.items()}
    factors, names, values, skipped = subsets.label_factors(labels, tuple(FACTORS))
    assert names == list(FACTORS) and skipped == []
    assert np.array_equal(factors, factor_codes([{f: labels[f][i] for f in FACTORS} for i in range(50)]))
    plain = subsets.label_factors({"topic": ("b", "a", "b"), "id": ("1", "2", "3"), "same": ("x",) * 3}, (), 2)
    assert plain[1] == ["topic"] and plain[3] == ["id", "same"] and plain[0][:, 0].tolist() == [1, 0, 1]
    assert subsets.label_factors({"id": ("1", "2")}, (), 1) is None


def test_comparison_row_from_an_evaluation():
    config = {"train": {"beta": 2.0, "schedule": "cyclical"}}
    ev = {
        "active_units": 5,
        "kl": 3.5,
        "mi": 2.0,
        "exact_match": 0.7,
        "n_sentences": 1037,
        "split": "test",
        "disentanglement": {"mig": 0.3, "sap": 0.05, "dci": {"disentanglement": 0.4}},
    }
    row = comparison.comparison_from_eval("r", config, Evaluation.from_json(ev))
    assert row == {
        "run": "r",
        "β": 2.0,
        "schedule": "cyclical",
        "active units": 5.0,
        "KL": 3.5,
        "MI": 2.0,
        "MIG": 0.3,
        "DCI-D": 0.4,
        "SAP": 0.05,
        "exact match": 0.7,
        "source": "evaluation (1,037 test sentences)",
    }
    assert comparison.comparison_from_eval("r", config, Evaluation.from_json({"kl": 1.0})) is None
    nan_mi = Evaluation.from_json({"active_units": 1, "mi": float("nan")})
    assert comparison.comparison_from_eval("r", {}, nan_mi)["MI"] is None
    assert comparison.comparison_from_eval("r", config, None) is None
