"""Generation-side validity on a grammar corpus: whether decoded codes are corpus sentences, and of which factors.

Decoded sentences are parsed back into factors with the corpus's grammar (`grammar.Grammar.parse`;
the built-in one when none is given; None = not a corpus sentence; `grammar.grammar_for_corpus` picks
a run's), or labelled by any other `Labeller` (`label_classifiers.ClassifierLabeller`: classifiers trained on
a labelled corpus, where "a factor changed" = its predicted label changed and validity is not measured).
From that: validity and diversity of prior samples, which factor each latent
dimension changes along a traversal, and whether interpolation paths stay on valid sentences.
Shapes: M base codes, V traversal values, D latent, P pairs, S steps per path.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

import torch

from vae_core.config import DecodeConfig
from vae_core.decode import decode
from vae_core.grammar import Grammar, builtin_grammar
from vae_core.latent import interpolate, traversal_grid, traversal_values
from vae_core.model import SentenceVAE
from vae_core.text import Vocab

Parse = Mapping[str, str] | None
GREEDY = DecodeConfig(strategy="greedy", max_len=20)  # built-in sentences have at most 9 tokens; see _decoding
BUILTIN_FACTORS = tuple(builtin_grammar(check=False).factors)
DECODE_BATCH = 2048  # codes decoded per call
OWN_SOLE_SHARE = 0.8  # a dimension owns a factor when ≥ 80% of its changing steps change that factor alone
OWN_CHANGE_RATE = 0.3  # ... and it changes something in ≥ 30% of its steps


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval of a proportion successes / n ((0, 1) when n == 0)."""
    if n <= 0:
        return 0.0, 1.0
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * ((p * (1 - p) / n + z * z / (4 * n * n)) ** 0.5) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def decode_texts(model: SentenceVAE, vocab: Vocab, z: torch.Tensor, cfg: DecodeConfig = GREEDY) -> list[str]:
    """Decoded sentences of codes z (B, D), in batches of DECODE_BATCH; the model's mode is kept."""
    was_training = model.training
    model.eval()
    try:
        texts: list[str] = []
        for start in range(0, z.size(0), DECODE_BATCH):
            texts.extend(decode(model, z[start:start + DECODE_BATCH], vocab, cfg).texts)
        return texts
    finally:
        model.train(was_training)


def _device(model: SentenceVAE) -> torch.device:
    return next(model.parameters()).device


def _grammar(grammar: Grammar | None) -> Grammar:
    return builtin_grammar() if grammar is None else grammar


@runtime_checkable
class Labeller(Protocol):
    """What the traversal and interpolation analyses need of whatever labels decoded sentences.

    `factors`: factor → its values; `label(sentences)`: per sentence {factor: value}, or None when the
    sentence is not a corpus sentence (only a labeller that `validates` ever says so); `max_tokens`: tokens in
    the corpus's longest sentence; `describe()`: JSON-ready, what labelled them (with accuracies if learnt).
    """

    factors: Mapping[str, Sequence[str]]
    validates: bool
    max_tokens: int

    def label(self, sentences: Sequence[str]) -> list[dict[str, str] | None]: ...

    def describe(self) -> dict[str, Any]: ...


class GrammarLabeller:
    """A grammar as a Labeller: exact labels from its parser, None for a sentence it does not generate."""

    kind = "grammar"
    validates = True

    def __init__(self, grammar: Grammar) -> None:
        self.grammar = grammar
        self.factors = grammar.factors
        self.max_tokens = grammar.max_tokens

    def label(self, sentences: Sequence[str]) -> list[dict[str, str] | None]:
        return [self.grammar.parse(s) for s in sentences]

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "name": self.grammar.name, "factors": list(self.factors)}


def as_labeller(labeller: Grammar | Labeller | None) -> Labeller:
    """A grammar (None: the built-in one) wrapped as a Labeller; a Labeller as it is."""
    if labeller is None or isinstance(labeller, Grammar):
        return GrammarLabeller(_grammar(labeller))
    return labeller


def _decoding(grammar: Grammar | Labeller, cfg: DecodeConfig) -> DecodeConfig:
    """`cfg`, with GREEDY's length cap raised to leave a grammar's longest sentence 4 tokens of room."""
    if cfg is GREEDY and grammar.max_tokens + 4 > cfg.max_len:
        return DecodeConfig(strategy="greedy", max_len=grammar.max_tokens + 4)
    return cfg


