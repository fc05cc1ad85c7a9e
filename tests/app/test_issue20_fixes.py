"""Issue 20's "Wrong or dead" items that AppTest (or a figure object, or a subprocess) can check.

The browser-only ones (the latent map's query box, "Open this run", layout at 1024×768) are in
tests/e2e/test_layout.py.
"""

from __future__ import annotations

import html
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.app.conftest import REPO, markdown_bodies, open_page

TRAIN = "app_pages/train.py"


def _unescape(text: str) -> str:
    """Page text without its markdown escapes (backslashes or HTML entities)."""
    return html.unescape(text.replace("\\", ""))


# --------------------------------------------------------------------------- 20.4: β that a short run reaches


def test_train_warns_before_start_when_the_warm_up_is_longer_than_the_run(open_app):
    at = open_app(TRAIN)
    assert not any("KL warm-up" in w.value for w in at.warning)  # default recipe: 5,840 steps > 2,000
    at.number_input(key="train_max_steps").set_value(180).run()
    warnings = [_unescape(w.value) for w in at.warning]
    assert any(
        "The KL warm-up (2,000 steps) is longer than this training (180 steps" in w and "end at 0.09" in w
        for w in warnings
    ), warnings
    at.number_input(key="train_warmup_steps").set_value(100).run()
    assert not any("KL warm-up" in _unescape(w.value) for w in at.warning)


def test_warmup_warning_counts_steps_from_corpus_batch_and_epochs():
    from ui.settings import planned_steps, warmup_warning
    from vae_core.config import TrainConfig

    config = TrainConfig(epochs=1, batch_size=32, warmup_steps=2000)
    assert planned_steps(config, 5760) == 180
    text = warmup_warning(config, 5760)
    assert text is not None and "180 steps" in text and "end at 0.09" in text
    assert warmup_warning(TrainConfig(epochs=20, batch_size=32), 5760) is None  # 3,600 steps reach β
    assert warmup_warning(TrainConfig(epochs=1, schedule="constant"), 5760) is None


def test_overview_shows_the_beta_the_run_reached_and_its_decoder(open_app, tiny_run_dir):
    from vae_core.model import decoder_description
    from vae_core.runs import read_config

    _, mcfg, tcfg = read_config(tiny_run_dir)
    assert tcfg.warmup_steps > 60  # the fixture trains 60 steps with the default warm-up
    at = open_app()
    text = [_unescape(t) for t in markdown_bodies(at)]
    card = next(t for t in text if t.startswith("Corpus spec:"))
    assert re.search(r"the KL weight reached only 0\.0[23]", card), card  # about 60 / 2000 of β = 1
    assert _unescape(decoder_description(mcfg)) in card, card
    assert not any("writes word by word while looking at" in t for t in text)


def test_decoder_descriptions_say_which_decoders_are_autoregressive():
    from vae_core.config import ModelConfig
    from vae_core.model import DECODERS, decoder_description

    for kind in DECODERS:
        text = decoder_description(ModelConfig(decoder=kind))
        assert text, kind
        assert ("non-autoregressive" in text) == (kind != "rnn"), (kind, text)


# --------------------------------------------------------------------------- 20.6 / 20.7: Compare


def test_launch_sweep_renders_no_debug_output(open_app):
    at = open_app("app_pages/compare.py")
    at.text_input(key="sw_beta_values").set_value("0.5,2")
    at.text_input(key="sw_free_bits").set_value("x")  # refused after the β values are read: nothing starts
    at.button(key="sw_launch").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.json, [j.value for j in at.json]  # a bare `[float(v) for v in vals]` rendered as JSON
    errors = [_unescape(e.value) for e in at.error]
    assert any("free bits" in e and "'x' is not a number" in e for e in errors), errors


def test_overlaid_curves_stay_distinguishable_when_they_coincide():
    from ui.train_figures import overlay_curves

    records = [{"kind": "train", "step": s, "recon": 10.0 - s / 10, "kl": 1.0} for s in range(0, 100, 10)]
    fig = overlay_curves({"a": records, "b": list(records), "c": list(records)}, "recon")
    assert len(fig.data) == 3
    dashes = [t.line.dash for t in fig.data]
    symbols = [t.marker.symbol for t in fig.data]
    assert len(set(dashes)) == 3 and len(set(symbols)) == 3, (dashes, symbols)
    assert all("markers" in t.mode for t in fig.data)
    assert all(t.opacity is not None and t.opacity < 1 for t in fig.data)  # one line shows through another


