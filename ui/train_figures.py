"""Plotly figures of the Train and Compare pages: pure functions of metrics records and summaries.

Run names, schedules and titles are user text: escaped (ui.safe_text.plot_text) wherever they reach a chart."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import plotly.graph_objects as go

from ui.safe_text import plot_text
from vae_core.summary import finite_number

PALETTE = ("#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#db2777", "#65a30d", "#4b5563",
           "#ca8a04")
MARGIN = {"l": 10, "r": 10, "t": 40, "b": 10}


def series(records: Sequence[Mapping], kind: str, key: str) -> tuple[list[float], list[float]]:
    """(steps, values) of one metric over records of one kind ('train' or 'valid'), numbers only."""
    xs, ys = [], []
    for r in records:
        if r.get("kind", "train") != kind:
            continue
        step, value = finite_number(r.get("step")), finite_number(r.get(key))
        if step is not None and value is not None:
            xs.append(step)
            ys.append(value)
    return xs, ys


def _empty(title: str, height: int, note: str = "no metrics yet") -> go.Figure:
    fig = go.Figure()
    fig.add_annotation(text=note, showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper")
    fig.update_layout(title={"text": plot_text(title), "font": {"size": 14}}, height=height, margin=MARGIN,
                      xaxis={"visible": False}, yaxis={"visible": False})
    return fig


def loss_curves(records: Sequence[Mapping], height: int = 320) -> go.Figure:
    """Training curves per step: reconstruction, KL, β·KL (weighted_kl) and the total loss (nats/sentence)."""
    fig = go.Figure()
    for key, name, color, dash in (
        ("recon", "reconstruction", PALETTE[0], None),
        ("kl", "KL", PALETTE[1], None),
        ("weighted_kl", "β·KL", "#f59e0b", None),
        ("loss", "total", "#111827", "dot"),
    ):
        xs, ys = series(records, "train", key)
        if xs:
            fig.add_trace(go.Scatter(x=xs, y=ys, name=name, mode="lines", line={"color": color, "dash": dash}))
    if not fig.data:
        return _empty("Training loss", height)
    fig.update_layout(title={"text": "Training loss (per sentence)", "font": {"size": 14}}, height=height,
                      margin=MARGIN, hovermode="x unified", legend={"orientation": "h", "y": -0.25},
                      xaxis_title="step", yaxis_title="nats")
    return fig


def validation_curves(records: Sequence[Mapping], height: int = 320) -> go.Figure:
    """Validation figures per evaluation: −ELBO (the NLL bound), reconstruction and KL."""
    fig = go.Figure()
    for key, name, color in (("nll_bound", "−ELBO", "#111827"), ("recon", "reconstruction", PALETTE[0]),
                             ("kl", "KL", PALETTE[1])):
        xs, ys = series(records, "valid", key)
        if xs:
            fig.add_trace(go.Scatter(x=xs, y=ys, name=name, mode="lines+markers", line={"color": color}))
    if not fig.data:
        return _empty("Validation", height, "no validation yet (once per epoch and at the end)")
    fig.update_layout(title={"text": "Validation (per sentence)", "font": {"size": 14}}, height=height,
                      margin=MARGIN, hovermode="x unified", legend={"orientation": "h", "y": -0.25},
                      xaxis_title="step", yaxis_title="nats")
    return fig


def kl_heatmap_data(records: Sequence[Mapping], max_rows: int = 400) -> tuple[list[float], list[list[float]]]:
    """Steps and a (steps × dims) matrix of kl_per_dim from training records, thinned to max_rows."""
    rows = [(r["step"], r["kl_per_dim"]) for r in records
            if r.get("kind", "train") == "train" and finite_number(r.get("step")) is not None
            and isinstance(r.get("kl_per_dim"), list) and r["kl_per_dim"]]
    if not rows:
        return [], []
    dim = len(rows[-1][1])
    rows = [(s, v) for s, v in rows if len(v) == dim]
    if len(rows) > max_rows:
        stride = math.ceil(len(rows) / max_rows)
        rows = rows[::stride] if rows[::stride][-1] is rows[-1] else rows[::stride] + [rows[-1]]
    return [float(s) for s, _ in rows], [[finite_number(x) or 0.0 for x in v] for _, v in rows]


def kl_heatmap(records: Sequence[Mapping], height: int = 300) -> go.Figure:
    """KL of each latent dimension (rows) over training steps (columns): collapse and specialisation."""
    steps, matrix = kl_heatmap_data(records)
    if not steps:
        return _empty("KL per dimension over time", height)
    dims = len(matrix[0])
    z = [[matrix[t][d] for t in range(len(steps))] for d in range(dims)]  # (D, T)
    fig = go.Figure(go.Heatmap(
        x=steps, y=[f"z{d}" for d in range(dims)], z=z, colorscale="Viridis", colorbar={"title": "nats"},
        hovertemplate="step %{x}<br>%{y}: KL %{z:.3f}<extra></extra>",
    ))
    fig.update_layout(title={"text": "KL per dimension over time", "font": {"size": 14}}, height=height,
                      margin=MARGIN, xaxis_title="step", yaxis={"autorange": "reversed", "type": "category"})
    return fig


DASHES = ("solid", "dash", "dot", "dashdot", "longdash", "longdashdot")  # one per overlaid run
MARKERS = ("circle", "square", "diamond", "triangle-up", "x", "cross")


def overlay_curves(runs: Mapping[str, Sequence[Mapping]], key: str, kind: str = "train", title: str = "",
                   height: int = 300) -> go.Figure:
    """One metric (e.g. 'recon' or 'kl') against step for several runs: one colour, dash style and marker
    per run, half-opaque lines, so a run whose curve lies on another's stays visible (issue 20.7)."""
    fig = go.Figure()
    for i, (name, records) in enumerate(runs.items()):
        xs, ys = series(records, kind, key)
        if xs:
            fig.add_trace(go.Scatter(
                x=xs, y=ys, name=plot_text(name, 60), mode="lines+markers", opacity=0.75,
                line={"color": PALETTE[i % len(PALETTE)], "dash": DASHES[i % len(DASHES)], "width": 2 + (i % 2)},
                marker={"symbol": MARKERS[i % len(MARKERS)], "size": 7, "maxdisplayed": 12},
            ))
    if not fig.data:
        return _empty(title or key, height)
    fig.update_layout(title={"text": plot_text(title or key), "font": {"size": 14}}, height=height, margin=MARGIN,
                      xaxis_title="step", yaxis_title="nats", legend={"orientation": "h", "y": -0.25})
    return fig


