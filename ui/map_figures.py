"""Figures of the Latent map: pure functions of plain data (no streamlit). The Disentanglement page's
figures are in ui.metric_figures.

Map traces of corpus points carry each point's row index as customdata, so a box or lasso
selection maps back to rows whatever trace a point sits in (see ui.selection). Hover text, category
(legend) names, overlay labels and titles are user text: escaped here with ui.safe_text.plot_text
(plotly renders <b>, <br>, <a> ... in every label).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import plotly.graph_objects as go

from ui.safe_text import PLOT_MAX_CHARS, plot_text

WEBGL_THRESHOLD = 1000  # more points than this: Scattergl (WebGL) instead of SVG
HOVER_MAX_CHARS = PLOT_MAX_CHARS  # a hover label longer than this is cut (with …)
LEGEND_MAX_CHARS = 60  # a legend entry (a label value) longer than this is cut
PALETTE = (
    "#2563eb",
    "#dc2626",
    "#16a34a",
    "#f59e0b",
    "#7c3aed",
    "#0891b2",
    "#db2777",
    "#65a30d",
    "#ea580c",
    "#4f46e5",
    "#0d9488",
    "#b91c1c",
    "#a16207",
    "#9333ea",
    "#0369a1",
    "#be185d",
)
BOOL_COLORS = {"correct": "#16a34a", "wrong": "#dc2626"}
MARGIN = {"l": 10, "r": 10, "t": 40, "b": 10}

ColorKind = Literal["none", "categorical", "continuous"]


# --------------------------------------------------------------------------- hover text


def escape_hover(text: str, max_chars: int = HOVER_MAX_CHARS) -> str:
    """User text made safe for a plotly hover label: ui.safe_text.plot_text (cut to max_chars, &, <, > escaped)."""
    return plot_text(text, max_chars)


def hover_lines(
    sentences: Sequence[str], reconstructions: Sequence[str] | None = None, extra: Sequence[str] | None = None
) -> list[str]:
    """Per point: the sentence, '→ reconstruction' and an extra line, escaped and joined with <br>."""
    out = []
    for i, s in enumerate(sentences):
        parts = [escape_hover(s)]
        if reconstructions is not None:
            parts.append("→ " + escape_hover(reconstructions[i]))
        if extra is not None and extra[i]:
            parts.append(escape_hover(extra[i]))
        out.append("<br>".join(parts))
    return out


# --------------------------------------------------------------------------- the map


@dataclass(frozen=True)
class ColorSpec:
    """How map points are coloured: 'none', 'categorical' (values are strings), 'continuous' (numbers)."""

    name: str = ""
    kind: ColorKind = "none"
    values: Sequence = ()
    categories: Sequence[str] | None = None  # legend order for categorical values (default: sorted)
    colors: Mapping[str, str] = field(default_factory=dict)  # fixed colour per category, when given


@dataclass(frozen=True)
class Overlay:
    """Extra points drawn over the map: coords (M, C), a label drawn beside each, hover per point."""

    coords: np.ndarray
    labels: Sequence[str]
    hover: Sequence[str]  # already-escaped hover text
    name: str = ""


def _xyz(coords: np.ndarray, index: np.ndarray | None = None) -> dict[str, np.ndarray]:
    c = np.asarray(coords, dtype=np.float64)
    if index is not None:
        c = c[index]
    out = {"x": c[:, 0], "y": c[:, 1]}
    if c.shape[1] == 3:
        out["z"] = c[:, 2]
    return out


def _scatter(three_d: bool, webgl: bool, **kwargs) -> go.Scatter | go.Scattergl | go.Scatter3d:
    if three_d:
        kwargs.pop("selected", None)
        kwargs.pop("unselected", None)
        return go.Scatter3d(**kwargs)
    return go.Scattergl(**kwargs) if webgl else go.Scatter(**kwargs)


def map_figure(
    coords: np.ndarray,
    hover: Sequence[str],
    color: ColorSpec | None = None,
    highlight: Sequence[int] = (),
    neighbours: Sequence[int] = (),
    query_row: int | None = None,
    placed: Overlay | None = None,
    path: Overlay | None = None,
    title: str = "",
    height: int = 620,
    webgl_threshold: int = WEBGL_THRESHOLD,
    point_size: float | None = None,
) -> go.Figure:
    """Scatter of N mapped codes, coords (N, 2) or (N, 3), with optional overlays drawn on top.

    hover: N escaped hover strings. highlight: rows to emphasise (search matches; the rest fade).
    neighbours / query_row: rows of a nearest-neighbour query. placed: the user's own sentences
    (big diamonds, numbered). path: an interpolation path (line, step numbers). Every trace of
    corpus points has customdata = its rows; overlays of placed sentences and paths have none.
    """
    coords = np.asarray(coords, dtype=np.float64)
    if coords.ndim != 2 or coords.shape[1] not in (2, 3):
        raise ValueError(f"coords must have shape (N, 2) or (N, 3), got {coords.shape}")
    n = coords.shape[0]
    if len(hover) != n:
        raise ValueError(f"got {len(hover)} hover texts for {n} points")
    three_d = coords.shape[1] == 3
    webgl = n > webgl_threshold
    color = color or ColorSpec()
    hover = np.asarray(list(hover), dtype=object)
    size = point_size or (3.0 if n > 5000 else 5.0 if n > webgl_threshold else 7.0)
    if three_d:
        size = max(2.0, size - 2.0)
    faded = len(highlight) > 0 or len(neighbours) > 0
    opacity = 0.25 if faded else 0.8
    fig = go.Figure()
    template = "%{hovertext}<extra>%{fullData.name}</extra>"
    rows_all = np.arange(n)

    if color.kind == "categorical" and len(color.values) == n:
        values = np.asarray([str(v) for v in color.values], dtype=object)
        categories = list(color.categories) if color.categories else sorted(set(values.tolist()))
        categories += sorted(set(values.tolist()) - set(categories))
        for i, cat in enumerate(categories):
            idx = np.flatnonzero(values == cat)
            if not len(idx):
                continue
            col = color.colors.get(cat, PALETTE[i % len(PALETTE)])
            fig.add_trace(
                _scatter(
                    three_d,
                    webgl,
                    **_xyz(coords, idx),
                    mode="markers",
                    name=plot_text(cat, LEGEND_MAX_CHARS),
                    legendgroup=cat,
                    marker={"size": size, "color": col, "opacity": opacity},
                    customdata=idx,
                    hovertext=hover[idx],
                    hovertemplate=template,
                )
            )
    elif color.kind == "continuous" and len(color.values) == n:
        values = np.asarray(color.values, dtype=np.float64)
        fig.add_trace(
            _scatter(
                three_d,
                webgl,
                **_xyz(coords),
                mode="markers",
                name="corpus",
                marker={
                    "size": size,
                    "color": values,
                    "colorscale": "Viridis",
                    "opacity": opacity,
                    "colorbar": {"title": {"text": escape_hover(color.name, 40)}, "thickness": 14},
                },
                customdata=rows_all,
                hovertext=hover,
                hovertemplate=template,
                showlegend=False,
            )
        )
    else:
        fig.add_trace(
            _scatter(
                three_d,
                webgl,
                **_xyz(coords),
                mode="markers",
                name="corpus",
                marker={"size": size, "color": "#64748b", "opacity": opacity},
                customdata=rows_all,
                hovertext=hover,
                hovertemplate=template,
                showlegend=False,
            )
        )

    if len(highlight):
        idx = np.asarray(sorted({int(r) for r in highlight if 0 <= int(r) < n}), dtype=np.int64)
        fig.add_trace(
            _scatter(
                three_d,
                webgl and len(idx) > webgl_threshold,
                **_xyz(coords, idx),
                mode="markers",
                name=f"matches ({len(idx)})",
                marker={"size": size + 4, "color": "#f59e0b", "line": {"color": "#111827", "width": 1}},
                customdata=idx,
                hovertext=hover[idx],
                hovertemplate=template,
            )
        )
    if len(neighbours):
        idx = np.asarray([int(r) for r in neighbours if 0 <= int(r) < n], dtype=np.int64)
        fig.add_trace(
            _scatter(
                three_d,
                False,
                **_xyz(coords, idx),
                mode="markers",
                name="nearest neighbours",
                marker={
                    "size": size + 6,
                    "color": "rgba(0,0,0,0)",
                    "line": {"color": "#dc2626", "width": 2},
                    "symbol": "circle-open" if three_d else "circle",
                },
                customdata=idx,
                hovertext=hover[idx],
                hovertemplate=template,
            )
        )
    if query_row is not None and 0 <= query_row < n:
        idx = np.asarray([query_row], dtype=np.int64)
        fig.add_trace(
            _scatter(
                three_d,
                False,
                **_xyz(coords, idx),
                mode="markers",
                name="neighbours of",
                marker={
                    "size": size + 10,
                    "color": "#dc2626",
                    "symbol": "diamond" if three_d else "star",
                    "line": {"color": "#111827", "width": 1},
                },
                customdata=idx,
                hovertext=hover[idx],
                hovertemplate=template,
            )
        )
    if path is not None and len(path.coords):
        fig.add_trace(
            _scatter(
                three_d,
                False,
                **_xyz(path.coords),
                mode="lines+markers+text",
                name=plot_text(path.name or "path", LEGEND_MAX_CHARS),
                text=[plot_text(t, 40) for t in path.labels],
                textposition="top center",
                line={"color": "#111827", "width": 3},
                marker={"size": 8, "color": list(range(len(path.coords))), "colorscale": "Plasma"},
                hovertext=list(path.hover),
                hovertemplate="%{hovertext}<extra>step %{text}</extra>",
            )
        )
    if placed is not None and len(placed.coords):
        fig.add_trace(
            _scatter(
                three_d,
                False,
                **_xyz(placed.coords),
                mode="markers+text",
                name=plot_text(placed.name or "your sentences", LEGEND_MAX_CHARS),
                text=[plot_text(t, 40) for t in placed.labels],
                textposition="middle right",
                textfont={"size": 14, "color": "#111827"},
                marker={
                    "size": 18 if not three_d else 9,
                    "color": "#facc15",
                    "symbol": "diamond",
                    "line": {"color": "#111827", "width": 2},
                },
                hovertext=list(placed.hover),
                hovertemplate="%{hovertext}<extra>%{text}</extra>",
            )
        )

    fig.update_layout(
        height=height,
        margin=MARGIN,
        title={"text": escape_hover(title, 200), "font": {"size": 14}},
        legend={"itemsizing": "constant", "title": {"text": escape_hover(color.name, 40)}},
        dragmode="lasso" if not three_d else "orbit",
        hovermode="closest",
        uirevision="latent-map",
    )
    if not three_d:
        fig.update_xaxes(showticklabels=False, title_text="")
        fig.update_yaxes(showticklabels=False, title_text="", scaleanchor="x", scaleratio=1)
    else:
        fig.update_scenes(
            xaxis_showticklabels=False,
            yaxis_showticklabels=False,
            zaxis_showticklabels=False,
            xaxis_title="",
            yaxis_title="",
            zaxis_title="",
        )
    return fig


def rows_of(fig: go.Figure) -> list[list[int] | None]:
    """For each trace of a map figure, the rows its points were drawn from (None for overlays)."""
    out: list[list[int] | None] = []
    for trace in fig.data:
        data = getattr(trace, "customdata", None)
        out.append(None if data is None else [int(v) for v in np.asarray(data).reshape(-1)])
    return out


__all__ = [
    "ColorSpec",
    "Overlay",
    "escape_hover",
    "hover_lines",
    "map_figure",
    "rows_of",
]
