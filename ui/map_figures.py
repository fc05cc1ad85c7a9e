"""Figures of the Latent map and Disentanglement pages: pure functions of plain data (no streamlit).

Map traces of corpus points carry each point's row index as customdata, so a box or lasso
selection maps back to rows whatever trace a point sits in (see ui.selection). Hover text is
user text: it is HTML-escaped here (plotly renders <b>, <br>, <a> ... in hover labels).
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

WEBGL_THRESHOLD = 1000  # more points than this: Scattergl (WebGL) instead of SVG
HOVER_MAX_CHARS = 160  # a hover label longer than this is cut (with …)
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
    """User text made safe for a plotly hover label: cut to max_chars, then &, <, > escaped."""
    text = str(text)
    if len(text) > max_chars:
        text = text[: max_chars - 1] + "…"
    return html.escape(text, quote=False)


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
                    name=f"{cat}",
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
                name=path.name or "path",
                text=list(path.labels),
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
                name=placed.name or "your sentences",
                text=list(placed.labels),
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


# --------------------------------------------------------------------------- disentanglement figures


def kl_bar(kl: Sequence[float], active: Sequence[bool], sort: bool = False, height: int = 280) -> go.Figure:
    """KL per latent dimension (nats), active dims blue and inactive grey; by index or largest first."""
    dims = list(range(len(kl)))
    if sort:
        dims.sort(key=lambda d: (-float(kl[d]), d))
    fig = go.Figure(
        go.Bar(
            x=[f"z{d}" for d in dims],
            y=[float(kl[d]) for d in dims],
            marker_color=["#2563eb" if active[d] else "#cbd5e1" for d in dims],
            hovertemplate="%{x}: KL %{y:.3f} nats<extra></extra>",
        )
    )
    fig.update_layout(
        height=height,
        margin=MARGIN,
        yaxis_title="KL (nats)",
        xaxis={"type": "category", "categoryorder": "array", "categoryarray": [f"z{d}" for d in dims]},
        title={"text": "KL(q(z_d|x) ‖ N(0,1)) per dimension (blue = active)", "font": {"size": 14}},
    )
    return fig


def variance_bar(variances: Sequence[float], threshold: float, height: int = 260) -> go.Figure:
    """Variance over sentences of each dimension's posterior mean (log scale) with the active-unit threshold."""
    values = [max(float(v), 1e-8) for v in variances]
    fig = go.Figure(
        go.Bar(
            x=[f"z{d}" for d in range(len(values))],
            y=values,
            marker_color=["#2563eb" if v > threshold else "#cbd5e1" for v in values],
            hovertemplate="%{x}: Var(μ) %{y:.4g}<extra></extra>",
        )
    )
    fig.add_hline(y=threshold, line_dash="dash", line_color="#dc2626")
    fig.update_layout(
        height=height,
        margin=MARGIN,
        yaxis={"type": "log", "title": "Var_x E_q[z_d]"},
        xaxis={"type": "category"},
        title={
            "text": f"Active units: variance of the posterior mean (active above {threshold:g}, dashed)",
            "font": {"size": 14},
        },
    )
    return fig


def _normal_density(x: np.ndarray) -> np.ndarray:
    return np.exp(-0.5 * x**2) / math.sqrt(2 * math.pi)


def prior_vs_posterior(
    values: np.ndarray, dims: Sequence[int], what: str = "posterior means", columns: int = 4, bins: int = 40
) -> go.Figure:
    """Per dimension: a density histogram of `values[:, j]` (codes of dimension dims[j]) with N(0, 1) over it.

    values: (N, len(dims)), posterior means or samples z ~ q(z|x) (the aggregate posterior).
    """
    values = np.asarray(values, dtype=np.float64)
    k = max(1, len(dims))
    cols = min(columns, k)
    rows = math.ceil(k / cols)
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=[f"z{d}" for d in dims] or [""])
    grid = np.linspace(-4, 4, 161)
    for j, d in enumerate(dims):
        r, c = j // cols + 1, j % cols + 1
        fig.add_trace(
            go.Histogram(
                x=values[:, j],
                histnorm="probability density",
                nbinsx=bins,
                name=what,
                legendgroup="q",
                marker_color="#2563eb",
                opacity=0.6,
                showlegend=j == 0,
                hovertemplate=f"z{d} %{{x}}: density %{{y:.3f}}<extra></extra>",
            ),
            row=r,
            col=c,
        )
        fig.add_trace(
            go.Scatter(
                x=grid,
                y=_normal_density(grid),
                mode="lines",
                name="prior N(0, 1)",
                legendgroup="p",
                line={"color": "#dc2626"},
                showlegend=j == 0,
                hoverinfo="skip",
            ),
            row=r,
            col=c,
        )
    fig.update_layout(height=max(260, 220 * rows), margin=MARGIN, bargap=0.02, legend={"orientation": "h", "y": -0.08})
    return fig