def rate_distortion(points: Sequence[Mapping], height: int = 420) -> go.Figure:
    """The rate–distortion plane: x = KL (rate), y = reconstruction (distortion), one point per run.

    points: dicts with name, kl, recon, beta and optionally schedule, source ('run' or 'sweep').
    Colour is log β; hover shows the run, β and schedule.
    """
    pts = [p for p in points if finite_number(p.get("kl")) is not None and finite_number(p.get("recon")) is not None]
    if not pts:
        return _empty("Rate–distortion", height, "no run with validation figures yet")
    betas = [finite_number(p.get("beta")) for p in pts]
    color = [math.log10(b) if b and b > 0 else -3.0 for b in betas]
    tick_betas = sorted({b for b in betas if b and b > 0})
    symbols = ["diamond" if p.get("source") == "sweep" else "circle" for p in pts]
    fig = go.Figure(go.Scatter(
        x=[float(p["kl"]) for p in pts],
        y=[float(p["recon"]) for p in pts],
        mode="markers+text",
        text=[plot_text(p.get("name", ""), 40) for p in pts],
        textposition="top center",
        textfont={"size": 10},
        marker={"size": 13, "color": color, "colorscale": "Plasma", "symbol": symbols, "line": {"width": 1},
                "colorbar": {"title": "β", "tickvals": [math.log10(b) for b in tick_betas],
                             "ticktext": [f"{b:g}" for b in tick_betas]},
                "showscale": True},
        customdata=[[plot_text(p.get("name", "")), f"{b:g}" if b is not None else "?",
                     plot_text(p.get("schedule", "?"))] for p, b in zip(pts, betas, strict=True)],
        hovertemplate=("<b>%{customdata[0]}</b><br>β = %{customdata[1]} · schedule %{customdata[2]}"
                       "<br>KL (rate) %{x:.2f} nats<br>reconstruction %{y:.2f} nats<extra></extra>"),
    ))
    fig.update_layout(title={"text": "Rate–distortion (validation, per sentence)", "font": {"size": 14}},
                      height=height, margin=MARGIN, xaxis_title="KL = rate (nats)",
                      yaxis_title="reconstruction = distortion (nats)")
    return fig
