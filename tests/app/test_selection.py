"""ui.selection on Streamlit 1.67's plotly selection events, and the map figure → selection → table chain."""

from __future__ import annotations

import numpy as np
import pytest

from ui import map_figures
from ui.selection import has_selection, selected_points, selected_rows
from vae_core import subset_encodings, subsets


def event(points, box=(), lasso=()):
    """A selection event shaped like st.plotly_chart(on_select="rerun") returns it."""
    return {
        "selection": {
            "points": list(points),
            "point_indices": [p.get("point_index") for p in points],
            "box": list(box),
            "lasso": list(lasso),
        }
    }


def test_rows_come_from_customdata_across_traces():
    ev = event(
        [
            {"curve_number": 0, "point_number": 3, "point_index": 3, "x": 0.1, "y": 0.2, "customdata": 17},
            {"curve_number": 2, "point_number": 3, "point_index": 3, "x": 0.5, "y": 0.1, "customdata": [4, "extra"]},
            {"curve_number": 1, "point_number": 0, "point_index": 0, "x": 0.0, "y": 0.0, "customdata": 17.0},
        ],
        box=[{"xref": "x", "yref": "y", "x": [0, 1], "y": [0, 1]}],
    )
    # The same point_index 3 in two traces is two different rows; a repeated row is listed once.
    assert selected_rows(ev, n_rows=100) == [4, 17]
    assert has_selection(ev)


def test_points_without_customdata_use_curve_rows_or_are_ignored():
    ev = event(
        [
            {"curve_number": 0, "point_index": 1},  # a data trace without customdata
            {"curve_number": 1, "point_index": 0},  # an overlay (placed sentence): no rows
            {"curve_number": 5, "point_index": 9},  # a trace that does not exist
        ]
    )
    assert selected_rows(ev, 100) == []
    assert selected_rows(ev, 100, curve_rows=[[10, 11, 12], None]) == [11]
    assert selected_rows(ev, 100, curve_rows={0: [10, 11, 12]}) == [11]


@pytest.mark.parametrize(
    "bad",
    [
        None,
        {},
        {"selection": None},
        {"selection": {"points": None}},
        [],
        "x",
        3,
        {
            "selection": {
                "points": ["junk", {"customdata": "abc"}, {"customdata": []}, {"customdata": True}, {"customdata": 2.5}]
            }
        },
    ],
)
def test_malformed_or_empty_events_select_nothing(bad):
    assert selected_rows(bad, 10) == []


def test_rows_outside_the_data_are_dropped():
    ev = event([{"curve_number": 0, "point_index": 0, "customdata": r} for r in (-1, 0, 9, 10, 1000)])
    assert selected_rows(ev, 10) == [0, 9]


def test_selection_part_and_attribute_style_events():
    class State(dict):  # Streamlit's PlotlyState: a dict that also has attributes
        @property
        def selection(self):
            return self["selection"]

    ev = State(event([{"curve_number": 0, "point_index": 2, "customdata": 5}]))
    assert selected_rows(ev, 10) == [5]
    assert selected_rows(ev["selection"], 10) == [5]  # the selection part alone
    assert len(selected_points(ev)) == 1
    assert not has_selection(event([]))


def _tiny_subset(n: int = 12):
    sentences = tuple(f"sentence {i} <b>&</b>" for i in range(n))
    labels = {"colour": tuple("red" if i % 3 else "blue" for i in range(n))}
    subset = subsets.Subset(sentences, labels, ("test",) * n, "test", subsets.content_id(sentences, labels))
    rng = np.random.default_rng(0)
    enc = subset_encodings.Encoded(
        mu=rng.standard_normal((n, 4)).astype(np.float32),
        logvar=np.zeros((n, 4), np.float32),
        reconstructions=tuple(f"recon {i}" for i in range(n)),
        correct=np.arange(n) % 2 == 0,
        lengths=np.full(n, 4),
        n_oov=np.zeros(n, int),
    )
    return subset, enc, rng.standard_normal((n, 2)).astype(np.float32)


def test_a_lasso_on_a_coloured_map_lists_the_right_sentences():
    subset, enc, coords = _tiny_subset()
    kind, values, order = subset_encodings.color_values("colour", subset, enc)
    fig = map_figures.map_figure(
        coords,
        map_figures.hover_lines(subset.sentences, enc.reconstructions),
        map_figures.ColorSpec("colour", kind, values, order),
        highlight=[1, 2],
    )
    # What plotly reports for a lasso over two points of trace 1 and one of the highlight trace.
    points = []
    for curve, index in ((1, 0), (1, 2), (2, 1)):
        trace = fig.data[curve]
        points.append(
            {
                "curve_number": curve,
                "point_index": index,
                "x": float(trace.x[index]),
                "y": float(trace.y[index]),
                "customdata": int(trace.customdata[index]),
            }
        )
    rows = selected_rows(event(points, lasso=[{"x": [0, 1, 1], "y": [0, 0, 1]}]), len(subset))
    expected = sorted({int(fig.data[c].customdata[i]) for c, i in ((1, 0), (1, 2), (2, 1))})
    assert rows == expected
    table = subset_encodings.rows_frame(subset, enc, coords, rows)
    assert table["sentence"].tolist() == [subset.sentences[r] for r in rows]
    assert table["colour"].tolist() == [subset.labels["colour"][r] for r in rows]
    assert table["x"].tolist() == pytest.approx([float(coords[r, 0]) for r in rows])
    assert map_figures.rows_of(fig)[1] == [int(v) for v in fig.data[1].customdata]


def test_hover_text_is_escaped_and_overlays_carry_no_rows():
    subset, enc, coords = _tiny_subset()
    placed = map_figures.Overlay(np.zeros((1, 2)), ["1"], map_figures.hover_lines(["<i>mine</i>"]), "your sentences")
    fig = map_figures.map_figure(coords, map_figures.hover_lines(subset.sentences, enc.reconstructions), placed=placed)
    assert "&lt;b&gt;&amp;&lt;/b&gt;" in fig.data[0].hovertext[0]
    assert "<b>" not in fig.data[0].hovertext[0]
    assert fig.data[-1].customdata is None and fig.data[-1].hovertext[0] == "&lt;i&gt;mine&lt;/i&gt;"


def test_webgl_above_the_threshold_and_3d():
    n = 1500
    coords = np.random.default_rng(0).standard_normal((n, 2))
    fig = map_figures.map_figure(coords, [""] * n)
    assert fig.data[0].type == "scattergl"
    assert map_figures.map_figure(coords[:50], [""] * 50).data[0].type == "scatter"
    fig3 = map_figures.map_figure(np.random.default_rng(0).standard_normal((50, 3)), [""] * 50)
    assert fig3.data[0].type == "scatter3d"


def test_text_search_and_subset_helpers():
    assert subsets.text_matches(["The Cat  sat", "a dog", "CATS"], "cat") == [0, 2]
    assert subsets.text_matches(["a b"], "  ") == []
    assert subsets.subset_indices(5, 10) == [0, 1, 2, 3, 4]
    picked = subsets.subset_indices(100, 10, seed=3)
    assert picked == sorted(picked) and len(set(picked)) == 10 and picked == subsets.subset_indices(100, 10, 3)
    assert subsets.csv_header(b"\xef\xbb\xbftext,label\nx,y\n") == ["text", "label"]