def mi_heatmap(
    mi: Sequence[Sequence[float]],
    factor_names: Sequence[str],
    dims: Sequence[int] | None = None,
    height: int | None = None,
) -> go.Figure:
    """Heat map of mutual information (nats), rows = latent dims, columns = factors, each cell annotated."""
    z = np.asarray(mi, dtype=np.float64)
    dims = list(range(z.shape[0])) if dims is None else list(dims)
    labels = [f"z{d}" for d in dims]
    text = [[f"{v:.2f}" for v in row] for row in z]
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=[escape_hover(f, 40) for f in factor_names],
            y=labels,
            colorscale="Blues",
            zmin=0.0,
            text=text,
            texttemplate="%{text}",
            colorbar={"title": {"text": "MI (nats)"}},
            hovertemplate="%{y} × %{x}: %{z:.3f} nats<extra></extra>",
        )
    )
    fig.update_layout(
        height=height or max(240, 60 + 30 * len(labels)),
        margin=MARGIN,
        yaxis={"autorange": "reversed", "type": "category"},
        xaxis={"type": "category"},
        title={"text": "Mutual information between each dimension and each factor", "font": {"size": 14}},
    )
    return fig


def probe_bars(
    names: Sequence[str], accuracy: Sequence[float], baseline: Sequence[float], height: int = 300
) -> go.Figure:
    """Linear-probe held-out accuracy per factor beside the majority-class baseline."""
    x = [escape_hover(n, 40) for n in names]
    fig = go.Figure(
        [
            go.Bar(
                x=x,
                y=list(accuracy),
                name="linear probe",
                marker_color="#2563eb",
                hovertemplate="%{x}: probe %{y:.1%}<extra></extra>",
            ),
            go.Bar(
                x=x,
                y=list(baseline),
                name="majority class",
                marker_color="#cbd5e1",
                hovertemplate="%{x}: majority %{y:.1%}<extra></extra>",
            ),
        ]
    )
    fig.update_layout(
        barmode="group",
        height=height,
        margin=MARGIN,
        yaxis={"range": [0, 1], "tickformat": ".0%"},
        legend={"orientation": "h", "y": -0.2},
        title={"text": "Linear-probe accuracy per factor (held out)", "font": {"size": 14}},
    )
    return fig


def beta_tradeoff(
    names: Sequence[str],
    betas: Sequence[float | None],
    mig: Sequence[float | None],
    active_units: Sequence[float | None],
    height: int = 320,
) -> go.Figure:
    """Two panels over runs: β against MIG, and β against the number of active units (log x when β spans 10×)."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=("β vs MIG", "β vs active units"))
    labels = [escape_hover(n, 40) for n in names]
    for col, ys, name in ((1, mig, "MIG"), (2, active_units, "active units")):
        pts = [(b, y, lab) for b, y, lab in zip(betas, ys, labels, strict=True) if b is not None and y is not None]
        pts.sort(key=lambda p: p[0])
        fig.add_trace(
            go.Scatter(
                x=[p[0] for p in pts],
                y=[p[1] for p in pts],
                text=[p[2] for p in pts],
                mode="markers+lines",
                name=name,
                marker={"size": 10},
                hovertemplate="%{text}: β=%{x:g}, " + name + " %{y:.3g}<extra></extra>",
            ),
            row=1,
            col=col,
        )
    positive = [b for b in betas if b is not None and b > 0]
    if positive and max(positive) / min(positive) >= 10:
        fig.update_xaxes(type="log")
    fig.update_xaxes(title_text="β")
    fig.update_layout(height=height, margin=MARGIN, showlegend=False)
    return fig


__all__ = [
    "ColorSpec",
    "Overlay",
    "beta_tradeoff",
    "escape_hover",
    "hover_lines",
    "kl_bar",
    "map_figure",
    "mi_heatmap",
    "prior_vs_posterior",
    "probe_bars",
    "rows_of",
    "variance_bar",
]