# ----------------------------------------------------------------------------- prior samples


def prior_sample_validity(
    model: SentenceVAE, vocab: Vocab, n: int = 1000, seed: int = 0, decode_cfg: DecodeConfig = GREEDY,
    grammar: Grammar | None = None,
) -> dict[str, Any]:
    """Decode n codes z ~ N(0, I) and parse them with `grammar` (default: the built-in one).

    Returns 'validity' (share that parse), 'distinct' (distinct sentences / n), 'distinct_valid'
    (distinct valid sentences / n), 'n_distinct_valid', 'coverage' (distinct valid sentences /
    size of the corpus), 'n', 'seed', 'examples' (the first 10 decodes). Global RNG untouched.
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    gen = torch.Generator(device="cpu").manual_seed(int(seed))
    z = torch.randn(n, model.cfg.latent_dim, generator=gen).to(_device(model))  # (n, D)
    grammar = _grammar(grammar)
    texts = decode_texts(model, vocab, z, _decoding(grammar, decode_cfg))
    valid = [t for t in texts if grammar.parse(t) is not None]
    n_corpus = grammar.size
    distinct_valid = len(set(valid))
    return {
        "validity": len(valid) / n,
        "distinct": len(set(texts)) / n,
        "distinct_valid": distinct_valid / n,
        "n_distinct_valid": distinct_valid,
        "coverage": distinct_valid / n_corpus,
        "n": n,
        "seed": seed,
        "examples": texts[:10],
    }


# ----------------------------------------------------------------------------- traversals


def summarise_traversals(
    parses: Sequence[Sequence[Parse]], factors: Sequence[str] = BUILTIN_FACTORS
) -> dict[str, Any]:
    """Which factors change between consecutive values of traversals (one row per base code).

    A step from a valid parse to a valid parse changes the factors whose values differ; a step
    with an invalid end (None) counts as a change that no factor owns (change to/from invalid).
    Returns 'n_steps', 'change_rate' (changing steps / steps), 'invalid_step_rate',
    'factor_share' {f: changing steps where f changes / changing steps}, 'sole_share'
    {f: changing steps where only f changes / changing steps}, 'top_factor' (highest
    factor_share, None without changing steps), 'validity' (share of parses that are valid).
    """
    factors = tuple(factors)
    n_steps = n_changing = n_invalid = n_valid = n_points = 0
    changed = dict.fromkeys(factors, 0)
    sole = dict.fromkeys(factors, 0)
    for row in parses:
        n_points += len(row)
        n_valid += sum(p is not None for p in row)
        for a, b in zip(row[:-1], row[1:], strict=True):
            n_steps += 1
            if a is None or b is None:
                n_changing += 1
                n_invalid += 1
                continue
            diff = [f for f in factors if a.get(f) != b.get(f)]
            if not diff:
                continue
            n_changing += 1
            for f in diff:
                changed[f] += 1
            if len(diff) == 1:
                sole[diff[0]] += 1
    denom = max(1, n_changing)
    factor_share = {f: changed[f] / denom for f in factors}
    top = max(factors, key=lambda f: (factor_share[f], -factors.index(f))) if n_changing and factors else None
    return {
        "n_steps": n_steps,
        "change_rate": n_changing / n_steps if n_steps else 0.0,
        "invalid_step_rate": n_invalid / n_steps if n_steps else 0.0,
        "factor_share": factor_share,
        "sole_share": {f: sole[f] / denom for f in factors},
        "top_factor": top if top is not None and changed[top] > 0 else None,
        "validity": n_valid / n_points if n_points else 0.0,
    }


def owned_factors(
    per_dim: Sequence[Mapping[str, Any]],
    min_sole_share: float = OWN_SOLE_SHARE,
    min_change_rate: float = OWN_CHANGE_RATE,
    factors: Sequence[str] = BUILTIN_FACTORS,
) -> dict[str, list[int]]:
    """{factor: dims that own it}: sole_share[f] ≥ min_sole_share and change_rate ≥ min_change_rate.

    per_dim: summaries from `summarise_traversals`, each with a 'dim' key. Factors without an
    owner are left out; keys follow `factors` order.
    """
    owners: dict[str, list[int]] = {}
    for f in factors:
        dims = [
            int(s["dim"]) for s in per_dim
            if s["change_rate"] >= min_change_rate and s["sole_share"].get(f, 0.0) >= min_sole_share
        ]
        if dims:
            owners[f] = dims
    return owners


def traversal_factor_effects(
    model: SentenceVAE,
    vocab: Vocab,
    base_z: torch.Tensor,
    dims: Sequence[int] | None = None,
    values: torch.Tensor | None = None,
    decode_cfg: DecodeConfig = GREEDY,
    grammar: Grammar | Labeller | None = None,
) -> dict[str, Any]:
    """Traverse each dimension from M base codes (absolute values) and count the factors that change.

    Decodes are parsed with `grammar` (default: the built-in one) or labelled by a `Labeller`; with one that
    does not validate (classifiers), 'validity' and 'invalid_step_rate' are None (not measured).

    base_z: (M, D) posterior means; dims: which dimensions (default all); values: (V,) (default
    `traversal_values(9, 3.0)`). Each dimension is one batched decode of M·V codes. Returns
    'per_dim' [summarise_traversals + 'dim'], 'owners' {factor: [dims]}, 'owned_factors' [factor]
    (a dimension owns f when ≥ 80% of its changing steps change f alone and it changes something
    in ≥ 30% of steps), 'values', 'n_base', thresholds.
    """
    base_z = torch.as_tensor(base_z, dtype=torch.float32)
    if base_z.dim() != 2 or base_z.size(1) != model.cfg.latent_dim:
        raise ValueError(f"base_z must have shape (M, {model.cfg.latent_dim}), got {tuple(base_z.shape)}")
    values = traversal_values(9, 3.0) if values is None else torch.as_tensor(values, dtype=torch.float32)
    dims = list(range(model.cfg.latent_dim)) if dims is None else [int(d) for d in dims]
    M, V = base_z.size(0), values.numel()
    labeller = as_labeller(grammar)
    factors = tuple(labeller.factors)
    decode_cfg = _decoding(labeller, decode_cfg)
    per_dim = []
    if M and dims:
        grids = torch.stack([traversal_grid(z0, dims, values) for z0 in base_z.cpu()])  # (M, len(dims), V, D)
        for j, d in enumerate(dims):
            z = grids[:, j].reshape(M * V, -1).to(_device(model))  # (M·V, D), row m·V + v
            labels = labeller.label(decode_texts(model, vocab, z, decode_cfg))
            summary = summarise_traversals([labels[m * V:(m + 1) * V] for m in range(M)], factors)
            if not labeller.validates:
                summary.update(validity=None, invalid_step_rate=None)
            per_dim.append({"dim": d, **summary})
    owners = owned_factors(per_dim, factors=factors)
    return {
        "per_dim": per_dim,
        "owners": owners,
        "owned_factors": list(owners),
        "n_owned": len(owners),
        "n_factors": len(factors),
        "values": [float(v) for v in values],
        "n_base": M,
        "min_sole_share": OWN_SOLE_SHARE,
        "min_change_rate": OWN_CHANGE_RATE,
        "labeller": labeller.describe(),
    }


# ----------------------------------------------------------------------------- interpolation


def _pair_codes(model: SentenceVAE, vocab: Vocab, pairs: Any, lowercase: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Pairs of sentences or of codes → a (P, D), b (P, D)."""
    if isinstance(pairs, torch.Tensor):
        if pairs.dim() != 3 or pairs.size(1) != 2:
            raise ValueError(f"code pairs must have shape (P, 2, D), got {tuple(pairs.shape)}")
        return pairs[:, 0].float().cpu(), pairs[:, 1].float().cpu()
    pairs = list(pairs)
    if not pairs:
        D = model.cfg.latent_dim
        return torch.zeros(0, D), torch.zeros(0, D)
    if all(isinstance(a, str) and isinstance(b, str) for a, b in pairs):
        from vae_core.encoding import posterior_means

        sents = [s for pair in pairs for s in pair]
        mu, _, _ = posterior_means(model, vocab, sents, lowercase=lowercase)  # (2P, D)
        return mu[0::2].float(), mu[1::2].float()
    a = torch.stack([torch.as_tensor(x, dtype=torch.float32) for x, _ in pairs])
    b = torch.stack([torch.as_tensor(y, dtype=torch.float32) for _, y in pairs])
    return a.cpu(), b.cpu()


