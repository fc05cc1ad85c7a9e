"""A typed view of a run's summary.json, and the JSON-value coercions every run-file reader shares.

summary.json is untrusted input (a run may come from someone else): `Summary.from_json` turns any JSON
value into a `Summary` whose fields are the types they say, or None. A missing, ill-typed or non-finite
value becomes None; nothing raises. Writers stay where they are (`train` writes 'training', `evaluate`
'eval', `sweep` 'sweep'); `vae_core.runs.read_summary(run_dir)` reads the file into this class.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


def finite_number(value: Any) -> float | None:
    """A JSON figure as a float, or None when it is missing, a bool, not a number, NaN or infinite."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def whole_number(value: Any) -> int | None:
    """A JSON count as an int, or None when it is missing, a bool or not an integer."""
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return int(value)


def text(value: Any) -> str | None:
    """A JSON string, or None when it is anything else."""
    return value if isinstance(value, str) else None


def finite_vector(value: Any) -> tuple[float, ...] | None:
    """A JSON list of finite numbers as a tuple, or None when it is not one (one bad entry spoils it)."""
    if not isinstance(value, (list, tuple)):
        return None
    out = tuple(finite_number(v) for v in value)
    return None if any(v is None for v in out) else out  # type: ignore[return-value]


def _mapping(value: Any) -> Mapping[str, Any] | None:
    return value if isinstance(value, Mapping) else None


@dataclass(frozen=True, slots=True)
class ValidationFigures:
    """The last validation of a training (summary.json 'training' → 'valid'), per sentence in nats."""

    recon: float | None = None
    kl: float | None = None
    elbo: float | None = None
    nll_bound: float | None = None
    active_units: int | None = None
    kl_per_dim: tuple[float, ...] | None = None  # (D,)

    @classmethod
    def from_json(cls, value: Any) -> ValidationFigures | None:
        d = _mapping(value)
        if d is None:
            return None
        return cls(
            recon=finite_number(d.get("recon")),
            kl=finite_number(d.get("kl")),
            elbo=finite_number(d.get("elbo")),
            nll_bound=finite_number(d.get("nll_bound")),
            active_units=whole_number(d.get("active_units")),
            kl_per_dim=finite_vector(d.get("kl_per_dim")),
        )


@dataclass(frozen=True, slots=True)
class TrainingSummary:
    """How a training ended (summary.json 'training')."""

    state: str | None = None
    step: int | None = None
    valid: ValidationFigures | None = None

    @classmethod
    def from_json(cls, value: Any) -> TrainingSummary | None:
        d = _mapping(value)
        if d is None:
            return None
        return cls(text(d.get("state")), whole_number(d.get("step")), ValidationFigures.from_json(d.get("valid")))


@dataclass(frozen=True, slots=True)
class DisentanglementFigures:
    """The headline disentanglement metrics of an evaluation (summary.json 'eval' → 'disentanglement')."""

    mig: float | None = None
    dci_disentanglement: float | None = None
    dci_completeness: float | None = None
    dci_informativeness: float | None = None
    sap: float | None = None
    modularity: float | None = None
    explicitness: float | None = None
    beta_vae: float | None = None  # BetaVAE (z-diff) evaluation accuracy; chance = 1 / factors
    factor_vae: float | None = None  # FactorVAE (z-min-var) evaluation accuracy
    convention: str | None = None  # the estimators' convention (vae_core.metric_conventions); None: before it
    caveats: tuple[tuple[str, str], ...] = ()  # (metric, why it has no value)

    @classmethod
    def from_json(cls, value: Any) -> DisentanglementFigures | None:
        d = _mapping(value)
        if d is None:
            return None
        dci = _mapping(d.get("dci")) or {}
        convention = _mapping(d.get("convention")) or {}
        caveats = _mapping(d.get("caveats")) or {}
        return cls(
            explicitness=finite_number(d.get("explicitness")),
            beta_vae=finite_number((_mapping(d.get("beta_vae")) or {}).get("score")),
            factor_vae=finite_number((_mapping(d.get("factor_vae")) or {}).get("score")),
            convention=text(convention.get("name")),
            caveats=tuple((str(k), v) for k, v in caveats.items() if isinstance(v, str)),
            mig=finite_number(d.get("mig")),
            dci_disentanglement=finite_number(dci.get("disentanglement")),
            dci_completeness=finite_number(dci.get("completeness")),
            dci_informativeness=finite_number(dci.get("informativeness")),
            sap=finite_number(d.get("sap")),
            modularity=finite_number(d.get("modularity")),
        )


@dataclass(frozen=True, slots=True)
class GenerationFigures:
    """Diversity of prior samples and smoothness of decoded paths (summary.json 'eval' → 'generation')."""

    n_samples: int | None = None
    self_bleu: float | None = None  # Self-BLEU-4: 1 = the samples repeat each other
    self_bleu_2: float | None = None
    distinct_1: float | None = None
    distinct_2: float | None = None
    smoothness: float | None = None  # LangSpace interpolation smoothness (word edit distance), mean over paths
    n_paths: int | None = None

    @classmethod
    def from_json(cls, value: Any) -> GenerationFigures | None:
        d = _mapping(value)
        if d is None:
            return None
        div = _mapping(d.get("diversity")) or {}
        smooth = _mapping(d.get("smoothness")) or {}
        return cls(
            n_samples=whole_number(div.get("n")),
            self_bleu=finite_number(div.get("self_bleu")),
            self_bleu_2=finite_number(div.get("self_bleu_2")),
            distinct_1=finite_number(div.get("distinct_1")),
            distinct_2=finite_number(div.get("distinct_2")),
            smoothness=finite_number(smooth.get("smoothness")),
            n_paths=whole_number(smooth.get("n_paths")),
        )


