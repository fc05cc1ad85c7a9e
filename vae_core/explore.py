"""What the app's pages ask of a run, numpy in and numpy out: the pages never see a tensor.

Encode sentences → posterior parameters, decode codes → sentences, latent-space operations (interpolation,
traversal grids, arithmetic, attribute vectors, nearest neighbours, prior samples), generation-side analyses,
and per-dimension statistics (`LatentStats`). Codes are float32 arrays: (D,) for one code, (N, D) for many.
Everything runs under `torch.inference_mode()` and never changes the model, so one loaded `Run` can serve
every session at once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from vae_core import latent
from vae_core.config import DecodeConfig
from vae_core.grammar import Grammar
from vae_core.label_classifiers import ClassifierLabeller
from vae_core.runs import Run
from vae_core.summary import Summary

# --------------------------------------------------------------------------- encode / decode


def _np(x: torch.Tensor) -> np.ndarray:
    return x.detach().cpu().numpy().astype(np.float32, copy=False)


def _t(x: Any) -> Any:
    """An array (or list) as a float32 tensor of its own (cached arrays are read-only); tensors pass through."""
    return x if isinstance(x, torch.Tensor) else torch.from_numpy(np.array(x, dtype=np.float32))


def encode(run: Run, sentences: Sequence[str], batch_size: int = 256) -> tuple[np.ndarray, np.ndarray, list[list[str]]]:
    """Posterior means and log-variances (N, D) float32 of sentences, in input order, and each one's OOV words.

    Tokenised as the run was trained (its lowercase and max_len).
    """
    from vae_core.encoding import posterior_means

    tcfg = run.train_config
    mu, logvar, oov = posterior_means(
        run.model, run.vocab, list(sentences), lowercase=tcfg.lowercase, batch_size=batch_size, max_len=tcfg.max_len
    )
    return _np(mu), _np(logvar), oov


def decode(run: Run, z: np.ndarray, cfg: DecodeConfig = DecodeConfig()) -> list[str]:
    """Sentences for codes z (B, D) or (D,), one batched call with the strategy of cfg."""
    from vae_core.decode import decode as decode_codes

    z_t = _t(z).reshape(-1, run.model_config.latent_dim)  # (B, D)
    if z_t.size(0) == 0:
        return []
    with torch.inference_mode():
        return list(decode_codes(run.model, z_t, run.vocab, cfg).texts)


# --------------------------------------------------------------------------- latent operations (numpy wrappers)


def interpolate(a: Any, b: Any, steps: int, method: latent.InterpolationMethod = "lerp") -> np.ndarray:
    """latent.interpolate: from a (D,) to b (D,) in `steps` codes; returns (steps, D)."""
    return _np(latent.interpolate(_t(a), _t(b), steps, method))


def traversal_values(n_values: int = 9, span: float = 3.0) -> np.ndarray:
    """latent.traversal_values: (n_values,) symmetric values from -span to +span."""
    return _np(latent.traversal_values(n_values, span))


def traversal_grid(
    z0: Any, dims: Sequence[int], values: Any, mode: latent.TraversalMode = "absolute", posterior_std: Any = None
) -> np.ndarray:
    """latent.traversal_grid: z0 (D,), values (V,), posterior_std (D,) or None → (len(dims), V, D)."""
    std = None if posterior_std is None else _t(posterior_std)
    return _np(latent.traversal_grid(_t(z0), [int(d) for d in dims], _t(values), mode, std))


def arithmetic(a: Any, b: Any, c: Any) -> np.ndarray:
    """latent.arithmetic: a − b + c, all (D,) or all (N, D)."""
    return _np(latent.arithmetic(_t(a), _t(b), _t(c)))


def attribute_vector(codes: Any, mask: Any) -> np.ndarray:
    """latent.attribute_vector: mean of codes (N, D) with mask (N,) minus the rest's; returns (D,)."""
    return _np(latent.attribute_vector(_t(codes), torch.from_numpy(np.array(mask, dtype=bool))))


def move_along(z: Any, direction: Any, scales: Sequence[float]) -> np.ndarray:
    """latent.move_along: z + s·direction for each scale; z, direction (D,) → (len(scales), D)."""
    return _np(latent.move_along(_t(z), _t(direction), scales))


def nearest(codes: Any, query: Any, k: int = 5, metric: latent.Metric = "euclidean") -> tuple[np.ndarray, np.ndarray]:
    """latent.nearest: (indices (Q, k) int64, distances (Q, k)) of the codes (N, D) nearest each query."""
    idx, dist = latent.nearest(_t(codes), _t(query), k=k, metric=metric)
    return idx.cpu().numpy(), _np(dist)


def prior_codes(n: int, latent_dim: int, seed: int = 0) -> np.ndarray:
    """n codes z ~ N(0, I): (n, latent_dim), the same for the same seed (torch's CPU generator)."""
    generator = torch.Generator().manual_seed(int(seed))
    return _np(torch.randn(n, latent_dim, generator=generator))


# --------------------------------------------------------------------------- generation-side analyses


