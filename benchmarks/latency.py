"""Interactive latency of the app's model calls on this machine, printed as JSON.

Measures, for one run (default: the app's default shipped model in models/):
- decoding one sentence from a random z, greedy (the slider move; budget ≤ 20 ms median);
- a full traversal grid, latent_dim × 9 values, in one batched greedy call (budget ≤ 150 ms);
- encoding throughput over 10,000 synthetic-corpus sentences (budget ≥ 10,000 sentences/s).

When models/ holds no run yet, a throwaway model of the default size is trained for 50 steps
on the synthetic corpus in a temporary directory (the JSON says so): timings depend on the sizes,
and only a little on the weights (an untrained decoder runs to max_len more often).

    python benchmarks/latency.py [--run PATH] [--reps 100] [--threads N]

Adding a figure: write `def measure_x(ctx: Context) -> dict` and decorate it with
`@measurement("x")`, or call `register_measurement("x", fn)` from another script before `main()`.
`ctx` holds the loaded run, the benchmark sentences and (once encoding has been measured) their
posterior means, e.g. for projection timings.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vae_core.config import DecodeConfig, ModelConfig, TrainConfig  # noqa: E402
from vae_core.decode import decode  # noqa: E402
from vae_core.encoding import posterior_means  # noqa: E402
from vae_core.runs import Run, list_runs, load_run  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[1]
N_TRAVERSAL_VALUES = 9
N_ENCODE = 10_000


@dataclass
class Context:
    """What every measurement may use."""

    run: Run
    reps: int
    sentences: list[str]  # the encoding benchmark's sentences (synthetic corpus)
    mu: torch.Tensor | None = None  # (N, D) posterior means, set by the encoding measurement
    notes: dict = field(default_factory=dict)


Measurement = Callable[[Context], dict]
MEASUREMENTS: dict[str, Measurement] = {}


def register_measurement(name: str, fn: Measurement) -> None:
    """Add a figure to the report under `name` (run in registration order)."""
    MEASUREMENTS[name] = fn


def measurement(name: str) -> Callable[[Measurement], Measurement]:
    def wrap(fn: Measurement) -> Measurement:
        register_measurement(name, fn)
        return fn

    return wrap


def time_calls(fn: Callable[[], object], reps: int, warmup: int = 5) -> dict:
    """Median, p95, min and mean wall time of fn() in milliseconds over `reps` calls after `warmup`.

    Also the median process CPU time (all threads): on a shared, loaded machine with one torch
    thread it is close to what the wall time would be on an idle one.
    """
    for _ in range(warmup):
        fn()
    times, cpu = [], []
    for _ in range(reps):
        c0, t0 = time.process_time(), time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000.0)
        cpu.append((time.process_time() - c0) * 1000.0)
    times.sort()
    return {
        "median_ms": round(statistics.median(times), 3),
        "p95_ms": round(times[min(len(times) - 1, int(round(0.95 * (len(times) - 1))))], 3),
        "min_ms": round(times[0], 3),
        "mean_ms": round(statistics.fmean(times), 3),
        "cpu_median_ms": round(statistics.median(cpu), 3),
        "reps": reps,
    }


# ----------------------------------------------------------------------------- measurements


@measurement("decode_one_greedy")
def measure_decode_one(ctx: Context) -> dict:
    """One sentence from one random z ~ N(0, I), greedy: what a slider move costs."""
    run = ctx.run
    gen = torch.Generator().manual_seed(0)
    zs = torch.randn(ctx.reps + 5, 1, run.model_config.latent_dim, generator=gen)  # a fresh z per call
    cfg = DecodeConfig()
    it = iter(range(len(zs)))
    lengths = []

    def call() -> None:
        r = decode(run.model, zs[next(it)], run.vocab, cfg)
        lengths.append(len(r.ids[0]))

    out = time_calls(call, ctx.reps)
    out["mean_words"] = round(statistics.fmean(lengths), 2)
    return out


@measurement("traversal_grid_greedy")
def measure_traversal_grid(ctx: Context) -> dict:
    """latent_dim × 9 codes around a random z0, decoded greedily in one batched call."""
    run = ctx.run
    d = run.model_config.latent_dim
    gen = torch.Generator().manual_seed(1)
    z0 = torch.randn(d, generator=gen)
    values = torch.linspace(-3, 3, N_TRAVERSAL_VALUES)
    grid = z0.expand(d, N_TRAVERSAL_VALUES, d).clone()  # (d, 9, D)
    for row in range(d):
        grid[row, :, row] = values
    flat = grid.reshape(-1, d)  # (d·9, D)
    cfg = DecodeConfig()
    out = time_calls(lambda: decode(run.model, flat, run.vocab, cfg), max(10, ctx.reps // 5), warmup=2)
    out["codes"] = flat.size(0)
    return out


@measurement("encode_throughput")
def measure_encode(ctx: Context) -> dict:
    """Posterior means of the benchmark sentences (tokenising included), best of 3 passes."""
    run = ctx.run
    passes, cpu = [], []
    mu = None
    for _ in range(3):
        c0, t0 = time.process_time(), time.perf_counter()
        mu, _, _ = posterior_means(run.model, run.vocab, ctx.sentences, lowercase=run.train_config.lowercase,
                                   max_len=run.train_config.max_len)
        passes.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    ctx.mu = mu
    best = min(passes)
    return {
        "sentences": len(ctx.sentences),
        "sentences_per_s": round(len(ctx.sentences) / best),
        "seconds_best": round(best, 3),
        "seconds_all": [round(p, 3) for p in passes],
        "sentences_per_cpu_s": round(len(ctx.sentences) / min(cpu)),
    }


# ----------------------------------------------------------------------------- the run to measure


def default_shipped_run() -> Path | None:
    """The app's default: models/DEFAULT naming a run, else the first run in models/ (or models/ itself)."""
    models = Path(os.environ.get("VAE_MODELS_DIR") or REPO_ROOT / "models")
    if (models / "config.json").is_file():
        return models
    runs = [p for p in list_runs(models) if (p / "model.safetensors").is_file()]
    if not runs:
        return None
    default = models / "DEFAULT"
    if default.is_file():
        name = default.read_text(encoding="utf-8").strip()
        for p in runs:
            if p.name == name:
                return p
    return runs[0]


