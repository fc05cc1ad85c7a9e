"""Evaluate a run directory on a corpus split and record the result in its summary.json.

What `python -m vae_core eval` calls: model-quality figures (`metrics.evaluate_model`), then
disentanglement against label columns (`disentanglement.disentanglement_report`), then, on the
built-in corpus or a grammar, generation-side analysis (`validity`); on a corpus with label columns and no
grammar, the same traversal and interpolation measures with classifiers trained on its labels
(`label_classifiers`; their held-out accuracies under 'label_classifiers').
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vae_core.corpus import Corpus, TextSet, load_corpus
from vae_core.grammar import grammar_for_corpus, run_corpus_spec
from vae_core.metric_conventions import DEFAULT_CONVENTION
from vae_core.runs import RunError, load_run, read_json, write_json
from vae_core.subsets import label_factors

# One set of constants for `vae_core eval` and the app (the Disentanglement page imports these), so the two agree
# on the same run. The values are the ones every recorded evaluation (the shipped models' summary.json) used.
N_PRIOR_SAMPLES = 1000  # a validity rate from 1,000 samples has a 95% interval of at most ±3.1 points (±4.4 at 500)
N_TRAVERSAL_BASES = 100  # codes each dimension is traversed from; ownership is decided on 100 × 9 decodes a dim
N_INTERPOLATION_PAIRS = 500  # 50 pairs left ±9 points of 95% uncertainty on a path-validity rate


def _plain(value: Any) -> Any:
    """Tensors, numpy values and containers → JSON-ready python; NaN and inf → None."""
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    if isinstance(value, np.ndarray):
        return [_plain(v) for v in value.tolist()]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    return value


def _label_factors(corpus: Corpus, data: TextSet) -> tuple[np.ndarray, list[str], list[list[str]], list[str]] | None:
    """(factors (N, K), names, value names, skipped columns) for this split's labels, or None without any
    (the one rule: vae_core.subsets.label_factors)."""
    known = tuple(corpus.factors) if corpus.factors and all(f in data.labels for f in corpus.factors) else ()
    grammar = grammar_for_corpus(corpus.spec) if known else None  # its value order numbers the factors
    return label_factors(data.labels, known, factor_values=grammar.factors if grammar is not None else None)


def _sample(n: int, k: int, seed: int) -> list[int]:
    """k indices out of n, a seeded permutation's first k (all n, shuffled, when k ≥ n)."""
    return np.random.default_rng(seed).permutation(n)[: min(k, n)].tolist()


def evaluate_run(
    run_path: str | os.PathLike,
    corpus_spec: str | None = None,
    split: str = "test",
    nll_samples: int = 0,
    max_sentences: int = 0,
    disentanglement: bool = True,
    write_summary: bool = True,
    seed: int = 0,
    progress: Callable[[str, int, int], None] | None = None,
    device: str | torch.device = "cpu",
    metric_convention: str = DEFAULT_CONVENTION,
) -> dict[str, Any]:
    """Evaluate a run on a split of its corpus (or `corpus_spec`); return a JSON-ready dict.

    max_sentences > 0 keeps that many sentences of the split after a seeded shuffle. Adds
    'disentanglement' when the split has label columns (MIG restricted to active units; estimators of
    `metric_convention`, recorded in it), 'generation' (Self-BLEU and distinct-n of prior samples, smoothness
    of decoded interpolation paths) on any corpus, 'prior_samples', 'traversals' and 'interpolation' on the
    built-in corpus, and 'run',
    'split', 'corpus', 'nll_samples', 'timing'. With write_summary the result is stored under
    'eval' in <run>/summary.json (other keys kept; atomic write). `progress(stage, done, total)`
    is called during the importance-sampled NLL, the slow part; `device` is where the model runs
    (the NLL is ~all decoder compute: a GPU helps most). The global torch RNG is left as
    it was (building the model draws initial weights from it before loading).
    """
    with torch.random.fork_rng(devices=[]):
        result = _evaluate_run(run_path, corpus_spec, split, nll_samples, max_sentences, disentanglement, seed,
                               progress, device, metric_convention)
    if write_summary:
        path = Path(run_path) / "summary.json"
        summary: dict = {}
        if path.is_file():
            try:
                old = read_json(path)
                summary = old if isinstance(old, dict) else {}
            except RunError:
                summary = {}
        summary["eval"] = result
        write_json(path, summary)
    return result


