"""Plotly figure builders of the Overview, Traversals and Interpolation pages: pure functions of plain data
(no streamlit), so tests can call them. KL-per-dimension bars are in ui.metric_figures. Factor names, row labels
and path hover text are escaped here (ui.safe_text.plot_text): callers pass plain text."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ui.safe_text import plot_text
from ui.train_figures import series


def training_curve(records: Sequence[Mapping], height: int = 340) -> go.Figure:
    """Reconstruction, KL and β·KL per token-sum of train steps, validation points, β on a second axis.

    records: metrics.jsonl lines (kind 'train' or 'valid', with step, recon, kl, weight, weighted_kl).
    """
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    for key, name, color in (
        ("recon", "reconstruction", "#2563eb"),
        ("kl", "KL", "#dc2626"),
        ("weighted_kl", "β·KL", "#f59e0b"),
    ):
        xs, ys = series(records, "train", key)
        if xs:
            fig.add_trace(go.Scatter(x=xs, y=ys, name=name, mode="lines", line={"color": color}), secondary_y=False)
    for key, name, color in (("recon", "valid reconstruction", "#2563eb"), ("kl", "valid KL", "#dc2626")):
        xs, ys = series(records, "valid", key)
        if xs:
            fig.add_trace(
                go.Scatter(
                    x=xs, y=ys, name=name, mode="markers", marker={"color": color, "symbol": "diamond", "size": 8}
                ),
                secondary_y=False,
            )
    xs, ys = series(records, "train", "weight")
    if xs:
        fig.add_trace(
            go.Scatter(x=xs, y=ys, name="β (KL weight)", mode="lines", line={"color": "#6b7280", "dash": "dot"}),
            secondary_y=True,
        )
    fig.update_layout(
        height=height,
        margin={"l": 10, "r": 10, "t": 30, "b": 10},
        legend={"orientation": "h", "y": -0.2},
        hovermode="x unified",
    )
    fig.update_xaxes(title_text="step")
    fig.update_yaxes(title_text="nats per sentence", secondary_y=False)
    fig.update_yaxes(title_text="β", secondary_y=True, rangemode="tozero")
    return fig


def factor_share_heatmap(
    shares: Sequence[Mapping[str, float]], row_labels: Sequence[str], factors: Sequence[str], height: int | None = None
) -> go.Figure:
    """Heat map: rows = latent dimensions, columns = factors, cell = share of changing steps that change it."""
    z = [[float(s.get(f, 0.0)) for f in factors] for s in shares]
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=[plot_text(f, 40) for f in factors],
            y=[plot_text(r, 40) for r in row_labels],
            zmin=0.0,
            zmax=1.0,
            colorscale="Blues",
            hovertemplate="%{y} → %{x}: %{z:.0%}<extra></extra>",
            colorbar={"title": "share"},
        )
    )
    fig.update_layout(
        height=height or max(220, 40 + 28 * len(row_labels)),
        margin={"l": 10, "r": 10, "t": 30, "b": 10},
        yaxis={"autorange": "reversed", "type": "category"},
    )
    return fig


def latent_path(
    background: Sequence[Sequence[float]],
    path: Sequence[Sequence[float]],
    hover: Sequence[str] = (),
    height: int = 380,
) -> go.Figure:
    """A 2-D projection of corpus codes (grey) with a path of codes drawn over it (numbered steps).

    hover: plain text per step (the decoded sentence), escaped here."""
    fig = go.Figure()
    if len(background):
        fig.add_trace(
            go.Scattergl(
                x=[p[0] for p in background],
                y=[p[1] for p in background],
                mode="markers",
                name="corpus",
                marker={"size": 4, "color": "#cbd5e1"},
                hoverinfo="skip",
            )
        )
    hover = [plot_text(h) for h in hover] or [""] * len(path)
    fig.add_trace(
        go.Scatter(
            x=[p[0] for p in path],
            y=[p[1] for p in path],
            mode="lines+markers+text",
            name="path",
            text=[str(i) for i in range(len(path))],
            textposition="top center",
            marker={"size": 9, "color": list(range(len(path))), "colorscale": "Viridis"},
            line={"color": "#1f2937"},
            customdata=hover,
            hovertemplate="step %{text}: %{customdata}<extra></extra>",
        )
    )
    fig.update_layout(height=height, margin={"l": 10, "r": 10, "t": 30, "b": 10}, showlegend=False)
    return fig
