"""Latent map page: draws a map, never refits on colour changes or re-opening (memory and disk caches),
search, placed sentences with a path, nearest neighbours in latent space, uploads, 3-D."""

from __future__ import annotations

import base64
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import streamlit as st
import torch
from streamlit.testing.v1 import AppTest

import vae_core.projection as projection_mod
from ui import analysis
from vae_core import map_cache, subset_encodings, subsets
from vae_core.corpus import load_corpus
from vae_core.encoding import posterior_means
from vae_core.latent import nearest
from vae_core.runs import load_run

PAGE = "app_pages/latent_map.py"
REPO = Path(__file__).resolve().parents[2]


def open_page(page: str | None = PAGE, run: str | None = None, timeout: float = 60) -> AppTest:
    """Run app.py (on the run named `run`), then switch to `page` (the conftest's open_app without its fixture)."""
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=timeout)
    if run:
        at.query_params["run"] = run
    at.run()
    if page:
        at.switch_page(page)
        at.run()
    return at


@pytest.fixture
def fit_counter(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Counts fits: every call of vae_core.projection.fit_projection appends its method."""
    calls: list[str] = []
    real = projection_mod.fit_projection

    def counting(codes, method="umap", *args, **kwargs):
        calls.append(method)
        return real(codes, method, *args, **kwargs)

    monkeypatch.setattr(projection_mod, "fit_projection", counting)
    return calls


@pytest.fixture
def encode_counter(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts encodings: each call of subset_encodings.encode_and_reconstruct appends its number of sentences."""
    calls: list[int] = []
    real = subset_encodings.encode_and_reconstruct

    def counting(run, sentences, *args, **kwargs):
        calls.append(len(sentences))
        return real(run, sentences, *args, **kwargs)

    monkeypatch.setattr(subset_encodings, "encode_and_reconstruct", counting)
    return calls


@pytest.fixture
def fresh_run(tiny_run_dir: Path) -> Path:
    """The tiny run with its projection cache removed (the run directory is shared by the session)."""
    shutil.rmtree(tiny_run_dir / "cache", ignore_errors=True)
    yield tiny_run_dir
    shutil.rmtree(tiny_run_dir / "cache", ignore_errors=True)


def draw(at, method: str = "pca", dims: int = 2, n: int | None = None):
    """Fill the map form and submit it."""
    at.selectbox(key="w_map_method").set_value(method)
    at.radio(key="w_map_dims").set_value(dims)
    if n is not None:
        at.slider(key="w_map_n").set_value(n)
    next(b for b in at.button if b.label == "Draw the map").click()
    return at.run()


def charts(at) -> list[dict]:
    return [json.loads(c.proto.spec) for c in at.get("plotly_chart")]


def map_caption(at) -> str:
    return next(c.value for c in at.caption if " of " in c.value and "reconstructed exactly" in c.value)


def traces(at, name_prefix: str) -> list[dict]:
    return [t for t in charts(at)[-1]["data"] if str(t.get("name", "")).startswith(name_prefix)]


def _array(value) -> np.ndarray:
    """A trace array from the chart's JSON: a list, or plotly's typed-array encoding {dtype, bdata}."""
    if isinstance(value, dict):
        return np.frombuffer(base64.b64decode(value["bdata"]), dtype=np.dtype(value["dtype"]))
    return np.asarray(value)


def _n_points(trace: dict) -> int:
    return len(_array(trace["x"]))


def _customdata(trace: dict) -> list[int]:
    return _array(trace["customdata"]).astype(int).reshape(-1).tolist()


def test_map_needs_a_submit_then_draws_and_caches_on_disk(open_app, assert_page_ok, fresh_run, fit_counter):
    at = open_app(PAGE)
    assert_page_ok(at)
    assert not at.get("plotly_chart"), "nothing is fitted before the form is submitted"
    assert any("Draw the map" in i.value for i in at.info)
    draw(at, "pca")
    assert_page_ok(at)
    assert fit_counter == ["pca"]
    assert len(at.get("plotly_chart")) == 1
    assert "fitted in" in map_caption(at)
    files = list((fresh_run / "cache" / "projections").glob("*.npz"))
    assert len(files) == 1, "the projection is cached in <run>/cache/projections"
    corpus = load_corpus("synthetic")
    n = len(corpus.test) + len(corpus.valid)
    corpus_traces = [t for t in charts(at)[0]["data"] if "customdata" in t]
    rows = sorted(r for t in corpus_traces for r in _customdata(t))
    assert rows == list(range(n)), "every test + valid sentence is one point, customdata = its row"
    assert any(t["type"] == "scattergl" for t in corpus_traces), "more than 1,000 points: WebGL"


def test_switching_colour_or_reopening_never_refits(open_app, assert_page_ok, fresh_run, fit_counter, encode_counter):
    at = open_app(PAGE)
    draw(at, "pca")
    assert fit_counter == ["pca"]
    assert len(encode_counter) == 1
    assert len(list((fresh_run / "cache" / "encodings").glob("*.npz"))) == 1
    first = charts(at)[0]
    for colour in ("reconstruction", "sentence length", "z1", "tense", "(none)"):
        at.selectbox(key="w_map_color").set_value(colour).run()
        assert_page_ok(at)
        assert "kept in memory" in map_caption(at)
    assert fit_counter == ["pca"], "changing the colour reuses the projection"
    assert charts(at)[0] != first
    # Leave the page and come back: the spec is remembered, the projection comes from memory.
    at.switch_page("app_pages/overview.py").run()
    at.switch_page(PAGE).run()
    assert_page_ok(at)
    assert at.get("plotly_chart") and "kept in memory" in map_caption(at)
    # A new process (caches cleared): the same map loads from disk, no fit.
    st.cache_resource.clear()
    st.cache_data.clear()
    at2 = open_app(PAGE)
    draw(at2, "pca")
    assert_page_ok(at2)
    assert "loaded from the disk cache" in map_caption(at2)
    assert fit_counter == ["pca"]
    assert len(encode_counter) == 1, "the encodings and reconstructions come from the disk cache too"


def test_default_map_is_shown_without_submit_when_on_disk(tiny_models_dir, fresh_run, fit_counter, monkeypatch):
    """Re-opening the page in a new session shows the default map at once when it is cached on disk."""
    run = load_run(fresh_run)
    corpus = load_corpus("synthetic")
    subset = subsets.corpus_subset(corpus, ("test", "valid"), analysis.MAP_CAP)
    mu, _, _ = posterior_means(run.model, run.vocab, list(subset.sentences))
    key = map_cache.map_key(
        fresh_run,
        subset.subset_id,
        "umap",
        2,
        0,
        {"n_neighbors": 15, "min_dist": 0.1, "metric": "euclidean", "n_epochs": 200},
    )
    # Put a (PCA-made, but umap-labelled) projection in place of the slow UMAP fit.
    proj = projection_mod.fit_projection(mu.numpy(), "pca", 2)
    proj.method = "umap"
    projection_mod.save_projection(proj, map_cache.projection_cache_dir(fresh_run) / f"{key}.npz")
    fit_counter.clear()
    at = open_page(PAGE)
    assert not at.exception
    assert at.get("plotly_chart"), "the cached default map is drawn without pressing the button"
    assert "loaded from the disk cache" in map_caption(at)
    assert fit_counter == []


def test_hover_text_is_escaped(open_app, fresh_run):
    at = open_app(PAGE)
    draw(at, "pca")
    at.text_area(key="w_map_place").input("the doctor <b>sees</b> & <script>x</script>").run()
    placed = traces(at, "your sentences")
    assert placed, "the placed sentence is drawn"
    hover = json.dumps(placed[0]["hovertext"])
    assert "&lt;b&gt;" in hover and "&amp;" in hover and "<script>" not in hover


def test_search_highlights_matches(open_app, assert_page_ok, fresh_run):
    at = open_app(PAGE)
    draw(at, "pca")
    at.text_input(key="w_map_search").input("DOCTORS").run()
    assert_page_ok(at)
    corpus = load_corpus("synthetic")
    sentences = list(corpus.test.sentences) + list(corpus.valid.sentences)
    expected = [i for i, s in enumerate(sentences) if "doctors" in s]
    highlight = traces(at, "matches")
    assert highlight and sorted(_customdata(highlight[0])) == expected
    table = next(d.value for d in at.dataframe if "sentence" in d.value.columns and len(d.value) == len(expected))
    assert all("doctors" in s for s in table["sentence"])


def test_placed_sentences_and_path_are_transformed_not_refitted(open_app, assert_page_ok, fresh_run, fit_counter):
    at = open_app(PAGE)
    draw(at, "pca")
    a, b = "the doctor sees the small cat .", "the pilots will not follow the red horse ?"
    at.text_area(key="w_map_place").input(f"{a}\n\n{b}\n").run()
    assert_page_ok(at)
    placed = traces(at, "your sentences")
    assert placed and _n_points(placed[0]) == 2 and placed[0]["text"] == ["1", "2"]
    path = traces(at, "path")
    assert path and _n_points(path[0]) == 8 and path[0]["text"][0] == "0"
    at.slider(key="w_map_path_steps").set_value(5).run()
    assert _n_points(traces(at, "path")[0]) == 5
    # The path's ends are the placed sentences' own positions (same codes, same transform).
    path, placed = traces(at, "path")[0], traces(at, "your sentences")[0]
    for axis in ("x", "y"):
        assert np.isclose(_array(path[axis])[0], _array(placed[axis])[0], atol=1e-5)
        assert np.isclose(_array(path[axis])[-1], _array(placed[axis])[1], atol=1e-5)
    assert fit_counter == ["pca"]


def test_nearest_neighbours_are_found_in_latent_space(open_app, assert_page_ok, fresh_run):
    at = open_app(PAGE)
    draw(at, "pca")
    at.checkbox(key="w_map_nn_on").check()
    at.selectbox(key="w_map_nn_query").set_value("r3")
    at.number_input(key="w_map_nn_k").set_value(5)
    at.run()
    assert_page_ok(at)
    table = next(d.value for d in at.dataframe if "distance" in d.value.columns)
    run = load_run(fresh_run)
    corpus = load_corpus("synthetic")
    sentences = list(corpus.test.sentences) + list(corpus.valid.sentences)
    mu, _, _ = posterior_means(run.model, run.vocab, sentences)
    idx, dist = nearest(mu, mu[3], k=6)
    expected = [int(i) for i in idx[0] if int(i) != 3][:5]
    assert table["row"].tolist() == expected
    assert np.all(np.diff(table["distance"].to_numpy()) >= 0)
    assert traces(at, "nearest neighbours") and traces(at, "neighbours of")


def test_three_d_map(open_app, assert_page_ok, fresh_run):
    at = open_app(PAGE)
    draw(at, "pca", dims=3, n=500)
    assert_page_ok(at)
    data = charts(at)[0]["data"]
    assert data and all(t["type"] == "scatter3d" for t in data)
    assert sum(_n_points(t) for t in data if "customdata" in t) == 500


def test_uploaded_labels_colour_the_map(open_app, assert_page_ok, fresh_run):
    at = open_app(PAGE)
    rows = ["text,topic"] + [
        f"the doctor sees the {o} cat .,{'pets' if i % 2 else 'farm'}"
        for i, o in enumerate(["small", "old", "red", "happy"] * 5)
    ]
    at.file_uploader(key="w_map_upload").set_value(("mine.csv", "\n".join(rows).encode(), "text/csv"))
    at.run()
    assert_page_ok(at)
    assert at.radio(key="w_map_source").value == "upload"
    draw(at, "pca")
    assert_page_ok(at)
    assert "topic" in at.selectbox(key="w_map_color").options
    at.selectbox(key="w_map_color").set_value("topic").run()
    names = {t["name"] for t in charts(at)[0]["data"]}
    assert {"pets", "farm"} <= names


def test_bad_upload_shows_a_message(open_app):
    at = open_app(PAGE)
    at.file_uploader(key="w_map_upload").set_value(("bad.csv", b"a,b\n1,2,3\n", "text/csv")).run()
    assert not at.exception
    assert at.error and "row 2" in at.error[0].value


def test_read_only_run_dir_falls_back_to_the_user_cache(tiny_models_dir, tmp_path, monkeypatch):
    run_dir = tmp_path / "ro-run"
    run_dir.mkdir()
    real = subset_encodings.writable_dir
    monkeypatch.setattr(subset_encodings, "writable_dir", lambda p: False if run_dir in p.parents else real(p))
    where = map_cache.projection_cache_dir(run_dir)
    assert Path(tmp_path / "cache") in where.parents, where  # $VAE_CACHE_DIR (set by tiny_models_dir)
    assert where.name.startswith("ro-run-")


@pytest.mark.slow
def test_umap_map_of_300_points(open_app, assert_page_ok, fresh_run, fit_counter):
    at = open_app(PAGE)
    at.number_input(key="w_map_seed").set_value(1)
    draw(at, "umap", n=300)
    assert_page_ok(at)
    assert fit_counter == ["umap"]
    at.text_area(key="w_map_place").input("the doctor sees the small cat .").run()
    assert_page_ok(at)
    assert traces(at, "your sentences")
    assert fit_counter == ["umap"]


def _shipped_runs() -> list[Path]:
    models = REPO / "models"
    return sorted(p for p in models.iterdir() if (p / "model.safetensors").is_file()) if models.is_dir() else []


@pytest.mark.slow
@pytest.mark.parametrize("run_dir", _shipped_runs() or [None], ids=lambda p: p.name if p else "none")
def test_map_on_shipped_models(run_dir, tmp_path, monkeypatch):
    if run_dir is None:
        pytest.skip("no shipped run in models/")
    monkeypatch.setenv("VAE_MODELS_DIR", str(REPO / "models"))
    monkeypatch.setenv("VAE_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("VAE_CACHE_DIR", str(tmp_path / "cache"))
    real = subset_encodings.writable_dir  # keep the repository clean: maps go to the temporary user cache
    monkeypatch.setattr(subset_encodings, "writable_dir", lambda p: False if run_dir in p.parents else real(p))
    torch.manual_seed(0)
    at = open_page(PAGE, run=run_dir.name, timeout=120)
    assert not at.exception
    if at.get("plotly_chart"):  # its default map is already cached
        return
    if not [b for b in at.button if b.label == "Draw the map"]:
        pytest.skip(f"{run_dir.name}: its corpus is not available here")
    draw(at, "pca", n=500)
    assert not at.exception and not at.error
    assert at.get("plotly_chart")


def test_encodings_round_trip_through_the_disk_cache(tmp_path):
    n = 3
    enc = subset_encodings.Encoded(
        mu=np.arange(n * 2, dtype=np.float32).reshape(n, 2),
        logvar=np.zeros((n, 2), np.float32),
        reconstructions=("the cat", "ünïcode ✓ <b>", ""),
        correct=np.array([True, False, True]),
        lengths=np.array([2, 3, 0]),
        n_oov=np.array([0, 1, 0]),
    )
    path = tmp_path / "enc" / "k.npz"
    subset_encodings.save_encoded(enc, path)
    back = subset_encodings.load_encoded(path, n)
    assert back is not None and back.reconstructions == enc.reconstructions
    for name in ("mu", "logvar", "correct", "lengths", "n_oov"):
        assert np.array_equal(getattr(back, name), getattr(enc, name))
        assert not getattr(back, name).flags.writeable
    assert subset_encodings.load_encoded(path, n + 1) is None, "another subset size is a miss"
    path.write_bytes(b"garbage")
    assert subset_encodings.load_encoded(path, n) is None


def test_cache_keys_follow_the_weights_not_the_path(tiny_run_dir, tmp_path):
    copy = tmp_path / "elsewhere" / "copied-run"
    shutil.copytree(tiny_run_dir, copy, ignore=shutil.ignore_patterns("cache"))
    params = {"n_neighbors": 15}
    assert map_cache.map_key(copy, "s", "umap", 2, 0, params) == map_cache.map_key(
        tiny_run_dir, "s", "umap", 2, 0, params
    )
    assert subset_encodings.encoding_key(copy, "s") == subset_encodings.encoding_key(tiny_run_dir, "s")
    weights = bytearray((copy / "model.safetensors").read_bytes())
    weights[-1] ^= 1  # other weights (a retrained run): another key
    (copy / "model.safetensors").write_bytes(bytes(weights))
    assert map_cache.map_key(copy, "s", "umap", 2, 0, params) != map_cache.map_key(
        tiny_run_dir, "s", "umap", 2, 0, params
    )
    assert subset_encodings.encoding_key(copy, "s") != subset_encodings.encoding_key(tiny_run_dir, "s")