def _evaluate_run(
    run_path: str | os.PathLike,
    corpus_spec: str | None,
    split: str,
    nll_samples: int,
    max_sentences: int,
    disentanglement: bool,
    seed: int,
    progress: Callable[[str, int, int], None] | None,
    device: str | torch.device,
    metric_convention: str = DEFAULT_CONVENTION,
) -> dict[str, Any]:
    from vae_core.encoding import posterior_means
    from vae_core.metrics import AU_THRESHOLD, evaluate_model

    t_start = time.perf_counter()
    timing: dict[str, float] = {}
    run = load_run(run_path, device=device)
    model, vocab, tcfg = run.model, run.vocab, run.train_config
    corpus_info = run.config.get("corpus", {}) if isinstance(run.config.get("corpus"), dict) else {}
    spec = corpus_spec or run_corpus_spec(run.path, corpus_info) or "synthetic"  # a grammar run: its own copy
    corpus = load_corpus(spec, corpus_info.get("text_column"), seed=tcfg.seed)  # the run's own split
    data = corpus.split(split)
    if max_sentences and max_sentences < len(data):
        data = data.select(_sample(len(data), max_sentences, seed))
    if len(data) == 0:
        raise RunError(f"split {split!r} of corpus {spec!r} is empty")
    timing["load_s"] = time.perf_counter() - t_start

    nll_progress = (lambda done, total: progress("nll", done, total)) if progress else None
    result: dict[str, Any] = {
        "run": str(Path(run_path)),
        "corpus": spec,
        "split": split,
        "nll_samples": nll_samples,
        "max_sentences": max_sentences,
        "seed": seed,
    }
    metrics = evaluate_model(
        model, vocab, data.sentences, nll_samples=nll_samples, seed=seed, lowercase=tcfg.lowercase,
        max_len=tcfg.max_len, progress=nll_progress,
    )
    timing.update(metrics.pop("timing"))
    result.update(metrics)

    if disentanglement:
        t0 = time.perf_counter()
        labelled = _label_factors(corpus, data)
        if labelled is not None:
            from vae_core.disentanglement import disentanglement_report

            factors, names, value_names, skipped = labelled
            mu, _, _ = posterior_means(model, vocab, data.sentences, lowercase=tcfg.lowercase, max_len=tcfg.max_len)
            active = np.asarray(metrics["au_variances"]) > AU_THRESHOLD
            report = disentanglement_report(mu.numpy(), factors, names, active=active, seed=seed,
                                            convention=metric_convention)
            report["factor_values"] = value_names
            report["skipped_labels"] = skipped
            result["disentanglement"] = report
        timing["disentanglement_s"] = time.perf_counter() - t0

    from vae_core.explore import generation_figures  # prior-sample diversity, path smoothness: any corpus

    t0 = time.perf_counter()
    result["generation"] = generation_figures(run, data.sentences, N_PRIOR_SAMPLES, N_INTERPOLATION_PAIRS, seed)
    timing["generation_s"] = time.perf_counter() - t0

    grammar = grammar_for_corpus(spec)  # the parser of a grammar corpus ('synthetic' → the built-in one)
    labeller: Any = grammar if grammar is not None and tuple(corpus.factors) == tuple(grammar.factors) else None
    if grammar is None:  # label columns, no grammar: classifiers trained on the corpus label the decodes
        from vae_core.label_classifiers import train_labeller

        t0 = time.perf_counter()
        classifiers = train_labeller(corpus, lowercase=tcfg.lowercase, tokenization=tcfg.tokenization)
        if classifiers is not None:
            result["label_classifiers"] = classifiers.describe()  # held-out accuracies beside what uses them
            labeller = classifiers if classifiers.factors else None  # none beats its baseline: nothing measured
        timing["label_classifiers_s"] = time.perf_counter() - t0
    if labeller is not None:
        from vae_core.validity import interpolation_validity, prior_sample_validity, traversal_factor_effects

        if labeller is grammar:  # prior-sample validity needs a parser that can say "not a corpus sentence"
            t0 = time.perf_counter()
            result["prior_samples"] = prior_sample_validity(model, vocab, n=N_PRIOR_SAMPLES, seed=seed,
                                                            grammar=grammar)
            timing["prior_samples_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        base = [data.sentences[i] for i in _sample(len(data), N_TRAVERSAL_BASES, seed + 1)]
        base_z, _, _ = posterior_means(model, vocab, base, lowercase=tcfg.lowercase, max_len=tcfg.max_len)
        active_dims = [d for d, v in enumerate(metrics["au_variances"]) if v > AU_THRESHOLD]
        result["traversals"] = traversal_factor_effects(model, vocab, base_z, dims=active_dims, grammar=labeller)
        timing["traversals_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        rng = np.random.default_rng(seed + 2)
        n = len(data)
        if n >= 2:
            pairs = []
            for _ in range(N_INTERPOLATION_PAIRS):
                i, j = rng.choice(n, size=2, replace=False)
                pairs.append((data.sentences[int(i)], data.sentences[int(j)]))
            result["interpolation"] = interpolation_validity(model, vocab, pairs, lowercase=tcfg.lowercase,
                                                             grammar=labeller)
        timing["interpolation_s"] = time.perf_counter() - t0

    timing["total_s"] = time.perf_counter() - t_start
    result["timing"] = timing
    result["evaluated_at"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    return _plain(result)


__all__ = ["evaluate_run"]
