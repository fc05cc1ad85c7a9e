"""Compare & sweeps page (AppTest): config diff, figures, overlaid curves, rate–distortion, side by side."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from vae_core.config import ModelConfig, TrainConfig
from vae_core.corpus import load_corpus
from vae_core.train import train

PAGE = "app_pages/compare.py"


@pytest.fixture
def two_runs(tiny_models_dir) -> list[str]:
    """Two tiny runs in the test's runs dir that differ only in β."""
    runs = Path(os.environ["VAE_RUNS_DIR"])
    corpus = load_corpus("synthetic")
    names = []
    for beta in (0.5, 2.0):
        name = f"beta{beta:g}"
        train(runs / name, corpus, ModelConfig(embed_dim=8, hidden_dim=16, latent_dim=4),
              TrainConfig(beta=beta, max_steps=20, batch_size=32, log_every=5))
        names.append(name)
    return names


@pytest.mark.slow
def test_compare_shows_rate_distortion_and_config_diff(open_app, two_runs, assert_page_ok):
    at = open_app(PAGE)
    at.multiselect(key="compare_runs").set_value(two_runs).run()
    assert_page_ok(at)
    headers = [h.value for h in at.header]
    for h in ("Configuration differences", "Final figures", "Training curves", "Rate–distortion"):
        assert h in headers
    diff = at.dataframe[0].value
    assert list(diff.index) == ["train.beta"], "only the keys that differ are listed"
    assert list(diff.columns) == two_runs
    figures = at.dataframe[1].value
    assert "valid KL" in figures.index and list(figures.columns) == two_runs
    charts = {c.proto.id: json.loads(c.proto.spec) for c in at.get("plotly_chart")}
    rd = next(spec for spec in charts.values() if "Rate" in spec["layout"]["title"]["text"])
    points = rd["data"][0]
    assert len(points["x"]) == 2 and sorted(points["text"]) == sorted(two_runs)
    summaries = {n: json.loads((Path(os.environ["VAE_RUNS_DIR"]) / n / "summary.json").read_text()) for n in two_runs}
    expected = {n: (s["training"]["valid"]["kl"], s["training"]["valid"]["recon"]) for n, s in summaries.items()}
    got = dict(zip(points["text"], zip(points["x"], points["y"], strict=True), strict=True))
    for n in two_runs:
        assert got[n] == pytest.approx(expected[n])
    assert [h.value for h in at.subheader][: len(two_runs)] == two_runs  # one column per run
    assert any("reconstruction" in m.value and "vae-sentence" in m.value for m in at.markdown)
    assert any("traversal of z" in m.value for m in at.markdown)


def test_compare_asks_for_two_runs(open_app, assert_page_ok):
    at = open_app(PAGE)
    assert_page_ok(at)
    assert any("at least two" in i.value for i in at.info)


def test_sweep_launch_refuses_bad_settings(open_app, assert_page_ok):
    at = open_app(PAGE)
    at.radio(key="sw_beta_mode").set_value("range").run()  # grid + range is not a grid
    at.button(key="sw_launch").click().run()
    assert any("needs β values" in e.value for e in at.error)
    at.radio(key="sw_beta_mode").set_value("values").run()
    at.text_input(key="sw_beta_values").set_value("1,abc").run()
    at.button(key="sw_launch").click().run()
    assert any("Cannot launch" in e.value for e in at.error)
    at.text_input(key="sw_name").set_value("../evil").run()
    at.button(key="sw_launch").click().run()
    assert not list(Path(os.environ["VAE_RUNS_DIR"]).iterdir()), "nothing is launched or written"


def test_sweep_form_fixes_declared_settings_and_refuses_invalid_ones(open_app, monkeypatch):
    from ui.settings import help_text
    from vae_core import jobs
    from vae_core.config import training_settings

    launched: list[list[str]] = []
    monkeypatch.setattr(jobs, "start_sweep", lambda root, name, args: launched.append(list(args)) or 4242)
    at = open_app(PAGE)
    s = training_settings()["fourier_features"]
    assert "sw_fourier" not in {n.key for n in at.number_input}  # only with the additive decoder
    assert at.number_input(key="sw_embed").help == help_text(training_settings()["embed_dim"])
    at.selectbox(key="sw_decoder").set_value("additive").run()
    assert at.number_input(key="sw_fourier").value == s.suggested
    at.number_input(key="sw_fourier").set_value(65).run()
    at.button(key="sw_launch").click().run()
    assert any("between 0 and 64" in e.value for e in at.error) and not launched
    at.number_input(key="sw_fourier").set_value(8).run()
    at.button(key="sw_launch").click().run()
    assert launched, [e.value for e in at.error]
    args = launched[-1]
    assert args[args.index("--decoder") + 1] == "additive" and args[args.index("--fourier-features") + 1] == "8"


@pytest.mark.slow
def test_sweep_launched_from_the_page_runs_and_shows_progress(open_app):
    runs = Path(os.environ["VAE_RUNS_DIR"])
    at = open_app(PAGE)
    for key, value in {"sw_name": "pagesweep", "sw_beta_values": "1", "sw_latents": "4", "sw_free_bits": "0"}.items():
        at.text_input(key=key).set_value(value)
    for key, value in {"sw_trials": 1, "sw_embed": 8, "sw_hidden": 16, "sw_max_steps": 10, "sw_batch": 32}.items():
        at.number_input(key=key).set_value(value)
    at.run()
    at.button(key="sw_launch").click().run()
    assert any("started" in s.value for s in at.success), [e.value for e in at.error]
    from vae_core import jobs

    deadline = time.time() + 180
    while time.time() < deadline and jobs.read_sweep(runs, "pagesweep").get("alive"):
        time.sleep(1)
    rec = jobs.read_sweep(runs, "pagesweep")
    assert not rec["alive"], "the sweep did not finish in time"
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("1 / 1 trials done" in p.proto.text for p in at.get("progress")), rec["log_tail"]
    assert (runs / "pagesweep-trial0" / "model.safetensors").is_file()
    rd = next(json.loads(c.proto.spec) for c in at.get("plotly_chart")
              if "Rate" in json.loads(c.proto.spec)["layout"]["title"]["text"])
    assert "pagesweep-trial0" in rd["data"][0]["text"]  # sweep trials join the rate–distortion plane