def run_grammar(run: Run, strict: bool = False) -> Grammar | None:
    """The grammar of the run's corpus ('synthetic' → the built-in one), or None when it has none or (unless
    `strict`: then GrammarError saying why) it cannot be read. A run trained on a grammar file reads its own
    checked copy (`grammar.run_copy`: config.json records its sha256); otherwise the run's spec is checked first
    (a run file may not point outside the run and the data folders)."""
    from vae_core.corpus import CorpusError, check_run_corpus_spec
    from vae_core.grammar import SHA256_KEY, GrammarError, grammar_for_corpus, is_grammar_spec
    from vae_core.jobs import data_dirs

    spec = run.corpus_spec
    if not is_grammar_spec(spec):
        return None
    config = getattr(run, "config", None)  # anything with corpus_spec and path will do (a Run has a config)
    info = config.get("corpus") if isinstance(config, dict) and isinstance(config.get("corpus"), dict) else {}
    try:
        sha256 = info.get(SHA256_KEY)
        if sha256 is None:
            spec = check_run_corpus_spec(spec, run.path, data_dirs())
        return grammar_for_corpus(spec, run.path, sha256)
    except CorpusError as e:
        if strict:
            raise GrammarError(str(e)) from e
        return None
    except GrammarError:
        if strict:
            raise
        return None


def run_classifiers(run: Run) -> ClassifierLabeller | None:
    """Classifiers trained on the label columns of the run's corpus (`label_classifiers.corpus_labeller`), for a
    corpus with labels and no grammar; None for a grammar corpus, a corpus without labels, or one that cannot be
    read here (the run's spec is checked first). Trained once per process (seconds), tokenised as the run was."""
    from vae_core.corpus import CorpusError, check_run_corpus_spec
    from vae_core.grammar import is_grammar_spec
    from vae_core.jobs import data_dirs
    from vae_core.label_classifiers import corpus_labeller

    spec = run.corpus_spec
    if not spec or is_grammar_spec(spec):
        return None
    info = run.config.get("corpus") if isinstance(run.config.get("corpus"), dict) else {}
    column = info.get("text_column") if isinstance(info.get("text_column"), str) else None
    config = run.train_config
    try:
        spec = check_run_corpus_spec(spec, run.path, data_dirs())
        return corpus_labeller(spec, column, int(config.seed), bool(config.lowercase), config.tokenization)
    except (CorpusError, OSError, ValueError):
        return None


def run_labeller(run: Run) -> Grammar | ClassifierLabeller | None:
    """What labels the run's decoded sentences: its grammar (`run_grammar`), else classifiers trained on its
    corpus's labels (`run_classifiers`), else None (the analyses then parse with the built-in grammar)."""
    return run_grammar(run) or run_classifiers(run)


def traversal_effects(
    run: Run, base_codes: np.ndarray, dims: Sequence[int], values: np.ndarray | None = None
) -> dict[str, Any]:
    """validity.traversal_factor_effects from base codes (M, D) along `dims` (values (V,) or the default),
    labelled by `run_labeller` (the run's grammar, else classifiers of its labels; the built-in grammar
    without either). 'labeller' in the result says which, with each classifier's held-out accuracy."""
    from vae_core.validity import traversal_factor_effects

    base = torch.from_numpy(np.array(base_codes, dtype=np.float32))
    vals = None if values is None else torch.from_numpy(np.array(values, dtype=np.float32))
    with torch.inference_mode():
        return traversal_factor_effects(run.model, run.vocab, base, dims=[int(d) for d in dims], values=vals,
                                        grammar=run_labeller(run))


def prior_validity(run: Run, n: int, seed: int = 0) -> dict[str, Any]:
    """validity.prior_sample_validity of n prior samples (greedy decodes parsed with the run's grammar)."""
    from vae_core.validity import prior_sample_validity

    with torch.inference_mode():
        return prior_sample_validity(run.model, run.vocab, n=n, seed=seed, grammar=run_grammar(run))


def generation_figures(
    run: Run, sentences: Sequence[str], n_samples: int = 1000, n_pairs: int = 500, seed: int = 0
) -> dict[str, Any]:
    """Diversity of n_samples greedy decodes of z ~ N(0, I) (Self-BLEU, distinct-n: generation_metrics) and
    the mean interpolation smoothness of n_pairs lerp paths (11 points, LangSpace's) between random pairs of
    `sentences`, greedy-decoded. Same seed → same figures. Keys: 'diversity' {...}, 'smoothness' {...}."""
    from vae_core.generation_metrics import INTERPOLATION_STEPS, generation_diversity, path_smoothness

    samples = decode(run, prior_codes(n_samples, run.model_config.latent_dim, seed))
    out: dict[str, Any] = {"diversity": generation_diversity([t.split() for t in samples]), "seed": seed}
    out["diversity"]["examples"] = samples[:5]
    sentences = list(sentences)
    if len(sentences) >= 2 and n_pairs > 0:
        rng = np.random.default_rng(seed + 3)
        pairs = [rng.choice(len(sentences), size=2, replace=False) for _ in range(n_pairs)]
        mu, _, _ = encode(run, [sentences[int(i)] for pair in pairs for i in pair])  # (2P, D)
        paths = np.concatenate([interpolate(mu[2 * p], mu[2 * p + 1], INTERPOLATION_STEPS) for p in range(n_pairs)])
        texts = decode(run, paths)  # (P · steps) sentences, path by path
        words = [t.split() for t in texts]
        out["smoothness"] = path_smoothness(
            [words[p * INTERPOLATION_STEPS:(p + 1) * INTERPOLATION_STEPS] for p in range(n_pairs)]
        ) | {"steps": INTERPOLATION_STEPS, "method": "lerp", "distance": "word edit distance"}
    return out


