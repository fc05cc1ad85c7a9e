"""Named training presets: settings as data (setting name -> value), checked against the declarations.

The Train page offers them as one-click fills; `preset_values(name)` is what it applies. A preset names
only settings declared in vae_core.config (`training_settings()`), each checked with `check_value`, and
the whole must build valid configs (`configs_with`), so a preset can never hold what Start would refuse.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from vae_core.config import ModelConfig, TrainConfig, check_value, configs_with, training_settings


@dataclass(frozen=True, slots=True)
class Preset:
    """A named set of training settings for the built-in corpus (or whichever corpus is chosen)."""

    title: str  # what the button says
    help: str  # what it is for, and how long it takes (measured: README, Train page)
    corpus: str  # the Train page's corpus source it selects ("synthetic": the built-in corpus)
    values: tuple[tuple[str, Any], ...]  # setting name -> value; every other setting keeps its default


PRESETS: dict[str, Preset] = {
    # 30 s to 2 min on this 2-core CPU, by its load (README: The Train page's runs): 2 epochs of the built-in
    # corpus (584 steps of 64), a small additive decoder (the shipped default's kind, so traversals show
    # factors) and a constant β in force from the first step, so the schedule is complete however short the run.
    "quick-demo": Preset(
        title="Quick demo (about 1 min)",
        help="Fills the settings for a short training on the built-in corpus: small additive model, latent 8, "
             "constant β = 0.6, 2 epochs of batch 64 (584 steps). Measured on a 2-core CPU: 30 s when it is quiet, up "
             "to 2 min when it is busy; the run then reconstructs about 60% of the words and the Traversals page "
             "shows which dimension moves which word.",
        corpus="synthetic",
        values=(("embed_dim", 32), ("hidden_dim", 64), ("latent_dim", 8), ("decoder", "additive"),
                ("decoder_layers", 1), ("fourier_features", 8), ("beta", 0.6), ("schedule", "constant"),
                ("epochs", 2), ("max_steps", 0), ("batch_size", 64), ("lr", 3e-3), ("log_every", 10),
                ("eval_every", 0)),
    ),
}


def preset_values(name: str) -> dict[str, Any]:
    """The settings of preset `name`, each checked against its declaration (ValueError if unknown or invalid)."""
    if name not in PRESETS:
        raise ValueError(f"no preset {name!r} (presets: {', '.join(PRESETS)})")
    declared = training_settings()
    values = dict(PRESETS[name].values)
    for key, value in values.items():
        if key not in declared:
            raise ValueError(f"preset {name!r} sets {key!r}, which is not a training setting")
        check_value(declared[key], value)
    configs_with(ModelConfig(), TrainConfig(), values)  # the combination must be valid too
    return values


__all__ = ["PRESETS", "Preset", "preset_values"]