def throwaway_run(directory: Path, steps: int = 50) -> Path:
    """A default-size model trained for `steps` steps on the synthetic corpus, in `directory`."""
    from vae_core.corpus import load_corpus
    from vae_core.train import train

    out = directory / "throwaway"
    train(out, load_corpus("synthetic"), ModelConfig(), TrainConfig(epochs=1, max_steps=steps, log_every=steps))
    return out


def benchmark_sentences(n: int = N_ENCODE) -> list[str]:
    from vae_core import synthetic

    c = synthetic.generate(seed=0)
    pool = list(c.train.sentences) + list(c.valid.sentences) + list(c.test.sentences)
    return (pool * (n // len(pool) + 1))[:n]


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--run", default=None, help="run directory (default: the app's default shipped model)")
    ap.add_argument("--reps", type=int, default=100, help="timed single-sentence decodes")
    ap.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (0 = leave torch's default)")
    ap.add_argument("--only", nargs="*", default=None, help="names of the measurements to run")
    a = ap.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    report: dict = {
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(),
            "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(),
            "load_avg_1min": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
        }
    }
    with tempfile.TemporaryDirectory() as tmp:
        if a.run:
            run_path, source = Path(a.run), "given"
        else:
            shipped = default_shipped_run()
            if shipped is not None:
                run_path, source = shipped, "shipped default"
            else:
                t0 = time.perf_counter()
                run_path = throwaway_run(Path(tmp))
                source = (f"throwaway: models/ has no run, so a default-size model was trained for 50 steps "
                          f"on the synthetic corpus ({time.perf_counter() - t0:.1f} s)")
        run = load_run(run_path)
        mc = run.model_config
        report["run"] = {
            "path": str(run_path), "source": source, "vocab": len(run.vocab), "embed_dim": mc.embed_dim,
            "hidden_dim": mc.hidden_dim, "latent_dim": mc.latent_dim, "rnn_type": mc.rnn_type,
            "bidirectional": mc.bidirectional,
        }
        ctx = Context(run=run, reps=a.reps, sentences=benchmark_sentences())
        for name, fn in MEASUREMENTS.items():
            if a.only is None or name in a.only:
                report[name] = fn(ctx)
        if ctx.notes:
            report["notes"] = ctx.notes
    report["budgets"] = {
        "decode_one_median_ms": 20, "traversal_grid_ms": 150, "encode_sentences_per_s": 10_000,
    }
    print(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