# --------------------------------------------------------------------------- per-dimension statistics


@dataclass(frozen=True)
class LatentStats:
    """KL per latent dimension and which dimensions are active, with where the numbers came from."""

    kl: tuple[float, ...]  # (D,) nats, mean over sentences
    active: tuple[bool, ...]  # (D,)
    source: str  # "measured", "evaluation", "corpus sample", "training" or "none"
    variances: tuple[float, ...] | None = None  # (D,) Var_x of the posterior mean, when known
    threshold: float = 0.01  # the active-unit threshold the `active` flags used (metrics.AU_THRESHOLD)
    mi: float | None = None  # I(x;z) in nats (bounded by ~log n), when measured
    n: int = 0  # sentences measured (0 when read from a file)

    @property
    def n_active(self) -> int:
        return int(sum(self.active))

    @property
    def order(self) -> list[int]:
        """Active dimensions by KL (largest first), then the inactive ones by KL."""
        return sorted(range(len(self.kl)), key=lambda d: (not self.active[d], -self.kl[d], d))

    @property
    def active_dims(self) -> list[int]:
        return [d for d in self.order if self.active[d]]

    @property
    def inactive_dims(self) -> list[int]:
        return [d for d in self.order if not self.active[d]]


def latent_stats_of(
    mu: np.ndarray, logvar: np.ndarray, seed: int = 0, with_mi: bool = True, source: str = "measured"
) -> LatentStats:
    """KL per dim, active units (Var_x μ > AU_THRESHOLD) and, with_mi, I(x;z) (seeded) of posteriors (N, D)."""
    from vae_core.metrics import AU_THRESHOLD, active_units, kl_per_dim, mutual_information_from_posteriors

    mu_t = torch.from_numpy(np.array(mu, dtype=np.float32))
    lv_t = torch.from_numpy(np.array(logvar, dtype=np.float32))
    _, variances = active_units(mu_t)
    kl = kl_per_dim(mu_t, lv_t)
    mi = None
    if with_mi:
        mi = float(mutual_information_from_posteriors(mu_t, lv_t, torch.Generator().manual_seed(seed)))
    return LatentStats(
        kl=tuple(float(x) for x in kl),
        active=tuple(bool(v > AU_THRESHOLD) for v in variances),
        source=source,
        variances=tuple(float(v) for v in variances),
        threshold=AU_THRESHOLD,
        mi=mi,
        n=int(mu_t.shape[0]),
    )


def dim_stats(
    summary: Summary, latent_dim: int, measure: Callable[[], tuple[np.ndarray, np.ndarray] | None]
) -> LatentStats:
    """Per-dimension statistics of a run: from its evaluation, else measured on codes `measure()` returns
    (posterior means and log-variances (N, D) of some sentences; None or < 2 rows when there are none),
    else from the last validation of its training, else KL 0 with every dimension active ('none')."""
    from vae_core.metrics import AU_THRESHOLD

    ev = summary.evaluation
    if ev is not None and ev.kl_per_dim is not None and ev.au_variances is not None:
        if len(ev.kl_per_dim) == latent_dim == len(ev.au_variances):
            active = tuple(v > AU_THRESHOLD for v in ev.au_variances)
            return LatentStats(ev.kl_per_dim, active, "evaluation", ev.au_variances, AU_THRESHOLD)
    codes = measure()
    if codes is not None and len(codes[0]) >= 2:
        return latent_stats_of(codes[0], codes[1], with_mi=False, source="corpus sample")
    valid = summary.valid
    if valid is not None and valid.kl_per_dim is not None and len(valid.kl_per_dim) == latent_dim:
        return LatentStats(valid.kl_per_dim, tuple(k > AU_THRESHOLD for k in valid.kl_per_dim), "training")
    return LatentStats((0.0,) * latent_dim, (True,) * latent_dim, "none")


__all__ = [
    "LatentStats",
    "arithmetic",
    "attribute_vector",
    "decode",
    "dim_stats",
    "encode",
    "generation_figures",
    "interpolate",
    "latent_stats_of",
    "move_along",
    "nearest",
    "prior_codes",
    "prior_validity",
    "run_classifiers",
    "run_grammar",
    "run_labeller",
    "traversal_effects",
    "traversal_grid",
    "traversal_values",
]