# --------------------------------------------------------------------------- 20.8: Sliders, attribute vectors


def test_sliders_mark_where_the_reconstruction_differs_from_what_was_typed(open_app):
    from ui import loaders
    from vae_core import explore
    from vae_core.runs import load_run
    from vae_core.text import tokenize

    at = open_app("app_pages/sliders.py")
    run = load_run(Path(loaders.default_run_path()))
    sentence = at.session_state["sentence"]
    typed = tokenize(sentence, run.train_config.lowercase, run.vocab.tokenization)
    mu, _, _ = explore.encode(run, [sentence])
    recon = explore.decode(run, mu)[0]
    html = next(m.value for m in at.markdown if "Reconstruction at the posterior mean" in m.value)
    captions = [c.value for c in at.caption]
    if recon.split() != typed:  # the tiny fixture (60 steps) does not give its sentence back
        assert "<mark>" in html, html
        assert any("The reconstruction differs from what you typed" in c for c in captions), captions
    else:
        assert "<mark>" not in html
        assert not any("differs from what you typed" in c for c in captions)
    assert recon.split() != typed, "the fixture reconstructed its sentence: this test checked nothing"


@pytest.fixture
def shipped_models(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    models = REPO / "models"
    if not (models / "DEFAULT").is_file():
        pytest.skip("no shipped models")
    monkeypatch.setenv("VAE_MODELS_DIR", str(models))
    monkeypatch.setenv("VAE_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("VAE_CACHE_DIR", str(tmp_path / "cache"))
    (tmp_path / "runs").mkdir()
    return models


def test_default_attribute_vector_example_changes_the_sentence_on_the_default_model(shipped_models):
    at = open_page("app_pages/interpolation.py", timeout=180)
    assert not at.exception, [e.value for e in at.exception]
    assert (at.selectbox(key="w_attr_col").value, at.selectbox(key="w_attr_val").value) == ("mood", "question")
    table = at.dataframe[-1].value  # the attribute path: one row per scale
    assert "scale" in table.columns
    assert table["sentence"].nunique() > 1, list(table["sentence"])
    assert table["mood = question"].iloc[-1], list(table["sentence"])


# --------------------------------------------------------------------------- waits: load_run


def test_loading_a_run_does_not_import_torch_dynamo(tiny_run_dir):
    code = (
        "import sys\n"
        "from vae_core.runs import load_run\n"
        f"run = load_run({str(tiny_run_dir)!r})\n"
        "assert run.model is not None\n"
        "print('torch._dynamo' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "False", "load_run imported torch._dynamo (the meta-device model build)"


def test_load_run_still_refuses_weights_of_another_shape(tiny_run_dir, tmp_path):
    import json
    import shutil

    from vae_core.runs import RunError, load_run

    bad = tmp_path / "bad"
    shutil.copytree(tiny_run_dir, bad)
    cfg = json.loads((bad / "config.json").read_text())
    cfg["model"]["hidden_dim"] = cfg["model"]["hidden_dim"] * 2
    (bad / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(RunError, match="shape|do not match"):
        load_run(bad)


def test_readme_claim_about_the_collapsed_model_holds(shipped_models):
    """README: beta4-collapsed gives every sentence back as one fixed sentence; its sliders flip dog ↔ horse."""
    import numpy as np

    from vae_core import explore
    from vae_core.runs import load_run

    run = load_run(shipped_models / "beta4-collapsed")
    sentences = ["the teacher will call the red bird .", "the doctor sees the small cat ."]
    mu, _, _ = explore.encode(run, sentences)
    recon = explore.decode(run, mu)
    assert recon == ["the farmers will not like the happy dog ."] * 2, recon
    changing = []
    for d in range(run.model_config.latent_dim):
        z = np.repeat(mu[:1], 17, axis=0)
        z[:, d] = np.arange(-4, 4.01, 0.5)
        texts = set(explore.decode(run, z)) - {recon[0]}
        if texts:
            changing.append(d)
            assert all(t.split()[4:7] == ["like", "the", "happy"] for t in texts), texts
    assert len(changing) == 13, changing


def test_an_invalid_number_names_its_field_and_disables_start(open_app):
    at = open_app(TRAIN)
    at.number_input(key="train_epochs").set_value(99_999_999).run()
    errors = [_unescape(e.value) for e in at.error]
    assert any(e.startswith("Invalid setting: Epochs: epochs must be between 1 and 100000, got 99999999") and
               "Start is disabled" in e for e in errors), errors
    assert at.button(key="train_start").disabled
