"""Overview page: the β-VAE explanation, the run card and samples from the prior."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

TINY_RUN = "tiny-synthetic"


def test_overview_shows_run_card_and_prior_samples(open_app, page_text, assert_page_ok):
    at = open_app()
    assert_page_ok(at)
    assert any("β-VAE" in t.value for t in at.title)
    assert at.latex, "the β-VAE objective is shown with st.latex"
    assert any(TINY_RUN in h.value for h in at.header)
    labels = {m.label for m in at.metric}
    assert {"Corpus", "Latent dimensions"} <= labels
    assert any("Not evaluated yet" in t and "python -m vae_core eval" in t for t in page_text(at))
    assert any("decoder: autoregressive RNN" in c.value for c in at.caption)  # the tiny run's decoder
    samples = at.dataframe[-1].value
    assert len(samples) == 8
    assert {"sample", "valid", "factors"} <= set(samples.columns)
    assert all(isinstance(s, str) for s in samples["sample"])


def test_overview_resample_draws_new_codes(open_app):
    at = open_app()
    before = list(at.dataframe[-1].value["sample"])
    at.button[0].click().run()
    assert at.session_state["prior_seed"] == 1
    at.slider(key="w_prior_n").set_value(12).run()
    assert len(at.dataframe[-1].value) == 12
    assert before  # the first draw was shown


def test_overview_shows_evaluation_figures(open_app, tiny_run_dir, page_text):
    summary_path = tiny_run_dir / "summary.json"
    original = summary_path.read_text(encoding="utf-8")
    summary = json.loads(original)
    summary["eval"] = {
        "nll_bound": 20.5,
        "ppl_bound": 7.25,
        "kl": 3.5,
        "active_units": 2,
        "mi": 1.25,
        "kl_per_dim": [1.0, 1.0, 0.75, 0.75],
        "au_variances": [0.5, 0.3, 0.001, 0.0],
        "split": "test",
        "n_sentences": 10,
    }
    summary_path.write_text(json.dumps(summary), encoding="utf-8")
    try:
        at = open_app()
        values = {m.label: m.value for m in at.metric}
        assert values["Active units"] == "2 / 4"
        assert values["KL (nats)"] == "3.50"
        assert not any("Not evaluated yet" in t for t in page_text(at))
    finally:
        summary_path.write_text(original, encoding="utf-8")


# --------------------------------------------------------------------------- the app shell: picker, runs


def test_picker_lists_user_runs_and_a_broken_run_shows_its_reason(open_app, tiny_models_dir, tiny_run_dir):
    import shutil

    runs = Path(os.environ["VAE_RUNS_DIR"])
    broken = runs / "broken"
    shutil.copytree(tiny_run_dir, broken)
    (broken / "model.safetensors").write_bytes(b"\x00" * 40)  # truncated weights
    at = open_app(query={"run": "broken"})
    assert not at.exception
    assert at.error and "broken" in at.error[0].value and "corrupted" in at.error[0].value
    picker = at.selectbox(key="w_run_picker")
    assert picker.options == [f"{TINY_RUN} · shipped", "broken"]  # shipped first, then the user's runs
    picker.set_value(f"{TINY_RUN} · shipped").run()  # the other runs still work
    assert not at.error and not at.exception
    at2 = open_app(query={"run": TINY_RUN})
    assert not at2.error
    assert at2.query_params["run"] == TINY_RUN


def test_unknown_run_in_link_opens_the_default(open_app, assert_page_ok):
    at = open_app(query={"run": "../../etc"})
    assert_page_ok(at)
    assert at.session_state["run_path"].endswith(TINY_RUN)


def test_no_models_at_all_explains_how_to_train(open_app, tmp_path, monkeypatch, page_text):
    monkeypatch.setenv("VAE_MODELS_DIR", str(tmp_path / "none"))
    monkeypatch.setenv("VAE_RUNS_DIR", str(tmp_path / "runs"))
    for page in (
        "app_pages/overview.py",
        "app_pages/sliders.py",
        "app_pages/traversals.py",
        "app_pages/interpolation.py",
    ):
        at = open_app(page)
        assert not at.exception
        assert any("No trained model" in t for t in page_text(at)), page


def test_decode_settings_apply_to_every_decode(open_app, assert_page_ok):
    for strategy in ("beam", "sample"):
        at = open_app(session={"decode_strategy": strategy})
        assert_page_ok(at)
        assert at.radio(key="decode_strategy").value == strategy
        assert len(at.dataframe[-1].value) == 8


# --------------------------------------------------------------------------- every page × every run

REPO = Path(__file__).resolve().parents[2]
SHIPPED = sorted(p for p in (REPO / "models").glob("*") if (p / "config.json").is_file())
ALL_PAGES = sorted(f"app_pages/{p.name}" for p in (REPO / "app_pages").glob("*.py"))
MY_PAGES = ("app_pages/overview.py", "app_pages/sliders.py", "app_pages/traversals.py", "app_pages/interpolation.py")


@pytest.mark.slow
@pytest.mark.parametrize(
    ("run_dir", "page_file"),
    [pytest.param(r, p, id=f"{r.name}-{Path(p).stem}") for r in SHIPPED for p in ALL_PAGES]
    or [pytest.param(None, None, marks=pytest.mark.skip(reason="models/ holds no shipped run yet"), id="none")],
)
def test_every_page_on_every_shipped_run(run_dir, page_file, open_app, monkeypatch, assert_page_ok):
    monkeypatch.setenv("VAE_MODELS_DIR", str(REPO / "models"))
    at = open_app(page_file, query={"run": run_dir.name})
    assert_page_ok(at)
    assert Path(at.session_state["run_path"]).name == run_dir.name


@pytest.mark.slow
def test_every_page_on_a_run_trained_from_the_cli(open_app, tmp_path, assert_page_ok):
    runs = Path(os.environ["VAE_RUNS_DIR"])
    cmd = [
        sys.executable,
        "-m",
        "vae_core",
        "train",
        "--corpus",
        "synthetic",
        "--out",
        str(runs / "cli-run"),
        "--embed-dim",
        "8",
        "--hidden-dim",
        "16",
        "--latent-dim",
        "3",
        "--max-steps",
        "20",
        "--batch-size",
        "32",
        "--log-every",
        "10",
        "--quiet",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    for page in MY_PAGES:
        at = open_app(page, query={"run": "cli-run"})
        assert_page_ok(at)
        assert Path(at.session_state["run_path"]).name == "cli-run"
        if page == "app_pages/sliders.py":
            assert len([s for s in at.slider if str(s.key).startswith("w_z_")]) == 3


@pytest.mark.parametrize("page_file", ALL_PAGES, ids=lambda p: Path(p).stem)
def test_every_page_renders_on_the_tiny_run(page_file, open_app, assert_page_ok):
    # (not named `page`: pytest-playwright would parametrize a test asking for `page` by browser)
    at = open_app(page_file)
    assert_page_ok(at)


def test_sidebar_says_which_run_folders_are_left_out_and_why(open_app, tiny_models_dir):
    """Issue 19.12: a run folder that holds only status.json (killed before it wrote its config), or a config
    without weights, vanished from the model picker without a word; the sidebar now lists it, as plain text."""
    runs = Path(os.environ["VAE_RUNS_DIR"])
    (runs / "killed-early").mkdir()
    (runs / "killed-early" / "status.json").write_text(json.dumps({"state": "failed", "message": "x"}))
    evil = runs / "[click](http:evil)"
    evil.mkdir()
    (evil / "config.json").write_text("{}")
    (runs / "not-a-run").mkdir()  # no run file at all: ignored
    at = open_app()
    texts = [t.value for t in at.sidebar.text]
    assert any("killed-early: no config.json (state: failed)" in t for t in texts), texts
    assert any("[click](http:evil): no weights yet" in t for t in texts), "the name is shown as plain text"
    assert not any("not-a-run" in t for t in texts)
    assert any("2 run folder(s) not in the list" in e.label for e in at.sidebar.expander)