@dataclass(frozen=True, slots=True)
class PriorValidity:
    """Prior samples decoded and parsed (validity.prior_sample_validity): shares of the n samples."""

    n: int | None = None
    validity: float | None = None  # valid sentences of the corpus
    distinct: float | None = None  # distinct sentences
    distinct_valid: float | None = None  # distinct valid sentences
    coverage: float | None = None  # distinct valid sentences / sentences of the corpus

    @classmethod
    def from_json(cls, value: Any) -> PriorValidity | None:
        d = _mapping(value)
        if d is None:
            return None
        return cls(
            n=whole_number(d.get("n")),
            validity=finite_number(d.get("validity")),
            distinct=finite_number(d.get("distinct")),
            distinct_valid=finite_number(d.get("distinct_valid")),
            coverage=finite_number(d.get("coverage")),
        )


@dataclass(frozen=True, slots=True)
class Evaluation:
    """`python -m vae_core eval`'s figures (summary.json 'eval'); per sentence in nats unless said."""

    split: str | None = None
    corpus: str | None = None
    n_sentences: int | None = None
    nll_samples: int | None = None
    evaluated_at: str | None = None
    recon: float | None = None
    kl: float | None = None
    elbo: float | None = None
    nll: float | None = None  # importance-sampled (with --nll-samples)
    nll_bound: float | None = None  # −ELBO
    ppl: float | None = None
    ppl_bound: float | None = None
    mi: float | None = None
    mi_n: int | None = None  # sentences the MI was estimated on
    active_units: int | None = None
    kl_per_dim: tuple[float, ...] | None = None  # (D,)
    au_variances: tuple[float, ...] | None = None  # (D,) Var_x of the posterior mean
    exact_match: float | None = None
    token_accuracy: float | None = None
    bleu: float | None = None
    disentanglement: DisentanglementFigures | None = None
    prior_samples: PriorValidity | None = None
    generation: GenerationFigures | None = None

    @classmethod
    def from_json(cls, value: Any) -> Evaluation | None:
        d = _mapping(value)
        if d is None:
            return None
        num = {k: finite_number(d.get(k)) for k in (
            "recon", "kl", "elbo", "nll", "nll_bound", "ppl", "ppl_bound", "mi", "exact_match", "token_accuracy",
            "bleu")}
        return cls(
            split=text(d.get("split")),
            corpus=text(d.get("corpus")),
            n_sentences=whole_number(d.get("n_sentences")),
            nll_samples=whole_number(d.get("nll_samples")),
            evaluated_at=text(d.get("evaluated_at")),
            mi_n=whole_number(d.get("mi_n")),
            active_units=whole_number(d.get("active_units")),
            kl_per_dim=finite_vector(d.get("kl_per_dim")),
            au_variances=finite_vector(d.get("au_variances")),
            disentanglement=DisentanglementFigures.from_json(d.get("disentanglement")),
            prior_samples=PriorValidity.from_json(d.get("prior_samples")),
            generation=GenerationFigures.from_json(d.get("generation")),
            **num,
        )


@dataclass(frozen=True, slots=True)
class SweepRecord:
    """What a sweep trial recorded about its run (summary.json 'sweep')."""

    study: str | None = None
    trial: int | None = None
    nll: float | None = None
    kl: float | None = None
    recon: float | None = None
    mig: float | None = None

    @classmethod
    def from_json(cls, value: Any) -> SweepRecord | None:
        d = _mapping(value)
        if d is None:
            return None
        return cls(
            study=text(d.get("study")),
            trial=whole_number(d.get("trial")),
            nll=finite_number(d.get("nll")),
            kl=finite_number(d.get("kl")),
            recon=finite_number(d.get("recon")),
            mig=finite_number(d.get("mig")),
        )


@dataclass(frozen=True, slots=True)
class Summary:
    """summary.json of a run: each block None when absent or not a JSON object."""

    training: TrainingSummary | None = None
    evaluation: Evaluation | None = None
    sweep: SweepRecord | None = None

    @classmethod
    def from_json(cls, value: Any) -> Summary:
        """Any parsed JSON value → a Summary (a non-object gives the empty Summary)."""
        d = _mapping(value) or {}
        return cls(
            TrainingSummary.from_json(d.get("training")),
            Evaluation.from_json(d.get("eval")),
            SweepRecord.from_json(d.get("sweep")),
        )

    @property
    def valid(self) -> ValidationFigures | None:
        """The last validation of the training, if any."""
        return self.training.valid if self.training is not None else None


__all__ = [
    "DisentanglementFigures",
    "Evaluation",
    "GenerationFigures",
    "PriorValidity",
    "Summary",
    "SweepRecord",
    "TrainingSummary",
    "ValidationFigures",
    "finite_number",
    "finite_vector",
    "text",
    "whole_number",
]
