"""Waits (issue 20): Interpolation computes its expensive parts once per run, not on every open or widget change."""

from __future__ import annotations

import re
import shutil

import pytest

from vae_core import explore, projection

PAGE = "app_pages/interpolation.py"


@pytest.fixture
def counted(monkeypatch):
    """Count explore.encode calls on many sentences (corpus samples, not the typed ones) and PCA fits."""
    calls = {"big_encodes": 0, "fits": 0}
    encode, fit = explore.encode, projection.fit_projection

    def counting_encode(run, sentences, *args, **kwargs):
        if len(sentences) > 10:
            calls["big_encodes"] += 1
        return encode(run, sentences, *args, **kwargs)

    def counting_fit(*args, **kwargs):
        calls["fits"] += 1
        return fit(*args, **kwargs)

    monkeypatch.setattr(explore, "encode", counting_encode)
    monkeypatch.setattr(projection, "fit_projection", counting_fit)
    return calls


def test_interpolation_encodes_the_corpus_once_and_maps_only_when_asked(open_app, assert_page_ok, counted):
    at = open_app(PAGE)  # the Overview first (it may encode test sentences for its statistics), then this page
    assert_page_ok(at)
    assert counted["fits"] == 0 and not at.get("plotly_chart")  # the map tab is closed: no map computed
    opened = dict(counted)
    at.slider(key="w_interp_steps").set_value(12).run()
    at.radio(key="w_interp_method").set_value("slerp").run()
    at.slider(key="w_attr_n").set_value(5).run()
    values = at.selectbox(key="w_attr_val").options
    at.selectbox(key="w_attr_val").set_value(values[-1]).run()
    assert_page_ok(at)
    assert counted == opened  # widget changes reuse the cached codes

    at.session_state["w_interp_tab"] = "On a map"  # what clicking the tab sets
    at.run()
    assert_page_ok(at)
    assert len(at.get("plotly_chart")) == 1
    assert any("test sentences' codes (grey)" in c.value for c in at.caption)
    assert counted == {"big_encodes": opened["big_encodes"] + 1, "fits": 1}  # the map's test sentences, one PCA
    at.slider(key="w_interp_steps").set_value(6).run()
    assert len(at.get("plotly_chart")) == 1
    assert counted == {"big_encodes": opened["big_encodes"] + 1, "fits": 1}  # the path moves over the same map


def test_attribute_direction_caption_counts_the_sentences(open_app, assert_page_ok, page_text):
    at = open_app(PAGE)
    assert_page_ok(at)
    caption = next(t for t in page_text(at) if t.startswith("Direction from "))
    with_value, total = (int(w) for w in caption.split()[2:5:2])  # "Direction from N of M training …"
    assert 0 < with_value < total


def test_latent_map_shows_its_progress_and_how_long_it_took(open_app, assert_page_ok, tiny_run_dir):
    from tests.app.test_latent_map import PAGE as MAP_PAGE
    from tests.app.test_latent_map import draw

    shutil.rmtree(tiny_run_dir / "cache", ignore_errors=True)  # a first map: encoded and fitted now
    try:
        at = open_app(MAP_PAGE)
        draw(at, "pca")
        assert_page_ok(at)
        assert len(at.get("plotly_chart")) == 1
        [status] = at.status
        assert status.state == "complete"
        assert re.fullmatch(r"Map of [\d,]+ sentences ready in \d+\.\d s", status.label), status.label
    finally:
        shutil.rmtree(tiny_run_dir / "cache", ignore_errors=True)