def interpolation_validity(
    model: SentenceVAE,
    vocab: Vocab,
    pairs: Any,
    steps: int = 8,
    method: str = "lerp",
    decode_cfg: DecodeConfig = GREEDY,
    lowercase: bool = False,
    grammar: Grammar | Labeller | None = None,
) -> dict[str, Any]:
    """Validity of interpolation paths between pairs of sentences, or of codes ((P, 2, D) or [(a, b)]).

    Each path has `steps` points, both ends included (as `latent.interpolate`); its steps − 2
    intermediate points are decoded in one batch. Returns 'path_validity' (share of paths whose
    intermediate decodes all parse) with 'path_validity_ci95' (Wilson interval), 'step_validity'
    (share of intermediate decodes that parse with `grammar`, default the built-in one),
    'endpoint_validity' (share of decoded end points that parse), 'n_paths', 'steps', 'method'. Labels along
    each path (`grammar` or a `Labeller`; invalid points skipped): 'label_monotone' (share of paths on which no
    factor comes back to a value it left), 'label_changes' (mean factor changes a path). With a labeller that
    does not validate (classifiers) the validity figures are None (not measured).
    """
    if steps < 3:
        raise ValueError(f"steps must be >= 3 (two end points and at least one point between), got {steps}")
    a, b = _pair_codes(model, vocab, pairs, lowercase)
    P = a.size(0)
    if P == 0:
        raise ValueError("no pairs to interpolate")
    paths = torch.stack([interpolate(a[i], b[i], steps, method) for i in range(P)])  # (P, S, D)
    labeller = as_labeller(grammar)
    texts = decode_texts(model, vocab, paths.reshape(P * steps, -1).to(_device(model)), _decoding(labeller, decode_cfg))
    labels = labeller.label(texts)
    ok = [p is not None for p in labels]
    inner = [ok[p * steps + 1:(p + 1) * steps - 1] for p in range(P)]
    ends = [ok[p * steps] for p in range(P)] + [ok[(p + 1) * steps - 1] for p in range(P)]
    n_valid_paths = sum(all(row) for row in inner)
    changes = [_label_path(labels[p * steps:(p + 1) * steps], labeller.factors) for p in range(P)]
    n_monotone = sum(monotone for _, monotone in changes)
    validates = labeller.validates
    return {
        "path_validity": n_valid_paths / P if validates else None,
        "path_validity_ci95": list(wilson_interval(n_valid_paths, P)) if validates else None,
        "step_validity": sum(sum(row) for row in inner) / (P * (steps - 2)) if validates else None,
        "endpoint_validity": sum(ends) / len(ends) if validates else None,
        "label_monotone": n_monotone / P,
        "label_monotone_ci95": list(wilson_interval(n_monotone, P)),
        "label_changes": sum(n for n, _ in changes) / P,
        "labeller": labeller.describe(),
        "n_paths": P,
        "steps": steps,
        "method": method,
        "examples": [texts[p * steps:(p + 1) * steps] for p in range(min(3, P))],
    }


def _label_path(labels: Sequence[Parse], factors: Sequence[str]) -> tuple[int, bool]:
    """(factor changes between consecutive labelled points, whether no factor returns to a value it left)."""
    points = [p for p in labels if p is not None]
    n_changes, monotone = 0, True
    for f in factors:
        seen = [points[0].get(f)] if points else []
        for p in points[1:]:
            if p.get(f) != seen[-1]:
                n_changes += 1
                monotone = monotone and p.get(f) not in seen
                seen.append(p.get(f))
    return n_changes, monotone


__all__ = [
    "GrammarLabeller",
    "Labeller",
    "as_labeller",
    "prior_sample_validity",
    "summarise_traversals",
    "owned_factors",
    "traversal_factor_effects",
    "interpolation_validity",
    "decode_texts",
    "wilson_interval",
]
