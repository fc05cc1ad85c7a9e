"""Widgets built from the setting declarations (vae_core.config): label, help, bounds, default and step in one place.

A number box has no minimum or maximum in the browser: a typed value out of range reaches the page,
which validates it through the config (and refuses to start), instead of the browser keeping the
previous value in silence (issue 20.3). The bounds are in the tooltip; sliders keep theirs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import streamlit as st

from vae_core.config import Setting, applies


def _bounds(s: Setting) -> str:
    if s.kind not in ("int", "float") or s.lo is None or s.hi is None:
        return ""
    return f" Between {s.lo:g} and {s.hi:g}." if s.kind == "float" else f" Between {int(s.lo):,} and {int(s.hi):,}."


def help_text(s: Setting) -> str:
    """The tooltip of a setting's widget: its declared help and bounds."""
    return s.help + _bounds(s)


def initial(s: Setting) -> Any:
    """The value a widget starts at: the declared suggestion (e.g. 8 Fourier features) or the default."""
    return s.default if s.suggested is None else s.suggested


def setting_widget(s: Setting, key: str, value: Any = None, label: str | None = None) -> Any:
    """One widget for setting `s` (checkbox, selectbox, slider or number box); returns its value."""
    value = initial(s) if value is None else value
    label = label or s.title
    if s.kind == "bool":
        return st.checkbox(label, value=bool(value), key=key, help=help_text(s))
    if s.kind == "choice":
        options = list(s.choices)
        return st.selectbox(label, options, index=options.index(value), key=key, help=help_text(s))
    if s.kind == "int":
        step = int(s.step or 1)
        if s.slider:
            return st.slider(label, int(s.lo), int(s.hi), int(value), step, key=key, help=help_text(s))
        return st.number_input(label, value=int(value), step=step, key=key, help=help_text(s))
    step = float(s.step or 0.1)
    if s.slider:
        return st.slider(label, float(s.lo), float(s.hi), float(value), step, key=key, help=help_text(s))
    return st.number_input(label, value=float(value), step=step, format=s.fmt, key=key, help=help_text(s))


def setting_widgets(settings: Iterable[Setting], values: dict[str, Any], key_prefix: str,
                    initial_values: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Widgets, in order, for the settings that apply given `values` (updated in place and returned).

    A setting that does not apply (a schedule's option under another schedule, the TC start with no TC
    weight) gets no widget and its declared default. Keys are key_prefix + the setting's name.
    """
    for s in settings:
        if applies(s, values):
            values[s.name] = setting_widget(s, key_prefix + s.name, (initial_values or {}).get(s.name))
        else:
            values[s.name] = s.default
    return values


__all__ = ["setting_widget", "setting_widgets", "help_text", "initial"]
