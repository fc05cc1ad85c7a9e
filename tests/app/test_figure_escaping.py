"""Issue 19.8: every figure builder escapes the user text it draws (pure: the builders, no Streamlit).

Plotly renders a subset of HTML (<a href>, <b>, <br>, entities) in trace and legend names, hover text, marker
text, tick labels and titles. A label value, a run name, a factor or a sentence holding markup must reach the
figure as &lt;…&gt;, never as a tag; ui.safe_text.plot_text is the one escaper.
"""

from __future__ import annotations

import json

import numpy as np

from ui import figures, map_figures, metric_figures, train_figures
from ui.safe_text import plot_text

EVIL = '<a href="http://evil.example">x</a> <b>y</b> & z'
ESCAPED = '&lt;a href="http://evil.example"&gt;x&lt;/a&gt; &lt;b&gt;y&lt;/b&gt; &amp; z'
RECORDS = [{"kind": "train", "step": s, "recon": 3.0 - s / 10, "kl": s / 10, "weight": 1.0, "weighted_kl": s / 10,
            "loss": 3.0, "kl_per_dim": [0.1, 0.2]} for s in range(1, 4)]


def _drawn(fig) -> list[str]:
    """Every string of the figure that plotly may draw (legendgroup is an id, never drawn)."""
    out: list[str] = []

    def walk(obj, key=""):
        if isinstance(obj, str) and key != "legendgroup":
            out.append(obj)
        elif isinstance(obj, dict):
            for k, v in obj.items():
                walk(v, k)
        elif isinstance(obj, (list, tuple)):
            for v in obj:
                walk(v, key)

    walk(json.loads(fig.to_json()))
    return out


def assert_escaped(fig) -> None:
    drawn = _drawn(fig)
    assert not [s for s in drawn if "<a href" in s or "<b>y" in s], "a raw tag of the user text reached the figure"
    assert any("&lt;a href" in s or "&lt;b&gt;" in s for s in drawn), "the user text is drawn, escaped"


def test_plot_text_escapes_and_cuts():
    assert plot_text(EVIL, None) == ESCAPED
    assert plot_text("a" * 200, 10) == "a" * 9 + "…"
    assert plot_text("<b>" * 100, 10).startswith("&lt;b&gt;") and "<" not in plot_text("<b>" * 100, 10)


def test_map_escapes_category_legend_names_colour_title_overlays_and_hover():
    coords = np.arange(12, dtype=float).reshape(6, 2)
    hover = map_figures.hover_lines([EVIL] * 6, [EVIL] * 6)
    color = map_figures.ColorSpec(EVIL, "categorical", [EVIL, "plain", EVIL, "plain", EVIL, "plain"])
    placed = map_figures.Overlay(coords[:2], [EVIL, "2"], hover[:2], EVIL)
    path = map_figures.Overlay(coords[:3], ["0", EVIL, "2"], hover[:3], EVIL)
    fig = map_figures.map_figure(coords, hover, color, placed=placed, path=path, title=EVIL)
    assert_escaped(fig)
    names = [t.name for t in fig.data]
    assert plot_text(EVIL, map_figures.LEGEND_MAX_CHARS) in names and "plain" in names
    assert fig.layout.legend.title.text == plot_text(EVIL, 40)
    continuous = map_figures.map_figure(coords, hover, map_figures.ColorSpec(EVIL, "continuous", list(range(6))))
    assert_escaped(continuous)


def test_metric_figures_escape_factor_and_run_names():
    assert_escaped(metric_figures.mi_heatmap([[0.1, 0.2]], [EVIL, "tense"]))
    assert_escaped(metric_figures.probe_bars([EVIL], [0.9], [0.5]))
    assert_escaped(metric_figures.beta_tradeoff([EVIL, "b"], [1.0, 4.0], [0.1, 0.3], [4, 2]))
    assert_escaped(metric_figures.prior_vs_posterior(np.zeros((5, 1)), [0], what=EVIL))


def test_figures_escape_factors_row_labels_and_path_hover():
    assert_escaped(figures.factor_share_heatmap([{EVIL: 1.0}], [EVIL], [EVIL]))
    fig = figures.latent_path([[0, 0], [1, 1]], [[0.0, 0.5], [1.0, 1.5]], [EVIL, "plain"])
    assert_escaped(fig)
    assert list(fig.data[-1].customdata) == [ESCAPED, "plain"]


def test_train_figures_escape_run_names_schedules_and_titles():
    assert_escaped(train_figures.overlay_curves({EVIL: RECORDS, "b": RECORDS}, "recon", title=EVIL))
    assert_escaped(train_figures.overlay_curves({}, "recon", title=EVIL))  # the empty figure's title too
    points = [{"name": EVIL, "kl": 1.0, "recon": 2.0, "beta": 1.0, "schedule": EVIL},
              {"name": "b", "kl": 2.0, "recon": 1.0, "beta": 4.0, "schedule": "linear"}]
    fig = train_figures.rate_distortion(points)
    assert_escaped(fig)
    assert fig.data[0].customdata[0][2] == ESCAPED  # the schedule in the hover


def test_builders_keep_app_text_as_is():
    """Escaping user text does not touch the app's own labels (z0, β·KL …)."""
    fig = train_figures.loss_curves(RECORDS)
    assert {t.name for t in fig.data} == {"reconstruction", "KL", "β·KL", "total"}
    assert list(metric_figures.kl_per_dim_bar([0.5, 1.0]).data[0].x) == ["z0", "z1"]
