"""Figures of latent usage and disentanglement (Overview, Sliders, Disentanglement pages): pure functions of
plain data (no streamlit). Factor and run names are user text: escaped (ui.safe_text.plot_text) before they reach a
label, a tick or a hover."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ui.map_figures import MARGIN
from ui.safe_text import plot_text

ACTIVE_COLOR = "#2563eb"
INACTIVE_COLOR = "#cbd5e1"


def kl_per_dim_bar(
    kl: Sequence[float], active: Sequence[bool] | None = None, sort: bool = False, height: int = 280
) -> go.Figure:
    """KL per latent dimension (nats), active dims blue and inactive grey (all active when `active` is None);
    by index, or largest first with `sort`."""
    active = list(active) if active is not None else [True] * len(kl)
    dims = list(range(len(kl)))
    if sort:
        dims.sort(key=lambda d: (-float(kl[d]), d))
    fig = go.Figure(
        go.Bar(
            x=[f"z{d}" for d in dims],
            y=[float(kl[d]) for d in dims],
            marker_color=[ACTIVE_COLOR if active[d] else INACTIVE_COLOR for d in dims],
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
            marker_color=[ACTIVE_COLOR if v > threshold else INACTIVE_COLOR for v in values],
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
                name=plot_text(what),
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
            x=[plot_text(f, 40) for f in factor_names],
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
    x = [plot_text(n, 40) for n in names]
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
    labels = [plot_text(n, 40) for n in names]
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
    "ACTIVE_COLOR",
    "INACTIVE_COLOR",
    "beta_tradeoff",
    "kl_per_dim_bar",
    "mi_heatmap",
    "prior_vs_posterior",
    "probe_bars",
    "variance_bar",
]
