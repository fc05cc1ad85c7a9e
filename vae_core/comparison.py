"""Runs side by side: one row of figures per run, from its evaluation or measured now, and config differences.

A run with an evaluation in summary.json is described by it (`comparison_from_eval`); one without is
measured on up to COMPARE_SENTENCES test sentences (`measure_comparison`: AU, KL, MI and exact match from
the encodings, MIG/DCI/SAP against the label columns that are factors). The Compare page's tables of
final figures and rate–distortion points read summary.json through `vae_core.summary.Summary`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import numpy as np

from vae_core.explore import latent_stats_of
from vae_core.subset_encodings import Encoded
from vae_core.subsets import Subset, label_factors
from vae_core.summary import Evaluation, Summary, finite_number

COMPARE_SENTENCES = 1000  # test sentences measured for a run that has no evaluation in summary.json
COMPARE_COLUMNS = ("run", "β", "schedule", "active units", "KL", "MI", "MIG", "DCI-D", "SAP", "exact match", "source")


def _train_block(config: Mapping[str, Any]) -> Mapping[str, Any]:
    train = config.get("train")
    return train if isinstance(train, Mapping) else {}


def comparison_from_eval(name: str, config: Mapping[str, Any], ev: Evaluation | None) -> dict[str, Any] | None:
    """A comparison row from a run's evaluation (None without one, or when it has no active-unit count)."""
    if ev is None or ev.active_units is None:
        return None
    train = _train_block(config)
    dis = ev.disentanglement
    n = ev.n_sentences
    return {
        "run": name,
        "β": finite_number(train.get("beta")),
        "schedule": str(train.get("schedule", "")),
        "active units": float(ev.active_units),
        "KL": ev.kl,
        "MI": ev.mi,
        "MIG": dis.mig if dis else None,
        "DCI-D": dis.dci_disentanglement if dis else None,
        "SAP": dis.sap if dis else None,
        "exact match": ev.exact_match,
        "source": f"evaluation ({n:,} {ev.split or ''} sentences)" if n is not None else "evaluation",
    }


def empty_comparison(name: str, config: Mapping[str, Any], source: str) -> dict[str, Any]:
    """A row with only the run's name, β and schedule (every figure None) and why."""
    train = _train_block(config)
    row: dict[str, Any] = {c: None for c in COMPARE_COLUMNS}
    row.update({"run": name, "β": finite_number(train.get("beta")), "schedule": str(train.get("schedule", ""))})
    row["source"] = source
    return row


def measure_comparison(name: str, config: Mapping[str, Any], subset: Subset, enc: Encoded) -> dict[str, Any]:
    """A comparison row measured on a subset's encoding (AU, KL, MI, exact match; MIG/DCI-D/SAP with factors)."""
    from vae_core.disentanglement import disentanglement_report

    row = empty_comparison(name, config, f"measured on {len(subset):,} test sentences")
    stats = latent_stats_of(enc.mu, enc.logvar)
    row.update(
        {
            "active units": float(stats.n_active),
            "KL": float(sum(stats.kl)),
            "MI": stats.mi,
            "exact match": enc.exact_match,
        }
    )
    labelled = label_factors(subset.labels, subset.factor_names, factor_values=subset.factor_values)  # grammar order
    if labelled is not None:
        factors, names, _, _ = labelled
        report = disentanglement_report(enc.mu, factors, names, active=np.asarray(stats.active), seed=0)
        row.update(
            {
                "MIG": finite_number(report["mig"]),
                "DCI-D": finite_number(report["dci"]["disentanglement"]),
                "SAP": finite_number(report["sap"]),
            }
        )
    return row


# --------------------------------------------------------------------------- the Compare page's tables


def final_figures(summary: Summary) -> dict[str, float | None]:
    """The figures of one run: validation at the end of training, and the evaluation when present."""
    valid, ev, sweep = summary.valid, summary.evaluation, summary.sweep
    dis = ev.disentanglement if ev else None
    ev_nll = None if ev is None else (ev.nll if ev.nll is not None else ev.nll_bound)
    mig = dis.mig if dis is not None and dis.mig is not None else (sweep.mig if sweep else None)
    return {
        "valid recon": valid.recon if valid else None,
        "valid KL": valid.kl if valid else None,
        "valid ELBO": valid.elbo if valid else None,
        "valid AU": None if valid is None or valid.active_units is None else float(valid.active_units),
        "eval recon": ev.recon if ev else None,
        "eval KL": ev.kl if ev else None,
        "eval ELBO": ev.elbo if ev else None,
        "eval NLL": ev_nll,
        "eval AU": None if ev is None or ev.active_units is None else float(ev.active_units),
        "eval MI": ev.mi if ev else None,
        "MIG": mig,
        "exact match": ev.exact_match if ev else None,
    }


def rd_point(name: str, config: Mapping[str, Any], summary: Summary) -> dict[str, Any]:
    """One run in the rate–distortion plane: validation KL and reconstruction, β, schedule, run or sweep."""
    valid = summary.valid
    train = _train_block(config)
    return {
        "name": name,
        "kl": valid.kl if valid else None,
        "recon": valid.recon if valid else None,
        "beta": finite_number(train.get("beta")),
        "schedule": train.get("schedule"),
        "source": "sweep" if summary.sweep is not None else "run",
    }


def _flat(d: Mapping[str, Any], prefix: str = "") -> dict[str, object]:
    out: dict[str, object] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping):
            out.update(_flat(v, key + "."))
        elif isinstance(v, list):
            out[key] = json.dumps(v)
        else:
            out[key] = v
    return out


def config_diff(configs: Mapping[str, Mapping[str, Any]]) -> dict[str, list[object]]:
    """{config key: one value per run} for the keys (model.*, train.*, corpus.*) whose values differ between
    the runs, in sorted key order; a run without the key shows '–'."""
    flat = {
        name: {k: v for k, v in _flat(cfg).items() if k.split(".")[0] in ("model", "train", "corpus")}
        for name, cfg in configs.items()
    }
    keys = sorted(set().union(*(f.keys() for f in flat.values()))) if flat else []
    return {
        k: [flat[n].get(k, "–") for n in flat]
        for k in keys
        if len({json.dumps(flat[n].get(k), sort_keys=True, default=str) for n in flat}) > 1
    }


__all__ = [
    "COMPARE_COLUMNS",
    "COMPARE_SENTENCES",
    "comparison_from_eval",
    "config_diff",
    "empty_comparison",
    "final_figures",
    "measure_comparison",
    "rd_point",
]
