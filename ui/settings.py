"""Widgets built from the setting declarations (vae_core.config): label, help, bounds, default and step in one place.

A number box has no minimum or maximum in the browser: a typed value out of range reaches the page,
which validates it through the config (and refuses to start), instead of the browser keeping the
previous value in silence (issue 20.3). The bounds are in the tooltip; sliders keep theirs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import streamlit as st

from vae_core.config import Setting, TrainConfig, applies


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


def invalid_setting_message(error: Exception, settings: Mapping[str, Setting]) -> str:
    """A config error with the field's label in front ("Epochs: epochs must be between …"), so the user knows
    which box to fix; Start stays disabled until it is (issue 20.3)."""
    text = str(error)
    name = text.split(" ", 1)[0]
    s = settings.get(name)
    label = (s.title if s is not None else "") or ""
    prefix = f"{label}: " if label and label != name else ""
    return f"{prefix}{text}. Start is disabled until this field holds a valid value."


def planned_steps(train_config: TrainConfig, n_train: int) -> int:
    """Optimisation steps a training of `n_train` sentences will take in one process (as vae_core.train counts)."""
    from vae_core.distributed import usable_batches
    from vae_core.train import total_steps_for

    return total_steps_for(usable_batches(max(0, int(n_train)), train_config.batch_size, 1), train_config)


def warmup_warning(train_config: TrainConfig, n_train: int) -> str | None:
    """A warning when the KL warm-up is longer than the training, so β is never reached (issue 20.4); else None.

    The weight the run ends at comes from the schedule itself (vae_core.objective.kl_weight at the last step).
    """
    if train_config.schedule not in ("linear", "sigmoid") or train_config.warmup_steps <= 0 or n_train <= 0:
        return None
    steps = planned_steps(train_config, n_train)
    if steps <= 0 or train_config.warmup_steps <= steps:
        return None
    from vae_core.objective import kl_weight

    reached = kl_weight(steps, train_config, steps)
    c = train_config
    how = (f"Max steps {c.max_steps:,}" if c.max_steps and steps == c.max_steps
           else f"about {n_train:,} training sentences ÷ batch {c.batch_size} × {c.epochs} epoch(s)")
    return (f"The KL warm-up ({train_config.warmup_steps:,} steps) is longer than this training ({steps:,} steps: "
            f"{how}): the KL weight will end at {reached:.3g} instead of β = {train_config.beta:g}. Shorten the "
            "warm-up (Warm-up steps) or train for more steps.")


__all__ = [
    "help_text",
    "initial",
    "invalid_setting_message",
    "planned_steps",
    "setting_widget",
    "setting_widgets",
    "warmup_warning",
]
